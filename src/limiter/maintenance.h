/* maintenance.h - the limiter's background thread, started when the process claims its record
 * in the pod's ledger. Every pass (twice a second, VGPU_MAINTENANCE_MS) it does five jobs:
 *  - the heartbeat of this process's record;
 *  - reaping the records of dead processes of the pod (shm_ledger.h), so their memory comes
 *    back within a second even when nobody allocates;
 *  - the true-up of driver overhead from NVML (mem_overhead.h);
 *  - the compute policy: the share in force, the compute loop, the clock factor
 *    (compute_policy.h, from gpu_busy.h's view of the GPU);
 *  - reading the cost model's finished timing samples (cost_model.h).
 *
 * Why this exists: each of these asks the driver, NVML or the ledger something that costs a
 * system call or a lock, so the launch and allocation paths never do; one thread does them off
 * those paths, and this file is only that thread's life cycle and its order of jobs.
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
