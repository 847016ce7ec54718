/* nvml_gpu.c - NVML's handle of a GPU and its busy figure (see nvml_gpu.h). */
#define _GNU_SOURCE
#include "nvml_gpu.h"

#include <stdio.h>

#include "../common/shm_layout.h"
#include "log.h"
#include "real_driver.h"

static int nvml_state; /* 0 untried, 1 ok, -1 unavailable */

/* NVML's handle of a GPU, NULL if NVML cannot be used */
nvmlDevice_t vgpu_nvml_device(const char *uuid)
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

/* The GPU's busy percent x 100 since `since_us` (CPU time, microseconds): the mean of the
 * driver's own readings, or -1. One nvmlDeviceGetUtilizationRates call covers only the last
 * sample period (1/6 s on some GPUs); for sparse tiny kernels single readings a second apart
 * varied 0.08 to 0.20 on an H200 where the mean was 0.14. */
int vgpu_nvml_gpu_util_since(nvmlDevice_t dev, unsigned long long since_us)
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
