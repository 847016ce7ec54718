/* nvml_monitor.h - what NVML says about this node's GPUs and the processes on them.
 *
 * Why this exists: the pod regions say what the limiter *thinks* each pod uses; NVML says what
 * the driver sees, including processes that never registered (no limiter loaded) and pods above
 * their cap. This module only reads: the snapshot feeds /v1/status, /metrics and the backstop
 * in tick.c. NVML is loaded with dlopen, so the daemon runs (without GPU data) where it is
 * missing.
 */
#ifndef VGPU_HV_NVML_MONITOR_H
#define VGPU_HV_NVML_MONITOR_H

#include <stdint.h>

#include "shm_layout.h"

#define NVML_MON_MAX_GPUS VGPU_MAX_DEVICES
#define NVML_MON_MAX_PROCS 256
#define NVML_PROCS_EVERY_PASS 16 /* above this many processes on a GPU, every second pass */

struct nvml_proc {
    unsigned pid; /* host pid */
    uint64_t mem; /* bytes */
    unsigned sm;  /* SM utilisation, percent (0 when not reported) */
};

struct nvml_gpu {
    int index;
    char uuid[VGPU_UUID_LEN]; /* lower case, "gpu-..." */
    char name[96];
    uint64_t mem_total, mem_used;
    int nproc;
    struct nvml_proc proc[NVML_MON_MAX_PROCS];
    unsigned long long last_util_ts; /* NVML timestamp of the newest process sample */
    unsigned long long last_gpu_ts;  /* and of the newest GPU utilisation sample */
    unsigned util_x100; /* busy percent x 100: the mean of the readings since the last pass */
};

/* what a pass spends its time in, for /metrics (vgpu_nvml_call_seconds) */
enum nvml_call {
    NVML_CALL_DEVICE,
    NVML_CALL_MEMORY,
    NVML_CALL_UTIL,
    NVML_CALL_PROCS,
    NVML_CALL_PROC_UTIL,
    NVML_CALLS
};
extern const char *const nvml_call_names[NVML_CALLS];

struct nvml_snapshot {
    int ok; /* NVML loaded and sampled */
    int ngpu;
    uint64_t taken_ns;
    uint64_t pass_ns; /* how long the pass took (NVML's calls are most of the daemon's CPU) */
    uint64_t call_ns[NVML_CALLS]; /* of which in each kind of call */
    struct nvml_gpu gpu[NVML_MON_MAX_GPUS];
};

/* dlopen("libnvidia-ml.so.1") and nvmlInit; 0, or -1 (logged) when unavailable. */
int nvml_monitor_start(void);
/* Refresh the snapshot (slow: call outside the registry lock). */
void nvml_monitor_sample(void);
/* A copy of the latest snapshot (heap; free() it). Never NULL unless out of memory. */
struct nvml_snapshot *nvml_snapshot_get(void);
/* Total memory of the GPU with this uuid, 0 when unknown. */
uint64_t nvml_mem_total(const char *uuid);
void nvml_monitor_stop(void);

#endif
