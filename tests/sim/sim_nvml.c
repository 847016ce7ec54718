/* sim_nvml.c - the simulated libnvidia-ml.so.1.
 *
 * Why this exists: the limiter and its tests read the GPU's memory, process list and
 * utilisation through NVML, exactly as monitoring tools do on a real node. This library answers
 * from the simulator's shared state, so what every simulated process does shows up here, and
 * works without cuInit.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <stdlib.h>
#include <strings.h>
#include <time.h>

#include "sim_api.h"
#include "sim_state.h"

struct nvmlDevice_st {
    int index;
};
static struct nvmlDevice_st nv_devs[SIM_MAX_DEV];
static int nv_inited;
static pthread_mutex_t nv_mu = PTHREAD_MUTEX_INITIALIZER;

#define SIM_NO_INSTANCE 0xFFFFFFFFu /* gpuInstanceId / computeInstanceId outside MIG */

static int dev_of(nvmlDevice_t d)
{
    for (int i = 0; i < (int)sim_st->ndev; i++)
        if (d == &nv_devs[i]) return i;
    return -1;
}

#define NV_ENTER()                                                                                 \
    do {                                                                                           \
        if (!nv_inited) return NVML_ERROR_UNINITIALIZED;                                           \
    } while (0)
#define NV_DEV(d, idx)                                                                             \
    NV_ENTER();                                                                                    \
    int idx = dev_of(d);                                                                           \
    if (idx < 0) return NVML_ERROR_INVALID_ARGUMENT

static nvmlReturn_t init(void)
{
    pthread_mutex_lock(&nv_mu);
    int ok = sim_state_open() != NULL;
    if (ok) {
        nv_inited++;
        for (int i = 0; i < SIM_MAX_DEV; i++)
            nv_devs[i].index = i;
    }
    pthread_mutex_unlock(&nv_mu);
    return ok ? NVML_SUCCESS : NVML_ERROR_UNKNOWN;
}
SIM_API nvmlReturn_t nvmlInit(void)
{
    return init();
}
SIM_API nvmlReturn_t nvmlInit_v2(void)
{
    return init();
}
SIM_API nvmlReturn_t nvmlInitWithFlags(unsigned int flags)
{
    return init();
}

SIM_API nvmlReturn_t nvmlShutdown(void)
{
    pthread_mutex_lock(&nv_mu);
    int was = nv_inited;
    if (nv_inited) nv_inited--;
    pthread_mutex_unlock(&nv_mu);
    return was ? NVML_SUCCESS : NVML_ERROR_UNINITIALIZED;
}

SIM_API const char *nvmlErrorString(nvmlReturn_t r)
{
    switch (r) {
    case NVML_SUCCESS:
        return "Success";
    case NVML_ERROR_UNINITIALIZED:
        return "Uninitialized";
    case NVML_ERROR_INVALID_ARGUMENT:
        return "Invalid Argument";
    case NVML_ERROR_NOT_SUPPORTED:
        return "Not Supported";
    case NVML_ERROR_NO_PERMISSION:
        return "Insufficient Permissions";
    case NVML_ERROR_NOT_FOUND:
        return "Not Found";
    case NVML_ERROR_INSUFFICIENT_SIZE:
        return "Insufficient Size";
    case NVML_ERROR_FUNCTION_NOT_FOUND:
        return "Function Not Found";
    case NVML_ERROR_ARGUMENT_VERSION_MISMATCH:
        return "Argument Version Mismatch";
    default:
        return "Unknown Error";
    }
}

static nvmlReturn_t copy_str(char *dst, unsigned int len, const char *s)
{
    if (!dst) return NVML_ERROR_INVALID_ARGUMENT;
    if (len < strlen(s) + 1) return NVML_ERROR_INSUFFICIENT_SIZE;
    memcpy(dst, s, strlen(s) + 1);
    return NVML_SUCCESS;
}

SIM_API nvmlReturn_t nvmlSystemGetDriverVersion(char *version, unsigned int length)
{
    NV_ENTER();
    return copy_str(version, length, "580.00.00-sim");
}

