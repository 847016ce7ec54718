/* sim_cuda_proc.c - simulated driver API: cuGetProcAddress.
 *
 * Why this exists: CUDA runtimes and frameworks find driver functions through
 * cuGetProcAddress(base name, CUDA version, flags), not dlsym; an interposer must be tested
 * against that door too. The table below is the driver's knowledge: every exported variant,
 * the base name it answers to, the CUDA version that introduced it, and whether it is the
 * per-thread-default-stream flavour. VGPU_SIM_GPA_ALIASES=1 makes a few names resolve to
 * different internal functions, as real drivers sometimes do.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "sim_cuda.h"

/* X(base name, exported symbol, introduced in, per-thread variant) */
/* clang-format off */
#define SIM_GPA_TABLE(X) \
    X(cuInit, cuInit, 2000, 0) \
    X(cuDriverGetVersion, cuDriverGetVersion, 2020, 0) \
    X(cuGetErrorString, cuGetErrorString, 6000, 0) \
    X(cuGetErrorName, cuGetErrorName, 6000, 0) \
    X(cuGetProcAddress, cuGetProcAddress, 11030, 0) \
    X(cuGetProcAddress, cuGetProcAddress_v2, 12000, 0) \
    X(cuDeviceGet, cuDeviceGet, 2000, 0) \
    X(cuDeviceGetCount, cuDeviceGetCount, 2000, 0) \
    X(cuDeviceGetName, cuDeviceGetName, 2000, 0) \
    X(cuDeviceGetUuid, cuDeviceGetUuid, 9020, 0) \
    X(cuDeviceGetUuid, cuDeviceGetUuid_v2, 11040, 0) \
    X(cuDeviceTotalMem, cuDeviceTotalMem, 2000, 0) \
    X(cuDeviceTotalMem, cuDeviceTotalMem_v2, 3020, 0) \
    X(cuDeviceGetAttribute, cuDeviceGetAttribute, 2000, 0) \
    X(cuDeviceGetPCIBusId, cuDeviceGetPCIBusId, 4010, 0) \
    X(cuDevicePrimaryCtxRetain, cuDevicePrimaryCtxRetain, 7000, 0) \
    X(cuDevicePrimaryCtxRelease, cuDevicePrimaryCtxRelease, 7000, 0) \
    X(cuDevicePrimaryCtxRelease, cuDevicePrimaryCtxRelease_v2, 11000, 0) \
    X(cuDevicePrimaryCtxReset, cuDevicePrimaryCtxReset, 7000, 0) \
    X(cuDevicePrimaryCtxReset, cuDevicePrimaryCtxReset_v2, 11000, 0) \
    X(cuDevicePrimaryCtxSetFlags, cuDevicePrimaryCtxSetFlags, 7000, 0) \
    X(cuDevicePrimaryCtxSetFlags, cuDevicePrimaryCtxSetFlags_v2, 11000, 0) \
    X(cuDevicePrimaryCtxGetState, cuDevicePrimaryCtxGetState, 7000, 0) \
    X(cuCtxCreate, cuCtxCreate, 2000, 0) \
    X(cuCtxCreate, cuCtxCreate_v2, 3020, 0) \
    X(cuCtxCreate, cuCtxCreate_v3, 11040, 0) \
    X(cuCtxCreate, cuCtxCreate_v4, 12050, 0) \
    X(cuCtxDestroy, cuCtxDestroy, 2000, 0) \
    X(cuCtxDestroy, cuCtxDestroy_v2, 4000, 0) \
    X(cuCtxSetCurrent, cuCtxSetCurrent, 4000, 0) \
    X(cuCtxGetCurrent, cuCtxGetCurrent, 4000, 0) \
    X(cuCtxGetDevice, cuCtxGetDevice, 2000, 0) \
    X(cuCtxGetDevice, cuCtxGetDevice_v2, 13000, 0) \
    X(cuCtxPushCurrent, cuCtxPushCurrent, 2000, 0) \
    X(cuCtxPushCurrent, cuCtxPushCurrent_v2, 4000, 0) \
    X(cuCtxPopCurrent, cuCtxPopCurrent, 2000, 0) \
    X(cuCtxPopCurrent, cuCtxPopCurrent_v2, 4000, 0) \
    X(cuCtxSynchronize, cuCtxSynchronize, 2000, 0) \
    X(cuCtxSynchronize, cuCtxSynchronize_v2, 13000, 0) \
    X(cuCtxGetApiVersion, cuCtxGetApiVersion, 3020, 0) \
    X(cuMemAlloc, cuMemAlloc, 2000, 0) \
    X(cuMemAlloc, cuMemAlloc_v2, 3020, 0) \
    X(cuMemAllocPitch, cuMemAllocPitch, 2000, 0) \
    X(cuMemAllocPitch, cuMemAllocPitch_v2, 3020, 0) \
    X(cuMemFree, cuMemFree, 2000, 0) \
    X(cuMemFree, cuMemFree_v2, 3020, 0) \
    X(cuMemGetInfo, cuMemGetInfo, 2000, 0) \
    X(cuMemGetInfo, cuMemGetInfo_v2, 3020, 0) \
    X(cuMemGetAddressRange, cuMemGetAddressRange, 2000, 0) \
    X(cuMemGetAddressRange, cuMemGetAddressRange_v2, 3020, 0) \
    X(cuPointerGetAttribute, cuPointerGetAttribute, 4000, 0) \
    X(cuMemcpyHtoD, cuMemcpyHtoD_v2, 3020, 0) \
    X(cuMemcpyHtoD, cuMemcpyHtoD_v2_ptds, 7000, 1) \
    X(cuMemcpyDtoH, cuMemcpyDtoH_v2, 3020, 0) \
    X(cuMemcpyDtoH, cuMemcpyDtoH_v2_ptds, 7000, 1) \
    X(cuMemcpyDtoD, cuMemcpyDtoD_v2, 3020, 0) \
    X(cuMemcpyDtoD, cuMemcpyDtoD_v2_ptds, 7000, 1) \
    X(cuMemsetD8, cuMemsetD8_v2, 3020, 0) \
    X(cuMemsetD8, cuMemsetD8_v2_ptds, 7000, 1) \
    X(cuMemsetD32, cuMemsetD32_v2, 3020, 0) \
    X(cuMemsetD32, cuMemsetD32_v2_ptds, 7000, 1) \
    X(cuMemAllocHost, cuMemAllocHost, 2000, 0) \
    X(cuMemAllocHost, cuMemAllocHost_v2, 3020, 0) \
    X(cuMemFreeHost, cuMemFreeHost, 2000, 0) \
    X(cuMemAllocManaged, cuMemAllocManaged, 6000, 0) \
    X(cuMemAdvise, cuMemAdvise, 8000, 0) \
    X(cuMemAdvise, cuMemAdvise_v2, 12020, 0) \
    X(cuMemPrefetchAsync, cuMemPrefetchAsync, 8000, 0) \
    X(cuMemPrefetchAsync, cuMemPrefetchAsync_ptsz, 8000, 1) \
    X(cuMemPrefetchAsync, cuMemPrefetchAsync_v2, 12020, 0) \
    X(cuMemPrefetchAsync, cuMemPrefetchAsync_v2_ptsz, 12020, 1) \
    X(cuArrayCreate, cuArrayCreate, 2000, 0) \
    X(cuArrayCreate, cuArrayCreate_v2, 3020, 0) \
    X(cuArray3DCreate, cuArray3DCreate, 2000, 0) \
    X(cuArray3DCreate, cuArray3DCreate_v2, 3020, 0) \
    X(cuArrayDestroy, cuArrayDestroy, 2000, 0) \
    X(cuMipmappedArrayCreate, cuMipmappedArrayCreate, 5000, 0) \
    X(cuMipmappedArrayDestroy, cuMipmappedArrayDestroy, 5000, 0) \
    X(cuArrayGetMemoryRequirements, cuArrayGetMemoryRequirements, 11060, 0) \
    X(cuMipmappedArrayGetMemoryRequirements, cuMipmappedArrayGetMemoryRequirements, 11060, 0) \
    X(cuDeviceGetDefaultMemPool, cuDeviceGetDefaultMemPool, 11020, 0) \
    X(cuDeviceGetMemPool, cuDeviceGetMemPool, 11020, 0) \
    X(cuDeviceSetMemPool, cuDeviceSetMemPool, 11020, 0) \
    X(cuMemPoolCreate, cuMemPoolCreate, 11020, 0) \
    X(cuMemPoolDestroy, cuMemPoolDestroy, 11020, 0) \
    X(cuMemPoolTrimTo, cuMemPoolTrimTo, 11020, 0) \
    X(cuMemPoolSetAttribute, cuMemPoolSetAttribute, 11020, 0) \
    X(cuMemPoolGetAttribute, cuMemPoolGetAttribute, 11020, 0) \
    X(cuMemAllocAsync, cuMemAllocAsync, 11020, 0) \
    X(cuMemAllocAsync, cuMemAllocAsync_ptsz, 11020, 1) \
    X(cuMemAllocFromPoolAsync, cuMemAllocFromPoolAsync, 11020, 0) \
    X(cuMemAllocFromPoolAsync, cuMemAllocFromPoolAsync_ptsz, 11020, 1) \
    X(cuMemFreeAsync, cuMemFreeAsync, 11020, 0) \
    X(cuMemFreeAsync, cuMemFreeAsync_ptsz, 11020, 1) \
    X(cuMemGetAllocationGranularity, cuMemGetAllocationGranularity, 10020, 0) \
    X(cuMemCreate, cuMemCreate, 10020, 0) \
    X(cuMemRelease, cuMemRelease, 10020, 0) \
    X(cuMemAddressReserve, cuMemAddressReserve, 10020, 0) \
    X(cuMemAddressFree, cuMemAddressFree, 10020, 0) \
    X(cuMemMap, cuMemMap, 10020, 0) \
    X(cuMemUnmap, cuMemUnmap, 10020, 0) \
    X(cuMemSetAccess, cuMemSetAccess, 10020, 0) \
    X(cuImportExternalMemory, cuImportExternalMemory, 10000, 0) \
    X(cuDestroyExternalMemory, cuDestroyExternalMemory, 10000, 0) \
    X(cuModuleLoad, cuModuleLoad, 2000, 0) \
    X(cuModuleLoadData, cuModuleLoadData, 2000, 0) \
    X(cuModuleLoadDataEx, cuModuleLoadDataEx, 2010, 0) \
    X(cuModuleUnload, cuModuleUnload, 2000, 0) \
    X(cuModuleGetFunction, cuModuleGetFunction, 2000, 0) \
    X(cuLibraryLoadData, cuLibraryLoadData, 12000, 0) \
    X(cuLibraryUnload, cuLibraryUnload, 12000, 0) \
    X(cuLibraryGetKernel, cuLibraryGetKernel, 12000, 0) \
    X(cuKernelGetFunction, cuKernelGetFunction, 12000, 0) \
    X(cuStreamCreate, cuStreamCreate, 2000, 0) \
    X(cuStreamCreateWithPriority, cuStreamCreateWithPriority, 5050, 0) \
    X(cuStreamDestroy, cuStreamDestroy, 2000, 0) \
    X(cuStreamDestroy, cuStreamDestroy_v2, 4000, 0) \
    X(cuStreamSynchronize, cuStreamSynchronize, 2000, 0) \
    X(cuStreamSynchronize, cuStreamSynchronize_ptsz, 7000, 1) \
    X(cuStreamQuery, cuStreamQuery, 2000, 0) \
    X(cuStreamQuery, cuStreamQuery_ptsz, 7000, 1) \
    X(cuLaunchKernel, cuLaunchKernel, 4000, 0) \
    X(cuLaunchKernel, cuLaunchKernel_ptsz, 7000, 1) \
    X(cuLaunchKernelEx, cuLaunchKernelEx, 11060, 0) \
    X(cuLaunchKernelEx, cuLaunchKernelEx_ptsz, 11060, 1) \
    X(cuLaunchCooperativeKernel, cuLaunchCooperativeKernel, 9000, 0) \
    X(cuLaunchCooperativeKernel, cuLaunchCooperativeKernel_ptsz, 9000, 1) \
    X(cuLaunchCooperativeKernelMultiDevice, cuLaunchCooperativeKernelMultiDevice, 9000, 0) \
    X(cuLaunch, cuLaunch, 2000, 0) \
    X(cuLaunchGrid, cuLaunchGrid, 2000, 0) \
    X(cuLaunchGridAsync, cuLaunchGridAsync, 2000, 0) \
    X(cuEventCreate, cuEventCreate, 2000, 0) \
    X(cuEventDestroy, cuEventDestroy, 2000, 0) \
    X(cuEventDestroy, cuEventDestroy_v2, 4000, 0) \
    X(cuEventRecord, cuEventRecord, 2000, 0) \
    X(cuEventRecord, cuEventRecord_ptsz, 7000, 1) \
    X(cuEventRecordWithFlags, cuEventRecordWithFlags, 11010, 0) \
    X(cuEventRecordWithFlags, cuEventRecordWithFlags_ptsz, 11010, 1) \
    X(cuEventQuery, cuEventQuery, 2000, 0) \
    X(cuEventSynchronize, cuEventSynchronize, 2000, 0) \
    X(cuEventElapsedTime, cuEventElapsedTime, 2000, 0) \
    X(cuEventElapsedTime, cuEventElapsedTime_v2, 12080, 0) \
    X(cuGraphCreate, cuGraphCreate, 10000, 0) \
    X(cuGraphAddKernelNode, cuGraphAddKernelNode, 10000, 0) \
    X(cuGraphAddKernelNode, cuGraphAddKernelNode_v2, 12000, 0) \
    X(cuGraphInstantiate, cuGraphInstantiate, 10000, 0) \
    X(cuGraphInstantiate, cuGraphInstantiate_v2, 11000, 0) \
    X(cuGraphInstantiateWithFlags, cuGraphInstantiateWithFlags, 11040, 0) \
    X(cuGraphLaunch, cuGraphLaunch, 10000, 0) \
    X(cuGraphLaunch, cuGraphLaunch_ptsz, 10000, 1) \
    X(cuGraphExecDestroy, cuGraphExecDestroy, 10000, 0) \
    X(cuGraphDestroy, cuGraphDestroy, 10000, 0) \
    X(cuGraphAddMemAllocNode, cuGraphAddMemAllocNode, 11040, 0) \
    X(cuGraphAddMemFreeNode, cuGraphAddMemFreeNode, 11040, 0) \
    X(cuDeviceGraphMemTrim, cuDeviceGraphMemTrim, 11040, 0) \
    X(cuDeviceGetGraphMemAttribute, cuDeviceGetGraphMemAttribute, 11040, 0)
