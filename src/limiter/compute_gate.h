/* compute_gate.h - holds a pod to its share of GPU time on every submission of work.
 *
 * Why this exists: a pod given 30% of a GPU must get 30% of its busy time whatever it launches.
 * The budget is a virtual clock per (pod, GPU) in shared memory (a GCRA token bucket): each
 * submission advances it by its GPU time divided by the pod's share (1.5 ms of GPU time at 30%
 * entitles 5 ms of wall time); a submitter waits only while the clock is ahead of now. Costs are
 * collected per thread and published every ~200 us of GPU time, so the common case costs a few
 * loads and adds and no system call. The cost of each submission comes from cost_model.c.
 */
#ifndef VGPU_COMPUTE_GATE_H
#define VGPU_COMPUTE_GATE_H

#include <stdint.h>

#include "../common/cuda_abi.h"
#include "../common/shm_layout.h"

#define VGPU_GATE_BURST_NS 10000000ll /* budget a pod may bank while it does not submit */
#define VGPU_GATE_FLUSH_NS                                                                         \
    200000u /* GPU time a thread collects before publishing: each                                  \
             * publish reads the clock, which in some VMs is a                                     \
             * system call */

/* The pod's compute state for the GPU the current context is on, or NULL when that GPU has no
 * compute limit (or the stream is being captured: captured work does not run now). */
struct vgpu_shm_dev *vgpu_gate_lookup(CUstream stream, int per_thread_stream);

/* Charge cost_ns of GPU time; waits while the pod is over its share. */
void vgpu_gate_charge(struct vgpu_shm_dev *d, uint64_t cost_ns);

/* Change the enforced share (hundredths of a percent; 0 or >= 10000: no limit) and rescale the
 * outstanding budget so the new share applies from now on, also to threads already waiting. */
void vgpu_gate_set_effective(struct vgpu_shm_dev *d, uint32_t share);

/* Stream capture in progress somewhere in the process (launches are recorded, not run; timing
 * events and event queries are not allowed). */
void vgpu_capture_begin(void);
void vgpu_capture_end(void);
int vgpu_capturing(void);

void vgpu_gate_reset_in_child(void);

#endif
