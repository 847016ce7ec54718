/* ctl_layout.h - a pod's control region: what the node daemon decides for the pod.
 *
 * Why this exists: the limits, weights and suspension of a pod must hold whatever the pod's
 * own processes (root in their container included) write, and no pod may change another
 * pod's. So they live apart from the pod's ledger (shm_layout.h), in a file only the daemon
 * writes: owned by root, mode 0644, in a directory a pod's container mounts read-only
 * (docs/security.md). Limiters map it PROT_READ and read its single words on every decision.
 *
 * Writer: the daemon alone, under its registry lock; single aligned words, so readers need no
 * lock. dev[k].uuid is written before dev[k].state becomes READY (release/acquire).
 * Any change of the layout means bumping VGPU_CTL_VERSION. Every offset and size is pinned
 * next to its struct (layout_pin.h) and in tests/unit/test_layout.c; the test daemon
 * tests/integration/fake_hypervisor.py reads magic, version, pod and token at these offsets.
 */
#ifndef VGPU_CTL_LAYOUT_H
#define VGPU_CTL_LAYOUT_H

#include <stdatomic.h>
#include <stdint.h>

#include "layout_pin.h"

#include "shm_layout.h"

#define VGPU_CTL_MAGIC 0x314c544355504756ULL /* "VGPUCTL1" little-endian */
#define VGPU_CTL_VERSION 2u
#define VGPU_CTL_TOKEN_LEN 33 /* 32 hex digits + NUL */
#define VGPU_CTL_DEAD 64      /* ring of processes the daemon saw die */

/* ctl.state */
enum {
    VGPU_CTL_OK = 0,
    VGPU_CTL_BROKEN = 1, /* the pod's ledger is unusable: its processes refuse GPU work */
};

struct vgpu_ctl_dev {
    char uuid[VGPU_UUID_LEN]; /* lower case "gpu-..." */
    _Atomic uint32_t state;   /* VGPU_DEV_EMPTY / VGPU_DEV_READY */
    uint32_t reserved;
    struct vgpu_dev_limits lim;
};
/* pinned: see layout_pin.h */
VGPU_PIN_FIELD(vgpu_ctl_dev, uuid, 0, 48);
VGPU_PIN_FIELD(vgpu_ctl_dev, state, 48, 4);
VGPU_PIN_FIELD(vgpu_ctl_dev, reserved, 52, 4);
VGPU_PIN_FIELD(vgpu_ctl_dev, lim, 56, 40);
VGPU_PIN_SIZE(vgpu_ctl_dev, 96);

/* A process of the pod that the daemon knows to be gone (its host PID and the start time the
 * daemon read for it): limiters release ledger records that carry both (shm_ledger.h). The
 * daemon sees every PID namespace; a pod's containers each see only their own. */
struct vgpu_ctl_dead {
    _Atomic int32_t host_pid;
    uint32_t reserved;
    _Atomic uint64_t start_time;
};
/* pinned: see layout_pin.h */
VGPU_PIN_FIELD(vgpu_ctl_dead, host_pid, 0, 4);
VGPU_PIN_FIELD(vgpu_ctl_dead, reserved, 4, 4);
VGPU_PIN_FIELD(vgpu_ctl_dead, start_time, 8, 8);
VGPU_PIN_SIZE(vgpu_ctl_dead, 16);

struct vgpu_ctl {
    uint64_t magic; /* VGPU_CTL_MAGIC, stored last at creation */
    uint32_t version;
    uint32_t size;                  /* sizeof(struct vgpu_ctl) */
    char pod[VGPU_POD_ID_LEN];      /* the pod this region belongs to ("ns/name") */
    char token[VGPU_CTL_TOKEN_LEN]; /* random; the registration reply names it */
    char reserved0[7];
    _Atomic uint32_t suspended;   /* != 0: every submission of GPU work of the pod blocks */
    _Atomic uint32_t state;       /* VGPU_CTL_OK / VGPU_CTL_BROKEN */
    _Atomic uint64_t managed_ns;  /* CLOCK_MONOTONIC of the daemon's last write (liveness) */
    _Atomic uint64_t control_seq; /* last command sequence number the daemon applied here */
    _Atomic uint64_t dead_seq;    /* entries ever written to dead[] (index: dead_seq % size) */
    uint64_t reserved1[8];
    struct vgpu_ctl_dead dead[VGPU_CTL_DEAD];
    struct vgpu_ctl_dev dev[VGPU_MAX_DEVICES];
};
/* pinned: see layout_pin.h */
VGPU_PIN_FIELD(vgpu_ctl, magic, 0, 8);
VGPU_PIN_FIELD(vgpu_ctl, version, 8, 4);
VGPU_PIN_FIELD(vgpu_ctl, size, 12, 4);
VGPU_PIN_FIELD(vgpu_ctl, pod, 16, 160);
VGPU_PIN_FIELD(vgpu_ctl, token, 176, 33);
VGPU_PIN_FIELD(vgpu_ctl, reserved0, 209, 7);
VGPU_PIN_FIELD(vgpu_ctl, suspended, 216, 4);
VGPU_PIN_FIELD(vgpu_ctl, state, 220, 4);
VGPU_PIN_FIELD(vgpu_ctl, managed_ns, 224, 8);
VGPU_PIN_FIELD(vgpu_ctl, control_seq, 232, 8);
VGPU_PIN_FIELD(vgpu_ctl, dead_seq, 240, 8);
VGPU_PIN_FIELD(vgpu_ctl, reserved1, 248, 64);
VGPU_PIN_FIELD(vgpu_ctl, dead, 312, 1024);
VGPU_PIN_FIELD(vgpu_ctl, dev, 1336, 1536);
VGPU_PIN_SIZE(vgpu_ctl, 2872);

#endif
