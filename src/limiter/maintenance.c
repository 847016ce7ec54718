/* maintenance.c - the limiter's background thread (see maintenance.h). */
#define _GNU_SOURCE
#include "maintenance.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../common/node_region.h"
#include "../common/shm_ledger.h"
#include "../common/shm_region.h"
#include "devices.h"
#include "real_driver.h"
#include "limiter.h"
#include "log.h"
#include "compute_feedback.h"
#include "compute_gate.h"
#include "cost_model.h"
#include "dvfs_model.h"
#include "mem_charge.h"
#include "fork_hooks.h"

#define NVML_VALUE_NOT_AVAILABLE_ULL (~0ull)

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int started, stopping, nvml_state; /* nvml_state: 0 untried, 1 ok, -1 unavailable */
static unsigned interval_ms = 500;
static int feedback_on = 1; /* VGPU_NO_FEEDBACK=1 turns the compute loop off (tests, diagnosis) */
static int dvfs_on = 1;     /* VGPU_NO_DVFS=1: a limit is a share of GPU time at any clock */

/* NVML's handle of a GPU, NULL if NVML cannot be used */
static nvmlDevice_t nvml_device(const char *uuid)
{
    if (nvml_state == 0) {
        vgpu_fn_nvmlInit_v2 init = VGPU_REAL(nvmlInit_v2);
        nvml_state = init && init() == NVML_SUCCESS ? 1 : -1;
        if (nvml_state < 0)
            VLOG_INFO("NVML unavailable: driver overhead and other pods' use are not measured");
    }
    if (nvml_state < 0) return NULL;
    char nv[VGPU_UUID_LEN];
    snprintf(nv, sizeof(nv), "%s", uuid);
    for (int i = 0; i < 3; i++)
        nv[i] = (char)(nv[i] - 'a' + 'A'); /* "gpu-" -> "GPU-" */
    nvmlDevice_t dev = NULL;
    vgpu_helper_fn_nvmlDeviceGetHandleByUUID by_uuid = VGPU_HELPER(nvmlDeviceGetHandleByUUID);
    if (!by_uuid || by_uuid(nv, &dev) != NVML_SUCCESS) return NULL;
    return dev;
}

/* Our bytes on a GPU as the driver counts them (NVML), or -1 if NVML cannot tell. */
static long long driver_bytes(const char *uuid)
{
    nvmlDevice_t dev = nvml_device(uuid);
    vgpu_fn_nvmlDeviceGetComputeRunningProcesses_v3 list =
        VGPU_REAL(nvmlDeviceGetComputeRunningProcesses_v3);
    if (!dev || !list) return -1;
    nvmlProcessInfo_t infos[128];
    unsigned n = 128;
    if (list(dev, &n, infos) != NVML_SUCCESS) return -1;
    int slot = atomic_load(&vgpu_g.slot);
    struct vgpu_shm *s = atomic_load(&vgpu_g.shm);
    unsigned host = (s && slot >= 0) ? (unsigned)atomic_load(&s->proc[slot].host_pid) : 0;
    for (unsigned i = 0; i < n; i++) {
        if (infos[i].pid != (unsigned)vgpu_g.self.pid && (!host || infos[i].pid != host)) continue;
        if (infos[i].usedGpuMemory == NVML_VALUE_NOT_AVAILABLE_ULL) return -1;
        return (long long)infos[i].usedGpuMemory;
    }
    return -1;
}

static void true_up_overhead(struct vgpu_shm *s, int slot)
{
    for (int d = 0; d < VGPU_MAX_DEVICES; d++) {
        const struct vgpu_binding *b = &vgpu_bindings[d];
        if (atomic_load(&b->state) != VGPU_BIND_LEDGER) continue;
        long long have = -1;
        uint64_t charged = 0, ovh;
        for (int attempt = 0; attempt < 20; attempt++) {
            /* read the driver and the ledger while no other thread is between the two */
            uint64_t epoch;
            if (attempt) usleep(500);
            if (!vgpu_mem_quiet_begin(&epoch)) continue;
            have = driver_bytes(b->uuid);
            charged = atomic_load(&s->proc[slot].mem[b->ledger]);
            if (vgpu_mem_quiet_end(epoch)) break;
            have = -2; /* not a consistent snapshot */
        }
        if (have == -2) continue; /* busy: next pass */
        if (have >= 0) {
            atomic_store(&((struct vgpu_binding *)b)->ovh_found, 1);
            ovh = (uint64_t)have > charged ? (uint64_t)have - charged : 0;
        } else if (vgpu_g.cfg.context_reserve_set) {
            ovh = vgpu_g.cfg.context_reserve;
        } else {
            continue;
        }
        if (ovh != atomic_load(&s->proc[slot].ovh[b->ledger]))
            vgpu_ledger_set_overhead(s, slot, b->ledger, ovh);
    }
}

