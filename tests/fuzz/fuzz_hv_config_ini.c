/* fuzz_hv_config_ini.c - libFuzzer harness for the daemon's INI configuration
 * (hv_config_parse_ini, src/hypervisor/hv_config.c: libinih's parser with the daemon's
 * callback, the same one --config FILE uses, and each value parsed by the settings table of
 * src/hypervisor/hv_settings.c).
 *
 * Invariants: an accepted file leaves every setting in range and every [daemon] text value
 * exactly as written (a value that does not fit is refused, never cut); a refusal is
 * "line N: ..." and is about line N: the first N-1 lines are accepted, and the first N lines
 * alone are refused with the same message.
 */
#include <ini.h>

#include "fuzz_util.h"
#include "hv_config.h"
#include "hv_log.h"

static struct hv_config base;

/* [daemon] keys whose value is kept as text */
static const char *text_keys[] = {"socket", "worker_socket", "listen",   "shm_dir",
                                  "state",  "node_name",     "kube_api", "policy"};

static const char *field_of(const struct hv_config *c, int i, size_t *cap)
{
    const char *f[] = {c->socket, c->worker_socket, c->listen,   c->shm_dir,
                       c->state,  c->node_name,     c->kube_api, c->policy};
    size_t n[] = {sizeof(c->socket),   sizeof(c->worker_socket), sizeof(c->listen),
                  sizeof(c->shm_dir),  sizeof(c->state),         sizeof(c->node_name),
                  sizeof(c->kube_api), sizeof(c->policy)};
    *cap = n[i];
    return f[i];
}

struct last_values {
    char *v[sizeof(text_keys) / sizeof(text_keys[0])];
};

/* the last value of each [daemon] text key, as libinih hands it over */
static int record(void *arg, const char *section, const char *name, const char *value)
{
    struct last_values *lv = arg;
    if (strcmp(section, "daemon")) return 1;
    for (size_t i = 0; i < sizeof(text_keys) / sizeof(text_keys[0]); i++)
        if (!strcmp(name, text_keys[i])) {
            free(lv->v[i]);
            lv->v[i] = strdup(value);
        }
    return 1;
}

static void check_accepted(const struct hv_config *c, const char *text)
{
    FUZZ_CHECK(c->tick_ms >= 10 && c->tick_ms <= 600000, "tick_ms %d", c->tick_ms);
    FUZZ_CHECK(c->heartbeat_ms >= 10 && c->heartbeat_ms <= 600000, "heartbeat_ms %d",
               c->heartbeat_ms);
    FUZZ_CHECK(c->log_level >= HV_DEBUG && c->log_level <= HV_ERROR, "log_level %d", c->log_level);
    const struct hv_limits *l = &c->defaults;
    if (l->has & HV_HAS_CORE) FUZZ_CHECK(l->core > 0 && l->core <= 100, "core %g", l->core);
    if (l->has & HV_HAS_WEIGHT)
        FUZZ_CHECK(l->weight >= 1 && l->weight <= 10000, "weight %u", l->weight);
    if (l->has & HV_HAS_SOFT) FUZZ_CHECK(l->soft == 0 || l->soft == 1, "soft %d", l->soft);

    struct last_values lv = {{0}};
    FUZZ_CHECK(ini_parse_string(text, record, &lv) == 0, "accepted, but not by libinih");
    for (size_t i = 0; i < sizeof(text_keys) / sizeof(text_keys[0]); i++) {
        size_t cap;
        const char *f = field_of(c, (int)i, &cap);
        FUZZ_CHECK(fuzz_terminated(f, cap), "%s not terminated", text_keys[i]);
        if (lv.v[i])
            FUZZ_CHECK(!strcmp(f, lv.v[i]), "%s = '%s' (%zu bytes) kept as '%s'", text_keys[i],
                       lv.v[i], strlen(lv.v[i]), f);
        free(lv.v[i]);
    }
}

/* text cut after its first n lines; NULL when a line is long enough for libinih to read it in
 * pieces (each piece counts as a line, so "line N" is not the N-th newline) */
static char *first_lines(const char *text, int n)
{
    const char *p = text;
    for (int i = 0; i < n && *p; i++) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) + 1 : strlen(p);
        if (len >= 199) return NULL;
        p += len;
    }
    return strndup(text, (size_t)(p - text));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!base.tick_ms) {
        char *argv[] = {"vgpu-hypervisor", NULL}, err[512];
        if (hv_config_load(&base, 1, argv, err, sizeof(err)) != 0) abort();
    }
    char *text = fuzz_cstr(data, size);
    struct hv_config c = base;
    char err[600] = "";
    int r = hv_config_parse_ini(&c, text, err, sizeof(err));
    if (r == 0) {
        check_accepted(&c, text);
    } else {
        int line = 0;
        FUZZ_CHECK(r == -1 && sscanf(err, "line %d: ", &line) == 1 && line > 0, "refused with '%s'",
                   err);
        char *head = first_lines(text, line - 1), *upto = first_lines(text, line);
        if (head && upto) {
            char e2[600] = "";
            struct hv_config c2 = base;
            FUZZ_CHECK(hv_config_parse_ini(&c2, head, e2, sizeof(e2)) == 0,
                       "'%s', but the lines before are refused too: '%s'", err, e2);
            c2 = base;
            FUZZ_CHECK(hv_config_parse_ini(&c2, upto, e2, sizeof(e2)) == -1 && !strcmp(e2, err),
                       "'%s', but up to that line alone: '%s'", err, e2);
        }
        free(head);
        free(upto);
    }
    free(text);
    return 0;
}