static nvmlReturn_t cuda_version(int *v)
{
    if (!v) return NVML_ERROR_INVALID_ARGUMENT;
    *v = 13000;
    return NVML_SUCCESS;
}
SIM_API nvmlReturn_t nvmlSystemGetCudaDriverVersion(int *v)
{
    return cuda_version(v);
}
SIM_API nvmlReturn_t nvmlSystemGetCudaDriverVersion_v2(int *v)
{
    return cuda_version(v);
}

static nvmlReturn_t device_count(unsigned int *n)
{
    NV_ENTER();
    if (!n) return NVML_ERROR_INVALID_ARGUMENT;
    *n = sim_st->ndev;
    return NVML_SUCCESS;
}
SIM_API nvmlReturn_t nvmlDeviceGetCount(unsigned int *deviceCount)
{
    return device_count(deviceCount);
}
SIM_API nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *deviceCount)
{
    return device_count(deviceCount);
}

static nvmlReturn_t by_index(unsigned int i, nvmlDevice_t *d)
{
    NV_ENTER();
    if (!d || i >= sim_st->ndev) return NVML_ERROR_INVALID_ARGUMENT;
    *d = &nv_devs[i];
    return NVML_SUCCESS;
}
SIM_API nvmlReturn_t nvmlDeviceGetHandleByIndex(unsigned int index, nvmlDevice_t *device)
{
    return by_index(index, device);
}
SIM_API nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device)
{
    return by_index(index, device);
}

static void uuid_string(int dev, char out[NVML_DEVICE_UUID_BUFFER_SIZE])
{
    unsigned char b[16];
    sim_uuid(dev, b);
    snprintf(out, NVML_DEVICE_UUID_BUFFER_SIZE,
             "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
             b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
             b[15]);
}

SIM_API nvmlReturn_t nvmlDeviceGetHandleByUUID(const char *uuid, nvmlDevice_t *device)
{
    NV_ENTER();
    if (!uuid || !device) return NVML_ERROR_INVALID_ARGUMENT;
    char s[NVML_DEVICE_UUID_BUFFER_SIZE];
    for (int i = 0; i < (int)sim_st->ndev; i++) {
        uuid_string(i, s);
        if (!strcasecmp(s, uuid)) {
            *device = &nv_devs[i];
            return NVML_SUCCESS;
        }
    }
    return NVML_ERROR_NOT_FOUND;
}

SIM_API nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t device, char *uuid, unsigned int length)
{
    NV_DEV(device, d);
    char s[NVML_DEVICE_UUID_BUFFER_SIZE];
    uuid_string(d, s);
    return copy_str(uuid, length, s);
}

SIM_API nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char *name, unsigned int length)
{
    NV_DEV(device, d);
    (void)d;
    return copy_str(name, length, SIM_DEVICE_NAME);
}

SIM_API nvmlReturn_t nvmlDeviceGetIndex(nvmlDevice_t device, unsigned int *index)
{
    NV_DEV(device, d);
    if (!index) return NVML_ERROR_INVALID_ARGUMENT;
    *index = (unsigned int)d;
    return NVML_SUCCESS;
}

static void memory(int d, unsigned long long *total, unsigned long long *free_b,
                   unsigned long long *used)
{
    sim_lock();
    sim_reap_locked();
    *used = sim_used_locked(d);
    *total = sim_st->total;
    sim_unlock();
    *free_b = *used < *total ? *total - *used : 0;
}

SIM_API nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t *m)
{
    NV_DEV(device, d);
    if (!m) return NVML_ERROR_INVALID_ARGUMENT;
    memory(d, &m->total, &m->free, &m->used);
    return NVML_SUCCESS;
}

SIM_API nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t device, nvmlMemory_v2_t *m)
{
    NV_DEV(device, d);
    if (!m) return NVML_ERROR_INVALID_ARGUMENT;
    if (m->version != nvmlMemory_v2) return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
    m->reserved = 0;
    memory(d, &m->total, &m->free, &m->used);
    return NVML_SUCCESS;
}

