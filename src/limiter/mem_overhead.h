/* mem_overhead.h - the true-up of driver overhead from NVML: what a process really holds on a
 * GPU beyond its allocations.
 *
 * Why this exists: what a process holds on a GPU is more than its allocations (context, loaded
 * modules, the driver's sub-allocation slack). Only NVML knows that figure, and asking it costs
 * a system call, so the hot path never does: the maintenance thread asks on every pass (and
 * once when a GPU is bound) and charges the difference to the process's overhead bucket.
 */
#ifndef VGPU_MEM_OVERHEAD_H
#define VGPU_MEM_OVERHEAD_H

#include "../common/shm_layout.h"

/* Charge every bound GPU's overhead for this process's record `slot` of `s`. The caller keeps
 * one true-up at a time (maintenance.c's lock). Returns what the same NVML list shows besides:
 * 1 when another process (or one NVML does not name as this one) holds a context on a bound
 * GPU, 0 when none does, -1 when the list could not be read. */
int vgpu_overhead_true_up(struct vgpu_shm *s, int slot);

#endif
