/* dp_allocate.h - the kubelet's Allocate call to the device plugin.
 *
 * Why this exists: Allocate is where a container gets its share: every device ID is checked to
 * be one listed, all of one GPU, the allocation's region is made (allocations.h) before the
 * container starts, and the answer mounts the limiter, the region and the worker socket into
 * the container with the environment that points the limiter at them.
 */
#ifndef VGPU_HV_DP_ALLOCATE_H
#define VGPU_HV_DP_ALLOCATE_H

#include "dp_state.h"

/* Allocate of resource dp_res_of(arg): one answer per container, or a failed reply naming the
 * first bad container and device. */
void dp_on_allocate(void *arg, const uint8_t *req, size_t len, struct gs_reply *out);

#endif
