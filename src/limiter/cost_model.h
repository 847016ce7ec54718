/* cost_model.h - what a submission really costs on the GPU, learned by measuring.
 *
 * Why this exists: charging a launch by its grid size is far off (a matmul of a few blocks runs
 * for milliseconds; a CUDA graph is one call for fifty kernels). The limiter instead times real
 * launches with CUDA events: the first launches of each (function, grid size) and each graph,
 * then a sample of the rest (every 64th submission of a thread, and any one the gate made wait
 * 20 ms or more; at most one per key every 20 ms). Each key keeps a moving
 * average of its measured GPU time. The start event is recorded right before the real launch (after
 * any wait in the gate); from what the events measure the model removes the events' own overhead
 * (measured once per context) and, when the stream was idle, the time the launch call took to
 * reach the GPU (measured on the CPU around that call). Measuring never happens during stream
 * capture, when event calls are not allowed. No measured kernel is charged under 2 us (FLOOR_NS in
 * cost_model.c: what NVML counts per launch of a tiny kernel).
 */
#ifndef VGPU_COST_MODEL_H
#define VGPU_COST_MODEL_H

#include <stdint.h>

#include "cuda_abi.h"

struct vgpu_sample {
    int slot; /* -1: this launch is not timed */
    CUevent start, end;
    CUcontext ctx;
    int idle;           /* the stream had nothing queued when the start event was recorded */
    uint64_t submit_ns; /* CLOCK_MONOTONIC after the start event was recorded */
};

static inline uint64_t vgpu_cost_key_kernel(CUfunction f, uint64_t blocks)
{
    return ((uint64_t)(uintptr_t)f ^ (blocks * 0x9E3779B97F4A7C15ull)) | 1;
}
static inline uint64_t vgpu_cost_key_graph(CUgraphExec g)
{
    return ((uint64_t)(uintptr_t)g * 0xC2B2AE3D27D4EB4Full) | 1;
}

/* Estimated GPU time of a submission of `key`; *sample_slot >= 0 when this launch should be
 * timed: call vgpu_sample_begin right before the real launch and vgpu_sample_end after it. */
uint64_t vgpu_cost_estimate(uint64_t key, int *sample_slot);
void vgpu_sample_begin(int slot, CUstream stream, int per_thread, struct vgpu_sample *smp);
void vgpu_sample_end(struct vgpu_sample *smp, CUstream stream, int per_thread, CUresult launched);
/* Read the timings of finished samples into the model (not during capture). */
void vgpu_samples_poll(void);

/* A submission the gate made wait VGPU_GATE_LONG_WAIT_NS or more (compute_gate.h) is timed
 * too (within the per-key spacing): a pod that waits that long launches sparsely, and timed by
 * count alone (every 64th of a thread) a wrong first estimate stayed for tens of seconds at a
 * low share (a pod at 1% whose estimate is 10x too high waits 1.6 s a 1.6 ms matmul). This
 * launch, not the next: the next is charged before the wait that this one's timing can cut
 * short (second_look in compute_gate.c). Returns the slot to time, or -1. */
int vgpu_cost_sample_after_wait(void);

/* For the gate's second look at a long wait (compute_gate.c): the model's slot of the key this
 * thread asked vgpu_cost_estimate about last (-1: none), and that slot's estimate now, after
 * reading the samples that have finished (0: nothing measured). */
int vgpu_cost_last_slot(void);
uint64_t vgpu_cost_recheck(int slot);
/* Whether slot's estimate may still be far too high: fewer than five samples, taken while
 * another context may have time-sliced the GPU (see vgpu_cost_set_shared) */
int vgpu_cost_unsure(int slot);

/* At load: VGPU_SAMPLE_GAP_MS, the least time between two samples of a key (default 20), and
 * VGPU_COST_RECENT (default 1: see vgpu_cost_set_shared; 0 turns the median off). */
void vgpu_cost_configure(const char *gap_ms, const char *recent);

/* Whether another process holds a context on a GPU this process uses (the maintenance thread,
 * from the NVML process list of its memory true-up; taken as yes until a list says no). While
 * none does (and VGPU_COST_RECENT is not 0), a kernel of 20 us or more is estimated by the median
 * of its last three samples instead of the smallest of eight (see learn in cost_model.c). */
void vgpu_cost_set_shared(int shared);

#endif
