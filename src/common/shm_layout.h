/* shm_layout.h - a pod's ledger: the shared memory every process of one pod writes.
 *
 * Why this exists: every process of a pod must agree on one memory ledger and one GPU-time
 * budget per GPU without talking to each other on the hot path. This header is that agreement:
 * a versioned, fixed-size layout of C11 atomics plus one process-shared *robust* mutex. Any
 * change of the layout (a field added, moved, resized or removed) means bumping
 * VGPU_SHM_VERSION; both sides refuse a region whose magic, version or size differ. Every
 * offset and size is pinned next to its struct (layout_pin.h) and in tests/unit/test_layout.c,
 * so a change that forgets the version fails the build.
 *
 * Trust: everything here is written by the pod's own processes, so the node daemon treats all
 * of it as untrusted input. It never maps a ledger (a pod can truncate the file under a
 * mapping), never takes its lock, and reads it with pread(2) and range checks
 * (src/hypervisor/pod_regions.c). What the daemon decides for the pod (limits, weights,
 * suspension) is in the pod's control region (ctl_layout.h), which the pod cannot write. The
 * limits in dev[].lim are used only where no daemon manages the pod (standalone mode, or a
 * process that runs on a private ledger); see limiter.h.
 *
 * Locking rules (among the pod's processes)
 *  - Every mutation of the memory ledger (dev[].mem_used, dev[].oversold_used, proc[].mem,
 *    proc[].ovh, proc[].oversold, proc[].pid) happens under `lock`. The mutex is robust: if a
 *    holder is killed with -9, the next locker gets EOWNERDEAD and rebuilds the totals from the
 *    process records (shm_ledger.c), so a dead peer can never wedge the pod.
 *  - Readers (views) read the atomics without the lock.
 *  - The compute gate is lock-free: dev[].limiter.gate_vclock is a virtual clock
 *    (CLOCK_MONOTONIC ns) advanced with compare-and-swap by every process of the pod
 *    (compute_gate.c).
 */
#ifndef VGPU_SHM_LAYOUT_H
#define VGPU_SHM_LAYOUT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "layout_pin.h"

#define VGPU_SHM_MAGIC 0x314d485355504756ULL /* "VGPUSHM1" little-endian */
#define VGPU_SHM_VERSION 6u
#define VGPU_MAX_DEVICES 16
#define VGPU_MAX_PROCS 512
#define VGPU_UUID_LEN 48 /* "gpu-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" + NUL, lower case */
#define VGPU_POD_ID_LEN 160
#define VGPU_UNLIMITED UINT64_MAX

/* dev[].flags */
#define VGPU_DEV_OVERSOLD 0x1u /* allocations past the cap may be served from host memory */

/* One GPU's limits as the enforcing side reads them: in the control region when the daemon
 * manages the pod (ctl_layout.h), in the ledger's dev[].lim otherwise. */
struct vgpu_dev_limits {
    _Atomic uint64_t mem_limit;      /* bytes the pod may hold on this GPU; VGPU_UNLIMITED */
    _Atomic uint64_t oversold_limit; /* bytes past the cap that may live in host memory */
    _Atomic uint32_t flags;          /* VGPU_DEV_* */
    /* compute: percentages in hundredths (3000 = 30%); 0 = no limit */
    _Atomic uint32_t core_limit;     /* ceiling: never more than this share of GPU time */
    _Atomic uint32_t core_soft;      /* floor of a soft limit (0: hard); idle time may lift it */
    _Atomic uint32_t core_effective; /* the share the gate enforces now */
    _Atomic uint32_t weight;         /* scheduler weight of the pod on this GPU (0 = 1) */
    /* the daemon's correction of the pod's charged GPU time while several pods' contexts
     * time-slice this GPU, 1024 = 1.0 (0: none; src/hypervisor/contention.h); the gate never
     * applies more than VGPU_SHARED_MAX */
    _Atomic uint32_t core_shared;
};
#define VGPU_SHARED_MAX 1280u /* x1.25 */
/* pinned: see layout_pin.h */
VGPU_PIN_FIELD(vgpu_dev_limits, mem_limit, 0, 8);
VGPU_PIN_FIELD(vgpu_dev_limits, oversold_limit, 8, 8);
VGPU_PIN_FIELD(vgpu_dev_limits, flags, 16, 4);
VGPU_PIN_FIELD(vgpu_dev_limits, core_limit, 20, 4);
VGPU_PIN_FIELD(vgpu_dev_limits, core_soft, 24, 4);
VGPU_PIN_FIELD(vgpu_dev_limits, core_effective, 28, 4);
VGPU_PIN_FIELD(vgpu_dev_limits, weight, 32, 4);
VGPU_PIN_FIELD(vgpu_dev_limits, core_shared, 36, 4);
VGPU_PIN_SIZE(vgpu_dev_limits, 40);