/* The simulated GPU is never in confidential-computing mode, so it has no protected memory. */
SIM_API nvmlReturn_t nvmlDeviceGetConfComputeProtectedMemoryUsage(nvmlDevice_t device,
                                                                  nvmlMemory_t *memory)
{
    NV_DEV(device, d);
    (void)d;
    return memory ? NVML_ERROR_NOT_SUPPORTED : NVML_ERROR_INVALID_ARGUMENT;
}

/* Not a memory-use figure: present so that tools reading every "Memory" name meet one. */
SIM_API nvmlReturn_t nvmlDeviceGetMemoryBusWidth(nvmlDevice_t device, unsigned int *busWidth)
{
    NV_DEV(device, d);
    (void)d;
    if (!busWidth) return NVML_ERROR_INVALID_ARGUMENT;
    *busWidth = 5120; /* H100 SXM: five HBM3 stacks */
    return NVML_SUCCESS;
}

/* --- process lists -----------------------------------------------------------------------------
 */

/* Processes with a context or memory on device d (none when compute is 0). */
static unsigned collect(int d, int compute, unsigned *pid, unsigned long long *mem)
{
    unsigned n = 0;
    sim_lock();
    sim_reap_locked();
    for (int i = 0; compute && i < SIM_MAX_PROC; i++) {
        const struct sim_proc *p = &sim_st->proc[i];
        uint64_t u = p->in_use ? sim_proc_used(p, d) : 0;
        if (p->in_use && (u || p->dev[d].contexts)) {
            pid[n] = (unsigned)p->pid;
            mem[n++] = u;
        }
    }
    sim_unlock();
    return n;
}

static nvmlReturn_t processes(nvmlDevice_t device, unsigned *count, void *infos, int v1,
                              int compute)
{
    NV_DEV(device, d);
    if (!count) return NVML_ERROR_INVALID_ARGUMENT;
    unsigned pid[SIM_MAX_PROC];
    unsigned long long mem[SIM_MAX_PROC];
    unsigned n = collect(d, compute, pid, mem);
    if (!n || !infos || *count < n) {
        *count = n;
        return n ? NVML_ERROR_INSUFFICIENT_SIZE : NVML_SUCCESS;
    }
    for (unsigned i = 0; i < n; i++) {
        if (v1)
            ((nvmlProcessInfo_v1_t *)infos)[i] = (nvmlProcessInfo_v1_t){pid[i], mem[i]};
        else
            ((nvmlProcessInfo_t *)infos)[i] =
                (nvmlProcessInfo_t){pid[i], mem[i], SIM_NO_INSTANCE, SIM_NO_INSTANCE};
    }
    *count = n;
    return NVML_SUCCESS;
}

SIM_API nvmlReturn_t nvmlDeviceGetComputeRunningProcesses(nvmlDevice_t device,
                                                          unsigned int *infoCount,
                                                          nvmlProcessInfo_v1_t *infos)
{
    return processes(device, infoCount, infos, 1, 1);
}
SIM_API nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v2(nvmlDevice_t device,
                                                             unsigned int *infoCount,
                                                             nvmlProcessInfo_t *infos)
{
    return processes(device, infoCount, infos, 0, 1);
}
SIM_API nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t device,
                                                             unsigned int *infoCount,
                                                             nvmlProcessInfo_t *infos)
{
    return processes(device, infoCount, infos, 0, 1);
}
SIM_API nvmlReturn_t nvmlDeviceGetGraphicsRunningProcesses(nvmlDevice_t device,
                                                           unsigned int *infoCount,
                                                           nvmlProcessInfo_v1_t *infos)
{
    return processes(device, infoCount, infos, 1, 0);
}
SIM_API nvmlReturn_t nvmlDeviceGetGraphicsRunningProcesses_v2(nvmlDevice_t device,
                                                              unsigned int *infoCount,
                                                              nvmlProcessInfo_t *infos)
{
    return processes(device, infoCount, infos, 0, 0);
}
SIM_API nvmlReturn_t nvmlDeviceGetGraphicsRunningProcesses_v3(nvmlDevice_t device,
                                                              unsigned int *infoCount,
                                                              nvmlProcessInfo_t *infos)
{
    return processes(device, infoCount, infos, 0, 0);
}
/* No MPS server runs on the simulated GPU: the MPS lists are empty in every version. */
SIM_API nvmlReturn_t nvmlDeviceGetMPSComputeRunningProcesses(nvmlDevice_t device,
                                                             unsigned int *infoCount,
                                                             nvmlProcessInfo_v1_t *infos)
{
    return processes(device, infoCount, infos, 1, 0);
}
SIM_API nvmlReturn_t nvmlDeviceGetMPSComputeRunningProcesses_v2(nvmlDevice_t device,
                                                                unsigned int *infoCount,
                                                                nvmlProcessInfo_t *infos)
{
    return processes(device, infoCount, infos, 0, 0);
}
SIM_API nvmlReturn_t nvmlDeviceGetMPSComputeRunningProcesses_v3(nvmlDevice_t device,
                                                                unsigned int *infoCount,
                                                                nvmlProcessInfo_t *infos)
{
    return processes(device, infoCount, infos, 0, 0);
}

