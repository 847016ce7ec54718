/* contention.h - what pods that time-slice one GPU cost it beyond what their limiters charge.
 *
 * Why this exists: each limiter charges its pod the GPU time its own model says the pod's work
 * takes, and corrects that model from NVML while the pod is alone on the GPU
 * (src/limiter/compute_feedback.c). When several pods' contexts time-slice the GPU, NVML's
 * per-process figures do not say who used what (gpu_busy.c), so no limiter can correct itself,
 * and their models fall short: the GPU switches between contexts, and kernels run slower after
 * a switch than the shortest samples the models keep, so pods held at their limits get more
 * than them (bench/results/README.md, daemon). Only the daemon
 * sees every pod's charged time beside the GPU's busy time; it publishes one factor per GPU
 * that every limited pod there multiplies its charges by (vgpu_dev_limits.core_shared).
 *
 * Every figure but NVML's is a pod's own word, so the factor only ever raises charges, by at
 * most CONTENTION_MAX, and only moves while each pod's report is near what NVML shows of its
 * processes: a pod that hides its use cannot raise its neighbours' charges by much, nor at all
 * while NVML shows it busy. While fewer than two pods work on the GPU the factor is 1 at once:
 * the pod alone corrects itself then, and two corrections must not stack.
 */
#ifndef VGPU_HV_CONTENTION_H
#define VGPU_HV_CONTENTION_H

#include <stddef.h>
#include <stdint.h>

#include "shm_layout.h"

#define CONTENTION_ONE 1024u
#define CONTENTION_MAX VGPU_SHARED_MAX

struct contention_pod {
    double charged; /* share of the GPU's time the pod was charged over the window (0..1),
                     * its model's correction included */
    double nvml;    /* share NVML shows of the pod's processes (0..1), < 0 when unknown */
};

/* What the figures of a window allow: the factor moves, is 1 at once (fewer than two pods
 * work, or a process of no limited pod holds a context), or holds (a figure is missing or too
 * small, or a pod's report does not hold against NVML: *who is that pod's index) */
enum contention_state {
    CONTENTION_MOVES,
    CONTENTION_FEW,
    CONTENTION_FOREIGN,
    CONTENTION_NO_FIGURE,
    CONTENTION_REPORT,
};
enum contention_state contention_state(const struct contention_pod *p, size_t n, double util,
                                       int foreign, size_t *who);

/* The factor (x1024) for the next window, from the current one, the GPU's pods that hold
 * contexts there, NVML's busy fraction of the GPU over the window (util < 0: unknown),
 * whether any process outside these pods holds a context on it (foreign), and `part`: the
 * part of the excess busy time that is charged (0..1, --shared-correction). */
uint32_t contention_next(uint32_t cur, const struct contention_pod *p, size_t n, double util,
                         int foreign, double part);

#endif
