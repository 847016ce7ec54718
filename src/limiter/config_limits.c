/* config_limits.c - the per-GPU memory and compute limits from the environment, and the
 * lookups of the limit that applies to a GPU (see config.h for the rules). */
#define _GNU_SOURCE
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flat_json.h"
#include "../common/size_parse.h"
#include "config.h"
#include "config_env.h"

#define INDEX_ALL (-2)      /* VCUDA_MEMORY_LIMIT: applies to every GPU */
#define INDEX_FALLBACK (-3) /* CUDA_MEM_LIMIT: every GPU without a CUDA_MEM_LIMIT_<i> */

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
    vgpu_config_error(cfg, "%s: %s", source, detail);
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
    if (!vgpu_plain_decimal(text, 1)) {
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
    if (vgpu_blank_edges(text)) {
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
    const char *json = vgpu_env_get(envp, ctx->var);
    if (json && *json && vgpu_parse_flat_json(json, json_member, ctx, err, sizeof(err)) != 0)
        vgpu_config_error(cfg, "%s: %s", ctx->var, err);
}

/* a memory ratio: digits [. digits] in [1, 64] */
static int parse_ratio(const char *text, double *out, char *err, size_t errlen)
{
    double r = vgpu_plain_decimal(text, 0) ? strtod(text, NULL) : 0;
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
                vgpu_config_error(cfg, "%s: the suffix must be a GPU index 0-15 as written (%s)",
                                  name, "no leading zero, sign or blank");
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
                vgpu_config_error(cfg, "%s: %s", name, err);
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
    const char *v = vgpu_env_get(envp, "VCUDA_OVER_SUB_RATIO");
    if (!v || !*v) return;
    size_t n = strlen(v);
    double r = vgpu_plain_decimal(v, 1) ? strtod(v, NULL) : 0;
    if (v[n - 1] == '%') r /= 100.0;
    if (!(r > 0 && r <= 63.0)) {
        vgpu_config_error(cfg, "%s: '%s' is not a ratio above 0 and at most 63 (or a percentage)",
                          "VCUDA_OVER_SUB_RATIO", v);
        return;
    }
    cfg->over_sub = r;
}

void vgpu_config_load_limits(struct vgpu_config *cfg, char *const *envp)
{
    char err[400];
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
    const char *all = vgpu_env_get(envp, "VCUDA_MEMORY_LIMIT");
    if (all && *all) {
        uint64_t bytes;
        char bin[128];
        vcuda_binary_units(all, bin, sizeof(bin));
        if (parse_mem_value(bin, &bytes, err, sizeof(err)) != 0)
            vgpu_config_error(cfg, "%s: %s", "VCUDA_MEMORY_LIMIT", err);
        else
            add_entry(cfg, NULL, INDEX_ALL, bytes, "VCUDA_MEMORY_LIMIT");
    }
    load_over_sub(cfg, envp);
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
