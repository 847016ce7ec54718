/* launch_hooks.c - every submission of GPU work passes here (the compute gate's place).
 *
 * Why this exists: kernels, cooperative kernels, cuLaunchKernelEx and CUDA graphs are the ways
 * work reaches the GPU; a process whose configuration cannot be read submits none. The path is
 * kept to one relaxed load and a predictable branch before the real call.
 */
#include "hook_dispatch.h"
#include "hooks.h"
#include "limiter.h"

#define REFUSED() __builtin_expect(vgpu_failed_closed(), 0)

CUresult hook_launch_kernel(void *real, CUfunction f, unsigned int gx, unsigned int gy,
                            unsigned int gz, unsigned int bx, unsigned int by, unsigned int bz,
                            unsigned int shmem, CUstream hStream, void **params, void **extra)
{
    if (REFUSED()) return vgpu_check_config(), CUDA_ERROR_INVALID_VALUE;
    return ((vgpu_fn_cuLaunchKernel)real)(f, gx, gy, gz, bx, by, bz, shmem, hStream, params, extra);
}

CUresult hook_launch_kernel_ex(void *real, const CUlaunchConfig *config, CUfunction f,
                               void **params, void **extra)
{
    if (REFUSED()) return vgpu_check_config(), CUDA_ERROR_INVALID_VALUE;
    return ((vgpu_fn_cuLaunchKernelEx)real)(config, f, params, extra);
}

CUresult hook_launch_cooperative(void *real, CUfunction f, unsigned int gx, unsigned int gy,
                                 unsigned int gz, unsigned int bx, unsigned int by,
                                 unsigned int bz, unsigned int shmem, CUstream hStream,
                                 void **params)
{
    if (REFUSED()) return vgpu_check_config(), CUDA_ERROR_INVALID_VALUE;
    return ((vgpu_fn_cuLaunchCooperativeKernel)real)(f, gx, gy, gz, bx, by, bz, shmem, hStream, params);
}

CUresult hook_graph_launch(void *real, CUgraphExec exec, CUstream hStream)
{
    if (REFUSED()) return vgpu_check_config(), CUDA_ERROR_INVALID_VALUE;
    return ((vgpu_fn_cuGraphLaunch)real)(exec, hStream);
}