/* clang-format on */

struct gpa_row {
    const char *base;
    void *fn;
    int since, per_thread;
};
#define GPA_ROW(base, sym, since, pt) {#base, (void *)sym, since, pt},
static const struct gpa_row gpa_rows[] = {SIM_GPA_TABLE(GPA_ROW)};

/* --- aliases: same behaviour, different addresses ------------------------------------------ */

static volatile unsigned
    alias_calls; /* also keeps the compiler from folding them into the originals */
static CUresult alias_mem_get_info(size_t *free_b, size_t *total_b)
{
    alias_calls++;
    return sim_mem_get_info(free_b, total_b);
}
static CUresult alias_mem_alloc(CUdeviceptr *dptr, size_t bytesize)
{
    alias_calls++;
    return sim_mem_alloc(dptr, bytesize);
}
static CUresult alias_launch SIM_LAUNCH_PARAMS
{
    alias_calls++;
    return sim_launch(0, f, gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ, hStream);
}
static CUresult alias_launch_ptsz SIM_LAUNCH_PARAMS
{
    alias_calls++;
    return sim_launch(1, f, gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ, hStream);
}
static const struct {
    void *exported, *alias;
} gpa_aliases[] = {
    {(void *)cuMemGetInfo_v2, (void *)alias_mem_get_info},
    {(void *)cuMemAlloc_v2, (void *)alias_mem_alloc},
    {(void *)cuLaunchKernel, (void *)alias_launch},
    {(void *)cuLaunchKernel_ptsz, (void *)alias_launch_ptsz},
};