/* --- utilisation -------------------------------------------------------------------------------
 */

#define WINDOW_NS (1000 * SIM_MS)

/* VGPU_SIM_UTIL_NOISE=F: every utilisation figure is off by up to +-F of itself (uniformly),
 * as NVML's sampled figures are for sparse, tiny kernels on a real GPU */
static unsigned percent(uint64_t busy, uint64_t window)
{
    double p = window ? (double)busy * 100.0 / (double)window : 0;
    static double noise = -1;
    static unsigned seed;
    if (noise < 0) {
        const char *e = getenv("VGPU_SIM_UTIL_NOISE");
        noise = e ? atof(e) : 0;
        seed = (unsigned)getpid();
    }
    if (noise > 0) p *= 1.0 + noise * (2.0 * rand_r(&seed) / (double)RAND_MAX - 1.0);
    return (unsigned)(p > 100 ? 100 : p < 0 ? 0 : p);
}

SIM_API nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t device, nvmlUtilization_t *u)
{
    NV_DEV(device, d);
    if (!u) return NVML_ERROR_INVALID_ARGUMENT;
    sim_lock();
    uint64_t now = sim_now_ns();
    sim_defer_flush_locked(d, now);
    uint64_t busy = sim_ring_busy_ns(&sim_st->dev[d].ring, now - WINDOW_NS, now, now);
    sim_unlock();
    u->gpu = percent(busy, WINDOW_NS);
    u->memory = 0;
    return NVML_SUCCESS;
}

/* Power: what the GPU draws with nothing running (126 W) plus, per busy second, the draw of the
 * work at full duty: VGPU_SIM_POWER_W (default 200 W: far from the cap; 830 W is what the H200's
 * matmuls would draw at 1980 MHz, more than its 700 W cap). Averaged over the last second, as
 * recent GPUs report it. The simulated clock does not change: this drives the limiter's clock
 * factor (src/limiter/dvfs_model.h), not kernel times. */
#define SIM_POWER_CAP_MW 700000u
#define SIM_POWER_STATIC_MW 126000u
SIM_API nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t device, unsigned int *mw)
{
    NV_DEV(device, d);
    if (!mw) return NVML_ERROR_INVALID_ARGUMENT;
    const char *e = getenv("VGPU_SIM_POWER_W");
    double full_w = e ? atof(e) : 200.0;
    sim_lock();
    uint64_t now = sim_now_ns();
    sim_defer_flush_locked(d, now);
    uint64_t busy = sim_ring_busy_ns(&sim_st->dev[d].ring, now - WINDOW_NS, now, now);
    sim_unlock();
    double draw = SIM_POWER_STATIC_MW + (double)busy / WINDOW_NS * full_w * 1000.0;
    *mw = (unsigned)(draw > SIM_POWER_CAP_MW ? SIM_POWER_CAP_MW : draw);
    return NVML_SUCCESS;
}

SIM_API nvmlReturn_t nvmlDeviceGetEnforcedPowerLimit(nvmlDevice_t device, unsigned int *mw)
{
    NV_DEV(device, d);
    (void)d;
    if (!mw) return NVML_ERROR_INVALID_ARGUMENT;
    *mw = SIM_POWER_CAP_MW;
    return NVML_SUCCESS;
}

