/* compute_policy.h - the share the gate enforces on each bound GPU, set once a maintenance pass.
 *
 * Why this exists: limits change while a pod runs (written at run time, a soft limit whose
 * floor or ceiling applies as other pods come and go, the node daemon's share), and the gate
 * itself only reads the share on the launch path. Once a pass this module brings the gate to
 * the share in force, runs the measured correction of the cost model (compute_feedback.h) and
 * the clock factor (dvfs_model.h).
 */
#ifndef VGPU_COMPUTE_POLICY_H
#define VGPU_COMPUTE_POLICY_H

#include "../common/shm_layout.h"

/* One pass over the bound GPUs of the pod's ledger `s`; `feedback` and `dvfs` turn the compute
 * loop and the clock factor on. */
void vgpu_compute_policy_pass(struct vgpu_shm *s, int feedback, int dvfs);

#endif
