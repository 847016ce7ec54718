/* worker_identity.h - which pod a registering process belongs to, and what the kubelet
 * granted its container.
 *
 * Why this exists: a worker's pod is never what it says (pod_identity.h). The name is made
 * from its cgroup: a Kubernetes pod's (by the UID the watch reports), a container's, or the
 * cgroup path itself; device-plugin allocations its container mounted (mount_identity.h)
 * name its region and what it was granted (allocations.h).
 */
#ifndef VGPU_HV_WORKER_IDENTITY_H
#define VGPU_HV_WORKER_IDENTITY_H

#include <sys/types.h>

#include "alloc_grant.h"
#include "pod_files.h"
#include "pod_identity.h"

/* A process's pod as the kernel says (pod_identity.h): its key's parts and the name of its
 * directory under <shm-dir>/pods. */
struct hv_ident {
    char ns[64], name[254];
    char dir[POD_FILES_NAME_LEN];
    char container[72];
    struct pod_identity id;
    /* the device plugin's allocations the process's container mounted (mount_identity.h):
     * what the kubelet granted it; dir is then the allocation's directory */
    int ngrant;
    struct alloc_grant grant[2];
};
/* 0; 1 when it is a Kubernetes pod the watch has not reported (yet); -1 unreadable (the
 * process is gone). Registry lock held. */
int worker_identify(pid_t host_pid, struct hv_ident *out);

#endif
