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

#include <stdatomic.h>
#include <stdint.h>

#include "cuda_abi.h"
#include "../common/shm_layout.h"
#include "gate_hot.h"

/* Budget a pod may bank while it submits less than its share (wall time of its virtual clock;
 * at 30% 100 ms bank 30 ms of GPU time). A pod whose own pace is near its limit and wavers
 * (a launch-bound Python loop's pace moves by several percent within a second) is cut in its
 * faster stretches and cannot make it up in the slower ones unless the bank spans them; 100 ms
 * does, 10 ms did not (bench/results/compute-runs.md, fifth run, "Bank"). In any window it adds
 * at most this times the share to what the pod gets. */
#define VGPU_GATE_BURST_NS 100000000ll
/* the most queued work the gate keeps track of while the share is unlimited (see publish) */
#define VGPU_GATE_BACKLOG_NS 2000000000ll
#define VGPU_GATE_FLUSH_NS                                                                         \
    200000u /* GPU time a thread collects before publishing: each                                  \
             * publish reads the clock, which in some VMs is a                                     \
             * system call */

#define VGPU_GATE_UNLIMITED(share) ((share) == 0 || (share) >= 10000)

/* The pod is suspended (*word != 0): wait until it is not (1 ms steps). The word is written by
 * the node daemon (control region) or by the daemon's client (limiter.h local_suspended). */
void vgpu_gate_wait_resumed(const _Atomic uint32_t *word);

struct vgpu_shm_dev *vgpu_gate_lookup_slow(CUstream stream, int per_thread_stream);
int vgpu_stream_capturing(CUstream stream, int per_thread_stream);

/* Whether a submission to pod state d goes through the gate: d, or NULL when the stream is
 * being captured (captured work does not run now). Waits here while the pod is suspended
 * (`susp`: the control region's word, or the process's own; limiter.h). Work is charged also
 * while the share is unlimited (it never waits then): the daemon's scheduler must see a busy
 * pod as busy, and the work queued meanwhile is still owed when a limit comes (see publish in
 * compute_gate.c). */
static inline struct vgpu_shm_dev *vgpu_gate_admit(const _Atomic uint32_t *susp,
                                                   struct vgpu_shm_dev *d, CUstream stream,
                                                   int per_thread_stream)
{
    /* suspended: one relaxed load of a line every submission reads */
    if (__builtin_expect(atomic_load_explicit(susp, memory_order_relaxed) != 0, 0))
        vgpu_gate_wait_resumed(susp);
    if (__builtin_expect(atomic_load_explicit(&vgpu_gate_hot.captures, memory_order_relaxed) > 0,
                         0) &&
        vgpu_stream_capturing(stream, per_thread_stream))
        return NULL;
    return d;
}

/* The pod's compute state for the GPU the current context is on, or NULL (see above). */
static inline struct vgpu_shm_dev *vgpu_gate_lookup(CUstream stream, int per_thread_stream)
{
    struct vgpu_shm_dev *d = atomic_load_explicit(&vgpu_gate_hot.dev, memory_order_acquire);
    if (__builtin_expect(!d, 0)) return vgpu_gate_lookup_slow(stream, per_thread_stream);
    return vgpu_gate_admit(atomic_load_explicit(&vgpu_gate_hot.susp, memory_order_relaxed), d,
                           stream, per_thread_stream);
}

/* Charge cost_ns of GPU time; waits while the pod is over its share. Returns 1 when it waited
 * VGPU_GATE_LONG_WAIT_NS or more (the caller then times this launch: cost_model.h). */
#define VGPU_GATE_LONG_WAIT_NS 20000000ll
/* The most wall time of the pod's clock one launch of a key may take while its estimate is
 * unsure (cost_model.h, vgpu_cost_unsure): a kernel's first samples, taken while dozens of
 * contexts start and time-slice the GPU, can be fifty times its own time, and at 1% a launch
 * charged at that held the pod for a minute before any better sample could be taken. Above it
 * only kernels longer than the share times this are charged less, and for a few launches. */
#define VGPU_GATE_UNSURE_MAX_NS 1000000000ll
int vgpu_gate_charge(struct vgpu_shm_dev *d, uint64_t cost_ns);

/* Where the limiter itself sets the share (no daemon: the soft policy, the environment's limits
 * on a private ledger): store it in the ledger's own limits and rescale. */
/* Charges pod `d` GPU time it has already had (gpu_ns, at the full GPU's speed) at its share:
 * its budget moves on as if that work had been charged when it ran. */
void vgpu_gate_debit(struct vgpu_shm_dev *d, uint64_t gpu_ns, uint32_t share);
void vgpu_gate_set_effective(struct vgpu_shm_dev *d, uint32_t share);
/* Bring the budget to the share `lim` says now, if it changed (whoever writes it): the
 * outstanding budget is rescaled once for the pod, so the new share applies from now on, also
 * to threads already waiting. Returns the share. */
uint32_t vgpu_gate_sync(struct vgpu_shm_dev *d, const struct vgpu_dev_limits *lim);

#endif
