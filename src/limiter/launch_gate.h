/* launch_gate.h - the steps every submission of GPU work shares: refuse when the configuration
 * could not be read, charge the compute gate before the real launch, time sampled launches.
 *
 * Why this exists: the launch hooks live in two files (launch_hooks.c for the current entry
 * points, launch_legacy.c for the legacy and multi-device ones) and must gate alike; these are
 * inline because they sit on every launch's path.
 */
#ifndef VGPU_LAUNCH_GATE_H
#define VGPU_LAUNCH_GATE_H

#include "compute_gate.h"
#include "cost_model.h"
#include "limiter.h"
#include "real_driver.h"

/* a process whose gate is set up read its configuration: one line fewer to load per launch */
#define VGPU_LAUNCH_REFUSED() __builtin_expect(!vgpu_gate_hot_ready() && vgpu_failed_closed(), 0)

/* was this call made through the per-thread-default-stream variant? (stream 0 then means the
 * thread's stream) */
static inline int vgpu_launch_per_thread(void *real, int ptsz_sym)
{
    return real == atomic_load_explicit(&vgpu_real_fns[ptsz_sym], memory_order_relaxed);
}

/* Charge before the launch (waiting if over the share), then start timing it if it is sampled:
 * the start event goes in after the wait, right before the real launch. */
static inline void vgpu_launch_gate(uint64_t key, CUstream stream, int pt, struct vgpu_sample *smp)
{
    smp->slot = -1;
    struct vgpu_shm_dev *d = vgpu_gate_lookup(stream, pt);
    if (__builtin_expect(!d, 1)) return;
    int slot;
    uint64_t cost = vgpu_cost_estimate(key, &slot);
    /* a launch that waited long is timed (cost_model.h, vgpu_cost_sample_after_wait) */
    if (__builtin_expect(vgpu_gate_charge(d, cost), 0) && slot < 0)
        slot = vgpu_cost_sample_after_wait();
    if (__builtin_expect(slot >= 0, 0)) vgpu_sample_begin(slot, stream, pt, smp);
}

static inline CUresult vgpu_launch_done(CUresult r, struct vgpu_sample *smp, CUstream stream,
                                        int pt)
{
    if (__builtin_expect(smp->slot >= 0, 0)) vgpu_sample_end(smp, stream, pt, r);
    return r;
}

#endif
