/* node_layout.h - the node region: what NVML says about this node's GPUs, published by the
 * daemon for every limiter.
 *
 * Why this exists: each limiter needs to know how busy its GPU is and whether processes of
 * other pods use it (soft limits, the cost model's closed loop). Asking NVML from every process
 * every second costs each of them an NVML session, and inside a container NVML's process list
 * speaks of host PIDs the container cannot see, or NVML is not mounted at all. The daemon
 * samples NVML once for the node and writes the result here (<--shm-dir>/node/node.shm, a
 * directory pods mount read-only); limiters read it without a lock.
 *
 * Consistency: a sequence lock. The writer makes `seq` odd, writes, makes it even again; a
 * reader copies the fields and retries while `seq` was odd or changed (node_region.c).
 * Any change of the layout means bumping VGPU_NODE_VERSION. Every offset and size is pinned
 * next to its struct (layout_pin.h) and in tests/unit/test_layout.c.
 */
#ifndef VGPU_NODE_LAYOUT_H
#define VGPU_NODE_LAYOUT_H

#include <stdatomic.h>
#include <stdint.h>

#include "layout_pin.h"

#include "shm_layout.h"

#define VGPU_NODE_MAGIC 0x45444f4e55504756ULL /* "VGPUNODE" little-endian */
#define VGPU_NODE_VERSION 1u
#define VGPU_NODE_FILE "node.shm" /* in <--shm-dir>/node, read-only to pods */
#define VGPU_NODE_MAX_PROCS 1024
/* a limiter trusts figures younger than this (the daemon samples once a second) */
#define VGPU_NODE_FRESH_NS 3000000000ull

struct vgpu_node_gpu {
    char uuid[VGPU_UUID_LEN]; /* lower case, "gpu-..." */
    _Atomic uint32_t util;    /* busy percent x 100 over NVML's last sample period */
    uint32_t reserved;
    _Atomic uint64_t mem_used, mem_total; /* bytes */
};
/* pinned: see layout_pin.h */
VGPU_PIN_FIELD(vgpu_node_gpu, uuid, 0, 48);
VGPU_PIN_FIELD(vgpu_node_gpu, util, 48, 4);
VGPU_PIN_FIELD(vgpu_node_gpu, reserved, 52, 4);
VGPU_PIN_FIELD(vgpu_node_gpu, mem_used, 56, 8);
VGPU_PIN_FIELD(vgpu_node_gpu, mem_total, 64, 8);
VGPU_PIN_SIZE(vgpu_node_gpu, 72);

struct vgpu_node_proc {
    _Atomic uint32_t host_pid;
    _Atomic uint32_t gpu;     /* index into gpu[] */
    _Atomic uint32_t sm_util; /* percent x 100 over the last second, 0 when not reported */
    uint32_t reserved;
    _Atomic uint64_t mem; /* bytes NVML shows the process holding on that GPU */
};
/* pinned: see layout_pin.h */
VGPU_PIN_FIELD(vgpu_node_proc, host_pid, 0, 4);
VGPU_PIN_FIELD(vgpu_node_proc, gpu, 4, 4);
VGPU_PIN_FIELD(vgpu_node_proc, sm_util, 8, 4);
VGPU_PIN_FIELD(vgpu_node_proc, reserved, 12, 4);
VGPU_PIN_FIELD(vgpu_node_proc, mem, 16, 8);
VGPU_PIN_SIZE(vgpu_node_proc, 24);

struct vgpu_node_shm {
    uint64_t magic; /* VGPU_NODE_MAGIC, stored last at creation */
    uint32_t version;
    uint32_t size;               /* sizeof(struct vgpu_node_shm) */
    _Atomic uint64_t seq;        /* sequence lock, odd while the daemon writes */
    _Atomic uint64_t updated_ns; /* CLOCK_MONOTONIC of the last complete write */
    _Atomic int32_t daemon_pid;
    _Atomic uint32_t ngpu, nproc;
    uint32_t reserved;
    /* inode of the daemon's PID namespace: the one the process PIDs below belong to (NVML
     * reports PIDs as the daemon's namespace sees them) */
    _Atomic uint64_t daemon_pidns;
    struct vgpu_node_gpu gpu[VGPU_MAX_DEVICES];
    struct vgpu_node_proc proc[VGPU_NODE_MAX_PROCS];
};
/* pinned: see layout_pin.h */
VGPU_PIN_FIELD(vgpu_node_shm, magic, 0, 8);
VGPU_PIN_FIELD(vgpu_node_shm, version, 8, 4);
VGPU_PIN_FIELD(vgpu_node_shm, size, 12, 4);
VGPU_PIN_FIELD(vgpu_node_shm, seq, 16, 8);
VGPU_PIN_FIELD(vgpu_node_shm, updated_ns, 24, 8);
VGPU_PIN_FIELD(vgpu_node_shm, daemon_pid, 32, 4);
VGPU_PIN_FIELD(vgpu_node_shm, ngpu, 36, 4);
VGPU_PIN_FIELD(vgpu_node_shm, nproc, 40, 4);
VGPU_PIN_FIELD(vgpu_node_shm, reserved, 44, 4);
VGPU_PIN_FIELD(vgpu_node_shm, daemon_pidns, 48, 8);
VGPU_PIN_FIELD(vgpu_node_shm, gpu, 56, 1152);
VGPU_PIN_FIELD(vgpu_node_shm, proc, 1208, 24576);
VGPU_PIN_SIZE(vgpu_node_shm, 25784);

#endif
