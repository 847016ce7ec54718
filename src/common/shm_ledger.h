/* shm_ledger.h - the memory-ledger protocol on top of a pod's ledger (shm_layout.h).
 *
 * Why this exists: "every process of a pod together never holds more than the cap" needs one
 * set of rules that every writer follows: reserve before the driver allocates (refuse past the
 * cap), give back on free, record per process so that the bytes of a process that died (even
 * by kill -9) return to the pod, and rebuild totals if a writer died mid-update. The pod's
 * processes use these functions and nobody writes ledger fields directly; the node daemon never
 * calls the ones that lock (it reads ledgers with pread and reports dead processes through the
 * control region, ctl_layout.h).
 *
 * Dependencies: this file uses shm_region.h (the clock); shm_region.c, which only creates and
 * maps regions, uses nothing of this one, so the two do not call each other.
 */
#ifndef VGPU_SHM_LEDGER_H
#define VGPU_SHM_LEDGER_H

#include <stdint.h>
#include <sys/types.h>

#include "shm_layout.h"

struct vgpu_ctl;

/* Identity of a process, enough to tell whether it is still the same living process. */
struct vgpu_proc_id {
    pid_t pid;
    uint64_t start_time; /* /proc/<pid>/stat field 22 */
    uint64_t pidns;      /* inode of /proc/<pid>/ns/pid */
};

/* Fill `id` for the calling process. */
void vgpu_proc_self(struct vgpu_proc_id *id);

/* Limits a device slot starts with (dev[].lim: used where no daemon manages the pod). */
struct vgpu_dev_init {
    uint64_t mem_limit;      /* VGPU_UNLIMITED for none */
    uint64_t oversold_limit; /* bytes past the cap allowed in host memory */
    uint32_t flags;          /* VGPU_DEV_* */
    uint64_t total_real;
    uint32_t core_limit; /* hundredths of a percent, 0 = none */
    uint32_t core_soft;  /* hundredths of a percent, 0 = hard limit */
};

/* Device slot for `uuid` (normalised, lower case "gpu-..."), created with `init` if the pod has
 * none yet. Returns the index, or -1 when all VGPU_MAX_DEVICES slots are taken. `*created`
 * tells whether this call created it (the caller's limits were applied). */
int vgpu_ledger_dev_attach(struct vgpu_shm *s, const char *uuid, const struct vgpu_dev_init *init,
                           int *created);
/* Index of the device slot for uuid, or -1 (lock-free read). */
int vgpu_ledger_dev_find(const struct vgpu_shm *s, const char *uuid);

/* Process record of `id`, claimed if it has none. -1 when the table is full even after dead
 * processes were reaped. */
int vgpu_ledger_proc_claim(struct vgpu_shm *s, const struct vgpu_proc_id *id);
/* Give back everything the record holds and free it (normal process exit). */
void vgpu_ledger_proc_release(struct vgpu_shm *s, int slot, pid_t pid);

enum { VGPU_LEDGER_OK = 0, VGPU_LEDGER_OVER_CAP = 1, VGPU_LEDGER_ERROR = -1 };

/* Reserve `bytes` on device `dev` for process record `slot` if the pod stays within the cap
 * lim->mem_limit. Reaps dead processes (those of our PID namespace, and those `ctl`, if not
 * NULL, reports dead) and retries once before refusing. */
int vgpu_ledger_reserve(struct vgpu_shm *s, int slot, int dev, uint64_t bytes,
                        const struct vgpu_dev_limits *lim, const struct vgpu_ctl *ctl);
void vgpu_ledger_unreserve(struct vgpu_shm *s, int slot, int dev, uint64_t bytes);
/* Same for the host-memory part of an oversubscribed device (lim->oversold_limit). */
int vgpu_ledger_reserve_oversold(struct vgpu_shm *s, int slot, int dev, uint64_t bytes,
                                 const struct vgpu_dev_limits *lim, const struct vgpu_ctl *ctl);
void vgpu_ledger_unreserve_oversold(struct vgpu_shm *s, int slot, int dev, uint64_t bytes);
/* Memory the driver already holds for us (driver overhead, pool growth): recorded without a cap
 * check, since refusing cannot undo it. Sets the overhead bucket to `bytes`. */
void vgpu_ledger_set_overhead(struct vgpu_shm *s, int slot, int dev, uint64_t bytes);
/* Adds a signed delta to the allocation bucket without a cap check (pool true-ups). */
void vgpu_ledger_adjust(struct vgpu_shm *s, int slot, int dev, int64_t delta);

/* Return the bytes of dead processes: of records in our pid namespace `self_pidns` whose
 * process is gone, and of records in other namespaces (other containers of the pod) whose host
 * PID and start time `ctl` (may be NULL) reports gone. Returns how many records were freed.
 * Takes the lock. */
int vgpu_ledger_reap(struct vgpu_shm *s, uint64_t self_pidns, const struct vgpu_ctl *ctl);
/* Reap at most once per `interval_ns` across the pod (cheap check first). */
int vgpu_ledger_reap_if_due(struct vgpu_shm *s, uint64_t self_pidns, const struct vgpu_ctl *ctl,
                            uint64_t interval_ns);

/* Rebuild dev[] totals from the process records. Call with the lock held. */
void vgpu_ledger_repair(struct vgpu_shm *s);

/* Lock the ledger (the pod's processes only: the daemon never takes a lock that lives in memory
 * a pod can write). Returns 0, or an errno value when the mutex is unusable. A lock whose
 * holder died is repaired (vgpu_ledger_repair) before this returns 0. */
int vgpu_ledger_lock(struct vgpu_shm *s);
void vgpu_ledger_unlock(struct vgpu_shm *s);

/* Does a live record of the pod belong to `pid` (as seen in pid namespace `pidns`, or as the
 * host sees it)? */
int vgpu_ledger_has_pid(const struct vgpu_shm *s, uint64_t pidns, unsigned pid);

/* Field 3 (state letter) and field 22 (start time, clock ticks since boot) of /proc/PID/stat:
 * tells a live process from a zombie and a reused PID from the original. 0, or -1 when the
 * file cannot be read. */
int vgpu_proc_stat(pid_t pid, char *state, uint64_t *start_time);

/* Is the process recorded as `pid`/`start_time` alive? (same pid namespace only) */
int vgpu_proc_alive(pid_t pid, uint64_t start_time);

#endif
