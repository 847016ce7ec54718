/* nvml_monitor.c - read GPUs and their processes through a dlopen'ed NVML.
 *
 * Why this exists: see nvml_monitor.h. The entry points are resolved by name with the newest
 * version first (…_v3, _v2, plain), as nvml.h maps them, so one binary works across drivers.
 */
#define _GNU_SOURCE
#include "nvml_monitor.h"

#include <ctype.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "hv_log.h"
#include "nvml_abi.h"
#include "shm_region.h"

typedef nvmlReturn_t (*fn_void)(void);
typedef nvmlReturn_t (*fn_count)(unsigned *);
typedef nvmlReturn_t (*fn_handle)(unsigned, nvmlDevice_t *);
typedef nvmlReturn_t (*fn_str)(nvmlDevice_t, char *, unsigned);
typedef nvmlReturn_t (*fn_mem)(nvmlDevice_t, nvmlMemory_t *);
typedef nvmlReturn_t (*fn_util)(nvmlDevice_t, nvmlUtilization_t *);
typedef nvmlReturn_t (*fn_procs)(nvmlDevice_t, unsigned *, void *);
typedef nvmlReturn_t (*fn_samples)(nvmlDevice_t, nvmlSamplingType_t, unsigned long long,
                                   nvmlValueType_t *, unsigned *, nvmlSample_t *);
typedef nvmlReturn_t (*fn_putil)(nvmlDevice_t, nvmlProcessUtilizationSample_t *, unsigned *,
                                 unsigned long long);

static struct {
    void *lib;
    fn_void shutdown;
    fn_count count;
    fn_handle handle;
    fn_str uuid, name;
    fn_mem mem;
    fn_util util;
    fn_samples samples;
    fn_procs procs;
    int procs_v1; /* entries are nvmlProcessInfo_v1_t */
    fn_putil putil;
} nv;

static pthread_mutex_t snap_mu = PTHREAD_MUTEX_INITIALIZER;
static struct nvml_snapshot snap; /* published */
static struct nvml_snapshot work; /* being sampled (tick thread only) */

const char *const nvml_call_names[NVML_CALLS] = {"device", "memory", "util", "procs", "proc_util"};

/* time since *t into work.call_ns[c]; *t moves to now */
static void spent(enum nvml_call c, uint64_t *t)
{
    uint64_t now = vgpu_now_ns();
    work.call_ns[c] += now - *t;
    *t = now;
}

static void *sym(const char *name)
{
    return nv.lib ? dlsym(nv.lib, name) : NULL;
}
static void *sym2(const char *a, const char *b)
{
    void *f = sym(a);
    return f ? f : sym(b);
}

int nvml_monitor_start(void)
{
    nv.lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!nv.lib) {
        hv_logf(HV_WARN, "NVML not available: no GPU data, no backstop", "{s:s}", "error",
                dlerror());
        return -1;
    }
    fn_void init = (fn_void)sym2("nvmlInit_v2", "nvmlInit");
    nv.shutdown = (fn_void)sym("nvmlShutdown");
    nv.count = (fn_count)sym2("nvmlDeviceGetCount_v2", "nvmlDeviceGetCount");
    nv.handle = (fn_handle)sym2("nvmlDeviceGetHandleByIndex_v2", "nvmlDeviceGetHandleByIndex");
    nv.uuid = (fn_str)sym("nvmlDeviceGetUUID");
    nv.name = (fn_str)sym("nvmlDeviceGetName");
    nv.mem = (fn_mem)sym("nvmlDeviceGetMemoryInfo");
    nv.util = (fn_util)sym("nvmlDeviceGetUtilizationRates");
    nv.samples = (fn_samples)sym("nvmlDeviceGetSamples");
    nv.procs = (fn_procs)sym2("nvmlDeviceGetComputeRunningProcesses_v3",
                              "nvmlDeviceGetComputeRunningProcesses_v2");
    if (!nv.procs) {
        nv.procs = (fn_procs)sym("nvmlDeviceGetComputeRunningProcesses");
        nv.procs_v1 = 1;
    }
    nv.putil = (fn_putil)sym("nvmlDeviceGetProcessUtilization");
    int r = init ? init() : -1;
    if (r != NVML_SUCCESS || !nv.count || !nv.handle) {
        hv_logf(HV_WARN, "NVML did not initialise: no GPU data, no backstop", "{s:i}", "nvml_error",
                r);
        dlclose(nv.lib);
        memset(&nv, 0, sizeof(nv));
        return -1;
    }
    nvml_monitor_sample();
    hv_logf(HV_INFO, "NVML loaded", "{s:i}", "gpus", snap.ngpu);
    return 0;
}

