/* ctl_region.h - create (daemon), map read-only (limiter) and search a pod's control region
 * (ctl_layout.h). */
#ifndef VGPU_CTL_REGION_H
#define VGPU_CTL_REGION_H

#include <stddef.h>

#include "ctl_layout.h"

/* Relative to a managed pod's directory ("pods/<name>" under the daemon's --shm-dir). */
#define VGPU_CTL_PATH "control/control.shm"
#define VGPU_LEDGER_PATH "ledger/ledger.shm"

/* The daemon's side: write an initialised control region for `pod` with `token` into the empty
 * file `fd`. 0 or -1. */
int vgpu_ctl_init_fd(int fd, const char *pod, const char *token);
/* Map `fd` (writable: the daemon; else read-only) after checking that it is a regular file of
 * the right size, magic and version. NULL with a message in err. */
struct vgpu_ctl *vgpu_ctl_map_fd(int fd, int writable, char *err, size_t errlen);
/* A limiter's side: open `path` read-only without following symlinks, and map it. */
const struct vgpu_ctl *vgpu_ctl_open(const char *path, char *err, size_t errlen);
void vgpu_ctl_unmap(const struct vgpu_ctl *c);

/* Index of the READY device with this uuid, or -1 (lock-free). */
int vgpu_ctl_dev_find(const struct vgpu_ctl *c, const char *uuid);

#endif
