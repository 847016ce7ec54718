/* limiter.h - process-wide state of the limiter: configuration, the pod's shared region, this
 * process's record in it, and the life cycle (load, fork, exit).
 *
 * Why this exists: the library is preloaded into every process of a container, most of which
 * never touch a GPU (shells, tools). Loading must be nearly free: the constructor only reads the
 * environment; the shared region, the process record and the maintenance thread are set up the
 * first time a limited GPU is used.
 */
#ifndef VGPU_LIMITER_H
#define VGPU_LIMITER_H

#include <pthread.h>
#include <stdatomic.h>

#include "../common/shm_ledger.h"
#include "config.h"

struct vgpu_limiter {
    struct vgpu_config cfg;
    _Atomic int fail_closed;        /* configuration unreadable: refuse CUDA work */
    _Atomic int exiting;            /* past exit(): hooks pass through */
    _Atomic(struct vgpu_shm *) shm; /* the pod's region, once attached */
    _Atomic int slot;               /* this process's record in shm->proc, -1 until claimed */
    struct vgpu_proc_id self;
    pthread_mutex_t lock; /* slow paths: attach, claim, device binding */
    _Atomic int reported; /* configuration problems logged */
};

extern struct vgpu_limiter vgpu_g;

static inline int vgpu_failed_closed(void)
{
    return atomic_load_explicit(&vgpu_g.fail_closed, memory_order_relaxed);
}

/* Log the configuration error (once) and tell whether the process must fail closed. */
int vgpu_check_config(void);

/* The pod's shared region, created on first use; NULL (logged) if it cannot be had. */
struct vgpu_shm *vgpu_shm(void);

/* This process's record in the region, claimed on first use; -1 (logged) on failure. */
int vgpu_slot(void);

#endif
