/* hv_settings.c - the table of the daemon's settings and the parser of one value.
 *
 * Why this exists: see hv_settings.h. Values are checked with the shared strict parsers
 * (src/common/size_parse.h): a typo stops the daemon at start with a message naming the
 * option, key or variable and the value, instead of being ignored or cut.
 */
#define _GNU_SOURCE
#include "hv_settings.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hv_log.h"
#include "shm_region.h"
#include "size_parse.h"

#define FIELD(f) offsetof(struct hv_config, f), sizeof(((struct hv_config *)0)->f)
#define NOFIELD 0, 0

/* Order: as --help lists them. */
const struct hv_setting hv_settings[] = {
    {"config", NULL, NULL, NULL, 0, HV_SET_TEXT, 0, 0, NULL, FIELD(config_file), NULL, "FILE",
     "INI file ([daemon], [defaults], [kubernetes]): it comes before the environment and the "
     "options"},
    {"socket", "daemon", "socket", "VGPU_SOCKET", 0, HV_SET_TEXT, 0, 0, NULL, FIELD(socket),
     "/run/vgpu/vgpu.sock", "PATH", "operator socket"},
    {"worker-socket", "daemon", "worker_socket", NULL, 0, HV_SET_TEXT, 0, 0, NULL,
     FIELD(worker_socket), NULL, "PATH",
     "worker socket (default: worker.sock beside the "
     "operator socket)"},
    {"listen", "daemon", "listen", NULL, 0, HV_SET_TEXT, 0, 0, NULL, FIELD(listen), NULL, "IP:PORT",
     "also serve workers over TCP"},
    {"shm-dir", "daemon", "shm_dir", "VGPU_SHM_DIR", 0, HV_SET_TEXT, 0, 0, NULL, FIELD(shm_dir),
     VGPU_SHM_MANAGED_DIR, "DIR", "pod regions"},
    {"identity", "daemon", "identity", NULL, 0, HV_SET_IDENTITY, 0, 0,
     "cgroup, or env for "
     "development",
     FIELD(identity_env), "cgroup", "MODE",
     "a worker's pod: cgroup (from the "
     "kernel), or env: what its registration says (development only: any process can then act "
     "as any pod)"},
    {"state", "daemon", "state", NULL, 0, HV_SET_TEXT, 0, 0, NULL, FIELD(state),
     "/var/lib/vgpu/state.json", "FILE", "operator settings"},
    {"tick-ms", "daemon", "tick_ms", NULL, 0, HV_SET_INT, 10, 600000, "10..600000 ms",
     FIELD(tick_ms), "100", "N", "scheduling period"},
    {"heartbeat-ms", "daemon", "heartbeat_ms", NULL, 0, HV_SET_INT, 10, 600000, "10..600000 ms",
     /* 5 s: a worker's death is seen by the kernel check each tick and a lost daemon by the
      * long poll; the heartbeat keeps a worker that is not polling registered, and each one
      * is a connection and a thread in the daemon (bench/daemon_cpu.sh) */
     FIELD(heartbeat_ms), "5000", "N", "heartbeat interval asked of workers"},
    {"shared-correction", "daemon", "shared_correction", NULL, 0, HV_SET_INT, 0, 100, "0..100 %",
     FIELD(shared_correction), "100", "PCT",
     "part of the busy time that limited pods sharing a GPU cost beyond their charges which "
     "is charged to them"},
    {"policy", "daemon", "policy", NULL, 0, HV_SET_TEXT, 0, 0, NULL, FIELD(policy), "weighted",
     "NAME", "compute policy"},
    {"kube-api", "daemon", "kube_api", NULL, 0, HV_SET_TEXT, 0, 0, NULL, FIELD(kube_api), NULL,
     "URL", "Kubernetes API server (default: in-cluster when KUBERNETES_SERVICE_HOST is set)"},
    {"node-name", "daemon", "node_name", "NODE_NAME", 1, HV_SET_TEXT, 0, 0, NULL, FIELD(node_name),
     NULL, "NAME",
     "this node's name (the environment only when the INI file "
     "does not name it)"},
    {"trusted-namespaces", "kubernetes", "trusted_namespaces", NULL, 0, HV_SET_NS_LIST, 0, 0, NULL,
     NOFIELD, NULL, "LIST",
     "namespaces (comma or space separated) whose pods' vgpu.io/* "
     "annotations replace [defaults]; elsewhere annotations may only lower them. In the INI "
     "file a repeated key or a continuation line adds to the list; the option replaces it"},
    {"device-plugin-dir", "daemon", "device_plugin_dir", NULL, 0, HV_SET_TEXT, 0, 0, NULL,
     FIELD(device_plugin_dir), NULL, "DIR",
     "serve the Kubernetes device plugin "
     "(vgpu.io/gpu-memory, vgpu.io/gpu-cores) to the kubelet whose device-plugin directory this "
     "is (/var/lib/kubelet/device-plugins); off when not given"},
    {"memory-unit", "daemon", "memory_unit", NULL, 0, HV_SET_SIZE, 1ll << 20, 1ll << 40,
     "1MiB to 1TiB", FIELD(memory_unit), "1GiB", "SIZE",
     "GPU memory of one vgpu.io/gpu-memory device"},
    {"lib-dir", "daemon", "lib_dir", NULL, 0, HV_SET_TEXT, 0, 0, NULL, FIELD(lib_dir),
     "/usr/local/vgpu/lib", "DIR",
     "where the node's libcuda_limiter.so is, mounted read-only "
     "into containers"},
    {"log-level", "daemon", "log_level", NULL, 0, HV_SET_LOG_LEVEL, 0, 0,
     "debug, info, warn or error", FIELD(log_level), "info", "LEVEL",
     "the least severe messages logged"},
    /* a limiter holds one connection (its long poll) and opens one more at times: 256 lets a
     * pod run some 200 GPU processes, and takes 32 pods at their caps to fill the total */
    {"max-connections", "daemon", "max_connections", NULL, 0, HV_SET_INT, 1, 1048576, "1..1048576",
     FIELD(max_connections), "8192", "N",
     "open connections at most on the "
     "worker socket and TCP together, and as many on the operator socket"},
    {"max-connections-per-pod", "daemon", "max_connections_per_pod", NULL, 0, HV_SET_INT, 1,
     1048576, "1..1048576", FIELD(max_connections_per_pod), "256", "N",
     "open connections at "
     "most per pod (over TCP: per peer address); more are answered 503 at once"},
    {"request-timeout-ms", "daemon", "request_timeout_ms", NULL, 0, HV_SET_INT, 100, 600000,
     "100..600000 ms", FIELD(request_timeout_ms), "10000", "N",
     "a connection must deliver "
     "each request, headers and body, within N ms (of its start for the first); else it is "
     "cut. Replies (long-polls, events) are not limited"},
    {NULL, "defaults", "core_limit", NULL, 0, HV_SET_LIMIT, 0, 0, NULL, NOFIELD, NULL, "PERCENT",
     "a pod's compute limit on each GPU, (0, 100]"},
    {NULL, "defaults", "mem_limit", NULL, 0, HV_SET_LIMIT, 0, 0, NULL, NOFIELD, NULL, "SIZE",
     "a pod's memory cap on each GPU (0: none)"},
    {NULL, "defaults", "weight", NULL, 0, HV_SET_LIMIT, 0, 0, NULL, NOFIELD, NULL, "N",
     "a pod's share weight, 1..10000"},
    {NULL, "defaults", "soft", NULL, 0, HV_SET_LIMIT, 0, 0, NULL, NOFIELD, NULL, "BOOL",
     "a pod's core limit lends it the GPU's idle time (false: hard)"},
    {"help", NULL, NULL, NULL, 0, HV_SET_FLAG, 0, 0, NULL, NOFIELD, NULL, NULL, "this text"},
    {"version", NULL, NULL, NULL, 0, HV_SET_FLAG, 0, 0, NULL, NOFIELD, NULL, NULL,
     "the daemon's version"},
};
const size_t hv_n_settings = sizeof(hv_settings) / sizeof(hv_settings[0]);
_Static_assert(sizeof(hv_settings) / sizeof(hv_settings[0]) <= HV_MAX_SETTINGS,
               "HV_MAX_SETTINGS (hv_settings.h) is too small");