/* The node daemon's NVML figures (src/common/node_layout.h), when it publishes them: one
 * NVML session for the node, and host PIDs the daemon has already seen. Read once a pass. */
static const struct vgpu_node_shm *node;
static uint64_t node_retry_ns;
static struct vgpu_node_view node_view;
static int node_fresh, node_said;

static void node_refresh(void)
{
    uint64_t now = vgpu_now_ns();
    node_fresh = 0;
    if (!node && now >= node_retry_ns) {
        char dir[320];
        snprintf(dir, sizeof(dir), "%s/%s", vgpu_g.cfg.shm_dir, VGPU_NODE_DIR);
        node = vgpu_node_open(dir);
        node_retry_ns = now + 5000000000ull; /* look again in 5 s */
    }
    if (!node) return;
    node_fresh = vgpu_node_read(node, &node_view, now) == 0;
    if (node_fresh && !node_said) {
        node_said = 1;
        VLOG_INFO("GPU utilisation from the node daemon's NVML samples (%s/%s/%s)",
                  vgpu_g.cfg.shm_dir, VGPU_NODE_DIR, VGPU_NODE_FILE);
    }
    if (!node_fresh && now >= node_retry_ns) {
        /* a daemon that started again may have made a new file: map it anew */
        vgpu_node_unmap(node);
        node = NULL;
    }
}

/* What a GPU's processes did over the last second, from the node daemon's region when it is
 * fresh, else from NVML directly: one shape for both, so the questions below are asked once. */
#define BUSY_MAX_PROCS 256
struct busy_view {
    int gpu_util;   /* the GPU's busy percent x 100, -1 unknown */
    uint64_t pidns; /* the PID namespace the pids below belong to */
    unsigned n;
    struct busy_proc {
        unsigned pid, sum; /* busy percent x 100, summed over its samples */
    } p[BUSY_MAX_PROCS];
};

static void view_add(struct busy_view *v, unsigned pid, unsigned sm)
{
    unsigned k = 0;
    while (k < v->n && v->p[k].pid != pid)
        k++;
    if (k == v->n) {
        if (v->n == BUSY_MAX_PROCS) return;
        v->p[v->n++] = (struct busy_proc){pid, 0};
    }
    v->p[k].sum += sm;
}

/* The GPU's busy percent x 100 since `since_us` (CPU time, microseconds): the mean of the
 * driver's own readings, or -1. One nvmlDeviceGetUtilizationRates call covers only the last
 * sample period (1/6 s on some GPUs); for sparse tiny kernels single readings a second apart
 * scatter far around their mean, which is what the closed loop needs. */
static int gpu_util_since(nvmlDevice_t dev, unsigned long long since_us)
{
    vgpu_helper_fn_nvmlDeviceGetSamples get = VGPU_HELPER(nvmlDeviceGetSamples);
    static nvmlSample_t smp[256];
    unsigned n = sizeof(smp) / sizeof(smp[0]);
    nvmlValueType_t type;
    if (!get || get(dev, NVML_GPU_UTILIZATION_SAMPLES, since_us, &type, &n, smp) != NVML_SUCCESS ||
        !n)
        return -1;
    if (n > sizeof(smp) / sizeof(smp[0])) n = sizeof(smp) / sizeof(smp[0]);
    double mean = nvml_samples_mean(type, smp, n, NULL);
    return mean < 0 ? -1 : (int)(mean * 100.0 + 0.5);
}

/* The GPU's power draw now (W, NVML's one-second average on recent GPUs) and its enforced cap,
 * with its busy fraction over the last second, into the pod's clock factor (dvfs_model.h). */
