/* pod_regions.h - the daemon's side of the pods' shared-memory regions.
 *
 * Why this exists: the limiter enforces whatever its pod region says. The daemon maps the
 * region of each registered pod (src/common/shm_region.h), writes the control fields
 * (managed, managed_ns, suspended, control_seq, dev[].mem_limit, core_limit, core_soft,
 * core_effective, weight) and reads the usage counters the scheduler and status need.
 * All functions: registry lock held.
 */
#ifndef VGPU_HV_POD_REGIONS_H
#define VGPU_HV_POD_REGIONS_H

#include <stdint.h>

#include "registry.h"

/* Map the pod's region if it exists in --shm-dir (retried at most once a second), then apply. */
void region_try_open(struct hv_pod *p, uint64_t now_ns);
/* Write every control field from the registry's view of the pod. */
void region_apply(struct hv_pod *p);
/* Only core_effective of one GPU (the tick). */
void region_write_effective(struct hv_pod *p, const struct hv_pod_gpu *g);
void region_set_seq(struct hv_pod *p, uint64_t seq);
/* Read usage into p->gpu[] (mem_used, used share, wants_more); refresh managed_ns. */
void region_sample(struct hv_pod *p, uint64_t now_ns);
/* Unmap; with unmanage, hand the pod back to the limiter's own policy (managed = 0). */
void region_close(struct hv_pod *p, int unmanage);
/* A worker died: return the memory its process record holds in the pod's region. The daemon
 * sees every PID namespace, so this also frees records that no process of another container
 * of the pod could reap. Returns 1 when a record was released. */
int region_release_dead(struct hv_pod *p, pid_t host_pid, int ns_pid);
/* The same for every record of the region whose process (by the host PID its limiter learnt
 * at registration) is gone: catches what a busy lock or a daemon restart left behind. */
int region_reap_dead(struct hv_pod *p); /* records still to release (their lock was busy) */

#endif