static int parse_int(const char *text, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (!*text || *end || errno || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

int hv_limits_parse_field(struct hv_limits *l, const char *field, const char *text, char *err,
                          size_t errlen)
{
    char why[160] = "";
    if (!strcmp(field, "core_limit")) {
        double pct;
        if (vgpu_parse_percent(text, &pct, why, sizeof(why))) goto bad;
        l->core = pct;
        l->has |= HV_HAS_CORE;
    } else if (!strcmp(field, "mem_limit")) {
        uint64_t b;
        if (vgpu_parse_size(text, &b, why, sizeof(why))) goto bad;
        l->mem = b;
        l->has |= HV_HAS_MEM;
    } else if (!strcmp(field, "weight")) {
        long w;
        if (parse_int(text, 1, 10000, &w)) {
            snprintf(why, sizeof(why), "an integer from 1 to 10000");
            goto bad;
        }
        l->weight = (uint32_t)w;
        l->has |= HV_HAS_WEIGHT;
    } else if (!strcmp(field, "soft")) {
        int b;
        if (vgpu_parse_bool(text, &b, why, sizeof(why))) goto bad;
        l->soft = b;
        l->has |= HV_HAS_SOFT;
    } else {
        snprintf(err, errlen, "unknown field '%s'", field);
        return -1;
    }
    return 0;
bad:
    snprintf(err, errlen, "%s: invalid value '%s'%s%s", field, text, *why ? ": " : "", why);
    return -1;
}

/* A namespace name as Kubernetes allows it: a DNS label (RFC 1123), 1-63 of [a-z0-9-], not
 * starting or ending with '-'. Nothing else can name a real namespace, so anything else in the
 * trusted list is a typo that would silently trust nothing. */
static int dns_label(const char *s, size_t n)
{
    if (n < 1 || n > 63 || s[0] == '-' || s[n - 1] == '-') return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return 0;
    return 1;
}

/* Add the namespaces of `list` (separated by commas and/or white space) to c's trusted ones.
 * Returns 0, or -1 with a message naming the first bad entry in why (nothing after it added). */
static int add_trusted(struct hv_config *c, const char *list, char *why, size_t n)
{
    for (const char *p = list;;) {
        p += strspn(p, ", \t\r\n");
        if (!*p) return 0;
        size_t len = strcspn(p, ", \t\r\n");
        if (!dns_label(p, len)) {
            snprintf(why, n,
                     "invalid namespace '%.*s' (a DNS label: 1-63 of a-z, 0-9 and '-', not "
                     "starting or ending with '-')",
                     (int)(len > 80 ? 80 : len), p);
            return -1;
        }
        char ns[64];
        memcpy(ns, p, len);
        ns[len] = 0;
        p += len;
        if (hv_config_ns_trusted(c, ns)) continue;
        if (c->n_trusted_ns >= HV_MAX_TRUSTED_NS) {
            snprintf(why, n, "more than %d namespaces", HV_MAX_TRUSTED_NS);
            return -1;
        }
        memcpy(c->trusted_ns[c->n_trusted_ns++], ns, len + 1);
    }
}

int hv_config_ns_trusted(const struct hv_config *c, const char *ns)
{
    for (int i = 0; i < c->n_trusted_ns; i++)
        if (!strcmp(c->trusted_ns[i], ns)) return 1;
    return 0;
}

const struct hv_setting *hv_setting_by_key(const char *section, const char *key, int *known_section)
{
    *known_section = 0;
    for (size_t i = 0; i < hv_n_settings; i++) {
        const struct hv_setting *s = &hv_settings[i];
        if (!s->section || strcmp(s->section, section)) continue;
        *known_section = 1;
        if (!strcmp(s->key, key)) return s;
    }
    return NULL;
}

const char *hv_setting_option_name(const struct hv_setting *s, char *buf, size_t n)
{
    snprintf(buf, n, "--%s", s->option);
    return buf;
}

const char *hv_setting_key_name(const struct hv_setting *s, char *buf, size_t n)
{
    snprintf(buf, n, "[%s] %s", s->section, s->key);
    return buf;
}

/* A number (HV_SET_INT, HV_SET_SIZE) into its field. 0, or -1 with a message. */
static int apply_number(char *field, const struct hv_setting *s, const char *value, const char *who,
                        char *err, size_t errlen)
{
    if (s->type == HV_SET_INT) {
        long v;
        if (parse_int(value, (long)s->lo, (long)s->hi, &v)) {
            snprintf(err, errlen, "%s: invalid value '%s' (%s)", who, value, s->range);
            return -1;
        }
        *(int *)(void *)field = (int)v;
        return 0;
    }
    uint64_t b;
    char why[160];
    if (vgpu_parse_size(value, &b, why, sizeof(why))) {
        snprintf(err, errlen, "%s: invalid value '%s': %s", who, value, why);
        return -1;
    }
    if (b < (uint64_t)s->lo || b > (uint64_t)s->hi) {
        snprintf(err, errlen, "%s: invalid value '%s': from %s", who, value, s->range);
        return -1;
    }
    memcpy(field, &b, sizeof(b));
    return 0;
}

int hv_setting_apply(struct hv_config *c, const struct hv_setting *s, const char *value,
                     const char *who, char *err, size_t errlen)
{
    char *field = (char *)c + s->off;
    char why[200];
    switch (s->type) {
    case HV_SET_TEXT: /* a cut path or name would name something else */
        if (strlen(value) >= s->size) {
            snprintf(err, errlen, "%s: longer than %zu bytes", who, s->size - 1);
            return -1;
        }
        memcpy(field, value, strlen(value) + 1);
        return 0;
    case HV_SET_INT:
    case HV_SET_SIZE:
        return apply_number(field, s, value, who, err, errlen);
    case HV_SET_LOG_LEVEL:
    case HV_SET_IDENTITY: {
        int v = s->type == HV_SET_LOG_LEVEL ? hv_log_parse_level(value)
                : !strcmp(value, "cgroup")  ? 0
                : !strcmp(value, "env")     ? 1
                                            : -1;
        if (v < 0) {
            snprintf(err, errlen, "%s: invalid value '%s' (%s)", who, value, s->range);
            return -1;
        }
        *(int *)(void *)field = v;
        return 0;
    }
    case HV_SET_NS_LIST:
        if (add_trusted(c, value, why, sizeof(why))) {
            snprintf(err, errlen, "%s: %s", who, why);
            return -1;
        }
        return 0;
    case HV_SET_LIMIT:
        if (hv_limits_parse_field(&c->defaults, s->key, value, why, sizeof(why))) {
            snprintf(err, errlen, "[%s] %s", s->section, why);
            return -1;
        }
        return 0;
    case HV_SET_FLAG:
        break;
    }
    snprintf(err, errlen, "%s: takes no value", who);
    return -1;
}

/* `text` from column `col` on, wrapped at 100 columns with continuation lines indented to 25. */
static void wrap(FILE *f, int col, const char *text)
{
    const int indent = 25, width = 100;
    if (col > indent - 2) { /* at least two spaces before the text */
        fputc('\n', f);
        col = 0;
    }
    fprintf(f, "%*s", indent - col, "");
    col = indent;
    for (const char *p = text; *p;) {
        p += strspn(p, " ");
        int len = (int)strcspn(p, " ");
        if (!len) break;
        if (col > indent && col + 1 + len > width) {
            fprintf(f, "\n%*s", indent, "");
            col = indent;
        } else if (col > indent) {
            fputc(' ', f);
            col++;
        }
        fprintf(f, "%.*s", len, p);
        col += len;
        p += len;
    }
    fputc('\n', f);
}

void hv_settings_usage(FILE *f)
{
    fputs("usage: vgpu-hypervisor [options]\n"
          "Precedence: options > environment > --config file > defaults.\n",
          f);
    char extra[512];
    for (size_t i = 0; i < hv_n_settings; i++) {
        const struct hv_setting *s = &hv_settings[i];
        if (!s->option) continue;
        int col = fprintf(f, "  --%s%s%s", s->option, s->arg ? " " : "", s->arg ? s->arg : "");
        int n = snprintf(extra, sizeof(extra), "%s", s->help);
        if (s->range && s->type != HV_SET_IDENTITY && n < (int)sizeof(extra))
            n += snprintf(extra + n, sizeof(extra) - (size_t)n, " (%s)", s->range);
        if (s->section && n < (int)sizeof(extra))
            n +=
                snprintf(extra + n, sizeof(extra) - (size_t)n, "; INI [%s] %s", s->section, s->key);
        if (s->env && n < (int)sizeof(extra))
            n += snprintf(extra + n, sizeof(extra) - (size_t)n, "; env %s", s->env);
        if (s->def && n < (int)sizeof(extra))
            snprintf(extra + n, sizeof(extra) - (size_t)n, "; default %s", s->def);
        wrap(f, col, extra);
    }
    fputs("INI only:\n", f);
    for (size_t i = 0; i < hv_n_settings; i++) {
        const struct hv_setting *s = &hv_settings[i];
        if (s->option) continue;
        int col = fprintf(f, "  [%s] %s = %s", s->section, s->key, s->arg);
        wrap(f, col, s->help);
    }
}
