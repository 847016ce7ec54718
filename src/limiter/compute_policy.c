/* compute_policy.c - the share the gate enforces, once a maintenance pass (see
 * compute_policy.h). */
#define _GNU_SOURCE
#include "compute_policy.h"

#include "compute_feedback.h"
#include "compute_gate.h"
#include "devices.h"
#include "dvfs_model.h"
#include "gpu_busy.h"
#include "limiter.h"
#include "log.h"
#include "nvml_gpu.h"
#include "real_driver.h"

/* The pod's charges (dev.gate_charged_ns) at this process's last two passes, per ledger GPU.
 * Maintenance thread only. */
static struct {
    uint64_t at[2];
    int n;
} seen[VGPU_MAX_DEVICES];

/* The GPU's power draw now (W, NVML's one-second average on recent GPUs) and its enforced cap,
 * with its busy fraction over the last second, into the pod's clock factor (dvfs_model.h).
 * When a figure raises the factor, the work charged since the last pass (since the one before
 * when the factor was 1.0: a figure spans a second) was charged at the lower factor, and the
 * pod is charged the difference (at most 1.5 s at its share), so that a run measured from its
 * start pays its clock factor too. */
static void dvfs_pass(struct vgpu_shm_dev *v, int ledger, const char *uuid, uint32_t share)
{
    uint64_t charged = atomic_load(&v->gate_charged_ns);
    int first = atomic_load(&v->gate_dvfs) <= 1024u; /* never above 1.0: a whole figure owes */
    uint64_t since = seen[ledger].at[first && seen[ledger].n >= 2];
    if (!seen[ledger].n) since = charged;
    seen[ledger].at[1] = seen[ledger].at[0];
    seen[ledger].at[0] = charged;
    if (seen[ledger].n < 2) seen[ledger].n++;
    nvmlDevice_t dev = vgpu_nvml_device(uuid);
    vgpu_helper_fn_nvmlDeviceGetPowerUsage power = VGPU_HELPER(nvmlDeviceGetPowerUsage);
    vgpu_helper_fn_nvmlDeviceGetEnforcedPowerLimit cap =
        VGPU_HELPER(nvmlDeviceGetEnforcedPowerLimit);
    unsigned mw = 0, cap_mw = 0;
    if (!dev || !power || !cap || power(dev, &mw) != NVML_SUCCESS ||
        cap(dev, &cap_mw) != NVML_SUCCESS)
        return;
    /* the mean of the driver's readings over the same second as the power figure (the node
     * region's figure covers one sample period) */
    int util = vgpu_nvml_gpu_util_since(dev, nvml_now_us() - 1000000ull);
    if (util < 0) return;
    uint32_t before = vgpu_dvfs_tick(v, mw / 1000.0, util / 10000.0, cap_mw / 1000.0);
    uint32_t f = atomic_load(&v->gate_dvfs), scale = atomic_load(&v->limiter.gate_scale);
    uint64_t done = charged > since ? charged - since : 0;
    uint64_t most = 1500000000ull * share / 10000u;
    if (!before || f <= before || !done) return;
    if (done > most) done = most;
    uint64_t owed = done * (scale ? scale : 1024u) / 1024u * (f - before) / 1024u;
    VLOG_DEBUG("clock factor: %.1f ms of GPU time charged at %.3f owe %.1f ms", done / 1e6,
               before / 1024.0, owed / 1e6);
    vgpu_gate_debit(v, owed, share);
}

/* The share the gate enforces: the hard limit, or for a soft limit its floor while another pod
 * uses the GPU and its ceiling while none does. Limits written at run time land here too.
 * While the node daemon manages the pod it sets the share in the control region; only the
 * feedback runs here. The feedback and the clock factor (NVML queries that take milliseconds
 * of CPU a pass) run only while a share below 100% applies: an unlimited pod's work is still
 * charged, for the daemon to see, but nothing needs correcting. A limit that comes later
 * starts the feedback afresh (its first window is skipped as late) and the clock factor
 * from its last value. */
void vgpu_compute_policy_pass(struct vgpu_shm *s, int feedback, int dvfs)
{
    int managed = atomic_load(&vgpu_g.ctl) != NULL, refreshed = 0;
    for (int d = 0; d < VGPU_MAX_DEVICES; d++) {
        const struct vgpu_binding *b = &vgpu_bindings[d];
        if (atomic_load(&b->state) != VGPU_BIND_LEDGER) continue;
        struct vgpu_shm_dev *v = &s->dev[b->ledger];
        uint32_t share;
        if (managed) {
            share = vgpu_gate_sync(v, b->lim); /* the daemon's share, also while idle */
        } else {
            uint32_t ceiling = atomic_load(&b->lim->core_limit);
            uint32_t floor = atomic_load(&b->lim->core_soft), target = ceiling;
            if (floor && floor < (ceiling ? ceiling : 10000)) {
                if (!refreshed++) vgpu_busy_refresh();
                target = vgpu_busy_others(s, b->uuid) ? floor : ceiling;
            }
            if (target != atomic_load(&b->lim->core_effective)) {
                VLOG_DEBUG("GPU %d: compute share now %.2f%%", d, target / 100.0);
                vgpu_gate_set_effective(v, target);
            }
            share = target;
        }
        if (VGPU_GATE_UNLIMITED(share)) continue;
        if (feedback) {
            if (!refreshed++) vgpu_busy_refresh();
            struct vgpu_busy_ctx ctx = {s, b->uuid};
            vgpu_feedback_tick(v, vgpu_busy_pod, &ctx);
        }
        if (dvfs) dvfs_pass(v, b->ledger, b->uuid, share);
    }
}
