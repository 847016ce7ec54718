/* config.c - the limiter's configuration from the environment (see config.h for the rules). */
#define _GNU_SOURCE
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/flat_json.h"
#include "../common/shm_region.h"
#include "../common/size_parse.h"
#include "log.h"

#define INDEX_ALL (-2) /* VCUDA_MEMORY_LIMIT: applies to every GPU */

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

/* "0".."15" -> index, else -1 */
static int parse_index(const char *s)
{
    if (!*s || strlen(s) > 2) return -1;
    for (const char *p = s; *p; p++)
        if (!isdigit((unsigned char)*p)) return -1;
    int v = atoi(s);
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
    if (vgpu_parse_percent(text, &pct, err, errlen) != 0) return -1;
    *out = (uint64_t)(pct * 100.0 + 0.5);
    if (*out == 0) *out = 1;
    return 0;
}

/* a memory limit value: bytes, a size with units; 0 is refused (ambiguous: none or unlimited?) */
static int parse_mem_value(const char *text, uint64_t *out, char *err, size_t errlen)
{
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

/* CUDA_MEM_LIMIT_<i>, CUDA_MEM_OVERSOLD_<i>, CUDA_MEM_RATIO_<i>, CUDA_CORE_LIMIT_<i>,
 * CUDA_CORE_SOFT_LIMIT_<i> */
static void load_indexed(struct vgpu_config *cfg, char *const *envp)
{
    static const char *prefixes[] = {"CUDA_MEM_LIMIT_", "CUDA_MEM_OVERSOLD_", "CUDA_MEM_RATIO_",
                                     "CUDA_CORE_LIMIT_", "CUDA_CORE_SOFT_LIMIT_"};
    for (char *const *e = envp; e && *e; e++) {
        for (int k = 0; k < 5; k++) {
            size_t pl = strlen(prefixes[k]);
            if (strncmp(*e, prefixes[k], pl) != 0) continue;
            const char *eq = strchr(*e, '=');
            if (!eq) continue;
            char name[96], idxs[16];
            snprintf(name, sizeof(name), "%.*s", (int)(eq - *e), *e);
            snprintf(idxs, sizeof(idxs), "%s", name + pl);
            const char *value = eq + 1;
            int idx = parse_index(idxs);
            char err[300];
            if (idx < 0) {
                set_error(cfg, "%s: the suffix must be a GPU index 0-15 (%s)", name,
                          "not a number in range");
                continue;
            }
            if (!*value) continue; /* NAME= is the same as unset */
            if (k == 0) {
                uint64_t bytes;
                if (parse_mem_value(value, &bytes, err, sizeof(err)) != 0) {
                    set_error(cfg, "%s: %s", name, err);
                    continue;
                }
                add_entry(cfg, NULL, idx, bytes, name);
            } else if (k == 1) {
                int b;
                if (vgpu_parse_bool(value, &b, err, sizeof(err)) != 0) {
                    set_error(cfg, "%s: %s", name, err);
                    continue;
                }
                cfg->oversold[idx] = b;
            } else if (k >= 3) {
                uint64_t pct;
                if (parse_core_value(value, &pct, err, sizeof(err)) != 0) {
                    set_error(cfg, "%s: %s", name, err);
                    continue;
                }
                if (k == 3) {
                    if (add_to(cfg->core, &cfg->n_core, NULL, idx, pct, name) != 0)
                        table_full(cfg, name);
                } else
                    cfg->core_soft[idx] = (uint32_t)pct;
            } else {
                char *end;
                double r = strtod(value, &end);
                if (end == value || *end || !(r >= 1.0 && r <= 64.0)) {
                    set_error(cfg, "%s: '%s' is not a ratio between 1 and 64", name, value);
                    continue;
                }
                cfg->ratio[idx] = r;
            }
        }
    }
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
    /* no pod named: processes of one container (one cgroup) form the pod */
    char buf[1024] = {0};
    int fd = open("/proc/self/cgroup", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n < 0) n = 0;
        buf[n] = 0;
    }
    const char *path = NULL;
    char *line = strstr(buf, "0::"); /* cgroup v2 */
    if (line) {
        path = line + 3;
    } else if ((line = strchr(buf, ':')) && (line = strchr(line + 1, ':'))) {
        path = line + 1; /* cgroup v1: first hierarchy */
    }
    char cg[512] = "/";
    if (path) {
        size_t n = strcspn(path, "\n");
        snprintf(cg, sizeof(cg), "%.*s", (int)n, path);
    }
    if (strcmp(cg, "/") == 0)
        snprintf(cfg->pod_id, sizeof(cfg->pod_id), "host");
    else {
        /* a path too long keeps its end, where the pod's and container's ids are */
        static const char prefix[] = "cgroup:";
        size_t room = sizeof(cfg->pod_id) - sizeof(prefix), len = strlen(cg);
        const char *tail = len > room ? cg + len - room : cg;
        memcpy(cfg->pod_id, prefix, sizeof(prefix) - 1);
        memcpy(cfg->pod_id + sizeof(prefix) - 1, tail, strlen(tail) + 1);
    }
    cfg->pod_source = "cgroup";
}