static CUresult get_proc_address(const char *symbol, void **pfn, int version, cuuint64_t flags,
                                 CUdriverProcAddressQueryResult *status)
{
    const struct gpa_row *best = NULL, *best_pt = NULL;
    int known = 0;
    if (status) *status = CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
    if (!symbol || !pfn ||
        flags > (CU_GET_PROC_ADDRESS_LEGACY_STREAM | CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM))
        return CUDA_ERROR_INVALID_VALUE;
    *pfn = NULL;
    for (size_t i = 0; i < sizeof gpa_rows / sizeof *gpa_rows; i++) {
        const struct gpa_row *r = &gpa_rows[i];
        if (strcmp(r->base, symbol) != 0) continue;
        known = 1;
        if (r->since > version) continue;
        const struct gpa_row **b = r->per_thread ? &best_pt : &best;
        if (!*b || r->since > (*b)->since) *b = r;
    }
    if ((flags & CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM) && best_pt) best = best_pt;
    if (!best) {
        if (status && known) *status = CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT;
        return CUDA_ERROR_NOT_FOUND;
    }
    void *fn = best->fn;
    const char *al = getenv("VGPU_SIM_GPA_ALIASES");
    for (size_t i = 0; al && !strcmp(al, "1") && i < sizeof gpa_aliases / sizeof *gpa_aliases; i++)
        if (gpa_aliases[i].exported == fn) fn = gpa_aliases[i].alias;
    *pfn = fn;
    if (status) *status = CU_GET_PROC_ADDRESS_SUCCESS;
    return CUDA_SUCCESS;
}

SIM_API CUresult cuGetProcAddress(const char *symbol, void **pfn, int cudaVersion, cuuint64_t flags)
{
    return get_proc_address(symbol, pfn, cudaVersion, flags, NULL);
}

SIM_API CUresult cuGetProcAddress_v2(const char *symbol, void **pfn, int cudaVersion,
                                     cuuint64_t flags, CUdriverProcAddressQueryResult *symbolStatus)
{
    return get_proc_address(symbol, pfn, cudaVersion, flags, symbolStatus);
}
