/* compute_feedback.h - closes the loop between the cost model and what NVML measures.
 *
 * Why this exists: event timing is exact for long kernels but not for tiny ones (launch
 * latency, event overhead) or under time-slicing with other contexts: the model matches NVML's
 * busy fraction for matmuls and graphs but can be tens of percent off for a launch-bound loop
 * (bench/results/compute-runs.md). Once a second, one process of the pod compares the busy fraction
 * the model charged (gate_charged_ns per second) with the busy fraction NVML measured for the pod
 * (in a steady state only: same share, similar pace as the window before), and moves the pod's cost
 * scale (dev.limiter.gate_scale) towards their ratio (averaged over two agreeing windows): all the
 * way when it is far off (> 25%) or the two windows agree within 5%, half or a quarter of the way
 * when close and noisy, not at all within 2%, and by at most x1.5 a step. A pod held at its share
 * is expected to be charged the same share under the new scale, so a step does not break the pairs:
 * the loop can step every second.
 */
#ifndef VGPU_COMPUTE_FEEDBACK_H
#define VGPU_COMPUTE_FEEDBACK_H

#include <stdint.h>

#include "../common/shm_layout.h"

#define VGPU_FEEDBACK_INTERVAL_NS 1000000000ull

/* The next scale (1024 = 1.0) from the current one, the modelled busy fraction and the measured
 * one (< 0: not known); `quiet`: the windows behind it agreed within 5%. Unchanged when the
 * model saw too little work to compare. */
uint32_t vgpu_feedback_next_scale(uint32_t scale, double modelled, double measured, int quiet);

/* Called by the maintenance thread: if this pod's loop for GPU `d` is due (once a second
 * across all its processes), take the modelled busy fraction since the last update, ask
 * `measure` for the measured one and update the scale. */
void vgpu_feedback_tick(struct vgpu_shm_dev *d, double (*measure)(void *ctx), void *ctx);

#endif
