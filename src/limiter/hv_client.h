/* hv_client.h - the limiter's side of the node daemon (vgpu-hypervisor, docs/hypervisor.md).
 *
 * Why this exists: with a daemon configured (VGPU_HYPERVISOR_SOCKET, or HYPERVISOR_IP +
 * HYPERVISOR_PORT) the pod's limits come from the daemon and may change, or the pod may be
 * suspended, at any time. This module registers the process at its first cuInit (synchronously,
 * 1 s at most); the reply names the pod's ledger and control region, which the limiter then
 * attaches (limiter.h): the daemon writes limits and suspension into the control region
 * itself. A background thread long-polls the daemon's commands (which then only need an ack,
 * or, for a process on a private ledger, to be applied to it), heartbeats, and registers again
 * with backoff when the daemon goes away; the last limits stay in force meanwhile. Until a first
 * registration succeeds the environment's limits apply to this process alone; without any, the
 * process fails closed (no memory, submissions wait). Nothing here is on the launch path: a
 * suspended pod waits in the gate (compute_gate.h).
 */
#ifndef VGPU_HV_CLIENT_H
#define VGPU_HV_CLIENT_H

#include <stdint.h>

#include "../common/shm_layout.h"

/* After the real cuInit succeeded: register (once per process) and start the thread. */
void vgpu_hv_start(void);

/* Apply a JSON array of per-GPU limits (docs/hypervisor.md) to a private ledger's own limits
 * (a process the daemon does not hold through the pod's control region): returns the number
 * of GPUs written, -1 on a malformed entry (err says which). */
int vgpu_hv_apply_limits(struct vgpu_shm *s, const char *limits, char *err, size_t errlen);

/* Percent as the daemon writes it (float) -> hundredths, clamped to [0, 10000]. */
uint32_t vgpu_hv_percent(double pct);

#endif
