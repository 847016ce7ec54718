/* launch_legacy.c - the launch entry points older than cuLaunchKernel, and the multi-device
 * cooperative launch, through the same compute gate.
 *
 * Why this exists: the driver still exports cuLaunch, cuLaunchGrid and cuLaunchGridAsync (the
 * pre-CUDA-4 API, parameters set with cuParamSet*) and cuLaunchCooperativeKernelMultiDevice
 * (deprecated since CUDA 11.3); an application that calls them would otherwise run unlimited
 * work under a limit. They are kept apart from launch_hooks.c, which holds the paths every
 * current application takes.
 */
#include <stdatomic.h>

#include "hooks.h"
#include "launch_gate.h"
#include "log.h"

/* the driver rejects negative grids; the key only has to tell grids apart */
static uint64_t grid_blocks(int w, int h)
{
    return (uint64_t)(unsigned)w * (unsigned)h;
}

/* None of these has a per-thread-stream variant: stream 0 is the legacy stream. */
CUresult hook_launch_legacy(void *real, CUfunction f)
{
    if (VGPU_LAUNCH_REFUSED()) return vgpu_check_config(), CUDA_ERROR_INVALID_VALUE;
    struct vgpu_sample smp;
    vgpu_launch_gate(vgpu_cost_key_kernel(f, 1), NULL, 0, &smp);
    return vgpu_launch_done(((vgpu_fn_cuLaunch)real)(f), &smp, NULL, 0);
}

CUresult hook_launch_grid(void *real, CUfunction f, int grid_width, int grid_height)
{
    if (VGPU_LAUNCH_REFUSED()) return vgpu_check_config(), CUDA_ERROR_INVALID_VALUE;
    struct vgpu_sample smp;
    vgpu_launch_gate(vgpu_cost_key_kernel(f, grid_blocks(grid_width, grid_height)), NULL, 0, &smp);
    CUresult r = ((vgpu_fn_cuLaunchGrid)real)(f, grid_width, grid_height);
    return vgpu_launch_done(r, &smp, NULL, 0);
}

CUresult hook_launch_grid_async(void *real, CUfunction f, int grid_width, int grid_height,
                                CUstream hStream)
{
    if (VGPU_LAUNCH_REFUSED()) return vgpu_check_config(), CUDA_ERROR_INVALID_VALUE;
    struct vgpu_sample smp;
    vgpu_launch_gate(vgpu_cost_key_kernel(f, grid_blocks(grid_width, grid_height)), hStream, 0,
                     &smp);
    CUresult r = ((vgpu_fn_cuLaunchGridAsync)real)(f, grid_width, grid_height, hStream);
    return vgpu_launch_done(r, &smp, hStream, 0);
}

static _Atomic int multi_warned;

/* One device: a cooperative launch of its entry, gated like cuLaunchCooperativeKernel. Several:
 * the gate charges the GPU of the current context only, so under a compute gate the launch is
 * refused rather than run unlimited on the others (fail closed); without one it passes. */
CUresult hook_launch_cooperative_multi(void *real, CUDA_LAUNCH_PARAMS *list,
                                       unsigned int numDevices, unsigned int flags)
{
    vgpu_fn_cuLaunchCooperativeKernelMultiDevice fn =
        (vgpu_fn_cuLaunchCooperativeKernelMultiDevice)real;
    if (VGPU_LAUNCH_REFUSED()) return vgpu_check_config(), CUDA_ERROR_INVALID_VALUE;
    if (!list || !numDevices) return fn(list, numDevices, flags); /* the driver's error */
    if (numDevices > 1) {
        if (!vgpu_g.cfg.gate_on) return fn(list, numDevices, flags);
        if (!atomic_exchange(&multi_warned, 1))
            VLOG_WARN("cuLaunchCooperativeKernelMultiDevice over %u GPUs is refused under a "
                      "compute limit (CUDA_ERROR_NOT_SUPPORTED): launch on each GPU with "
                      "cuLaunchCooperativeKernel (the multi-device call is deprecated since "
                      "CUDA 11.3)",
                      numDevices);
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    const CUDA_LAUNCH_PARAMS *l = &list[0];
    struct vgpu_sample smp;
    uint64_t blocks = (uint64_t)l->gridDimX * l->gridDimY * l->gridDimZ;
    vgpu_launch_gate(vgpu_cost_key_kernel(l->function, blocks), l->hStream, 0, &smp);
    return vgpu_launch_done(fn(list, numDevices, flags), &smp, l->hStream, 0);
}
