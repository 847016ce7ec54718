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

/* The GPU's power draw now (W, NVML's one-second average on recent GPUs) and its enforced cap,
 * with its busy fraction over the last second, into the pod's clock factor (dvfs_model.h). */
static void dvfs_pass(struct vgpu_shm_dev *v, const char *uuid)
{
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
    vgpu_dvfs_tick(v, mw / 1000.0, util / 10000.0, cap_mw / 1000.0);
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
        if (dvfs) dvfs_pass(v, b->uuid);
    }
}
