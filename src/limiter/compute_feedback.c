/* compute_feedback.c - the cost model's closed loop on measured utilisation (see
 * compute_feedback.h). */
#include "compute_feedback.h"

#include <stdatomic.h>

#include "../common/shm_region.h"
#include "compute_gate.h"
#include "log.h"

uint32_t vgpu_feedback_next_scale(uint32_t scale, double modelled, double measured, int quiet)
{
    if (!scale) scale = 1024;
    if (measured < 0 || modelled < 0.02) return scale; /* nothing to learn from */
    /* gate_charged_ns holds the model's unscaled figures, so measured / modelled is the scale
     * itself. The caller only asks after two windows told the same story, so the loop goes all
     * the way, but by at most x1.5 (or /1.5) a second: one odd window (another pod starting
     * before NVML shows it) must not swing the pod's share far */
    double next = measured / modelled * 1024.0;
    /* The nearer the target, the smaller the step, and none within 2%: NVML's figures for
     * sparse tiny kernels are noisy (+-30% from one second to the next is common), and a full
     * step on each noisy window makes the share swing with the noise. Far from it (> 25%),
     * all the way: a wrong model is corrected in a few seconds. And all the way when the two
     * windows were quiet (within 5% of each other): steady figures are not noise, and a quarter
     * of the way a second leaves a pod over its cost for many seconds (bench/results/
     * compute-runs.md, sixth run). */
    double err = next / scale - 1.0, mag = err < 0 ? -err : err;
    if (mag < 0.02) return scale;
    if (quiet)
        ; /* the noise is small: no reason to hold back */
    else if (mag < 0.10)
        next = scale + (next - scale) / 4.0;
    else if (mag < 0.25)
        next = scale + (next - scale) / 2.0;
    if (next > scale * 1.5) next = scale * 1.5;
    if (next < scale / 1.5) next = scale / 1.5;
    if (next < 256.0) next = 256.0; /* the model is never trusted less than 4x either way */
    if (next > 4096.0) next = 4096.0;
    return (uint32_t)(next + 0.5);
}

void vgpu_feedback_tick(struct vgpu_shm_dev *d, double (*measure)(void *ctx), void *ctx)
{
    uint64_t now = vgpu_now_ns();
    uint64_t last = atomic_load(&d->limiter.fb_last_ns);
    if (now - last < VGPU_FEEDBACK_INTERVAL_NS) return;
    if (!atomic_compare_exchange_strong(&d->limiter.fb_last_ns, &last, now))
        return; /* another process */
    uint64_t charged = atomic_load(&d->gate_charged_ns);
    uint64_t before = atomic_exchange(&d->limiter.fb_charged_ns, charged);
    uint32_t share = atomic_load(&d->limiter.gate_share); /* the enforced share (compute_gate.h) */
    uint32_t share_before = atomic_exchange(&d->limiter.fb_share, share);
    /* compare like with like: NVML's figure covers about the last second, so only a window of
     * about a second, under one share, with the pod running, is a fair comparison */
    if (!last || charged < before || now - last > 2 * VGPU_FEEDBACK_INTERVAL_NS ||
        share != share_before) {
        VLOG_TRACE("compute feedback: window skipped (first, share changed or late: %.2f s)",
                   (now - last) / 1e9);
        atomic_store(&d->limiter.fb_ratio, 0); /* the next agreeing pair starts after this window */
        return;
    }
    double modelled = (double)(charged - before) / (double)(now - last);
    /* and only in a steady state: work is charged when submitted but keeps the GPU busy while
     * queued, so while a pod starts, stops or changes pace the two figures disagree for a while */
    uint64_t ppm = (uint64_t)(modelled * 1e6),
             prev = atomic_exchange(&d->limiter.fb_modelled_ppm, ppm);
    uint64_t hi = ppm > prev ? ppm : prev, lo = ppm > prev ? prev : ppm;
    if (!prev || hi - lo > hi / 10) {
        VLOG_TRACE("compute feedback: not steady (modelled busy %.3f, before %.3f)", ppm / 1e6,
                   prev / 1e6);
        atomic_store(&d->limiter.fb_ratio, 0);
        return;
    }
    double measured = measure(ctx);
    if (measured < 0) {
        /* nothing fair to compare with (another pod shares the GPU, or no figures): the next
         * pair of windows starts afresh */
        atomic_store(&d->limiter.fb_ratio, 0);
        VLOG_TRACE("compute feedback: no measurement to compare with");
        return;
    }
    /* two windows in a row must tell the same story before the scale moves: consecutive ones,
     * under one share: every skipped window above clears the first of a pair, so a ratio from
     * before a change of share never pairs with the first window after it (such a pair describes
     * two different loads and would step the scale the wrong way). */
    uint32_t ratio = (uint32_t)(measured / modelled * 1024.0 + 0.5),
             prev_ratio = atomic_exchange(&d->limiter.fb_ratio, ratio);
    uint32_t rh = ratio > prev_ratio ? ratio : prev_ratio,
             rl = ratio > prev_ratio ? prev_ratio : ratio;
    if (!prev_ratio || rh - rl > rh / 5) {
        VLOG_TRACE("compute feedback: modelled %.3f, measured %.3f: waiting for a second window "
                   "that agrees",
                   modelled, measured);
        return;
    }
    uint32_t scale = atomic_load(&d->limiter.gate_scale);
    if (!scale) scale = 1024; /* unset: the model as it is */
    /* the two agreeing windows together: half the noise of one */
    double both = modelled * (ratio + prev_ratio) / 2.0 / 1024.0;
    uint32_t next = vgpu_feedback_next_scale(scale, modelled, both, (rh - rl) * 20 <= rh);
    if (next != scale) {
        atomic_store(&d->limiter.gate_scale, next);
        /* A pod held at its share (what it was charged, scaled, fills the share) is charged
         * the same share under the new scale, so its modelled figure moves by scale / next; a
         * pod below its share keeps its pace. The next window is steady if it does what it
         * was expected to, and pairs with this one (the ratio does not depend on the scale):
         * the loop can then step every second instead of every third. */
        uint32_t dvfs = atomic_load(&d->gate_dvfs);
        double charged_share = modelled * scale / 1024.0 * (dvfs > 1024 ? dvfs / 1024.0 : 1.0);
        if (!VGPU_GATE_UNLIMITED(share) && charged_share >= 0.9 * share / 10000.0)
            atomic_store(&d->limiter.fb_modelled_ppm, (uint64_t)((double)ppm * scale / next));
        VLOG_DEBUG("compute feedback: modelled busy %.3f, measured %.3f: cost scale %.3f -> %.3f",
                   modelled, measured, scale / 1024.0, next / 1024.0);
    }
}
