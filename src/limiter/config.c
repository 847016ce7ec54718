/* config.c - the limiter's configuration from the environment (see config.h for the rules). */
#define _GNU_SOURCE
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/cgroup_path.h"
#include "flat_json.h"
#include "../common/shm_region.h"
#include "../common/size_parse.h"
#include "log.h"

#define INDEX_ALL (-2)      /* VCUDA_MEMORY_LIMIT: applies to every GPU */
#define INDEX_FALLBACK (-3) /* CUDA_MEM_LIMIT: every GPU without a CUDA_MEM_LIMIT_<i> */

static const char *env_get(char *const *envp, const char *name)
{
    size_t n = strlen(name);
    for (char *const *e = envp; e && *e; e++)
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=') return *e + n + 1;
    return NULL;
}

static void set_error(struct vgpu_config *cfg, const char *fmt, const char *var, const char *detail)
{
    if (cfg->error++) return; /* keep the first message; the count says there were more */
    snprintf(cfg->error_msg, sizeof(cfg->error_msg), fmt, var, detail);
}

static void add_note(struct vgpu_config *cfg, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void add_note(struct vgpu_config *cfg, int level, const char *fmt, ...)
{
    if (cfg->n_notes >= VGPU_CFG_MAX_NOTES) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cfg->notes[cfg->n_notes].text, sizeof(cfg->notes[0].text), fmt, ap);
    va_end(ap);
    cfg->notes[cfg->n_notes++].level = level;
}

void vgpu_config_log_notes(const struct vgpu_config *cfg)
{
    for (int i = 0; i < cfg->n_notes; i++)
        VLOG(cfg->notes[i].level, "%s", cfg->notes[i].text);
}

/* digits, optionally '.' and digits, optionally '%' when `pct`: no sign, blank, exponent or
 * hexadecimal, which strtod would take */
static int plain_decimal(const char *s, int pct)
{
    const char *p = s;
    if (!isdigit((unsigned char)*p)) return 0;
    while (isdigit((unsigned char)*p))
        p++;
    if (*p == '.') {
        p++;
        if (!isdigit((unsigned char)*p)) return 0;
        while (isdigit((unsigned char)*p))
            p++;
    }
    if (pct && *p == '%') p++;
    return *p == 0;
}

/* a size as written in a variable: no blank around it (the parser allows blanks inside) */
static int blank_edges(const char *s)
{
    size_t n = strlen(s);
    return n && (isspace((unsigned char)s[0]) || isspace((unsigned char)s[n - 1]));
}

int vgpu_normalize_uuid(const char *in, char *out, unsigned outlen)
{
    const char *p = in;
    const char *prefix = "gpu-";
    while (*p && isspace((unsigned char)*p))
        p++;
    if (strncasecmp(p, "GPU-", 4) == 0) {
        p += 4;
    } else if (strncasecmp(p, "MIG-", 4) == 0) {
        p += 4;
        prefix = "mig-";
    }
    static const int groups[] = {8, 4, 4, 4, 12};
    char body[40];
    size_t n = 0;
    for (int g = 0; g < 5; g++) {
        for (int i = 0; i < groups[g]; i++, p++) {
            if (!isxdigit((unsigned char)*p)) return -1;
            body[n++] = (char)tolower((unsigned char)*p);
        }
        if (g < 4) {
            if (*p != '-') return -1;
            body[n++] = '-';
            p++;
        }
    }
    body[n] = 0;
    while (*p && isspace((unsigned char)*p))
        p++;
    if (*p) return -1;
    if (snprintf(out, outlen, "%s%s", prefix, body) >= (int)outlen) return -1;
    return 0;
}

/* "0".."15" exactly as written (no leading zero, sign or blank) -> index, else -1 */
static int parse_index(const char *s)
{
    if (!isdigit((unsigned char)s[0])) return -1;
    if (!s[1]) return s[0] - '0';
    if (s[0] == '0' || !isdigit((unsigned char)s[1]) || s[2]) return -1;
    int v = (s[0] - '0') * 10 + (s[1] - '0');
    return v < VGPU_MAX_DEVICES ? v : -1;
}

