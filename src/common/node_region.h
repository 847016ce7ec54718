/* node_region.h - map the node region (node_layout.h), write it (daemon), read it (limiter). */
#ifndef VGPU_NODE_REGION_H
#define VGPU_NODE_REGION_H

#include <stddef.h>

#include "node_layout.h"

#define VGPU_NODE_DIR "node" /* under the daemon's --shm-dir */

/* The daemon's side: create or reuse DIR/node.shm (mode 0644) and map it writable. DIR must be
 * a directory of the daemon's user that nobody else can write; a node.shm that is not a regular
 * file of that user with one link is replaced, never written through. NULL with a message in
 * err on failure. */
struct vgpu_node_shm *vgpu_node_create(const char *dir, char *err, size_t errlen);
/* A limiter's side: map DIR/node.shm read-only (no symlinks); NULL when absent or not of this
 * version. In the daemon's layout DIR is <--shm-dir>/node (VGPU_NODE_DIR). */
const struct vgpu_node_shm *vgpu_node_open(const char *dir);
void vgpu_node_unmap(const struct vgpu_node_shm *n);

/* Writer: bracket every update. */
void vgpu_node_write_begin(struct vgpu_node_shm *n);
void vgpu_node_write_end(struct vgpu_node_shm *n, uint64_t now_ns);

/* What a reader works with: a consistent copy of the parts it needs. */
struct vgpu_node_view {
    uint64_t updated_ns;
    uint64_t pidns; /* the PID namespace of proc[].host_pid (node_layout.h daemon_pidns) */
    unsigned ngpu, nproc;
    struct {
        char uuid[VGPU_UUID_LEN];
        uint32_t util;
        uint64_t mem_used, mem_total;
    } gpu[VGPU_MAX_DEVICES];
    struct {
        uint32_t host_pid, gpu, sm_util;
        uint64_t mem;
    } proc[VGPU_NODE_MAX_PROCS];
};

/* Copy the region into *v. 0 when the copy is consistent and younger than
 * VGPU_NODE_FRESH_NS at now_ns; -1 otherwise (stale, being rewritten for too long). */
int vgpu_node_read(const struct vgpu_node_shm *n, struct vgpu_node_view *v, uint64_t now_ns);
/* Index of the GPU with this uuid in the view, or -1. */
int vgpu_node_gpu_find(const struct vgpu_node_view *v, const char *uuid);

#endif
