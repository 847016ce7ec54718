/* allocations.h - the region of one device-plugin allocation.
 *
 * Why this exists: when the kubelet gives a container GPU memory or GPU time through the device
 * plugin (device_plugin.c), the daemon makes a directory for that allocation under
 * <shm-dir>/pods, with a control region that already holds the allocation's limits, before
 * the container starts: the plugin mounts its control/ read-only and its ledger/ read-write
 * into the container. The plugin only calls this; what owns and retires these regions lives
 * behind it.
 */
#ifndef VGPU_HV_ALLOCATIONS_H
#define VGPU_HV_ALLOCATIONS_H

#include <stddef.h>
#include <stdint.h>

#include "alloc_grant.h"
#include "shm_layout.h"

#define ALLOC_UNIT_MAX (1 << 20) /* unit numbers are below this */

/* Make the region of a new allocation on GPU `gpu_uuid` (any case, "gpu-..." / "GPU-..."):
 * `mem_bytes` of memory (0: no cap; a gpu-cores allocation) and `cores` percent of its time (0:
 * no limit), made of the kubelet's units `units` (the k of "<uuid>-m<k>" / "<uuid>-c<k>").
 * Allocations of the same resource on that GPU holding one of these units are retired first
 * (allocations.c says why). 0 with the new directory relative to --shm-dir in dir_out
 * ("pods/a-<id>"), or -1 with a message in err. Takes the registry lock itself: call without
 * it. */
int alloc_region_make(const char *gpu_uuid, uint64_t mem_bytes, int cores, const int *units,
                      size_t nunits, char *dir_out, size_t n, char *err, size_t errlen);

/* The grant of the allocation in directory `name` ("a-<id>"). 0, or -1 when it is none. */
int alloc_grant_read(const char *name, struct alloc_grant *g);

#endif