static int add_to(struct vgpu_limit_entry *list, int *n, const char *uuid, int index,
                  uint64_t value, const char *source)
{
    if (*n >= VGPU_CFG_MAX_KEYS) return -1;
    struct vgpu_limit_entry *e = &list[(*n)++];
    memset(e, 0, sizeof(*e));
    if (uuid) snprintf(e->uuid, sizeof(e->uuid), "%s", uuid);
    e->index = index;
    e->value = value;
    snprintf(e->source, sizeof(e->source), "%s", source);
    return 0;
}

/* A limit that finds its table full is an error: dropping it would leave that GPU less
 * limited than configured. */
static void table_full(struct vgpu_config *cfg, const char *source)
{
    char detail[96];
    snprintf(detail, sizeof(detail), "more than %d limits of this kind in all", VGPU_CFG_MAX_KEYS);
    set_error(cfg, "%s: %s", source, detail);
}

static void add_entry(struct vgpu_config *cfg, const char *uuid, int index, uint64_t value,
                      const char *source)
{
    if (add_to(cfg->mem, &cfg->n_mem, uuid, index, value, source) != 0) table_full(cfg, source);
}

/* a compute share: percent in (0, 100] -> hundredths */
static int parse_core_value(const char *text, uint64_t *out, char *err, size_t errlen)
{
    double pct;
    if (!plain_decimal(text, 1)) {
        snprintf(err, errlen,
                 "'%s' is not a percentage: write digits, a decimal point and a '%%' at most "
                 "(no sign, blank, exponent or hexadecimal)",
                 text);
        return -1;
    }
    if (vgpu_parse_percent(text, &pct, err, errlen) != 0) return -1;
    *out = (uint64_t)(pct * 100.0 + 0.5);
    if (*out == 0) *out = 1;
    return 0;
}

/* a memory limit value: bytes, a size with units; 0 is refused (ambiguous: none or unlimited?) */
static int parse_mem_value(const char *text, uint64_t *out, char *err, size_t errlen)
{
    if (blank_edges(text)) {
        snprintf(err, errlen, "'%s' is not a size: blanks before or after it", text);
        return -1;
    }
    if (vgpu_parse_size(text, out, err, errlen) != 0) return -1;
    if (*out == 0) {
        snprintf(err, errlen, "'%s' is not a usable limit: it must be more than 0 bytes", text);
        return -1;
    }
    return 0;
}

/* one JSON map of per-GPU limits: memory sizes or compute percentages */
struct json_ctx {
    const char *var;
    struct vgpu_limit_entry *list;
    int *n;
    int (*parse)(const char *text, uint64_t *out, char *err, size_t errlen);
    const char *what;
};

static int json_member(void *vctx, const char *key, const char *value, enum vgpu_json_kind kind,
                       char *err, size_t errlen)
{
    struct json_ctx *ctx = vctx;
    uint64_t v;
    if (kind != VGPU_JSON_NUMBER && kind != VGPU_JSON_STRING) {
        snprintf(err, errlen, "key \"%s\": the value must be %s", key, ctx->what);
        return -1;
    }
    char perr[200];
    if (ctx->parse(value, &v, perr, sizeof(perr)) != 0) {
        snprintf(err, errlen, "key \"%s\": %s", key, perr);
        return -1;
    }
    int idx = parse_index(key);
    char uuid[VGPU_UUID_LEN];
    if (idx < 0 && vgpu_normalize_uuid(key, uuid, sizeof(uuid)) != 0) {
        snprintf(err, errlen, "key \"%s\" is neither a GPU index (0-%d) nor a GPU UUID", key,
                 VGPU_MAX_DEVICES - 1);
        return -1;
    }
    if (add_to(ctx->list, ctx->n, idx >= 0 ? NULL : uuid, idx >= 0 ? idx : -1, v, ctx->var) != 0) {
        snprintf(err, errlen, "too many keys");
        return -1;
    }
    return 0;
}