static void load_visible(struct vgpu_config *cfg, char *const *envp)
{
    const char *list = env_get(envp, "GPU_DEVICES_UUID");
    if (!list || !*list) list = env_get(envp, "CUDA_VISIBLE_DEVICES");
    if (!list) return;
    char buf[1024];
    snprintf(buf, sizeof(buf), "%s", list);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok && cfg->n_visible < VGPU_MAX_DEVICES;
         tok = strtok_r(NULL, ",", &save)) {
        while (isspace((unsigned char)*tok))
            tok++;
        char norm[VGPU_UUID_LEN];
        if (vgpu_normalize_uuid(tok, norm, sizeof(norm)) == 0)
            snprintf(cfg->visible[cfg->n_visible++], VGPU_UUID_LEN, "%s", norm);
        else
            snprintf(cfg->visible[cfg->n_visible++], VGPU_UUID_LEN, "%s", tok); /* an index */
    }
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
    if (!isdigit((unsigned char)*port) || *end || v < 1 || v > 65535) {
        set_error(cfg, "%s: '%s' is not a port number (1-65535)", "HYPERVISOR_PORT", port);
        return;
    }
    cfg->hv_port = (int)v;
}

void vgpu_config_load(struct vgpu_config *cfg, char *const *envp)
{
    memset(cfg, 0, sizeof(*cfg));
    char err[400];

    cfg->log_level = VGPU_LOG_WARN;
    const char *lv;
    int l = -1;
    if ((lv = env_get(envp, "VGPU_LOG_LEVEL")) && *lv)
        l = vgpu_log_level_from_name(lv);
    else if ((lv = env_get(envp, "VCUDA_LOG_LEVEL")) && *lv)
        l = vgpu_log_level_from_name(lv);
    else if ((lv = env_get(envp, "LOGGER_LEVEL")) && *lv)
        l = vgpu_log_level_from_logger_level(lv);
    if (l >= 0) cfg->log_level = l;

    struct json_ctx mem = {"TENSOR_FUSION_CUDA_MEM_LIMIT", cfg->mem, &cfg->n_mem, parse_mem_value,
                           "a number of bytes or a size string"};
    struct json_ctx core = {"TENSOR_FUSION_CUDA_UP_LIMIT", cfg->core, &cfg->n_core,
                            parse_core_value, "a percentage"};
    load_json(cfg, envp, &mem);
    load_json(cfg, envp, &core);
    load_indexed(cfg, envp);
    cfg->has_core = cfg->n_core > 0;
    for (int i = 0; i < VGPU_MAX_DEVICES; i++) {
        uint32_t hard, soft;
        if (cfg->core_soft[i]) cfg->has_core = 1;
        vgpu_config_core_limit(cfg, i, NULL, &hard, &soft);
        if (soft && hard && soft > hard) {
            char name[48], detail[96];
            snprintf(name, sizeof(name), "CUDA_CORE_SOFT_LIMIT_%d", i);
            snprintf(detail, sizeof(detail), "%.2f%% is above the hard limit %.2f%%", soft / 100.0,
                     hard / 100.0);
            set_error(cfg, "%s: %s", name, detail);
        }
    }
    const char *all = env_get(envp, "VCUDA_MEMORY_LIMIT");
    if (all && *all) {
        uint64_t bytes;
        if (parse_mem_value(all, &bytes, err, sizeof(err)) != 0)
            set_error(cfg, "%s: %s", "VCUDA_MEMORY_LIMIT", err);
        else
            add_entry(cfg, NULL, INDEX_ALL, bytes, "VCUDA_MEMORY_LIMIT");
    }
    for (int i = 0; i < VGPU_MAX_DEVICES; i++)
        if (cfg->ratio[i] == 0) cfg->ratio[i] = 2.0;

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
    for (int i = 0; i < cfg->n_mem; i++) {
        const struct vgpu_limit_entry *e = &cfg->mem[i];
        int match = e->index == INDEX_ALL || (e->index >= 0 && e->index == index) ||
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
    *hard = best;
    *soft = index >= 0 && index < VGPU_MAX_DEVICES ? cfg->core_soft[index] : 0;
}

int vgpu_config_has_core_limits(const struct vgpu_config *cfg)
{
    return cfg->has_core;
}
