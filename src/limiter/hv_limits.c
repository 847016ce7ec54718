/* hv_limits.c - the daemon's per-GPU limits written into a private ledger (see hv_limits.h). */
#include "hv_limits.h"

#include <stdatomic.h>
#include <stdio.h>

#include "../common/shm_ledger.h"
#include "../common/shm_region.h"
#include "compute_gate.h"
#include "config.h"
#include "devices.h"
#include "hv_json.h"
#include "log.h"

uint32_t vgpu_hv_percent(double pct)
{
    if (!(pct > 0)) return 0;
    if (pct >= 100) return 10000;
    uint32_t v = (uint32_t)(pct * 100.0 + 0.5);
    return v ? v : 1;
}

/* the region's device for a limits entry: by UUID when it has one, else by our GPU index */
static int find_dev(struct vgpu_shm *s, const char *entry)
{
    char raw[96], uuid[VGPU_UUID_LEN];
    uint64_t index;
    if (hv_json_string(hv_json_get(entry, "uuid"), raw, sizeof(raw)) == 0 && raw[0]) {
        if (vgpu_normalize_uuid(raw, uuid, sizeof(uuid)) != 0) return -2;
        return vgpu_ledger_dev_find(s, uuid);
    }
    if (hv_json_u64(hv_json_get(entry, "index"), &index) == 0 && index < VGPU_MAX_DEVICES) {
        const struct vgpu_binding *b = &vgpu_bindings[index];
        if (atomic_load(&b->state) == VGPU_BIND_LEDGER) return b->ledger;
    }
    return -1;
}

/* a percentage member: 0 absent (hundredths in *out otherwise), -1 malformed */
static int pct_member(const char *entry, const char *key, int *have, uint32_t *out)
{
    const char *v = hv_json_get(entry, key);
    double pct;
    *have = 0;
    if (!v || hv_json_is_null(v)) return 0;
    if (hv_json_double(v, &pct) != 0 || pct < 0 || pct > 100) return -1;
    *have = 1;
    *out = vgpu_hv_percent(pct);
    return 0;
}

int vgpu_hv_apply_limits(struct vgpu_shm *s, const char *limits, char *err, size_t errlen)
{
    const char *it = limits, *e;
    int n = 0, i = 0;
    for (; (e = hv_json_next(&it)) != NULL; i++) {
        int d = find_dev(s, e);
        if (d == -2) {
            snprintf(err, errlen, "limits[%d]: uuid is not a GPU UUID", i);
            return -1;
        }
        uint64_t mem = 0, weight = 0;
        uint32_t core = 0, soft = 0, eff = 0;
        int have_core, have_soft, have_eff, is_soft = 0;
        const char *mv = hv_json_get(e, "mem_limit"), *wv = hv_json_get(e, "weight"),
                   *sv = hv_json_get(e, "soft");
        if ((mv && !hv_json_is_null(mv) && hv_json_u64(mv, &mem) != 0) ||
            pct_member(e, "core_limit", &have_core, &core) != 0 ||
            pct_member(e, "core_soft", &have_soft, &soft) != 0 ||
            pct_member(e, "core_effective", &have_eff, &eff) != 0 ||
            (wv && !hv_json_is_null(wv) && (hv_json_u64(wv, &weight) != 0 || weight > 10000)) ||
            (sv && !hv_json_is_null(sv) && hv_json_bool(sv, &is_soft) != 0)) {
            snprintf(err, errlen, "limits[%d]: a field has the wrong type or is out of range", i);
            return -1;
        }
        char raw[96], uuid[VGPU_UUID_LEN];
        if (d == -1 && hv_json_string(hv_json_get(e, "uuid"), raw, sizeof(raw)) == 0 &&
            vgpu_normalize_uuid(raw, uuid, sizeof(uuid)) == 0) {
            /* a GPU not bound yet: its slot, so the limits are in place when it is */
            struct vgpu_dev_init init = {.mem_limit = VGPU_UNLIMITED};
            int created;
            d = vgpu_ledger_dev_attach(s, uuid, &init, &created);
        }
        if (d < 0) {
            VLOG_DEBUG("node daemon: limits[%d] names a GPU this process does not use", i);
            continue;
        }
        struct vgpu_shm_dev *v = &s->dev[d];
        struct vgpu_dev_limits *l = &v->lim;
        if (mv && !hv_json_is_null(mv)) atomic_store(&l->mem_limit, mem ? mem : VGPU_UNLIMITED);
        if (!have_eff && have_core) {
            have_eff = 1;
            eff = core;
        }
        /* the region's encoding (docs/hypervisor.md): hard L -> core_limit L, core_soft 0;
         * soft L -> core_soft L, core_limit 10000; none -> both 0 */
        if (have_core && !have_soft) {
            have_soft = 1;
            soft = is_soft && core ? core : 0;
            if (soft) core = 10000;
        }
        if (have_core) atomic_store(&l->core_limit, core);
        if (have_soft) atomic_store(&l->core_soft, soft);
        if (wv && !hv_json_is_null(wv)) atomic_store(&l->weight, (uint32_t)weight);
        if (have_eff) vgpu_gate_set_effective(v, eff);
        n++;
    }
    if (!it) {
        snprintf(err, errlen, "limits: not an array");
        return -1;
    }
    return n;
}