static void load_json(struct vgpu_config *cfg, char *const *envp, struct json_ctx *ctx)
{
    char err[400];
    const char *json = env_get(envp, ctx->var);
    if (json && *json && vgpu_parse_flat_json(json, json_member, ctx, err, sizeof(err)) != 0)
        set_error(cfg, "%s: %s", ctx->var, err);
}

/* a memory ratio: digits [. digits] in [1, 64] */
static int parse_ratio(const char *text, double *out, char *err, size_t errlen)
{
    double r = plain_decimal(text, 0) ? strtod(text, NULL) : 0;
    if (!(r >= 1.0 && r <= 64.0)) {
        snprintf(err, errlen, "'%s' is not a ratio between 1 and 64", text);
        return -1;
    }
    *out = r;
    return 0;
}

/* VGPU-Controller's per-GPU variables: NAME_<i> for GPU i, NAME for every GPU without its own */
enum ctl_var { CTL_MEM, CTL_OVERSOLD, CTL_RATIO, CTL_CORE, CTL_SOFT, CTL_N };

struct ctl_values {
    int set[CTL_N][VGPU_MAX_DEVICES + 1]; /* [VGPU_MAX_DEVICES]: the unsuffixed name */
    double val[CTL_N][VGPU_MAX_DEVICES + 1];
};

static void load_indexed(struct vgpu_config *cfg, char *const *envp)
{
    static const char *bases[CTL_N] = {"CUDA_MEM_LIMIT", "CUDA_MEM_OVERSOLD", "CUDA_MEM_RATIO",
                                       "CUDA_CORE_LIMIT", "CUDA_CORE_SOFT_LIMIT"};
    struct ctl_values v;
    memset(&v, 0, sizeof(v));
    for (char *const *e = envp; e && *e; e++) {
        const char *eq = strchr(*e, '=');
        if (!eq) continue;
        for (int k = 0; k < CTL_N; k++) {
            size_t bl = strlen(bases[k]);
            if (strncmp(*e, bases[k], bl) != 0) continue;
            int bare = *e + bl == eq;
            if (!bare && (*e)[bl] != '_') continue;
            char name[96];
            snprintf(name, sizeof(name), "%.*s", (int)(eq - *e), *e);
            const char *value = eq + 1;
            int idx = bare ? VGPU_MAX_DEVICES : parse_index(name + bl + 1);
            char err[300];
            if (idx < 0) {
                set_error(cfg, "%s: the suffix must be a GPU index 0-15 as written (%s)", name,
                          "no leading zero, sign or blank");
                continue;
            }
            if (!*value) continue; /* NAME= is the same as unset */
            uint64_t n = 0;
            int b = 0, bad = 0;
            double r = 0;
            switch (k) {
            case CTL_MEM:
                bad = parse_mem_value(value, &n, err, sizeof(err));
                r = (double)n;
                break;
            case CTL_OVERSOLD:
                bad = vgpu_parse_bool(value, &b, err, sizeof(err));
                r = b;
                break;
            case CTL_RATIO:
                bad = parse_ratio(value, &r, err, sizeof(err));
                break;
            default:
                bad = parse_core_value(value, &n, err, sizeof(err));
                r = (double)n;
                break;
            }
            if (bad) {
                set_error(cfg, "%s: %s", name, err);
                continue;
            }
            if (k == CTL_MEM) { /* exact bytes: kept in the table, not as a double */
                add_entry(cfg, NULL, bare ? INDEX_FALLBACK : idx, n, name);
                if (!bare) cfg->mem_indexed |= 1u << idx;
            }
            /* a name given twice (execve allows it): the smaller value, the stricter one */
            if (!v.set[k][idx] || r < v.val[k][idx]) v.val[k][idx] = r;
            v.set[k][idx] = 1;
        }
    }
    for (int i = 0; i < VGPU_MAX_DEVICES; i++) {
        double got[CTL_N];
        for (int k = 0; k < CTL_N; k++)
            got[k] = v.set[k][i]                  ? v.val[k][i]
                     : v.set[k][VGPU_MAX_DEVICES] ? v.val[k][VGPU_MAX_DEVICES]
                                                  : 0;
        cfg->oversold[i] = got[CTL_OVERSOLD] != 0;
        cfg->ratio[i] = got[CTL_RATIO] ? got[CTL_RATIO] : 1.0;
        cfg->core_ctl[i] = (uint32_t)got[CTL_CORE];
        cfg->core_soft[i] = (uint32_t)got[CTL_SOFT];
    }
}