static void lower_uuid(const char *in, char *out, size_t n)
{
    size_t i = 0;
    for (; in[i] && i + 1 < n; i++)
        out[i] = (char)tolower((unsigned char)in[i]);
    out[i] = 0;
}

static void sample_procs(nvmlDevice_t d, struct nvml_gpu *g)
{
    g->nproc = 0;
    if (!nv.procs) return;
    uint64_t t = vgpu_now_ns();
    unsigned n = NVML_MON_MAX_PROCS;
    if (nv.procs_v1) {
        static nvmlProcessInfo_v1_t v1[NVML_MON_MAX_PROCS];
        if (nv.procs(d, &n, v1) != NVML_SUCCESS) return;
        for (unsigned i = 0; i < n && i < NVML_MON_MAX_PROCS; i++)
            g->proc[g->nproc++] = (struct nvml_proc){v1[i].pid, v1[i].usedGpuMemory, 0};
    } else {
        static nvmlProcessInfo_t v2[NVML_MON_MAX_PROCS];
        if (nv.procs(d, &n, v2) != NVML_SUCCESS) return;
        for (unsigned i = 0; i < n && i < NVML_MON_MAX_PROCS; i++)
            g->proc[g->nproc++] = (struct nvml_proc){v2[i].pid, v2[i].usedGpuMemory, 0};
    }
    spent(NVML_CALL_PROCS, &t);
    /* "unavailable" memory is reported as ~0 */
    for (int i = 0; i < g->nproc; i++)
        if (g->proc[i].mem == ~0ull) g->proc[i].mem = 0;
    if (!nv.putil) return;
    static nvmlProcessUtilizationSample_t s[NVML_MON_MAX_PROCS];
    unsigned ns = NVML_MON_MAX_PROCS;
    nvmlReturn_t r = nv.putil(d, s, &ns, g->last_util_ts);
    spent(NVML_CALL_PROC_UTIL, &t);
    if (r != NVML_SUCCESS) return;
    for (unsigned k = 0; k < ns && k < NVML_MON_MAX_PROCS; k++) {
        if (s[k].timeStamp > g->last_util_ts) g->last_util_ts = s[k].timeStamp;
        for (int i = 0; i < g->nproc; i++)
            if (g->proc[i].pid == s[k].pid) g->proc[i].sm = s[k].smUtil;
    }
}

/* The GPU's utilisation since the last pass: the mean of the driver's own readings (one
 * nvmlDeviceGetUtilizationRates call covers only the last sample period, as short as 1/6 s,
 * and a reading a second shows sparse work as noise), else that one reading. */
static void sample_gpu_util(nvmlDevice_t d, struct nvml_gpu *g)
{
    static nvmlSample_t smp[256];
    unsigned n = sizeof(smp) / sizeof(smp[0]);
    nvmlValueType_t type;
    if (g->last_gpu_ts && nv.samples &&
        nv.samples(d, NVML_GPU_UTILIZATION_SAMPLES, g->last_gpu_ts, &type, &n, smp) ==
            NVML_SUCCESS) {
        if (n > sizeof(smp) / sizeof(smp[0])) n = sizeof(smp) / sizeof(smp[0]);
        double mean = nvml_samples_mean(type, smp, n, &g->last_gpu_ts);
        if (mean >= 0) {
            g->util_x100 = (unsigned)(mean * 100.0 + 0.5);
            return;
        }
    }
    /* the first pass, or no readings: one reading, and samples from now on */
    g->last_gpu_ts = nvml_now_us() - 1000000ull;
    nvmlUtilization_t u;
    if (nv.util && nv.util(d, &u) == NVML_SUCCESS) g->util_x100 = u.gpu * 100;
}

