/* status.h - the JSON the daemon reports about itself (/v1/status and operator replies).
 *
 * Why this exists: the CLI, operators' scripts and the tests read one document whose shape is
 * fixed in docs/hypervisor.md; building it in one place keeps /v1/status and the pod entries
 * returned by PUT /v1/pods/.../limits identical.
 */
#ifndef VGPU_HV_STATUS_H
#define VGPU_HV_STATUS_H

#include <jansson.h>
#include <sys/types.h>

#include "registry.h"

/* The pod's status entry (registry lock held). */
json_t *status_pod_json(const struct hv_pod *p);
/* The whole document (takes the lock). */
json_t *status_json(void);
/* What a worker may see: {"pods": [its own pod]} for the registered process `host_pid`, or no
 * pod when it has not registered (takes the lock). */
json_t *status_peer_json(pid_t host_pid);

#endif