int vgpu_config_pod_from_cgroup(struct vgpu_config *cfg, const char *text, size_t len)
{
    struct pod_identity id;
    if (pod_identity_parse(text, len, &id) == 0 &&
        pod_identity_name(&id, cfg->pod_id, sizeof(cfg->pod_id)) == 0) {
        cfg->pod_source = "cgroup";
        return 0;
    }
    /* unreadable or not a cgroup file: the pod every such process shares, so that its limits
     * still hold (one ledger for all of them), never a pod of its own */
    snprintf(cfg->pod_id, sizeof(cfg->pod_id), "host");
    cfg->pod_source = "cgroup (unreadable /proc/self/cgroup)";
    return -1;
}

static void load_pod_identity(struct vgpu_config *cfg, char *const *envp)
{
    const char *uid = env_get(envp, "VGPU_POD_UID");
    const char *name = env_get(envp, "VGPU_POD_NAME");
    const char *ns = env_get(envp, "VGPU_POD_NAMESPACE");
    const char *name_var = "VGPU_POD_NAME";
    if (!name || !*name) {
        name = env_get(envp, "POD_NAME");
        name_var = "POD_NAME";
    }
    if (!ns || !*ns) ns = env_get(envp, "POD_NAMESPACE");
    const char *ctr = env_get(envp, "VGPU_CONTAINER_NAME");
    if (!ctr || !*ctr) ctr = env_get(envp, "CONTAINER_NAME");
    snprintf(cfg->pod_uid, sizeof(cfg->pod_uid), "%s", uid ? uid : "");
    snprintf(cfg->pod_name, sizeof(cfg->pod_name), "%s", name ? name : "");
    snprintf(cfg->pod_namespace, sizeof(cfg->pod_namespace), "%s", ns ? ns : "");
    snprintf(cfg->container, sizeof(cfg->container), "%s", ctr ? ctr : "");
    if (uid && *uid) {
        snprintf(cfg->pod_id, sizeof(cfg->pod_id), "uid:%s", uid);
        cfg->pod_source = "VGPU_POD_UID";
        return;
    }
    if (name && *name) {
        snprintf(cfg->pod_id, sizeof(cfg->pod_id), "%s/%s", ns && *ns ? ns : "default", name);
        cfg->pod_source = name_var;
        return;
    }
    /* no pod named: the pod the cgroup says, as the daemon names it */
    char buf[POD_IDENTITY_FILE_MAX];
    ssize_t n = pod_identity_read_file("/proc/self/cgroup", buf, sizeof(buf));
    vgpu_config_pod_from_cgroup(cfg, buf, n < 0 ? 0 : (size_t)n);
}

/* GPU_DEVICES_UUID (VGPU-Controller: the pod's GPUs by UUID, index i = the i-th), else
 * CUDA_VISIBLE_DEVICES (indices or UUIDs, as CUDA reads it), else NVIDIA_VISIBLE_DEVICES
 * (VGPU-Controller's fallback) when it lists UUIDs: its indices are the host's, which the
 * container renumbers, and "all"/"none"/"void" say nothing about the order. */