void nvml_monitor_sample(void)
{
    if (!nv.lib) return;
    uint64_t start = vgpu_now_ns(), t = start;
    memset(work.call_ns, 0, sizeof(work.call_ns));
    unsigned count = 0;
    if (nv.count(&count) != NVML_SUCCESS) count = 0;
    if (count > NVML_MON_MAX_GPUS) count = NVML_MON_MAX_GPUS;
    static unsigned pass;
    pass++;
    work.ngpu = 0;
    for (unsigned i = 0; i < count; i++) {
        nvmlDevice_t d;
        if (nv.handle(i, &d) != NVML_SUCCESS) continue;
        struct nvml_gpu *g = &work.gpu[work.ngpu];
        int same = g->index == (int)i;
        /* a GPU's identity does not change while the driver is loaded: asked once */
        int known = same && g->uuid[0];
        g->mem_total = g->mem_used = 0;
        /* The process list and its utilisation cost the driver in proportion to the processes
         * (most of the daemon's CPU with many: bench/results/README.md, daemon): with many
         * processes they are asked every second pass, and the list of the last one stands
         * for the pass between (what it feeds is a second late at most: the backstop, the
         * node region's process list, the shared factor's check). */
        int procs_due = !same || g->nproc <= NVML_PROCS_EVERY_PASS || pass % 2 == 0;
        if (procs_due) g->nproc = 0;
        if (!same) {
            memset(g, 0, offsetof(struct nvml_gpu, proc));
            g->index = (int)i;
            g->last_util_ts = g->last_gpu_ts = 0;
        }
        char buf[NVML_DEVICE_UUID_V2_BUFFER_SIZE] = "";
        if (!known && nv.uuid && nv.uuid(d, buf, sizeof(buf)) == NVML_SUCCESS)
            lower_uuid(buf, g->uuid, sizeof(g->uuid));
        if (!known && nv.name) nv.name(d, g->name, sizeof(g->name));
        spent(NVML_CALL_DEVICE, &t);
        nvmlMemory_t m;
        if (nv.mem && nv.mem(d, &m) == NVML_SUCCESS) {
            g->mem_total = m.total;
            g->mem_used = m.used;
        }
        spent(NVML_CALL_MEMORY, &t);
        sample_gpu_util(d, g);
        spent(NVML_CALL_UTIL, &t);
        if (procs_due) sample_procs(d, g);
        t = vgpu_now_ns();
        work.ngpu++;
    }
    work.ok = 1;
    work.taken_ns = vgpu_now_ns();
    work.pass_ns = work.taken_ns - start;
    pthread_mutex_lock(&snap_mu);
    memcpy(&snap, &work, sizeof(snap));
    pthread_mutex_unlock(&snap_mu);
}

struct nvml_snapshot *nvml_snapshot_get(void)
{
    struct nvml_snapshot *s = malloc(sizeof(*s));
    if (!s) return NULL;
    pthread_mutex_lock(&snap_mu);
    memcpy(s, &snap, sizeof(*s));
    pthread_mutex_unlock(&snap_mu);
    return s;
}

uint64_t nvml_mem_total(const char *uuid)
{
    uint64_t t = 0;
    pthread_mutex_lock(&snap_mu);
    for (int i = 0; i < snap.ngpu; i++)
        if (!strcmp(snap.gpu[i].uuid, uuid)) t = snap.gpu[i].mem_total;
    pthread_mutex_unlock(&snap_mu);
    return t;
}

void nvml_monitor_stop(void)
{
    if (!nv.lib) return;
    if (nv.shutdown) nv.shutdown();
    dlclose(nv.lib);
    memset(&nv, 0, sizeof(nv));
}
