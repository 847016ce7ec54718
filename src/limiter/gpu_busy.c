/* gpu_busy.c - who used a GPU over the last second (see gpu_busy.h). */
#define _GNU_SOURCE
#include "gpu_busy.h"

#include <stdio.h>

#include "../common/node_region.h"
#include "../common/shm_ledger.h"
#include "../common/shm_region.h"
#include "limiter.h"
#include "log.h"
#include "nvml_gpu.h"
#include "real_driver.h"

/* The node daemon's NVML figures (src/common/node_layout.h), when it publishes them: one
 * NVML session for the node, and host PIDs the daemon has already seen. Read once a pass. */
static const struct vgpu_node_shm *node;
static uint64_t node_retry_ns;
static struct vgpu_node_view node_view;
static int node_fresh, node_said;

void vgpu_busy_refresh(void)
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
    nvmlDevice_t dev = vgpu_nvml_device(uuid);
    vgpu_helper_fn_nvmlDeviceGetProcessUtilization util =
        VGPU_HELPER(nvmlDeviceGetProcessUtilization);
    vgpu_helper_fn_nvmlDeviceGetUtilizationRates rates = VGPU_HELPER(nvmlDeviceGetUtilizationRates);
    if (!dev || !util) return -1;
    v->pidns = vgpu_g.self.pidns; /* NVML's pids as this process can best match them */
    unsigned long long since = nvml_now_us() - 1000000ull;
    v->gpu_util = vgpu_nvml_gpu_util_since(dev, since);
    nvmlUtilization_t u;
    if (v->gpu_util < 0 && rates && rates(dev, &u) == NVML_SUCCESS) v->gpu_util = (int)u.gpu * 100;
    /* the driver may return several samples per process for the last second; only the
     * maintenance thread gets here */
    static nvmlProcessUtilizationSample_t samples[1024];
    unsigned n = sizeof(samples) / sizeof(samples[0]);
    /* every process with a context on the GPU, busy or not (see vgpu_busy_pod) */
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

int vgpu_busy_others(struct vgpu_shm *s, const char *uuid)
{
    struct busy_view v;
    return busy_view(uuid, &v) != 0 || others_in(&v, s, 1);
}

/* The pod's busy fraction on a GPU: the whole GPU's utilisation while no process of another
 * pod holds a context there; -1 while one does, or if unknown. Held, not only busy: NVML's
 * per-process figures lag the GPU's by a second or more, so a pod whose neighbour has just
 * started looked alone while the GPU's figure included the neighbour's work (H200: a pod's
 * cost scale went to 1.5 in that second and its share from 0.69 to 0.58). And when contexts
 * of several pods time-slice the GPU, NVML's per-process figures do not say who used what:
 * on an H200 two pods at 25% / 75% of a saturated GPU were shown at 21/80, 24/64 and 23/50
 * in three runs with the same throughput, and a loop that followed them moved the pods to
 * 33/57 of solo. The cost model (timed kernels, the shortest recent sample) holds the share
 * then. */
double vgpu_busy_pod(void *vctx)
{
    struct vgpu_busy_ctx *c = vctx;
    struct busy_view v;
    if (busy_view(c->uuid, &v) != 0) return -1;
    if (others_in(&v, c->s, 0)) return -1;
    return v.gpu_util < 0 ? -1 : v.gpu_util / 10000.0;
}