static void load_visible(struct vgpu_config *cfg, char *const *envp)
{
    static const char *vars[] = {"GPU_DEVICES_UUID", "CUDA_VISIBLE_DEVICES",
                                 "NVIDIA_VISIBLE_DEVICES"};
    const char *list = NULL, *var = NULL;
    for (int i = 0; i < 3 && !list; i++) {
        const char *v = env_get(envp, vars[i]);
        if (v && (*v || i == 1)) {
            list = v;
            var = vars[i];
        }
    }
    if (!list) return;
    int uuids_only = var != vars[1];
    char buf[1024];
    if (strlen(list) >= sizeof(buf)) {
        set_error(cfg, "%s: %s", var, "the list is longer than 1023 bytes");
        return;
    }
    snprintf(buf, sizeof(buf), "%s", list);
    char got[VGPU_MAX_DEVICES][VGPU_UUID_LEN];
    int n = 0;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (isspace((unsigned char)*tok))
            tok++;
        char norm[VGPU_UUID_LEN];
        int is_uuid = vgpu_normalize_uuid(tok, norm, sizeof(norm)) == 0;
        if (!is_uuid && uuids_only) {
            if (var == vars[2]) { /* the container runtime's variable: no mapping from it */
                add_note(cfg, VGPU_LOG_INFO,
                         "NVIDIA_VISIBLE_DEVICES: '%s' is not a list of GPU UUIDs: GPU indices "
                         "are the order NVML reports",
                         list);
                return;
            }
            set_error(cfg, "%s: '%s' is not a GPU or MIG UUID", var, tok);
            return;
        }
        if (n == VGPU_MAX_DEVICES) {
            char detail[64];
            snprintf(detail, sizeof(detail), "more than %d GPUs", VGPU_MAX_DEVICES);
            set_error(cfg, "%s: %s", var, detail);
            return;
        }
        snprintf(got[n++], VGPU_UUID_LEN, "%s", is_uuid ? norm : tok);
    }
    memcpy(cfg->visible, got, sizeof(got));
    cfg->n_visible = n;
    cfg->visible_source = var;
}

/* VGPU_HYPERVISOR_SOCKET, or HYPERVISOR_IP + HYPERVISOR_PORT */
static void load_hypervisor(struct vgpu_config *cfg, char *const *envp)
{
    const char *sock = env_get(envp, "VGPU_HYPERVISOR_SOCKET");
    const char *ip = env_get(envp, "HYPERVISOR_IP");
    const char *port = env_get(envp, "HYPERVISOR_PORT");
    if (sock && *sock) {
        if (strlen(sock) >= sizeof(cfg->hv_socket)) {
            set_error(cfg, "%s: %s", "VGPU_HYPERVISOR_SOCKET",
                      "the path is longer than a Unix socket path may be (107 bytes)");
            return;
        }
        snprintf(cfg->hv_socket, sizeof(cfg->hv_socket), "%s", sock);
        cfg->hv_on = 1;
        return;
    }
    int has_ip = ip && *ip, has_port = port && *port;
    if (!has_ip && !has_port) return;
    cfg->hv_on = 1; /* a half-configured daemon still fails closed, never unlimited */
    if (!has_ip) {
        set_error(cfg, "%s: %s", "HYPERVISOR_IP", "must be set together with HYPERVISOR_PORT");
        return;
    }
    unsigned char addr[16];
    if (strlen(ip) >= sizeof(cfg->hv_ip) ||
        (inet_pton(AF_INET, ip, addr) != 1 && inet_pton(AF_INET6, ip, addr) != 1)) {
        set_error(cfg, "%s: '%s' is not an IPv4 or IPv6 address", "HYPERVISOR_IP", ip);
        return;
    }
    snprintf(cfg->hv_ip, sizeof(cfg->hv_ip), "%s", ip);
    if (!has_port) {
        set_error(cfg, "%s: %s", "HYPERVISOR_PORT", "must be set together with HYPERVISOR_IP");
        return;
    }
    char *end;
    long v = strtol(port, &end, 10);
    if (!isdigit((unsigned char)*port) || *port == '0' || *end || v < 1 || v > 65535) {
        set_error(cfg, "%s: '%s' is not a port number (1-65535)", "HYPERVISOR_PORT", port);
        return;
    }
    cfg->hv_port = (int)v;
}