static void dvfs_pass(struct vgpu_shm_dev *v, const char *uuid)
{
    nvmlDevice_t dev = nvml_device(uuid);
    vgpu_helper_fn_nvmlDeviceGetPowerUsage power = VGPU_HELPER(nvmlDeviceGetPowerUsage);
    vgpu_helper_fn_nvmlDeviceGetEnforcedPowerLimit cap =
        VGPU_HELPER(nvmlDeviceGetEnforcedPowerLimit);
    unsigned mw = 0, cap_mw = 0;
    if (!dev || !power || !cap || power(dev, &mw) != NVML_SUCCESS ||
        cap(dev, &cap_mw) != NVML_SUCCESS)
        return;
    /* the mean of the driver's readings over the same second as the power figure (the node
     * region's figure covers one sample period) */
    int util = gpu_util_since(dev, nvml_now_us() - 1000000ull);
    if (util < 0) return;
    vgpu_dvfs_tick(v, mw / 1000.0, util / 10000.0, cap_mw / 1000.0);
}

/* 0, or -1 when neither source can tell */
static int busy_view(const char *uuid, struct busy_view *v)
{
    v->n = 0;
    v->gpu_util = -1;
    int g = node_fresh ? vgpu_node_gpu_find(&node_view, uuid) : -1;
    if (g >= 0) {
        v->pidns = node_view.pidns;
        v->gpu_util = (int)node_view.gpu[g].util;
        for (unsigned i = 0; i < node_view.nproc; i++)
            if (node_view.proc[i].gpu == (unsigned)g)
                view_add(v, node_view.proc[i].host_pid, node_view.proc[i].sm_util);
        return 0;
    }
    nvmlDevice_t dev = nvml_device(uuid);
    vgpu_helper_fn_nvmlDeviceGetProcessUtilization util =
        VGPU_HELPER(nvmlDeviceGetProcessUtilization);
    vgpu_helper_fn_nvmlDeviceGetUtilizationRates rates = VGPU_HELPER(nvmlDeviceGetUtilizationRates);
    if (!dev || !util) return -1;
    v->pidns = vgpu_g.self.pidns; /* NVML's pids as this process can best match them */
    unsigned long long since = nvml_now_us() - 1000000ull;
    v->gpu_util = gpu_util_since(dev, since);
    nvmlUtilization_t u;
    if (v->gpu_util < 0 && rates && rates(dev, &u) == NVML_SUCCESS) v->gpu_util = (int)u.gpu * 100;
    /* the driver may return several samples per process for the last second; only the
     * maintenance thread gets here */
    static nvmlProcessUtilizationSample_t samples[1024];
    unsigned n = sizeof(samples) / sizeof(samples[0]);
    /* every process with a context on the GPU, busy or not (see pod_busy) */
    vgpu_fn_nvmlDeviceGetComputeRunningProcesses_v3 list =
        VGPU_REAL(nvmlDeviceGetComputeRunningProcesses_v3);
    static nvmlProcessInfo_t infos[256];
    unsigned ni = sizeof(infos) / sizeof(infos[0]);
    if (list && list(dev, &ni, infos) == NVML_SUCCESS)
        for (unsigned i = 0; i < ni && i < sizeof(infos) / sizeof(infos[0]); i++)
            view_add(v, infos[i].pid, 0);
    nvmlReturn_t r = util(dev, samples, &n, since);
    if (r == NVML_ERROR_NOT_FOUND) return 0; /* no samples: nobody ran anything */
    if (r != NVML_SUCCESS) {
        static int said;
        if (!said++)
            VLOG_INFO("NVML per-process utilisation unavailable (error %d, %u samples): other "
                      "pods' use and the compute loop's measurements are unknown",
                      (int)r, n);
        return -1;
    }
    if (n > sizeof(samples) / sizeof(samples[0])) n = sizeof(samples) / sizeof(samples[0]);
    for (unsigned i = 0; i < n; i++)
        view_add(v, samples[i].pid, samples[i].smUtil * 100);
    return 0;
}

/* Did a process outside the pod use the GPU (busy_only), or hold a context on it at all? */
static int others_in(const struct busy_view *v, struct vgpu_shm *s, int busy_only)
{
    for (unsigned k = 0; k < v->n; k++)
        if ((v->p[k].sum > 0 || !busy_only) && !vgpu_ledger_has_pid(s, v->pidns, v->p[k].pid)) {
            VLOG_DEBUG("GPU %s by pid %u, not of this pod", busy_only ? "used" : "held",
                       v->p[k].pid);
            return 1;
        }
    return 0;
}

