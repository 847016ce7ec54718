/* maintenance.h - the limiter's background thread: heartbeat, dead-process reaping, and the
 * true-up of driver overhead from NVML.
 *
 * Why this exists: what a process really holds on a GPU is more than its allocations (context,
 * loaded modules, the driver's sub-allocation slack). Only NVML knows that figure, and asking it
 * costs a system call, so the hot path never does: this thread asks twice a second and charges
 * the difference to the process's overhead bucket. It also returns the memory of dead processes
 * within a second even when nobody allocates.
 */
#ifndef VGPU_MAINTENANCE_H
#define VGPU_MAINTENANCE_H

void vgpu_maintenance_start(void);
/* At exit: wait for a pass in progress, then never touch the driver or NVML again. */
void vgpu_maintenance_stop(void);
/* One pass, for tests and for the thread. */
void vgpu_maintenance_tick(void);
/* Charge the driver's overhead now (a GPU was just bound: its context counts before the first
 * allocation is weighed against the cap). */
void vgpu_maintenance_true_up_now(void);

#endif