/* The compute gate's state for one GPU, shared by the limiters of one pod, never read by the
 * daemon: how the pod's processes agree on one GPU-time budget between them. Only the limiter
 * (compute_gate.c, compute_feedback.c) reads or writes it; the daemon's view of the pod's
 * GPU time is gate_charged_ns, gate_waited_ns and gate_dvfs of struct vgpu_shm_dev. */
struct vgpu_pod_limiter_state {
    _Atomic int64_t gate_vclock;    /* virtual clock of the GPU-time budget, ns */
    _Atomic uint64_t gate_launches; /* submissions that went through the gate */
    _Atomic uint32_t gate_share;    /* the share gate_vclock is scaled for (compute_gate.c) */
    /* closed loop: measured busy time / modelled busy time, 1024 = 1.0 (compute_feedback.c) */
    _Atomic uint32_t gate_scale;
    _Atomic uint32_t fb_share;        /* the enforced share during the loop's current window */
    _Atomic uint32_t fb_ratio;        /* measured / modelled of the last window, 1024 = 1.0 */
    _Atomic uint64_t fb_last_ns;      /* when the loop last updated the scale */
    _Atomic uint64_t fb_charged_ns;   /* gate_charged_ns at that time */
    _Atomic uint64_t fb_modelled_ppm; /* the modelled busy fraction of the last window, ppm */
};
/* pinned: see layout_pin.h */
VGPU_PIN_FIELD(vgpu_pod_limiter_state, gate_vclock, 0, 8);
VGPU_PIN_FIELD(vgpu_pod_limiter_state, gate_launches, 8, 8);
VGPU_PIN_FIELD(vgpu_pod_limiter_state, gate_share, 16, 4);
VGPU_PIN_FIELD(vgpu_pod_limiter_state, gate_scale, 20, 4);
VGPU_PIN_FIELD(vgpu_pod_limiter_state, fb_share, 24, 4);
VGPU_PIN_FIELD(vgpu_pod_limiter_state, fb_ratio, 28, 4);
VGPU_PIN_FIELD(vgpu_pod_limiter_state, fb_last_ns, 32, 8);
VGPU_PIN_FIELD(vgpu_pod_limiter_state, fb_charged_ns, 40, 8);
VGPU_PIN_FIELD(vgpu_pod_limiter_state, fb_modelled_ppm, 48, 8);
VGPU_PIN_SIZE(vgpu_pod_limiter_state, 56);

struct vgpu_shm_dev {
    char uuid[VGPU_UUID_LEN]; /* written once (under lock) before state becomes READY */
    _Atomic uint32_t state;   /* VGPU_DEV_EMPTY / VGPU_DEV_READY */
    uint32_t reserved0;
    struct vgpu_dev_limits lim;     /* standalone / private ledgers only (see the top) */
    _Atomic uint64_t mem_used;      /* = sum over live proc[] of mem[d] + ovh[d] */
    _Atomic uint64_t mem_peak;      /* high-water mark of mem_used */
    _Atomic uint64_t oversold_used; /* = sum over live proc[] of oversold[d] */
    _Atomic uint64_t total_real;    /* physical memory of the GPU as the driver reports it */
    _Atomic uint64_t oom_events;    /* allocations refused because of the cap */
    /* what the daemon samples of the pod's GPU time (src/hypervisor/pod_regions.c) */
    _Atomic uint64_t gate_charged_ns; /* GPU time charged to the pod (estimated, measured) */
    _Atomic uint64_t gate_waited_ns;  /* time the pod's submitting threads waited */
    /* how much faster than on a full GPU the pod's work runs now, 1024 = 1.0 (0: not known);
     * the gate charges a limited pod's GPU time times this (dvfs_model.c) */
    _Atomic uint32_t gate_dvfs;
    uint32_t reserved1;
    struct vgpu_pod_limiter_state limiter; /* the limiters' own: never read by the daemon */
};
/* pinned: see layout_pin.h */
VGPU_PIN_FIELD(vgpu_shm_dev, uuid, 0, 48);
VGPU_PIN_FIELD(vgpu_shm_dev, state, 48, 4);
VGPU_PIN_FIELD(vgpu_shm_dev, reserved0, 52, 4);
VGPU_PIN_FIELD(vgpu_shm_dev, lim, 56, 40);
VGPU_PIN_FIELD(vgpu_shm_dev, mem_used, 96, 8);
VGPU_PIN_FIELD(vgpu_shm_dev, mem_peak, 104, 8);
VGPU_PIN_FIELD(vgpu_shm_dev, oversold_used, 112, 8);
VGPU_PIN_FIELD(vgpu_shm_dev, total_real, 120, 8);
VGPU_PIN_FIELD(vgpu_shm_dev, oom_events, 128, 8);
VGPU_PIN_FIELD(vgpu_shm_dev, gate_charged_ns, 136, 8);
VGPU_PIN_FIELD(vgpu_shm_dev, gate_waited_ns, 144, 8);
VGPU_PIN_FIELD(vgpu_shm_dev, gate_dvfs, 152, 4);
VGPU_PIN_FIELD(vgpu_shm_dev, reserved1, 156, 4);
VGPU_PIN_FIELD(vgpu_shm_dev, limiter, 160, 56);
VGPU_PIN_SIZE(vgpu_shm_dev, 216);

