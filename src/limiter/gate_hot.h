/* gate_hot.h - the one cache line every submission reads, and the process's stream captures.
 *
 * Why this exists: the compute gate (compute_gate.c) and the cost model (cost_model.c) both need
 * to know whether a stream capture is in progress (captured work does not run now, and event
 * calls would break the capture), and the gate asks the model what a launch costs. Kept apart
 * from both so that neither depends on the other for it.
 */
#ifndef VGPU_GATE_HOT_H
#define VGPU_GATE_HOT_H

#include <stdatomic.h>

#include "../common/shm_layout.h"

/* What every submission reads, on one cache line. The driver's own launch path (3-4 us) pushes
 * the limiter's data out of the nearest caches, so each distinct line a launch touches costs a
 * few nanoseconds; the scattered lookup (configuration, device count, binding, captures) touched
 * four more than this. `dev` is set once the process's only visible GPU is bound to the pod's
 * ledger with the gate on, and never changes after (a fork keeps both the binding and the
 * mapping); processes that see several GPUs take the full lookup every time. */
struct vgpu_gate_hot {
    _Atomic(struct vgpu_shm_dev *) dev; /* NULL: ask vgpu_gate_lookup_slow */
    /* vgpu_suspended_word() when dev was set (threads that find the lookup unset at once all
     * store the same pointer: atomic, so that none reads a torn one) */
    const _Atomic uint32_t *_Atomic susp;
    _Atomic int captures; /* stream captures in progress in this process */
} __attribute__((aligned(64)));
extern struct vgpu_gate_hot vgpu_gate_hot;

/* Has the one-line lookup been set up? (If so the configuration was readable.) */
static inline int vgpu_gate_hot_ready(void)
{
    return atomic_load_explicit(&vgpu_gate_hot.dev, memory_order_relaxed) != NULL;
}

/* Stream capture in progress somewhere in the process (launches are recorded, not run; timing
 * events and event queries are not allowed). */
void vgpu_capture_begin(void);
void vgpu_capture_end(void);
int vgpu_capturing(void);

#endif
