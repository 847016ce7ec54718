/* shm_region.h - create, find and map a pod's ledger (shm_layout.h).
 *
 * Why this exists: a ledger comes from one of three places, and each must be safe against
 * whoever else can write where it lives:
 *  - the node daemon creates every managed pod's ledger (vgpu_shm_init_fd) in a directory it
 *    owns, and the pod's processes map it (vgpu_shm_map_existing, no O_CREAT, no symlinks);
 *  - without a daemon (standalone), the processes of one user share ledgers in a directory
 *    that user owns and nobody else can write (vgpu_shm_open): the first process creates a
 *    region, serialised with flock(2), which the kernel drops when its holder dies, so a
 *    creator killed mid-way cannot block the pod (the next opener finds no magic and
 *    initialises it again);
 *  - a process that can have neither runs on a private ledger (vgpu_shm_private): its limits
 *    then hold for that process alone.
 */
#ifndef VGPU_SHM_REGION_H
#define VGPU_SHM_REGION_H

#include <stddef.h>
#include <stdint.h>

#include "shm_layout.h"

/* the daemon's directory (--shm-dir) as the pods see it, when the daemon manages them */
#define VGPU_SHM_MANAGED_DIR "/run/vgpu/shm"

enum {
    VGPU_SHM_CREATE = 1, /* standalone: create the region (and its directory) when missing */
};

/* Standalone: where a user's regions live when VGPU_SHM_DIR does not say ("/dev/shm/vgpu-UID"). */
void vgpu_shm_standalone_dir(char *out, size_t outlen);

/* Path of the standalone region of pod `pod_id` under `dir`: "<dir>/pod-<sanitised id>-<hash>". */
int vgpu_shm_path(const char *dir, const char *pod_id, char *out, size_t outlen);

/* Standalone: map the region of `pod_id` in `dir`. `dir` must be a directory (not a symlink)
 * owned by this user and writable by nobody else, the region a regular file owned by this user;
 * anything else is refused. NULL and a message in err when it cannot be used (missing without
 * VGPU_SHM_CREATE, wrong magic/version/size, ownership, ...). */
struct vgpu_shm *vgpu_shm_open(const char *dir, const char *pod_id, int flags, char *err,
                               size_t errlen);
/* Managed: map the ledger the daemon created at `path` (no creation, no symlinks, a regular
 * file of the right size, magic, version). */
struct vgpu_shm *vgpu_shm_map_existing(const char *path, char *err, size_t errlen);
/* A ledger in anonymous memory, for this process (and its forks' copies) only. */
struct vgpu_shm *vgpu_shm_private(const char *pod_id);
/* The daemon's side: write an initialised, empty ledger into the empty file `fd`. 0 or -1. */
int vgpu_shm_init_fd(int fd, const char *pod_id);
void vgpu_shm_close(struct vgpu_shm *s);

/* CLOCK_MONOTONIC in nanoseconds (vDSO: no system call). */
uint64_t vgpu_now_ns(void);

/* FNV-1a, used for file names and quick hashing. */
uint64_t vgpu_fnv1a64(const void *data, size_t len);

#endif
