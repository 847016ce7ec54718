/* init_hooks.c - driver start-up and the cuGetProcAddress door.
 *
 * Why this exists: cuInit is where a process that cannot read its limits is stopped (fail
 * closed) and where the node daemon's client starts (hv_client.h), and cuGetProcAddress is how the
 * CUDA runtime (PyTorch, JAX) fetches every driver function: each answer is passed through
 * vgpu_wrap_proc so that hooked entry points come back as our wrappers, for every version and
 * stream flavour asked for.
 */
#include "hook_dispatch.h"
#include "hooks.h"
#include "hv_client.h"
#include "limiter.h"
#include "log.h"

CUresult hook_init(void *real, unsigned int flags)
{
    if (vgpu_check_config()) return CUDA_ERROR_INVALID_VALUE;
    CUresult r = ((vgpu_fn_cuInit)real)(flags);
    /* with a node daemon: register (1 s at most) before the application gets a GPU */
    if (r == CUDA_SUCCESS && vgpu_g.cfg.hv_on) vgpu_hv_start();
    return r;
}

CUresult hook_get_proc_address_v1(void *real, const char *symbol, void **pfn, int cudaVersion,
                                  cuuint64_t flags)
{
    CUresult r = ((vgpu_fn_cuGetProcAddress)real)(symbol, pfn, cudaVersion, flags);
    if (r == CUDA_SUCCESS && symbol && pfn && *pfn)
        *pfn = vgpu_wrap_proc(symbol, *pfn, cudaVersion, flags);
    return r;
}

CUresult hook_get_proc_address_v2(void *real, const char *symbol, void **pfn, int cudaVersion,
                                  cuuint64_t flags, CUdriverProcAddressQueryResult *symbolStatus)
{
    CUresult r = ((vgpu_fn_cuGetProcAddress_v2)real)(symbol, pfn, cudaVersion, flags, symbolStatus);
    if (r == CUDA_SUCCESS && symbol && pfn && *pfn)
        *pfn = vgpu_wrap_proc(symbol, *pfn, cudaVersion, flags);
    return r;
}