/* The first set variable of `vars` that names a level decides; one that does not is noted
 * and the next one is tried. */
static int load_log_level(struct vgpu_config *cfg, char *const *envp)
{
    static const char *vars[] = {"VGPU_LOG_LEVEL", "VCUDA_LOG_LEVEL", "TF_LOG_LEVEL",
                                 "LOGGER_LEVEL"};
    for (int i = 0; i < 4; i++) {
        const char *v = env_get(envp, vars[i]);
        if (!v || !*v) continue;
        int level;
        int bad = i == 3 ? vgpu_log_level_from_logger_level(v, &level)
                         : vgpu_log_level_from_name(v, &level);
        if (!bad) {
            cfg->log_level = level;
            return i;
        }
        add_note(cfg, VGPU_LOG_WARN, "%s: '%s' is not a log level (%s): ignored", vars[i], v,
                 i == 3 ? "0-5" : "off, error, warn, info, debug, trace or 0-4");
    }
    return -1;
}

/* Switches that turn the seeds' logs off: vgpu.rs's TF_ENABLE_LOG=off|0|false and vcuda-hook's
 * VCUDA_LOG_SINK=null|none. Only VGPU_LOG_LEVEL (ours) overrides them. */
static void load_log_switches(struct vgpu_config *cfg, char *const *envp, int decided_by)
{
    const char *en = env_get(envp, "TF_ENABLE_LOG");
    const char *sink = env_get(envp, "VCUDA_LOG_SINK");
    int off = 0;
    if (en && (strcmp(en, "off") == 0 || strcmp(en, "0") == 0 || strcmp(en, "false") == 0)) off = 1;
    if (sink && *sink) {
        if (strcasecmp(sink, "null") == 0 || strcasecmp(sink, "none") == 0)
            off = 1;
        else if (strcasecmp(sink, "stderr") != 0)
            add_note(cfg, VGPU_LOG_WARN,
                     "VCUDA_LOG_SINK: '%s' ignored: the limiter writes to stderr only (a line in "
                     "the program's stdout or in a file it did not ask for could break it)",
                     sink);
    }
    if (off && decided_by != 0) cfg->log_level = VGPU_LOG_OFF;
}

/* Variables of the seeds that are read and deliberately not applied, with the reason. */
static void load_ignored(struct vgpu_config *cfg, char *const *envp)
{
    static const struct {
        const char *name, *reason;
        int level;
    } ignored[] = {
        {"TF_LOG_PATH", "the limiter writes to stderr only", VGPU_LOG_WARN},
        {"VCUDA_LOG_FILE", "the limiter writes to stderr only", VGPU_LOG_WARN},
        {"VCUDA_DEVICE_NAME", "GPUs keep their own names", VGPU_LOG_WARN},
        {"TENSOR_FUSION_IPC_SERVER_PATH",
         "the node daemon is VGPU_HYPERVISOR_SOCKET or HYPERVISOR_IP/HYPERVISOR_PORT",
         VGPU_LOG_WARN},
        {"TENSOR_FUSION_NGPU_PATH", "the limiter loads no library a variable names", VGPU_LOG_WARN},
        {"TF_CUDA_LIB_PATH", "the real libcuda is found by the dynamic loader", VGPU_LOG_WARN},
        {"TF_NVML_LIB_PATH", "the real libnvidia-ml is found by the dynamic loader", VGPU_LOG_WARN},
        {"ENABLE_CUDA_HOOKS",
         "hooks cannot be turned off from the environment (that would be "
         "unlimited)",
         VGPU_LOG_WARN},
        {"ENABLE_NVML_HOOKS",
         "hooks cannot be turned off from the environment (that would be "
         "unlimited)",
         VGPU_LOG_WARN},
        {"CUDA_LIMITER_MOCK_MODE", "a test switch of vgpu.rs", VGPU_LOG_WARN},
        {"ENV_COMPATIBILITY_MODE",
         "the pod's processes are counted in its ledger, whatever the cgroup version",
         VGPU_LOG_INFO},
        {"VMEMORY_NODE_ENABLED", "host memory is counted per pod, not per node", VGPU_LOG_INFO},
    };
    for (size_t i = 0; i < sizeof(ignored) / sizeof(ignored[0]); i++) {
        const char *v = env_get(envp, ignored[i].name);
        if (v && *v)
            add_note(cfg, ignored[i].level, "%s ignored: %s", ignored[i].name, ignored[i].reason);
    }
}