struct vgpu_shm_proc {
    _Atomic int32_t pid; /* 0: free; > 0: owner (pid in its own namespace) */
    uint32_t reserved0;
    uint64_t start_time;           /* field 22 of /proc/<pid>/stat: tells a reused pid apart */
    uint64_t pidns;                /* inode of /proc/<pid>/ns/pid of the owner */
    _Atomic uint64_t heartbeat_ns; /* CLOCK_MONOTONIC of the owner's last sign of life */
    _Atomic int32_t host_pid;      /* pid as the host sees it, when known (0 = unknown) */
    uint32_t reserved1;
    _Atomic uint64_t mem[VGPU_MAX_DEVICES];      /* bytes of allocations charged */
    _Atomic uint64_t ovh[VGPU_MAX_DEVICES];      /* driver overhead: context, modules, ... */
    _Atomic uint64_t oversold[VGPU_MAX_DEVICES]; /* bytes served from host memory past the cap */
};
/* pinned: see layout_pin.h */
VGPU_PIN_FIELD(vgpu_shm_proc, pid, 0, 4);
VGPU_PIN_FIELD(vgpu_shm_proc, reserved0, 4, 4);
VGPU_PIN_FIELD(vgpu_shm_proc, start_time, 8, 8);
VGPU_PIN_FIELD(vgpu_shm_proc, pidns, 16, 8);
VGPU_PIN_FIELD(vgpu_shm_proc, heartbeat_ns, 24, 8);
VGPU_PIN_FIELD(vgpu_shm_proc, host_pid, 32, 4);
VGPU_PIN_FIELD(vgpu_shm_proc, reserved1, 36, 4);
VGPU_PIN_FIELD(vgpu_shm_proc, mem, 40, 128);
VGPU_PIN_FIELD(vgpu_shm_proc, ovh, 168, 128);
VGPU_PIN_FIELD(vgpu_shm_proc, oversold, 296, 128);
VGPU_PIN_SIZE(vgpu_shm_proc, 424);

struct vgpu_shm {
    uint64_t magic; /* VGPU_SHM_MAGIC, stored last at creation */
    uint32_t version;
    uint32_t size; /* sizeof(struct vgpu_shm) */
    char pod_id[VGPU_POD_ID_LEN];
    union {
        pthread_mutex_t m; /* robust, process-shared */
        char pad[64];
    } lock;
    _Atomic uint64_t last_reap_ns; /* CLOCK_MONOTONIC of the last scan for dead processes */
    _Atomic uint64_t reaped_procs; /* processes whose memory was returned after they died */
    uint64_t reserved[13];
    struct vgpu_shm_dev dev[VGPU_MAX_DEVICES];
    struct vgpu_shm_proc proc[VGPU_MAX_PROCS];
};
/* pinned: see layout_pin.h */
VGPU_PIN_FIELD(vgpu_shm, magic, 0, 8);
VGPU_PIN_FIELD(vgpu_shm, version, 8, 4);
VGPU_PIN_FIELD(vgpu_shm, size, 12, 4);
VGPU_PIN_FIELD(vgpu_shm, pod_id, 16, 160);
VGPU_PIN_FIELD(vgpu_shm, lock, 176, 64);
VGPU_PIN_FIELD(vgpu_shm, last_reap_ns, 240, 8);
VGPU_PIN_FIELD(vgpu_shm, reaped_procs, 248, 8);
VGPU_PIN_FIELD(vgpu_shm, reserved, 256, 104);
VGPU_PIN_FIELD(vgpu_shm, dev, 360, 3456);
VGPU_PIN_FIELD(vgpu_shm, proc, 3816, 217088);
VGPU_PIN_SIZE(vgpu_shm, 220904);
_Static_assert(sizeof(pthread_mutex_t) <= 64,
               "the ledger's robust mutex must fit its 64-byte slot");

enum { VGPU_DEV_EMPTY = 0, VGPU_DEV_READY = 1 };

#endif
