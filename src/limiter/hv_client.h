/* hv_client.h - the limiter's side of the node daemon (vgpu-hypervisor, docs/hypervisor.md).
 *
 * Why this exists: with a daemon configured (VGPU_HYPERVISOR_SOCKET, or HYPERVISOR_IP +
 * HYPERVISOR_PORT) the pod's limits come from the daemon and may change, or the pod may be
 * suspended, at any time. This module registers the process at its first cuInit (synchronously:
 * at once where nothing listens, 5 s at most for a daemon that is there but busy); the reply names
 * the pod's ledger and control region, which the limiter then attaches (limiter.h): the daemon
 * writes limits and suspension into the control region itself. A background thread long-polls the
 * daemon's commands (which then only need an ack, or, for a process on a private ledger, to be
 * applied to it), heartbeats, and registers again with backoff when the daemon goes away; the last
 * limits stay in force meanwhile. Until a first registration succeeds the environment's limits
 * apply to this process alone; without any, the process fails closed (no memory, submissions wait).
 * Nothing here is on the launch path: a suspended pod waits in the gate (compute_gate.h).
 */
#ifndef VGPU_HV_CLIENT_H
#define VGPU_HV_CLIENT_H

/* After the real cuInit succeeded: register (once per process) and start the thread. */
void vgpu_hv_start(void);

#endif
