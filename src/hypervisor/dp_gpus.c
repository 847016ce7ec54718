/* dp_gpus.c - the device plugin's GPU table and its health, and the device lists made of it.
 *
 * Why this exists: see dp_state.h. GPUs come from the NVML snapshot (nvml_monitor.h). A GPU
 * once seen stays in the table, so that losing it is reported (Unhealthy) rather than
 * silently dropped; its number of memory devices is fixed when it is first seen. `gen`
 * changes whenever anything listed changes, and each open ListAndWatch stream sends the whole
 * list again when it sees a new `gen`.
 */
#define _GNU_SOURCE
#include "dp_state.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hv_log.h"

struct dp_state dp = {.mu = PTHREAD_MUTEX_INITIALIZER};

int dp_res_units(int r, const struct dp_gpu *g)
{
    return r == DP_MEM ? g->units : DP_CORE_UNITS;
}

/* The name NVIDIA's container runtime and CUDA use: "GPU-<hex>" (NVML writes the prefix in
 * upper case and the digits in lower case; the snapshot lowered all of it). */
void dp_nvml_name(const char *uuid, char *out, size_t n)
{
    if (!strncmp(uuid, "gpu-", 4))
        snprintf(out, n, "GPU-%s", uuid + 4);
    else if (!strncmp(uuid, "mig-", 4))
        snprintf(out, n, "MIG-%s", uuid + 4);
    else
        snprintf(out, n, "%s", uuid);
}

static int uuid_ok(const char *u)
{
    if (!*u || strlen(u) >= VGPU_UUID_LEN) return 0;
    for (; *u; u++)
        if (!((*u >= 'a' && *u <= 'z') || (*u >= '0' && *u <= '9') || *u == '-')) return 0;
    return 1;
}

/* --- GPUs and their health ------------------------------------------------------------------ */

void dp_refresh_gpus(void)
{
    struct nvml_snapshot *snap = nvml_snapshot_get();
    if (!snap) return;
    pthread_mutex_lock(&dp.mu);
    int changed = 0;
    for (int i = 0; i < dp.ngpu; i++) {
        struct dp_gpu *g = &dp.gpu[i];
        int healthy = 0;
        for (int k = 0; snap->ok && k < snap->ngpu; k++)
            if (!strcmp(snap->gpu[k].uuid, g->uuid) && snap->gpu[k].mem_total > 0) {
                healthy = 1;
                g->index = snap->gpu[k].index;
            }
        if (healthy != g->healthy) {
            hv_logf(healthy ? HV_INFO : HV_WARN,
                    healthy ? "device plugin: GPU healthy again"
                            : "device plugin: GPU lost (NVML does not report it): Unhealthy",
                    "{s:s, s:i}", "uuid", g->uuid, "gpu", g->index);
            g->healthy = healthy;
            changed = 1;
        }
    }
    for (int k = 0; snap->ok && k < snap->ngpu; k++) {
        const struct nvml_gpu *s = &snap->gpu[k];
        int known = 0;
        for (int i = 0; i < dp.ngpu; i++)
            known |= !strcmp(dp.gpu[i].uuid, s->uuid);
        if (known || !s->mem_total || dp.ngpu >= NVML_MON_MAX_GPUS) continue;
        if (!uuid_ok(s->uuid)) {
            hv_logf(HV_WARN, "device plugin: GPU with an unusable uuid left out", "{s:i}", "gpu",
                    s->index);
            continue;
        }
        struct dp_gpu *g = &dp.gpu[dp.ngpu++];
        memset(g, 0, sizeof(*g));
        snprintf(g->uuid, sizeof(g->uuid), "%s", s->uuid);
        g->index = s->index;
        uint64_t units = s->mem_total / dp.unit;
        if (units > DP_MAX_UNITS) {
            hv_logf(HV_WARN,
                    "device plugin: memory unit too small for this GPU: only part of its memory "
                    "is listed (raise --memory-unit)",
                    "{s:s, s:i}", "uuid", g->uuid, "listed_units", DP_MAX_UNITS);
            units = DP_MAX_UNITS;
        }
        g->units = (int)units;
        g->healthy = 1;
        hv_logf(HV_INFO, "device plugin: GPU listed", "{s:s, s:i, s:i, s:I, s:i}", "uuid", g->uuid,
                "gpu", g->index, "memory_units", g->units, "unit_bytes", (json_int_t)dp.unit,
                "core_units", DP_CORE_UNITS);
        changed = 1;
    }
    if (changed) dp.gen++;
    pthread_mutex_unlock(&dp.mu);
    free(snap);
}

/* The GPU (its index in dp.gpu) of device `id` of resource r, its unit in *unit; -1 when the
 * ID is not one this plugin lists. dp.mu held. */
int dp_id_parse(int r, const char *id, int *unit)
{
    size_t n = strnlen(id, DP_ID_LEN);
    if (!n || n >= DP_ID_LEN) return -1;
    const char *dash = strrchr(id, '-');
    if (!dash || dash[1] != dp.res[r].kind) return -1;
    const char *d = dash + 2;
    size_t nd = strlen(d);
    if (nd < 1 || nd > 5 || (d[0] == '0' && nd > 1)) return -1;
    int k = 0;
    for (size_t i = 0; i < nd; i++) {
        if (d[i] < '0' || d[i] > '9') return -1;
        k = k * 10 + (d[i] - '0');
    }
    size_t ul = (size_t)(dash - id);
    for (int g = 0; g < dp.ngpu; g++)
        if (strlen(dp.gpu[g].uuid) == ul && !memcmp(dp.gpu[g].uuid, id, ul)) {
            if (k >= dp_res_units(r, &dp.gpu[g])) return -1;
            *unit = k;
            return g;
        }
    return -1;
}

/* The whole device list of resource r, packed (malloc'ed); the `gen` it shows in *gen. */
uint8_t *dp_list_pack(int r, uint64_t *gen, size_t *len)
{
    pthread_mutex_lock(&dp.mu);
    size_t n = 0;
    for (int g = 0; g < dp.ngpu; g++)
        n += (size_t)dp_res_units(r, &dp.gpu[g]);
    V1beta1__Device *dev = calloc(n ? n : 1, sizeof(*dev));
    V1beta1__Device **ptr = calloc(n ? n : 1, sizeof(*ptr));
    char *ids = malloc((n ? n : 1) * DP_ID_LEN);
    uint8_t *buf = NULL;
    if (dev && ptr && ids) {
        size_t i = 0;
        for (int g = 0; g < dp.ngpu; g++)
            for (int k = 0; k < dp_res_units(r, &dp.gpu[g]); k++, i++) {
                v1beta1__device__init(&dev[i]);
                snprintf(ids + i * DP_ID_LEN, DP_ID_LEN, "%s-%c%d", dp.gpu[g].uuid, dp.res[r].kind,
                         k);
                dev[i].id = ids + i * DP_ID_LEN;
                dev[i].health = (char *)(dp.gpu[g].healthy ? "Healthy" : "Unhealthy");
                ptr[i] = &dev[i];
            }
        *gen = dp.gen;
        V1beta1__ListAndWatchResponse resp = V1BETA1__LIST_AND_WATCH_RESPONSE__INIT;
        resp.n_devices = n;
        resp.devices = ptr;
        *len = v1beta1__list_and_watch_response__get_packed_size(&resp);
        buf = malloc(*len ? *len : 1);
        if (buf) v1beta1__list_and_watch_response__pack(&resp, buf);
    }
    pthread_mutex_unlock(&dp.mu);
    free(dev);
    free(ptr);
    free(ids);
    return buf;
}
