/* limiter.h - process-wide state of the limiter: configuration, the pod's shared region and
 * this process's record in it. Its life cycle (load, exit) is lifecycle.c; each module handles
 * fork itself (fork_hooks.h).
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

#include "../common/ctl_layout.h"
#include "../common/shm_ledger.h"
#include "config.h"

/* Where the ledger (shm) and the limits come from:
 *  - managed (a daemon configured, registration answered): the pod's ledger and control region
 *    in the directory the daemon named; limits from the control region (read-only here);
 *  - standalone (no daemon): the pod's ledger in this user's own directory; limits from the
 *    environment, kept in the ledger's dev[].lim;
 *  - private: a ledger in this process's memory (no daemon at start, or the standalone
 *    directory unusable); limits from the environment (or commands) in its dev[].lim, held by
 *    this process alone. */
struct vgpu_limiter {
    struct vgpu_config cfg;
    _Atomic int fail_closed;              /* configuration unreadable: refuse CUDA work */
    _Atomic int exiting;                  /* past exit(): hooks pass through */
    _Atomic(struct vgpu_shm *) shm;       /* the pod's ledger, once attached */
    _Atomic(const struct vgpu_ctl *) ctl; /* managed: the daemon's decisions for the pod */
    _Atomic int private_ledger;           /* shm is this process's own */
    _Atomic uint32_t local_suspended;     /* suspension where no control region says */
    _Atomic int slot;                     /* this process's record in shm->proc, -1 until claimed */
    _Atomic int host_pid; /* our PID as the host sees it (the daemon says), 0 unknown */
    struct vgpu_proc_id self;
    pthread_mutex_t lock; /* slow paths: attach, claim, device binding */
    _Atomic int reported; /* configuration problems logged */
    /* the configuration was read, is valid, and sets no limit and no daemon: nothing this
     * process does can ever be limited (limits come only from the environment or a daemon) */
    _Atomic int nothing_to_limit;
};

extern struct vgpu_limiter vgpu_g;

static inline int vgpu_failed_closed(void)
{
    return atomic_load_explicit(&vgpu_g.fail_closed, memory_order_relaxed);
}

/* A process with nothing to limit gets the driver's own entry points from cuGetProcAddress and
 * dlsym: the hooks would pass every call through anyway, and a launch-bound program pays for
 * each call they see (docs/compute.md, "No limit"). 0 until the configuration is read, so a
 * library that asks before our constructor ran gets the hooks. */
static inline int vgpu_nothing_to_limit(void)
{
    return atomic_load_explicit(&vgpu_g.nothing_to_limit, memory_order_relaxed);
}

/* Log the configuration error (once) and tell whether the process must fail closed. */
int vgpu_check_config(void);

/* The pod's ledger, attached on first use (see above); NULL (logged) when a daemon is
 * configured, has not answered, and the environment has no limits: GPU work is refused then. */
struct vgpu_shm *vgpu_shm(void);

/* Managed: attach the ledger and control region the daemon named in its registration reply
 * (`dir` relative to VGPU_SHM_DIR, `token` that of its control region). 0 attached (or the
 * same region again); 1 when the process already runs on a private ledger and stays there;
 * -1 with a message in err. Called by hv_client.c. */
int vgpu_attach_managed(const char *dir, const char *token, char *err, size_t errlen);

/* The daemon found the pod's ledger unusable (ctl_layout.h VGPU_CTL_BROKEN): fail closed. */
static inline int vgpu_pod_broken(void)
{
    const struct vgpu_ctl *c = atomic_load_explicit(&vgpu_g.ctl, memory_order_acquire);
    return c && atomic_load_explicit(&c->state, memory_order_relaxed) != VGPU_CTL_OK;
}

/* The ledger of this process alone, made now if there is none yet; the existing one if it is
 * private; NULL if the process is on a shared ledger. */
struct vgpu_shm *vgpu_shm_private_now(void);

/* Our host PID (from the daemon's reply): recorded in our ledger record, now or when claimed. */
void vgpu_set_host_pid(int host_pid);

/* The word every submission checks: the control region's `suspended`, or local_suspended. */
static inline const _Atomic uint32_t *vgpu_suspended_word(void)
{
    const struct vgpu_ctl *c = atomic_load_explicit(&vgpu_g.ctl, memory_order_acquire);
    return c ? &c->suspended : &vgpu_g.local_suspended;
}

/* This process's record in the region, claimed on first use; -1 (logged) on failure. */
int vgpu_slot(void);
/* What to run (under the state's lock) right after the record is claimed: the maintenance
 * thread's start, registered at load; the state itself knows nothing above it. */
void vgpu_on_slot_claimed(void (*fn)(void));

#endif
