/* gpu_keys.c - does this node have the GPU an operator's setting names?
 *
 * Why this exists: see gpu_keys.h.
 */
#include "gpu_keys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry.h"

/* One known GPU: its index and uuid. */
struct known {
    int index;
    const char *uuid;
};

/* NVML's GPUs first, then those only workers registered; each uuid once. */
static int collect(const struct nvml_snapshot *s, struct known *out, int max)
{
    int n = 0;
    for (int i = 0; s && s->ok && i < s->ngpu && n < max; i++)
        out[n++] = (struct known){s->gpu[i].index, s->gpu[i].uuid};
    for (const struct hv_pod *p = hv_reg.pods; p; p = p->next)
        for (int g = 0; g < p->ngpu; g++) {
            int seen = 0;
            for (int k = 0; k < n && !seen; k++)
                seen = !strcmp(out[k].uuid, p->gpu[g].uuid);
            if (!seen && n < max) out[n++] = (struct known){p->gpu[g].index, p->gpu[g].uuid};
        }
    return n;
}

int gpu_key_check(const struct nvml_snapshot *s, const char *key, char *err, size_t n)
{
    if (!strcmp(key, "all")) return 0;
    enum { MAX_KNOWN = 4 * HV_MAX_GPUS };
    struct known k[MAX_KNOWN];
    int nk = collect(s, k, MAX_KNOWN);
    int is_index = key[0] >= '0' && key[0] <= '9';
    for (int i = 0; i < nk; i++) {
        if (is_index ? k[i].index == atoi(key) : !strcmp(k[i].uuid, key)) return 0;
    }
    size_t len = (size_t)snprintf(err, n, "gpu: this node has no GPU %s", key);
    if (len >= n) return -1;
    if (nk == 0) {
        snprintf(err + len, n - len,
                 " (it knows none: NVML is %s and no worker has registered a GPU); use \"all\"",
                 s && s->ok ? "without GPUs" : "unavailable");
        return -1;
    }
    for (int i = 0; i < nk && len < n; i++) {
        len += (size_t)snprintf(err + len, n - len, "%s%d %s",
                                i ? ", " : "; its GPUs: ", k[i].index, k[i].uuid);
    }
    if (len + 1 < n) snprintf(err + len, n - len, "; or \"all\"");
    return -1;
}
