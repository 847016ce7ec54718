/* gpu_busy.h - who used a GPU over the last second: the pod alone, or others too.
 *
 * Why this exists: a soft compute limit needs to know whether another pod uses the GPU, and the
 * compute loop needs the pod's own busy fraction. Both come from the node daemon's NVML samples
 * when it publishes them (one NVML session for the node, host PIDs it has seen), else from
 * NVML directly; one view of the GPU's processes answers both questions. Only the maintenance
 * thread calls these.
 */
#ifndef VGPU_GPU_BUSY_H
#define VGPU_GPU_BUSY_H

#include "../common/shm_layout.h"

/* Read the node daemon's region (once a pass, before the questions below). */
void vgpu_busy_refresh(void);

/* Has a process outside the pod used this GPU in the last second? (1 when nobody can tell) */
int vgpu_busy_others(struct vgpu_shm *s, const char *uuid);

/* What vgpu_busy_pod needs: the pod's ledger and the GPU. */
struct vgpu_busy_ctx {
    struct vgpu_shm *s;
    const char *uuid;
};
/* The pod's busy fraction on the GPU of `ctx` (a struct vgpu_busy_ctx), -1 while another pod
 * holds a context there or if unknown: the measurement of compute_feedback.h. */
double vgpu_busy_pod(void *ctx);

#endif
