/* alloc_grant.h - what the kubelet granted one device-plugin allocation.
 *
 * Why this exists: the registry keeps each pod's grants (they are its limits on that GPU), a
 * registering process's identity carries them, and allocations.c writes and reads them; a
 * header of the type alone lets the registry hold them without depending on allocations.c
 * (which calls the registry).
 */
#ifndef VGPU_HV_ALLOC_GRANT_H
#define VGPU_HV_ALLOC_GRANT_H

#include <stdint.h>

#include "shm_layout.h" /* VGPU_UUID_LEN */

/* What the kubelet granted an allocation (the device plugin's Allocate): kept in the
 * allocation's directory where its pod cannot see it (pod_files.h meta files), and read back
 * when a process of the container registers (its mounts name the directory:
 * mount_identity.h). */
struct alloc_grant {
    char uuid[VGPU_UUID_LEN]; /* normalised "gpu-..." */
    uint64_t mem_bytes;       /* 0: no memory granted (a gpu-cores allocation) */
    int cores;                /* percent, 0: no compute granted (a gpu-memory allocation) */
};

#endif
