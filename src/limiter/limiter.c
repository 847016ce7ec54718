/* limiter.c - process-wide state and life cycle of the limiter (see limiter.h). */
#define _GNU_SOURCE
#include "limiter.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "../common/shm_region.h"
#include "alloc_map.h"
#include "compute_gate.h"
#include "cost_model.h"
#include "devices.h"
#include "hv_client.h"
#include "log.h"
#include "maintenance.h"
#include "mem_pools.h"

extern char **environ;

struct vgpu_limiter vgpu_g = {.slot = -1, .lock = PTHREAD_MUTEX_INITIALIZER};

/* lock order: devices -> vgpu_g.lock -> pools -> alloc map */
static void atfork_prepare(void)
{
    vgpu_devices_lock();
    pthread_mutex_lock(&vgpu_g.lock);
    vgpu_pools_lock();
    vgpu_alloc_map_lock();
}

static void atfork_parent(void)
{
    vgpu_alloc_map_unlock();
    vgpu_pools_unlock();
    pthread_mutex_unlock(&vgpu_g.lock);
    vgpu_devices_unlock();
}

static void atfork_child(void)
{
    /* the child owns no GPU memory and no context; it gets its own record when it uses a GPU */
    vgpu_alloc_map_reset_in_child();
    vgpu_pools_reset_in_child();
    vgpu_cost_reset_in_child();
    vgpu_gate_reset_in_child();
    vgpu_devices_reset_in_child();
    pthread_mutex_init(&vgpu_g.lock, NULL);
    vgpu_g.self.pid = 0; /* re-read lazily: only async-signal-safe work here */
    atomic_store(&vgpu_g.slot, -1);
    vgpu_maintenance_after_fork();
    vgpu_hv_after_fork();
}

__attribute__((constructor)) static void limiter_load(void)
{
    vgpu_config_load(&vgpu_g.cfg, environ);
    vgpu_log_level = vgpu_g.cfg.log_level;
    atomic_store(&vgpu_g.fail_closed, vgpu_g.cfg.error != 0);
    vgpu_proc_self(&vgpu_g.self);
    vgpu_cost_configure(getenv("VGPU_SAMPLE_GAP_MS"));
    pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

__attribute__((destructor)) static void limiter_unload(void)
{
    vgpu_maintenance_stop(); /* usually already stopped by its exit handler */
    atomic_store(&vgpu_g.exiting, 1);
    struct vgpu_shm *s = atomic_load(&vgpu_g.shm);
    int slot = atomic_load(&vgpu_g.slot);
    if (s && slot >= 0 && vgpu_g.self.pid == getpid())
        vgpu_ledger_proc_release(s, slot, vgpu_g.self.pid);
}

int vgpu_check_config(void)
{
    if (!vgpu_failed_closed()) return 0;
    int expected = 0;
    if (atomic_compare_exchange_strong(&vgpu_g.reported, &expected, 1)) {
        vgpu_log_write(VGPU_LOG_ERROR, "invalid configuration, refusing GPU work: %s%s",
                       vgpu_g.cfg.error_msg,
                       vgpu_g.cfg.error > 1 ? " (and more errors after this one)" : "");
    }
    return 1;
}

struct vgpu_shm *vgpu_shm(void)
{
    struct vgpu_shm *s = atomic_load_explicit(&vgpu_g.shm, memory_order_acquire);
    if (s) return s;
    pthread_mutex_lock(&vgpu_g.lock);
    s = atomic_load(&vgpu_g.shm);
    if (!s) {
        char err[512];
        s = vgpu_shm_open(vgpu_g.cfg.shm_dir, vgpu_g.cfg.pod_id, VGPU_SHM_CREATE, err, sizeof(err));
        if (!s)
            VLOG_ERROR("cannot use the pod's shared memory (pod '%s', named by %s): %s",
                       vgpu_g.cfg.pod_id, vgpu_g.cfg.pod_source, err);
        else
            VLOG_INFO("pod '%s' (named by %s): shared memory under %s", vgpu_g.cfg.pod_id,
                      vgpu_g.cfg.pod_source, vgpu_g.cfg.shm_dir);
        atomic_store_explicit(&vgpu_g.shm, s, memory_order_release);
    }
    pthread_mutex_unlock(&vgpu_g.lock);
    return s;
}

int vgpu_slot(void)
{
    int slot = atomic_load_explicit(&vgpu_g.slot, memory_order_acquire);
    if (slot >= 0) return slot;
    struct vgpu_shm *s = vgpu_shm();
    if (!s) return -1;
    pthread_mutex_lock(&vgpu_g.lock);
    slot = atomic_load(&vgpu_g.slot);
    if (slot < 0) {
        if (vgpu_g.self.pid != getpid()) vgpu_proc_self(&vgpu_g.self);
        slot = vgpu_ledger_proc_claim(s, &vgpu_g.self);
        if (slot < 0)
            VLOG_ERROR("the pod's process table is full (%d processes): GPU memory is refused",
                       VGPU_MAX_PROCS);
        atomic_store_explicit(&vgpu_g.slot, slot, memory_order_release);
        if (slot >= 0) vgpu_maintenance_start();
    }
    pthread_mutex_unlock(&vgpu_g.lock);
    return slot;
}
