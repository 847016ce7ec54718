/* limiter.c - process-wide state of the limiter: the pod's ledger and this process's record in
 * it (see limiter.h). The life cycle (load, exit) is lifecycle.c. */
#define _GNU_SOURCE
#include "limiter.h"

#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <unistd.h>

#include "../common/ctl_region.h"
#include "../common/shm_region.h"
#include "fork_hooks.h"
#include "log.h"

struct vgpu_limiter vgpu_g = {.slot = -1, .lock = PTHREAD_MUTEX_INITIALIZER};

static void lock_for_fork(void)
{
    pthread_mutex_lock(&vgpu_g.lock);
}

static void unlock_after_fork(void)
{
    pthread_mutex_unlock(&vgpu_g.lock);
}

/* the child owns no GPU memory and no context; it gets its own record when it uses a GPU */
static void reset_in_child(void)
{
    pthread_mutex_init(&vgpu_g.lock, NULL);
    vgpu_g.self.pid = 0; /* re-read lazily: only async-signal-safe work here */
    atomic_store(&vgpu_g.slot, -1);
    atomic_store(&vgpu_g.host_pid, 0); /* the child registers anew and learns its own */
}

__attribute__((constructor)) static void register_fork(void)
{
    vgpu_fork_register(VGPU_FORK_LIMITER, lock_for_fork, unlock_after_fork, reset_in_child);
}

/* what runs once this process has its record (the maintenance thread): set at load */
static void (*_Atomic on_claimed)(void);

