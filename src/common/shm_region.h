/* shm_region.h - find, create, map and lock a pod's shared-memory region.
 *
 * Why this exists: the first process of a pod (or the daemon) creates the region, everyone else
 * maps the same one, and nobody may see it half-initialised. Creation is serialised with
 * flock(2), which the kernel drops when its holder dies, so a creator killed mid-way cannot
 * block the pod: the next opener finds no magic and initialises it again.
 */
#ifndef VGPU_SHM_REGION_H
#define VGPU_SHM_REGION_H

#include <stddef.h>
#include <stdint.h>

#include "shm_layout.h"

#define VGPU_SHM_DEFAULT_DIR "/dev/shm/vgpu"

enum {
    VGPU_SHM_CREATE = 1, /* create the region (and its directory) when missing */
};

/* Path of the region of pod `pod_id` under `dir`: "<dir>/pod-<sanitised id>-<hash>". */
int vgpu_shm_path(const char *dir, const char *pod_id, char *out, size_t outlen);

/* Map the region of `pod_id`. Returns NULL and a message in err when it cannot (missing without
 * VGPU_SHM_CREATE, wrong magic/version/size, permissions, ...). */
struct vgpu_shm *vgpu_shm_open(const char *dir, const char *pod_id, int flags, char *err,
                               size_t errlen);
/* Map an existing region file by path (daemon / CLI enumerating regions). */
struct vgpu_shm *vgpu_shm_open_path(const char *path, int flags, const char *pod_id, char *err,
                                    size_t errlen);
void vgpu_shm_close(struct vgpu_shm *s);

/* Lock the ledger. Returns 0, or an errno value when the mutex is unusable. A lock whose holder
 * died is repaired (vgpu_ledger_repair) before this returns 0. */
int vgpu_shm_lock(struct vgpu_shm *s);
/* Bound every later vgpu_shm_lock of this process to `ms` milliseconds (0: no bound); a lock
 * not taken in time returns ETIMEDOUT and the operation is not done. For the daemon. */
void vgpu_shm_set_lock_timeout(unsigned ms);
void vgpu_shm_unlock(struct vgpu_shm *s);

/* CLOCK_MONOTONIC in nanoseconds (vDSO: no system call). */
uint64_t vgpu_now_ns(void);

/* FNV-1a, used for file names and quick hashing. */
uint64_t vgpu_fnv1a64(const void *data, size_t len);

#endif
