/* sim_cuda_extra.c - simulated driver API: the legacy launches, the multi-device cooperative
 * launch, and imported external memory.
 *
 * Why this exists: real drivers still export these, and the limiter hooks them (an application
 * calling them must not escape its limits), so the simulator runs them as a driver would: a
 * launch queues its kernel's time like cuLaunchKernel, an import takes its size of the GPU's
 * memory until it is destroyed. Kept apart from the main files, which cover the entry points
 * current applications use.
 */
#define _GNU_SOURCE
#include <stdlib.h>

#include "sim_cuda.h"

/* --- launches --------------------------------------------------------------------------------- */

/* The legacy API sets block shape and parameters with cuFuncSetBlockShape and cuParamSet*,
 * which the simulator does not need: its kernels run for the time their name says. */
SIM_API CUresult cuLaunch(CUfunction f)
{
    return sim_launch(0, f, 1, 1, 1, 1, 1, 1, NULL);
}
SIM_API CUresult cuLaunchGrid(CUfunction f, int grid_width, int grid_height)
{
    if (grid_width <= 0 || grid_height <= 0) return CUDA_ERROR_INVALID_VALUE;
    return sim_launch(0, f, (unsigned)grid_width, (unsigned)grid_height, 1, 1, 1, 1, NULL);
}
SIM_API CUresult cuLaunchGridAsync(CUfunction f, int grid_width, int grid_height, CUstream hStream)
{
    if (grid_width <= 0 || grid_height <= 0) return CUDA_ERROR_INVALID_VALUE;
    return sim_launch(0, f, (unsigned)grid_width, (unsigned)grid_height, 1, 1, 1, 1, hStream);
}

/* Each entry runs on its own stream (and so its own context's GPU), one after another. */
SIM_API CUresult cuLaunchCooperativeKernelMultiDevice(CUDA_LAUNCH_PARAMS *launchParamsList,
                                                      unsigned int numDevices, unsigned int flags)
{
    if (!g_inited) return CUDA_ERROR_NOT_INITIALIZED;
    if (!launchParamsList || !numDevices || numDevices > (unsigned)sim_ndev() || flags > 3)
        return CUDA_ERROR_INVALID_VALUE;
    for (unsigned i = 0; i < numDevices; i++) {
        const CUDA_LAUNCH_PARAMS *l = &launchParamsList[i];
        CUresult rc = sim_launch(0, l->function, l->gridDimX, l->gridDimY, l->gridDimZ,
                                 l->blockDimX, l->blockDimY, l->blockDimZ, l->hStream);
        if (rc != CUDA_SUCCESS) return rc;
    }
    return CUDA_SUCCESS;
}

/* --- imported external memory ------------------------------------------------------------------
 */

struct sim_extmem {
    struct sim_hdr h;
    int dev;
    uint64_t fp; /* charged as SIM_USE_MEM */
};

#define EXT_TYPE_OPAQUE_FD 1
#define EXT_TYPE_LAST 8 /* CU_EXTERNAL_MEMORY_HANDLE_TYPE_NVSCIBUF */

SIM_API CUresult cuImportExternalMemory(CUexternalMemory *extMem_out,
                                        const CUDA_EXTERNAL_MEMORY_HANDLE_DESC *memHandleDesc)
{
    struct sim_ctx *c;
    CUresult rc = sim_enter_ctx(&c);
    if (rc != CUDA_SUCCESS) return rc;
    const CUDA_EXTERNAL_MEMORY_HANDLE_DESC *d = memHandleDesc;
    if (!extMem_out || !d || !d->size || d->type < EXT_TYPE_OPAQUE_FD || d->type > EXT_TYPE_LAST ||
        (d->type == EXT_TYPE_OPAQUE_FD && d->handle.fd < 0))
        return CUDA_ERROR_INVALID_VALUE;
    struct sim_extmem *m = sim_obj_new(K_EXTMEM, sizeof *m);
    if (!m) return CUDA_ERROR_OUT_OF_MEMORY;
    m->dev = c->dev;
    m->fp = sim_round_up(d->size, SIM_2M);
    pthread_mutex_lock(&g_mu);
    if (sim_charge(g_slot, m->dev, SIM_USE_MEM, (int64_t)m->fp) < 0) {
        sim_obj_free(m);
        rc = CUDA_ERROR_OUT_OF_MEMORY;
    }
    pthread_mutex_unlock(&g_mu);
    if (rc == CUDA_SUCCESS) *extMem_out = (CUexternalMemory)m;
    return rc;
}

SIM_API CUresult cuDestroyExternalMemory(CUexternalMemory extMem)
{
    if (!g_inited) return CUDA_ERROR_NOT_INITIALIZED;
    pthread_mutex_lock(&g_mu);
    struct sim_extmem *m = sim_obj_get(extMem, K_EXTMEM);
    if (m) {
        sim_charge(g_slot, m->dev, SIM_USE_MEM, -(int64_t)m->fp);
        sim_obj_free(m);
    }
    pthread_mutex_unlock(&g_mu);
    return m ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}