/* vcuda-hook reads KB, MB, GB and TB (and K, M, G, T) as powers of 1024: "10GB" -> "10GiB" */
static void vcuda_binary_units(const char *in, char *out, size_t outlen)
{
    size_t n = strlen(in);
    snprintf(out, outlen, "%s", in);
    if (n >= 3 && n + 2 < outlen && tolower((unsigned char)in[n - 1]) == 'b' &&
        strchr("kmgtKMGT", in[n - 2]) && !isalpha((unsigned char)in[n - 3]))
        snprintf(out + n - 1, outlen - (n - 1), "iB");
}

/* VCUDA_OVER_SUB_RATIO: r > 0 ("0.5") or a percent ("50%"), at most 63 */
static void load_over_sub(struct vgpu_config *cfg, char *const *envp)
{
    const char *v = env_get(envp, "VCUDA_OVER_SUB_RATIO");
    if (!v || !*v) return;
    size_t n = strlen(v);
    double r = plain_decimal(v, 1) ? strtod(v, NULL) : 0;
    if (v[n - 1] == '%') r /= 100.0;
    if (!(r > 0 && r <= 63.0)) {
        set_error(cfg, "%s: '%s' is not a ratio above 0 and at most 63 (or a percentage)",
                  "VCUDA_OVER_SUB_RATIO", v);
        return;
    }
    cfg->over_sub = r;
}

void vgpu_config_load(struct vgpu_config *cfg, char *const *envp)
{
    memset(cfg, 0, sizeof(*cfg));
    char err[400];

    cfg->log_level = VGPU_LOG_WARN;
    load_log_switches(cfg, envp, load_log_level(cfg, envp));
    load_ignored(cfg, envp);

    struct json_ctx mem = {"TENSOR_FUSION_CUDA_MEM_LIMIT", cfg->mem, &cfg->n_mem, parse_mem_value,
                           "a number of bytes or a size string"};
    struct json_ctx core = {"TENSOR_FUSION_CUDA_UP_LIMIT", cfg->core, &cfg->n_core,
                            parse_core_value, "a percentage"};
    load_json(cfg, envp, &mem);
    load_json(cfg, envp, &core);
    load_indexed(cfg, envp);
    cfg->has_core = cfg->n_core > 0;
    for (int i = 0; i < VGPU_MAX_DEVICES; i++)
        if (cfg->core_ctl[i] || cfg->core_soft[i]) cfg->has_core = 1;
    const char *all = env_get(envp, "VCUDA_MEMORY_LIMIT");
    if (all && *all) {
        uint64_t bytes;
        char bin[128];
        vcuda_binary_units(all, bin, sizeof(bin));
        if (parse_mem_value(bin, &bytes, err, sizeof(err)) != 0)
            set_error(cfg, "%s: %s", "VCUDA_MEMORY_LIMIT", err);
        else
            add_entry(cfg, NULL, INDEX_ALL, bytes, "VCUDA_MEMORY_LIMIT");
    }
    load_over_sub(cfg, envp);

    const char *cr = env_get(envp, "VGPU_CONTEXT_RESERVE");
    if (cr && *cr) {
        if (vgpu_parse_size(cr, &cfg->context_reserve, err, sizeof(err)) != 0)
            set_error(cfg, "%s: %s", "VGPU_CONTEXT_RESERVE", err);
        else
            cfg->context_reserve_set = 1;
    }

    load_pod_identity(cfg, envp);
    load_visible(cfg, envp);
    load_hypervisor(cfg, envp);
    /* managed: the daemon's directory as mounted into the pod; standalone: this user's own */
    const char *dir = env_get(envp, "VGPU_SHM_DIR");
    if (dir && *dir)
        snprintf(cfg->shm_dir, sizeof(cfg->shm_dir), "%s", dir);
    else if (cfg->hv_on)
        snprintf(cfg->shm_dir, sizeof(cfg->shm_dir), "%s", VGPU_SHM_MANAGED_DIR);
    else
        vgpu_shm_standalone_dir(cfg->shm_dir, sizeof(cfg->shm_dir));
    cfg->ledger_on = cfg->n_mem > 0 || cfg->has_core || cfg->hv_on;
    cfg->gate_on = cfg->has_core || cfg->hv_on;
}

