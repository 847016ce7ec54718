/* pod_identity.h - which pod a process belongs to, as the kernel says (its cgroup).
 *
 * Why this exists: a pod's limits must never be chosen by what a pod says about itself (its
 * environment, the body of its requests). The kernel files a process under cgroups its pod
 * cannot change (unless privileged): a Kubernetes pod's processes under a path with the pod's
 * UID, a container's under a path with the container's ID, anything else under its own path.
 * /proc/PID/cgroup is read from the daemon's side, so the paths are as the daemon sees them.
 * The text is parsed by the parser the limiter uses too (src/common/cgroup_path.h), so both
 * group processes into the same pods under the same names.
 */
#ifndef VGPU_HV_POD_IDENTITY_H
#define VGPU_HV_POD_IDENTITY_H

#include <stddef.h>
#include <sys/types.h>

#include "cgroup_path.h" /* struct pod_identity, pod_identity_parse, pod_identity_name */

/* The identity of a live process (reads /proc/PID/cgroup). 0 or -1. */
int pod_identity_of_pid(pid_t pid, struct pod_identity *out);

/* A short key that is the same for every process of one pod (its pod_identity_name): the
 * daemon's connection limits count per key (http_server.h). 0 or -1. */
int pod_identity_key(pid_t pid, char *key, size_t n);

#endif
