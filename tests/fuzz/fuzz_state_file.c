/* fuzz_state_file.c - the daemon's reading of its state file (src/hypervisor/state_parse.c,
 * state_parse), which holds the operators' settings and may be edited by hand.
 *
 * Invariants: an accepted file gives exactly the pods of its "pods" object, in order, each with
 * the namespace (1-63 bytes) and name (1-253 bytes) its key names, both names hv_name_ok takes
 * (no control bytes, spaces or '/', not "." or "..", UTF-8); suspended 0/1; at most
 * STATE_MAX_KEYS GPU settings, keyed "all", an index 0-1023 without leading zeros or a
 * normalised uuid ("gpu-" and [a-z0-9-]), none twice; each with at least one field, all in
 * range (core (0, 100], weight 1..10000, soft 0/1, mem <= INT64_MAX). A refusal is a
 * terminated, non-empty message of at most 1000 bytes (state_load's buffer holds it whole),
 * UTF-8 unless it is jansson's about text that is not JSON, the same whatever the size of the
 * buffer (a shorter one holds its start), and nothing is left in the result.
 */
#include <ctype.h>
#include <jansson.h>
#include <math.h>

#include "fuzz_util.h"
#include "state_parse.h"

static void check_limits(const struct hv_limits *l)
{
    FUZZ_CHECK(l->has && !(l->has & ~15u), "has 0x%x", l->has);
    if (l->has & HV_HAS_CORE)
        FUZZ_CHECK(isfinite(l->core) && l->core > 0 && l->core <= 100, "core %g", l->core);
    if (l->has & HV_HAS_MEM)
        FUZZ_CHECK(l->mem <= (uint64_t)INT64_MAX, "mem %llu", (unsigned long long)l->mem);
    if (l->has & HV_HAS_WEIGHT)
        FUZZ_CHECK(l->weight >= 1 && l->weight <= 10000, "weight %u", l->weight);
    if (l->has & HV_HAS_SOFT) FUZZ_CHECK(l->soft == 0 || l->soft == 1, "soft %d", l->soft);
}

/* 1-(max-1) bytes, none a control byte, space, DEL or '/', not "." or "..", and hv_name_ok */
static void check_name(const char *s, size_t cap, const char *what)
{
    FUZZ_CHECK(fuzz_terminated(s, cap), "%s not terminated", what);
    size_t n = strlen(s);
    FUZZ_CHECK(n >= 1 && n < cap && strcmp(s, ".") && strcmp(s, ".."), "%s '%s'", what, s);
    for (size_t i = 0; i < n; i++)
        FUZZ_CHECK((unsigned char)s[i] > 0x20 && s[i] != 0x7f && s[i] != '/', "%s '%s'", what, s);
    FUZZ_CHECK(hv_name_ok(s, n, cap), "%s '%s' is not a name", what, s);
}

static void check_key(const char *k)
{
    FUZZ_CHECK(fuzz_terminated(k, VGPU_UUID_LEN), "GPU key not terminated");
    size_t n = strlen(k);
    if (!strcmp(k, "all")) return;
    if (n && isdigit((unsigned char)k[0])) {
        FUZZ_CHECK(n <= 4 && strspn(k, "0123456789") == n && (n == 1 || k[0] != '0') &&
                       atoi(k) <= 1023,
                   "GPU key '%s'", k);
        return;
    }
    FUZZ_CHECK(n >= 5 && !strncmp(k, "gpu-", 4), "GPU key '%s'", k);
    for (size_t i = 0; i < n; i++)
        FUZZ_CHECK(islower((unsigned char)k[i]) || isdigit((unsigned char)k[i]) || k[i] == '-',
                   "GPU key '%s'", k);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct state_doc doc;
    char err[4096];
    memset(err, 0x55, sizeof(err));
    int r = state_parse((const char *)data, size, &doc, err, sizeof(err));
    if (r != 0) {
        FUZZ_CHECK(r == -1, "state_parse returned %d", r);
        FUZZ_CHECK(fuzz_terminated(err, sizeof(err)) && err[0], "a refusal without a message");
        FUZZ_CHECK(strlen(err) <= 1000, "a message of %zu bytes", strlen(err));
        /* what the file names is quoted in whole characters (jansson's own messages about
         * text that is not JSON may show the bytes as they are) */
        json_t *utf8 = json_string(err);
        FUZZ_CHECK(utf8 || !strncmp(err, "line ", 5), "the refusal '%s' is not UTF-8", err);
        json_decref(utf8);
        FUZZ_CHECK(!doc.pods && !doc.n_pods, "a refusal left %zu pods", doc.n_pods);
        char small[24];
        FUZZ_CHECK(state_parse((const char *)data, size, &doc, small, sizeof(small)) == -1,
                   "not deterministic");
        FUZZ_CHECK(!strncmp(small, err, sizeof(small) - 1) && strlen(small) < sizeof(small),
                   "'%s' in a small buffer is '%s'", err, small);
        return 0;
    }
    json_t *root = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    json_t *pods = json_object_get(root, "pods");
    FUZZ_CHECK(json_is_object(root) && json_integer_value(json_object_get(root, "version")) == 1,
               "a file accepted without version 1");
    FUZZ_CHECK(doc.n_pods == json_object_size(pods), "%zu pods of %zu", doc.n_pods,
               json_object_size(pods));
    size_t i = 0;
    const char *k;
    json_t *v;
    json_object_foreach(pods, k, v)
    {
        const struct state_pod *p = &doc.pods[i++];
        check_name(p->ns, sizeof(p->ns), "namespace");
        check_name(p->name, sizeof(p->name), "name");
        size_t nl = strlen(p->ns);
        FUZZ_CHECK(!strncmp(k, p->ns, nl) && k[nl] == '/' && !strcmp(k + nl + 1, p->name),
                   "pod '%s' read as '%s' '%s'", k, p->ns, p->name);
        FUZZ_CHECK(p->suspended == json_is_true(json_object_get(v, "suspended")), "suspended %d",
                   p->suspended);
        json_t *limits = json_object_get(v, "limits");
        FUZZ_CHECK(p->n >= 0 && p->n <= STATE_MAX_KEYS && (size_t)p->n == json_object_size(limits),
                   "%d GPU settings of %zu", p->n, json_object_size(limits));
        for (int g = 0; g < p->n; g++) {
            check_key(p->key[g]);
            for (int h = 0; h < g; h++)
                FUZZ_CHECK(strcmp(p->key[g], p->key[h]), "GPU key '%s' twice", p->key[g]);
            check_limits(&p->lim[g]);
        }
    }
    json_decref(root);
    state_doc_free(&doc);
    return 0;
}