uint64_t vgpu_config_mem_limit(const struct vgpu_config *cfg, int index, const char *uuid,
                               const char **why)
{
    uint64_t best = VGPU_UNLIMITED;
    const char *src = NULL;
    int own = index >= 0 && index < VGPU_MAX_DEVICES && (cfg->mem_indexed >> index & 1u);
    for (int i = 0; i < cfg->n_mem; i++) {
        const struct vgpu_limit_entry *e = &cfg->mem[i];
        int match = e->index == INDEX_ALL || (e->index == INDEX_FALLBACK && !own) ||
                    (e->index >= 0 && e->index == index) ||
                    (e->index == -1 && uuid && strcmp(e->uuid, uuid) == 0);
        if (!match) continue;
        if (e->value < best) {
            best = e->value;
            src = e->source;
        }
    }
    if (why) *why = src;
    return best;
}

int vgpu_config_mem_split(const struct vgpu_config *cfg, int index, uint64_t limit,
                          uint64_t *device, uint64_t *host)
{
    *device = limit;
    *host = 0;
    if (limit == VGPU_UNLIMITED) return 0;
    int ok = index >= 0 && index < VGPU_MAX_DEVICES;
    double r = ok ? cfg->ratio[index] : 1.0;
    if (r > 1.0) { /* VGPU-Controller: the cap is the total, cap / r of it on the GPU */
        *device = (uint64_t)((double)limit / r);
        if (!*device) *device = 1;
        *host = limit - *device;
        return 1;
    }
    if (ok && cfg->oversold[index]) { /* past the GPU part, the cap again from host memory */
        *host = limit;
        return 1;
    }
    if (cfg->over_sub > 0) { /* vcuda-hook: cap x r more */
        double h = (double)limit * cfg->over_sub;
        *host = h >= 18446744073709549568.0 ? UINT64_MAX - 1 : (uint64_t)h;
        return 1;
    }
    return 0;
}

int vgpu_config_has_mem_limits(const struct vgpu_config *cfg)
{
    return cfg->n_mem > 0;
}

void vgpu_config_core_limit(const struct vgpu_config *cfg, int index, const char *uuid,
                            uint32_t *hard, uint32_t *soft)
{
    uint32_t best = 0;
    for (int i = 0; i < cfg->n_core; i++) {
        const struct vgpu_limit_entry *e = &cfg->core[i];
        int match = (e->index >= 0 && e->index == index) ||
                    (e->index == -1 && uuid && strcmp(e->uuid, uuid) == 0);
        if (match && (!best || e->value < best)) best = (uint32_t)e->value;
    }
    uint32_t h = 0, s = 0;
    if (index >= 0 && index < VGPU_MAX_DEVICES) {
        h = cfg->core_ctl[index];
        s = cfg->core_soft[index];
        if (h && s > h) { /* VGPU-Controller: the soft limit is where an idle GPU lets it go */
            uint32_t t = h;
            h = s;
            s = t;
        }
    }
    if (h && (!best || h < best)) best = h;
    *hard = best;
    *soft = s;
}

int vgpu_config_has_core_limits(const struct vgpu_config *cfg)
{
    return cfg->has_core;
}
