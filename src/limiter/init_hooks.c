/* init_hooks.c - driver start-up.
 *
 * Why this exists: cuInit is where a process that cannot read its limits is stopped (fail
 * closed) and where the node daemon's client starts (hv_client.h). (The cuGetProcAddress door
 * is hook_dispatch.c's: it hands out the wrappers that file defines.)
 */
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
