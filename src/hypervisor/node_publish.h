/* node_publish.h - write each NVML snapshot into the node region for the limiters.
 *
 * Why this exists: issue #6 asks the daemon to put per-GPU and per-process utilisation and
 * memory into shared memory at a steady rate, so that limiters (soft limits, the compute
 * feedback loop) need no NVML session of their own and see host PIDs they could not map from
 * inside a container. Layout: src/common/node_layout.h.
 */
#ifndef VGPU_HV_NODE_PUBLISH_H
#define VGPU_HV_NODE_PUBLISH_H

#include "nvml_monitor.h"

/* Create or reuse DIR/node.shm; 0, or -1 (logged). */
int node_publish_open(const char *shm_dir);
/* Write a snapshot (NVML's GPUs and their processes). No-op without an open region. */
void node_publish(const struct nvml_snapshot *snap);
/* Leave the region in place but stale (limiters stop trusting it), unmap. */
void node_publish_close(void);

#endif