/* Has a process outside the pod used this GPU in the last second? (1 when nobody can tell) */
static int others_busy(struct vgpu_shm *s, const char *uuid)
{
    struct busy_view v;
    return busy_view(uuid, &v) != 0 || others_in(&v, s, 1);
}

/* The pod's busy fraction on a GPU: the whole GPU's utilisation while no process of another
 * pod holds a context there; -1 while one does, or if unknown. Held, not only busy: NVML's
 * per-process figures lag the GPU's by a second or more, so a pod whose neighbour has just
 * started would look alone while the GPU's figure included the neighbour's work, and its cost
 * scale would jump. And when contexts of several pods time-slice the GPU, NVML's per-process
 * figures do not say who used what (the same split reads differently run to run:
 * bench/results/compute-runs.md, third run), so a loop that followed them would move the pods
 * away from their shares. The cost model (timed kernels, the shortest recent sample) holds the
 * share then. */
struct busy_ctx {
    struct vgpu_shm *s;
    const char *uuid;
};

static double pod_busy(void *vctx)
{
    struct busy_ctx *c = vctx;
    struct busy_view v;
    if (busy_view(c->uuid, &v) != 0) return -1;
    if (others_in(&v, c->s, 0)) return -1;
    return v.gpu_util < 0 ? -1 : v.gpu_util / 10000.0;
}

/* The share the gate enforces: the hard limit, or for a soft limit its floor while another pod
 * uses the GPU and its ceiling while none does. Limits written at run time land here too.
 * While the node daemon manages the pod it sets the share in the control region; only the
 * feedback runs here. */
static void apply_compute_policy(struct vgpu_shm *s)
{
    int managed = atomic_load(&vgpu_g.ctl) != NULL;
    node_refresh();
    for (int d = 0; d < VGPU_MAX_DEVICES; d++) {
        const struct vgpu_binding *b = &vgpu_bindings[d];
        if (atomic_load(&b->state) != VGPU_BIND_LEDGER) continue;
        struct vgpu_shm_dev *v = &s->dev[b->ledger];
        if (managed) {
            vgpu_gate_sync(v, b->lim); /* the daemon's share, also while nothing is launched */
        } else {
            uint32_t ceiling = atomic_load(&b->lim->core_limit);
            uint32_t floor = atomic_load(&b->lim->core_soft), target = ceiling;
            if (floor && floor < (ceiling ? ceiling : 10000))
                target = others_busy(s, b->uuid) ? floor : ceiling;
            if (target != atomic_load(&b->lim->core_effective)) {
                VLOG_DEBUG("GPU %d: compute share now %.2f%%", d, target / 100.0);
                vgpu_gate_set_effective(v, target);
            }
        }
        if (feedback_on) {
            struct busy_ctx ctx = {s, b->uuid};
            vgpu_feedback_tick(v, pod_busy, &ctx);
        }
        if (dvfs_on) dvfs_pass(v, b->uuid);
    }
}

void vgpu_maintenance_tick(void)
{
    struct vgpu_shm *s = atomic_load(&vgpu_g.shm);
    int slot = atomic_load(&vgpu_g.slot);
    if (!s || slot < 0 || atomic_load(&vgpu_g.exiting)) return;
    atomic_store(&s->proc[slot].heartbeat_ns, vgpu_now_ns());
    vgpu_ledger_reap_if_due(s, vgpu_g.self.pidns, atomic_load(&vgpu_g.ctl),
                            (uint64_t)interval_ms * 1000000ull);
    true_up_overhead(s, slot);
    if (vgpu_g.cfg.gate_on) {
        apply_compute_policy(s);
        vgpu_samples_poll();
    }
}

void vgpu_maintenance_true_up_now(void)
{
    pthread_mutex_lock(&mu);
    struct vgpu_shm *s = atomic_load(&vgpu_g.shm);
    int slot = atomic_load(&vgpu_g.slot);
    if (s && slot >= 0 && !stopping) true_up_overhead(s, slot);
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