/* the driver's readings: one per 100 ms slice of the last second, each with its own noise */
#define SLICE_NS (100 * SIM_MS)
SIM_API nvmlReturn_t nvmlDeviceGetSamples(nvmlDevice_t device, nvmlSamplingType_t type,
                                          unsigned long long lastSeenTimeStamp,
                                          nvmlValueType_t *valueType, unsigned int *count,
                                          nvmlSample_t *samples)
{
    NV_DEV(device, d);
    if (!count || !valueType) return NVML_ERROR_INVALID_ARGUMENT;
    if (type != NVML_GPU_UTILIZATION_SAMPLES) return NVML_ERROR_NOT_SUPPORTED;
    struct timespec rt;
    clock_gettime(CLOCK_REALTIME, &rt);
    unsigned long long now_us =
        (unsigned long long)rt.tv_sec * 1000000ull + (unsigned long long)rt.tv_nsec / 1000;
    nvmlSample_t s[WINDOW_NS / SLICE_NS];
    unsigned n = 0;
    sim_lock();
    uint64_t now = sim_now_ns();
    sim_defer_flush_locked(d, now);
    for (int k = (int)(WINDOW_NS / SLICE_NS) - 1; k >= 0; k--) { /* oldest first */
        unsigned long long ts = now_us - (unsigned long long)k * (SLICE_NS / 1000);
        if (ts <= lastSeenTimeStamp) continue;
        uint64_t to = now - (uint64_t)k * SLICE_NS;
        uint64_t busy = sim_ring_busy_ns(&sim_st->dev[d].ring, to - SLICE_NS, to, now);
        s[n].timeStamp = ts;
        s[n++].sampleValue.uiVal = percent(busy, SLICE_NS);
    }
    sim_unlock();
    *valueType = NVML_VALUE_TYPE_UNSIGNED_INT;
    if (!n) return NVML_ERROR_NOT_FOUND;
    if (!samples) {
        *count = n;
        return NVML_SUCCESS;
    }
    if (*count < n) n = *count; /* the oldest that fit */
    memcpy(samples, s, n * sizeof *s);
    *count = n;
    return NVML_SUCCESS;
}

SIM_API nvmlReturn_t nvmlDeviceGetProcessUtilization(nvmlDevice_t device,
                                                     nvmlProcessUtilizationSample_t *utilization,
                                                     unsigned int *processSamplesCount,
                                                     unsigned long long lastSeenTimeStamp)
{
    NV_DEV(device, d);
    if (!processSamplesCount) return NVML_ERROR_INVALID_ARGUMENT;
    struct timespec rt;
    clock_gettime(CLOCK_REALTIME, &rt);
    unsigned long long now_us =
        (unsigned long long)rt.tv_sec * 1000000ull + (unsigned long long)rt.tv_nsec / 1000;
    nvmlProcessUtilizationSample_t s[SIM_MAX_PROC];
    unsigned n = 0;
    sim_lock();
    sim_reap_locked();
    uint64_t now = sim_now_ns(), from = now - WINDOW_NS;
    if (lastSeenTimeStamp >= now_us) /* nothing newer than what the caller has seen */
        from = now;
    else if (now_us - lastSeenTimeStamp < WINDOW_NS / 1000)
        from = now - (now_us - lastSeenTimeStamp) * 1000;
    sim_defer_flush_locked(d, now);
    for (int i = 0; i < SIM_MAX_PROC && from < now; i++) {
        const struct sim_proc *p = &sim_st->proc[i];
        uint64_t busy = p->in_use ? sim_ring_busy_ns(&p->dev[d].ring, from, now, now) : 0;
        if (busy)
            s[n++] = (nvmlProcessUtilizationSample_t){
                (unsigned)p->pid, now_us, percent(busy, now - from), 0, 0, 0};
    }
    sim_unlock();
    if (!n || !utilization || *processSamplesCount < n) {
        *processSamplesCount = n;
        return n ? NVML_ERROR_INSUFFICIENT_SIZE : NVML_SUCCESS;
    }
    memcpy(utilization, s, n * sizeof *s);
    *processSamplesCount = n;
    return NVML_SUCCESS;
}