void vgpu_on_slot_claimed(void (*fn)(void))
{
    atomic_store(&on_claimed, fn);
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

/* no daemon's region: the standalone one, or a private one; NULL to fail closed */
static struct vgpu_shm *attach_local(void)
{
    const struct vgpu_config *cfg = &vgpu_g.cfg;
    char err[512];
    struct vgpu_shm *s = NULL;
    if (cfg->hv_on) {
        /* the daemon has not answered (hv_client.c): the environment's limits hold this
         * process until it does; without any, GPU work is refused */
        if (!cfg->n_mem && !cfg->has_core) return NULL;
        VLOG_WARN("node daemon not reached: this process is held to the environment's limits "
                  "on its own (not shared with the rest of pod '%s')",
                  cfg->pod_id);
    } else {
        s = vgpu_shm_open(cfg->shm_dir, cfg->pod_id, VGPU_SHM_CREATE, err, sizeof(err));
        if (s) {
            VLOG_INFO("pod '%s' (named by %s): shared memory under %s", cfg->pod_id,
                      cfg->pod_source, cfg->shm_dir);
            return s;
        }
        VLOG_WARN("cannot share limits with the rest of pod '%s' (named by %s): %s; this process "
                  "is held to them on its own",
                  cfg->pod_id, cfg->pod_source, err);
    }
    s = vgpu_shm_private(cfg->pod_id);
    if (!s) {
        VLOG_ERROR("cannot map memory for a private ledger: GPU work is refused");
        return NULL;
    }
    atomic_store(&vgpu_g.private_ledger, 1);
    return s;
}

struct vgpu_shm *vgpu_shm(void)
{
    struct vgpu_shm *s = atomic_load_explicit(&vgpu_g.shm, memory_order_acquire);
    if (s) return s;
    pthread_mutex_lock(&vgpu_g.lock);
    s = atomic_load(&vgpu_g.shm);
    if (!s && (s = attach_local()) != NULL)
        atomic_store_explicit(&vgpu_g.shm, s, memory_order_release);
    pthread_mutex_unlock(&vgpu_g.lock);
    return s;
}

struct vgpu_shm *vgpu_shm_private_now(void)
{
    pthread_mutex_lock(&vgpu_g.lock);
    struct vgpu_shm *s = atomic_load(&vgpu_g.shm);
    if (!s) {
        s = vgpu_shm_private(vgpu_g.cfg.pod_id);
        if (s) {
            atomic_store(&vgpu_g.private_ledger, 1);
            atomic_store_explicit(&vgpu_g.shm, s, memory_order_release);
        }
    } else if (!atomic_load(&vgpu_g.private_ledger)) {
        s = NULL;
    }
    pthread_mutex_unlock(&vgpu_g.lock);
    return s;
}

void vgpu_set_host_pid(int host_pid)
{
    atomic_store(&vgpu_g.host_pid, host_pid);
    struct vgpu_shm *s = atomic_load(&vgpu_g.shm);
    int slot = atomic_load(&vgpu_g.slot);
    if (s && slot >= 0) atomic_store(&s->proc[slot].host_pid, host_pid);
}

/* "pods/<name>": one level under pods/, nothing that could climb out of the directory */
static int dir_ok(const char *dir)
{
    if (strncmp(dir, "pods/", 5) != 0 || !dir[5] || strlen(dir) > 200) return 0;
    for (const char *p = dir + 5; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_' || *p == '.'))
            return 0;
    return dir[5] != '.';
}

int vgpu_attach_managed(const char *dir, const char *token, char *err, size_t errlen)
{
    if (!dir_ok(dir) || strlen(token) != VGPU_CTL_TOKEN_LEN - 1) {
        snprintf(err, errlen, "the daemon named region '%.80s' with token '%.40s': not valid", dir,
                 token);
        return -1;
    }
    const struct vgpu_ctl *have = atomic_load(&vgpu_g.ctl);
    if (have) { /* registered again (daemon restart, fork): the same region or nothing */
        if (strcmp(have->token, token) == 0) return 0;
        snprintf(err, errlen, "the daemon now names region %s, not the one in use", dir);
        return -1;
    }
    pthread_mutex_lock(&vgpu_g.lock);
    int r = -1;
    if (atomic_load(&vgpu_g.shm)) {
        /* already on a private ledger: its charges stay there (moving them under running
         * allocations is not safe); the daemon's limits are applied to it by hv_client.c */
        snprintf(err, errlen, "already held on a private ledger");
        r = 1;
        goto out;
    }
    char ctl_path[512], ledger_path[512];
    const char *root = vgpu_g.cfg.shm_dir;
    snprintf(ctl_path, sizeof(ctl_path), "%s/%s/%s", root, dir, VGPU_CTL_PATH);
    snprintf(ledger_path, sizeof(ledger_path), "%s/%s/%s", root, dir, VGPU_LEDGER_PATH);
    const struct vgpu_ctl *c = vgpu_ctl_open(ctl_path, err, errlen);
    if (!c) goto out;
    if (strcmp(c->token, token) != 0) {
        snprintf(err, errlen, "%s is not the region the daemon named (token differs)", ctl_path);
        vgpu_ctl_unmap(c);
        goto out;
    }
    struct vgpu_shm *s = vgpu_shm_map_existing(ledger_path, err, errlen);
    if (!s) {
        vgpu_ctl_unmap(c);
        goto out;
    }
    atomic_store_explicit(&vgpu_g.ctl, c, memory_order_release);
    atomic_store_explicit(&vgpu_g.shm, s, memory_order_release);
    VLOG_INFO("pod '%s': shared memory %s/%s (from the node daemon)", c->pod, root, dir);
    r = 0;
out:
    pthread_mutex_unlock(&vgpu_g.lock);
    return r;
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
        int host = atomic_load(&vgpu_g.host_pid);
        if (slot >= 0 && host > 0) atomic_store(&s->proc[slot].host_pid, host);
        if (slot < 0)
            VLOG_ERROR("the pod's process table is full (%d processes): GPU memory is refused",
                       VGPU_MAX_PROCS);
        atomic_store_explicit(&vgpu_g.slot, slot, memory_order_release);
        void (*claimed)(void) = atomic_load(&on_claimed);
        if (slot >= 0 && claimed) claimed();
    }
    pthread_mutex_unlock(&vgpu_g.lock);
    return slot;
}
