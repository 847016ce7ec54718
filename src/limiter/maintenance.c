/* maintenance.c - the limiter's background thread (see maintenance.h). */
#define _GNU_SOURCE
#include "maintenance.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>

#include "../common/shm_ledger.h"
#include "../common/shm_region.h"
#include "compute_policy.h"
#include "cost_model.h"
#include "devices.h"
#include "fork_hooks.h"
#include "limiter.h"
#include "log.h"
#include "mem_overhead.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER; /* held through a pass */
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int started, stopping;
static unsigned interval_ms = 500;
static int feedback_on = 1; /* VGPU_NO_FEEDBACK=1 turns the compute loop off (tests, diagnosis) */
static int dvfs_on = 1;     /* VGPU_NO_DVFS=1: a limit is a share of GPU time at any clock */

/* the memory true-up, and what its NVML list tells the cost model: whether another process
 * holds a context on our GPUs */
static void true_up(struct vgpu_shm *s, int slot)
{
    int others = vgpu_overhead_true_up(s, slot);
    if (others >= 0) vgpu_cost_set_shared(others);
}

void vgpu_maintenance_tick(void)
{
    struct vgpu_shm *s = atomic_load(&vgpu_g.shm);
    int slot = atomic_load(&vgpu_g.slot);
    if (!s || slot < 0 || atomic_load(&vgpu_g.exiting)) return;
    atomic_store(&s->proc[slot].heartbeat_ns, vgpu_now_ns());
    vgpu_ledger_reap_if_due(s, vgpu_g.self.pidns, atomic_load(&vgpu_g.ctl),
                            (uint64_t)interval_ms * 1000000ull);
    true_up(s, slot);
    if (vgpu_g.cfg.gate_on) {
        vgpu_compute_policy_pass(s, feedback_on, dvfs_on);
        vgpu_samples_poll();
    }
}

void vgpu_maintenance_true_up_now(void)
{
    pthread_mutex_lock(&mu);
    struct vgpu_shm *s = atomic_load(&vgpu_g.shm);
    int slot = atomic_load(&vgpu_g.slot);
    if (s && slot >= 0 && !stopping) true_up(s, slot);
    pthread_mutex_unlock(&mu);
}

/* Registered when the thread starts, i.e. after main() began: such handlers run before library
 * destructors (a handler registered from our constructor would run after them), so the thread
 * is quiet before libcuda and NVML are torn down. */
static void stop_at_exit(void)
{
    vgpu_maintenance_stop();
}

static void *loop(void *arg)
{
    (void)arg;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL); /* the application's signals go to its own threads */
    pthread_setname_np(pthread_self(), "vgpu-maint");
    pthread_mutex_lock(&mu);
    while (!stopping) {
        vgpu_maintenance_tick();
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += (long)(interval_ms % 1000) * 1000000L;
        ts.tv_sec += interval_ms / 1000 + ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        while (!stopping && pthread_cond_timedwait(&cv, &mu, &ts) != ETIMEDOUT) {
        }
    }
    pthread_mutex_unlock(&mu);
    return NULL;
}

void vgpu_maintenance_start(void)
{
    pthread_mutex_lock(&mu);
    if (!started && !stopping) {
        const char *ms = getenv("VGPU_MAINTENANCE_MS");
        if (ms && atoi(ms) >= 10 && atoi(ms) <= 10000) interval_ms = (unsigned)atoi(ms);
        feedback_on = !getenv("VGPU_NO_FEEDBACK");
        dvfs_on = !getenv("VGPU_NO_DVFS");
        pthread_attr_t a;
        pthread_attr_init(&a);
        pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
        pthread_t t;
        /* block signals while creating so the thread starts with them blocked */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        static int exit_hook;
        if (!exit_hook) exit_hook = atexit(stop_at_exit) == 0;
        if (pthread_create(&t, &a, loop, NULL) == 0)
            started = 1;
        else
            VLOG_WARN("cannot start the maintenance thread: dead processes are reaped only on "
                      "allocation");
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        pthread_attr_destroy(&a);
    }
    pthread_mutex_unlock(&mu);
}

void vgpu_maintenance_stop(void)
{
    pthread_mutex_lock(&mu); /* waits for a pass in progress */
    stopping = 1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

static void vgpu_maintenance_after_fork(void)
{
    pthread_mutex_init(&mu, NULL);
    pthread_cond_init(&cv, NULL);
    started = 0; /* the thread was not copied; the child starts its own when it uses a GPU */
}

__attribute__((constructor)) static void init_module(void)
{
    vgpu_fork_register(VGPU_FORK_MAINTENANCE, NULL, NULL, vgpu_maintenance_after_fork);
    vgpu_on_slot_claimed(vgpu_maintenance_start);
    vgpu_devices_on_true_up(vgpu_maintenance_true_up_now);
}
