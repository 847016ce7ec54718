/* pod_regions.h - the daemon's side of a pod's regions: it writes the control region and reads
 * the ledger.
 *
 * Why this exists: the limiter enforces whatever the pod's control region says
 * (src/common/ctl_layout.h), and the scheduler and status need what the pod's processes
 * recorded in its ledger (shm_layout.h). The control region is the daemon's alone: limits,
 * weights, the share the gate enforces, suspension, dead processes, liveness. The ledger is
 * the pod's and untrusted: it is read with pread (never mapped: a pod can truncate it; never
 * locked), every figure is range-checked, and a ledger that is not one (magic, version, size,
 * short) marks only its own pod broken (its processes fail closed).
 * All functions: registry lock held.
 */
#ifndef VGPU_HV_POD_REGIONS_H
#define VGPU_HV_POD_REGIONS_H

#include <stdint.h>
#include <sys/types.h>

#include "hv_pod.h"

/* Open (or make) the pod's directory p->dir with its ledger for uid/gid, then apply. 0, -1 or
 * -2 (the directory is another pod's) with a message in err. */
int region_open(struct hv_pod *p, uid_t uid, gid_t gid, char *err, size_t errlen);
/* Write every control field from the registry's view of the pod. */
void region_apply(struct hv_pod *p);
/* Only the share the gate enforces on one GPU (the tick). */
void region_write_effective(struct hv_pod *p, const struct hv_pod_gpu *g);
/* Only the contention factor on one GPU (the tick, contention.h). */
void region_write_shared(struct hv_pod *p, const struct hv_pod_gpu *g);
void region_set_seq(struct hv_pod *p, uint64_t seq);
/* Read usage into p->gpu[] (mem_used, used share, wants_more, clock factor); refresh liveness. */
void region_sample(struct hv_pod *p, uint64_t now_ns);
/* Close the pod's files; with `remove`, also delete its directory (the caller has seen that no
 * live process has a record in its ledger: region_reap_dead). */
void region_close(struct hv_pod *p, int remove);
/* A process of the pod is gone: tell its limiters (ctl_layout.h dead[]) to release its record. */
void region_report_dead(struct hv_pod *p, pid_t host_pid, uint64_t start_time);
/* Report every ledger record whose process (by the host PID its limiter recorded) is gone; at
 * most VGPU_MAX_PROCS checks. Returns the records that belong to live processes. With `full`
 * 0 (the tick, once a second) only the records up to what the last full reading found in use,
 * plus REGION_REAP_AHEAD, are read, and every REGION_REAP_FULL_EVERY-th call reads all: a
 * limiter claims the lowest free record, so live ones sit low, and the whole array is 200 KiB
 * a pod a second otherwise. A record the short reading misses is reported by the next full one.
 * The count decides whether a pod's files may go: callers that need it pass `full`. */
#define REGION_REAP_AHEAD 64
#define REGION_REAP_FULL_EVERY 10
/* known_alive (may be NULL): the caller already knows that this record's process runs, and
 * /proc need not be read for it. */
typedef int (*region_alive_fn)(const struct hv_pod *p, pid_t host, uint64_t start_time);
int region_reap_dead(struct hv_pod *p, int full, region_alive_fn known_alive);

#endif
