/* launch_hooks.c - every submission of GPU work passes the compute gate here.
 *
 * Why this exists: kernels, cooperative kernels, cuLaunchKernelEx and CUDA graphs are the ways
 * work reaches the GPU (the legacy and multi-device launches: launch_legacy.c). Each is charged
 * its measured GPU time (cost_model.c) against the pod's share (compute_gate.c) before it is
 * submitted; a few of them are timed with events. A process whose configuration cannot be read
 * submits nothing. Stream captures are tracked, since captured launches do not run.
 */
#include "graph_mem.h"
#include "hooks.h"
#include "launch_gate.h"

CUresult hook_launch_kernel(void *real, CUfunction f, unsigned int gx, unsigned int gy,
                            unsigned int gz, unsigned int bx, unsigned int by, unsigned int bz,
                            unsigned int shmem, CUstream hStream, void **params, void **extra)
{
    if (VGPU_LAUNCH_REFUSED()) return vgpu_check_config(), CUDA_ERROR_INVALID_VALUE;
    struct vgpu_sample smp;
    int pt = vgpu_launch_per_thread(real, VGPU_SYM_cuLaunchKernel_ptsz);
    vgpu_launch_gate(vgpu_cost_key_kernel(f, (uint64_t)gx * gy * gz), hStream, pt, &smp);
    CUresult r =
        ((vgpu_fn_cuLaunchKernel)real)(f, gx, gy, gz, bx, by, bz, shmem, hStream, params, extra);
    return vgpu_launch_done(r, &smp, hStream, pt);
}

CUresult hook_launch_kernel_ex(void *real, const CUlaunchConfig *config, CUfunction f,
                               void **params, void **extra)
{
    if (VGPU_LAUNCH_REFUSED()) return vgpu_check_config(), CUDA_ERROR_INVALID_VALUE;
    struct vgpu_sample smp = {.slot = -1};
    int pt = vgpu_launch_per_thread(real, VGPU_SYM_cuLaunchKernelEx_ptsz);
    CUstream s = config ? config->hStream : NULL;
    if (config)
        vgpu_launch_gate(vgpu_cost_key_kernel(f, (uint64_t)config->gridDimX * config->gridDimY *
                                                     config->gridDimZ),
                         s, pt, &smp);
    CUresult r = ((vgpu_fn_cuLaunchKernelEx)real)(config, f, params, extra);
    return vgpu_launch_done(r, &smp, s, pt);
}

CUresult hook_launch_cooperative(void *real, CUfunction f, unsigned int gx, unsigned int gy,
                                 unsigned int gz, unsigned int bx, unsigned int by, unsigned int bz,
                                 unsigned int shmem, CUstream hStream, void **params)
{
    if (VGPU_LAUNCH_REFUSED()) return vgpu_check_config(), CUDA_ERROR_INVALID_VALUE;
    struct vgpu_sample smp;
    int pt = vgpu_launch_per_thread(real, VGPU_SYM_cuLaunchCooperativeKernel_ptsz);
    vgpu_launch_gate(vgpu_cost_key_kernel(f, (uint64_t)gx * gy * gz), hStream, pt, &smp);
    CUresult r = ((vgpu_fn_cuLaunchCooperativeKernel)real)(f, gx, gy, gz, bx, by, bz, shmem,
                                                           hStream, params);
    return vgpu_launch_done(r, &smp, hStream, pt);
}

CUresult hook_graph_launch(void *real, CUgraphExec exec, CUstream hStream)
{
    if (VGPU_LAUNCH_REFUSED()) return vgpu_check_config(), CUDA_ERROR_INVALID_VALUE;
    struct vgpu_sample smp;
    struct vgpu_graph_charge gc; /* memory nodes allocate when the graph runs */
    CUresult r = vgpu_graph_mem_before(exec, &gc);
    if (r != CUDA_SUCCESS) return r;
    int pt = vgpu_launch_per_thread(real, VGPU_SYM_cuGraphLaunch_ptsz);
    vgpu_launch_gate(vgpu_cost_key_graph(exec), hStream, pt, &smp);
    r = ((vgpu_fn_cuGraphLaunch)real)(exec, hStream);
    vgpu_graph_mem_after(&gc);
    return vgpu_launch_done(r, &smp, hStream, pt);
}

static CUresult began(CUresult r)
{
    if (r == CUDA_SUCCESS) vgpu_capture_begin();
    return r;
}

CUresult hook_begin_capture_v1(void *real, CUstream hStream)
{
    return began(((vgpu_fn_cuStreamBeginCapture)real)(hStream));
}

CUresult hook_begin_capture(void *real, CUstream hStream, int mode)
{
    return began(((vgpu_fn_cuStreamBeginCapture_v2)real)(hStream, mode));
}

CUresult hook_begin_capture_to_graph(void *real, CUstream hStream, CUgraph hGraph,
                                     const void *dependencies, const void *dependencyData,
                                     size_t numDependencies, int mode)
{
    return began(((vgpu_fn_cuStreamBeginCaptureToGraph)real)(
        hStream, hGraph, dependencies, dependencyData, numDependencies, mode));
}

CUresult hook_end_capture(void *real, CUstream hStream, CUgraph *phGraph)
{
    CUresult r = ((vgpu_fn_cuStreamEndCapture)real)(hStream, phGraph);
    /* the capture is over whether it produced a graph or was invalidated; it goes on only if
     * the stream was not capturing at all or this is not the capturing thread */
    if (r != CUDA_ERROR_INVALID_VALUE && r != CUDA_ERROR_STREAM_CAPTURE_WRONG_THREAD)
        vgpu_capture_end();
    return r;
}
