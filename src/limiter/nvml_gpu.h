/* nvml_gpu.h - NVML's handle of a GPU and its busy figure, for the maintenance thread's jobs.
 *
 * Why this exists: the overhead true-up, the busy view and the clock model all ask NVML about a
 * GPU named by UUID; NVML is initialised once, on first use, and a process where it cannot be
 * used says so once. Only the maintenance thread calls these (no locking of its own).
 */
#ifndef VGPU_NVML_GPU_H
#define VGPU_NVML_GPU_H

#include "../common/nvml_abi.h"

/* NVML's handle of a GPU (normalised "gpu-..." UUID), NULL if NVML cannot be used. */
nvmlDevice_t vgpu_nvml_device(const char *uuid);

/* The GPU's busy percent x 100 since `since_us` (NVML's clock, microseconds), or -1. */
int vgpu_nvml_gpu_util_since(nvmlDevice_t dev, unsigned long long since_us);

#endif
