/* hook_table.h - the one list of symbols the limiter intercepts, and the driver functions it
 * calls for itself.
 *
 * Why this exists: interception happens through three doors (our exported symbols, dlsym, and
 * cuGetProcAddress); all three, the typedefs, the real-pointer slots and the exported wrappers
 * are generated from these lists (hook_dispatch.c), so adding a hook is one line here plus its
 * implementation function. A symbol that is not listed is never touched: applications resolve
 * it from the real driver.
 *
 * X(symbol, impl, params, args, since, flags)
 *   symbol  exported name in libcuda.so.1 / libnvidia-ml.so.1 (ABI variant, e.g. cuMemAlloc_v2)
 *   impl    implementation: CUresult impl(void *real, params...) ; variants share one impl
 *   params  parameter list, args the matching argument list
 *   since   CUDA version from which cuGetProcAddress("<base name>") resolves to this variant
 *           (0 for the oldest variant); used when the driver's pointer is not one we know
 *           VGPU_SINCE_BY_ADDRESS: never chosen by name, only when the driver hands out this
 *           very export (what cuGetProcAddress("cuGraphInstantiate") returns from CUDA 12 on
 *           has another signature: cuGraphInstantiateWithFlags's)
 *   flags   VGPU_HOOK_MEM: the call changes GPU memory; the wrapper brackets it so that the
 *           driver-overhead true-up only reads consistent snapshots (mem_charge.h)
 */
#define VGPU_HOOK_MEM 1
#define VGPU_SINCE_BY_ADDRESS 0x7fffffff
#ifndef VGPU_HOOK_TABLE_H
#define VGPU_HOOK_TABLE_H

#include "cuda_abi.h"
#include "../common/nvml_abi.h"

/* clang-format off */
#define VGPU_CUDA_HOOKS(X) \
    X(cuInit, hook_init, (unsigned int flags), (flags), 0, 0) \
    X(cuGetProcAddress, hook_get_proc_address_v1, (const char *symbol, void **pfn, int cudaVersion, cuuint64_t flags), (symbol, pfn, cudaVersion, flags), 0, 0) \
    X(cuGetProcAddress_v2, hook_get_proc_address_v2, (const char *symbol, void **pfn, int cudaVersion, cuuint64_t flags, CUdriverProcAddressQueryResult *symbolStatus), (symbol, pfn, cudaVersion, flags, symbolStatus), 12000, 0) \
    /* plain, pitch and managed allocations */ \
    X(cuMemAlloc_v2, hook_mem_alloc, (CUdeviceptr *dptr, size_t bytesize), (dptr, bytesize), 3020, VGPU_HOOK_MEM) \
    X(cuMemAlloc, hook_mem_alloc_v1, (CUdeviceptr_v1 *dptr, unsigned int bytesize), (dptr, bytesize), 0, VGPU_HOOK_MEM) \
    X(cuMemAllocPitch_v2, hook_mem_alloc_pitch, (CUdeviceptr *dptr, size_t *pPitch, size_t WidthInBytes, size_t Height, unsigned int ElementSizeBytes), (dptr, pPitch, WidthInBytes, Height, ElementSizeBytes), 3020, VGPU_HOOK_MEM) \
    X(cuMemAllocPitch, hook_mem_alloc_pitch_v1, (CUdeviceptr_v1 *dptr, unsigned int *pPitch, unsigned int WidthInBytes, unsigned int Height, unsigned int ElementSizeBytes), (dptr, pPitch, WidthInBytes, Height, ElementSizeBytes), 0, VGPU_HOOK_MEM) \
    X(cuMemAllocManaged, hook_mem_alloc_managed, (CUdeviceptr *dptr, size_t bytesize, unsigned int flags), (dptr, bytesize, flags), 0, VGPU_HOOK_MEM) \
    X(cuMemFree_v2, hook_mem_free, (CUdeviceptr dptr), (dptr), 3020, VGPU_HOOK_MEM) \
    X(cuMemFree, hook_mem_free_v1, (CUdeviceptr_v1 dptr), (dptr), 0, VGPU_HOOK_MEM) \
    /* arrays */ \
    X(cuArrayCreate_v2, hook_array_create, (CUarray *pHandle, const CUDA_ARRAY_DESCRIPTOR *pAllocateArray), (pHandle, pAllocateArray), 3020, VGPU_HOOK_MEM) \
    X(cuArrayCreate, hook_array_create_v1, (CUarray *pHandle, const CUDA_ARRAY_DESCRIPTOR_v1 *pAllocateArray), (pHandle, pAllocateArray), 0, VGPU_HOOK_MEM) \
    X(cuArray3DCreate_v2, hook_array3d_create, (CUarray *pHandle, const CUDA_ARRAY3D_DESCRIPTOR *pAllocateArray), (pHandle, pAllocateArray), 3020, VGPU_HOOK_MEM) \
    X(cuArray3DCreate, hook_array3d_create_v1, (CUarray *pHandle, const CUDA_ARRAY3D_DESCRIPTOR_v1 *pAllocateArray), (pHandle, pAllocateArray), 0, VGPU_HOOK_MEM) \
    X(cuArrayDestroy, hook_array_destroy, (CUarray hArray), (hArray), 0, VGPU_HOOK_MEM) \
    X(cuMipmappedArrayCreate, hook_mipmapped_array_create, (CUmipmappedArray *pHandle, const CUDA_ARRAY3D_DESCRIPTOR *pMipmappedArrayDesc, unsigned int numMipmapLevels), (pHandle, pMipmappedArrayDesc, numMipmapLevels), 0, VGPU_HOOK_MEM) \
    X(cuMipmappedArrayDestroy, hook_mipmapped_array_destroy, (CUmipmappedArray hMipmappedArray), (hMipmappedArray), 0, VGPU_HOOK_MEM) \
    /* stream-ordered allocations and pools */ \
    X(cuMemAllocAsync, hook_mem_alloc_async, (CUdeviceptr *dptr, size_t bytesize, CUstream hStream), (dptr, bytesize, hStream), 0, VGPU_HOOK_MEM) \
    X(cuMemAllocAsync_ptsz, hook_mem_alloc_async, (CUdeviceptr *dptr, size_t bytesize, CUstream hStream), (dptr, bytesize, hStream), 0, VGPU_HOOK_MEM) \
    X(cuMemAllocFromPoolAsync, hook_mem_alloc_from_pool_async, (CUdeviceptr *dptr, size_t bytesize, CUmemoryPool pool, CUstream hStream), (dptr, bytesize, pool, hStream), 0, VGPU_HOOK_MEM) \
    X(cuMemAllocFromPoolAsync_ptsz, hook_mem_alloc_from_pool_async, (CUdeviceptr *dptr, size_t bytesize, CUmemoryPool pool, CUstream hStream), (dptr, bytesize, pool, hStream), 0, VGPU_HOOK_MEM) \
    X(cuMemFreeAsync, hook_mem_free_async, (CUdeviceptr dptr, CUstream hStream), (dptr, hStream), 0, VGPU_HOOK_MEM) \
    X(cuMemFreeAsync_ptsz, hook_mem_free_async, (CUdeviceptr dptr, CUstream hStream), (dptr, hStream), 0, VGPU_HOOK_MEM) \
    X(cuMemPoolCreate, hook_mem_pool_create, (CUmemoryPool *pool, const CUmemPoolProps *poolProps), (pool, poolProps), 0, VGPU_HOOK_MEM) \
    X(cuMemPoolDestroy, hook_mem_pool_destroy, (CUmemoryPool pool), (pool), 0, VGPU_HOOK_MEM) \
    X(cuMemPoolTrimTo, hook_mem_pool_trim_to, (CUmemoryPool pool, size_t minBytesToKeep), (pool, minBytesToKeep), 0, VGPU_HOOK_MEM) \
    /* virtual memory management */ \
    X(cuMemCreate, hook_mem_create, (CUmemGenericAllocationHandle *handle, size_t size, const CUmemAllocationProp *prop, unsigned long long flags), (handle, size, prop, flags), 0, VGPU_HOOK_MEM) \
    X(cuMemRelease, hook_mem_release, (CUmemGenericAllocationHandle handle), (handle), 0, VGPU_HOOK_MEM) \
    /* imported external memory: charged to the importer */ \
    X(cuImportExternalMemory, hook_import_external_memory, (CUexternalMemory *extMem_out, const CUDA_EXTERNAL_MEMORY_HANDLE_DESC *memHandleDesc), (extMem_out, memHandleDesc), 0, VGPU_HOOK_MEM) \
    X(cuDestroyExternalMemory, hook_destroy_external_memory, (CUexternalMemory extMem), (extMem), 0, VGPU_HOOK_MEM) \
    /* graph memory nodes: charged by the graph pool's reservation (graph_mem.h) */ \
    X(cuGraphAddMemAllocNode, hook_graph_add_mem_alloc_node, (CUgraphNode *phGraphNode, CUgraph hGraph, const CUgraphNode *dependencies, size_t numDependencies, CUDA_MEM_ALLOC_NODE_PARAMS *nodeParams), (phGraphNode, hGraph, dependencies, numDependencies, nodeParams), 0, VGPU_HOOK_MEM) \
    X(cuGraphInstantiate, hook_graph_instantiate_log, (CUgraphExec *phGraphExec, CUgraph hGraph, CUgraphNode *phErrorNode, char *logBuffer, size_t bufferSize), (phGraphExec, hGraph, phErrorNode, logBuffer, bufferSize), VGPU_SINCE_BY_ADDRESS, 0) \
    X(cuGraphInstantiate_v2, hook_graph_instantiate_log, (CUgraphExec *phGraphExec, CUgraph hGraph, CUgraphNode *phErrorNode, char *logBuffer, size_t bufferSize), (phGraphExec, hGraph, phErrorNode, logBuffer, bufferSize), VGPU_SINCE_BY_ADDRESS, 0) \
    X(cuGraphInstantiateWithFlags, hook_graph_instantiate_flags, (CUgraphExec *phGraphExec, CUgraph hGraph, unsigned long long flags), (phGraphExec, hGraph, flags), 0, 0) \
    X(cuGraphInstantiateWithParams, hook_graph_instantiate_params, (CUgraphExec *phGraphExec, CUgraph hGraph, CUDA_GRAPH_INSTANTIATE_PARAMS *instantiateParams), (phGraphExec, hGraph, instantiateParams), 0, 0) \
    X(cuGraphInstantiateWithParams_ptsz, hook_graph_instantiate_params, (CUgraphExec *phGraphExec, CUgraph hGraph, CUDA_GRAPH_INSTANTIATE_PARAMS *instantiateParams), (phGraphExec, hGraph, instantiateParams), 0, 0) \
    X(cuGraphUpload, hook_graph_upload, (CUgraphExec hGraphExec, CUstream hStream), (hGraphExec, hStream), 0, 0) \
    X(cuGraphUpload_ptsz, hook_graph_upload, (CUgraphExec hGraphExec, CUstream hStream), (hGraphExec, hStream), 0, 0) \
    X(cuGraphExecDestroy, hook_graph_exec_destroy, (CUgraphExec hGraphExec), (hGraphExec), 0, 0) \
    X(cuGraphDestroy, hook_graph_destroy, (CUgraph hGraph), (hGraph), 0, 0) \
    X(cuDeviceGraphMemTrim, hook_device_graph_mem_trim, (CUdevice device), (device), 0, VGPU_HOOK_MEM) \
    /* the virtual view */ \
    X(cuMemGetInfo_v2, hook_mem_get_info, (size_t *free, size_t *total), (free, total), 3020, 0) \
    X(cuMemGetInfo, hook_mem_get_info_v1, (unsigned int *free, unsigned int *total), (free, total), 0, 0) \
    X(cuDeviceTotalMem_v2, hook_device_total_mem, (size_t *bytes, CUdevice dev), (bytes, dev), 3020, 0) \
    X(cuDeviceTotalMem, hook_device_total_mem_v1, (unsigned int *bytes, CUdevice dev), (bytes, dev), 0, 0) \
    /* submissions of GPU work: the compute gate */ \
    X(cuLaunchKernel, hook_launch_kernel, (CUfunction f, unsigned int gridDimX, unsigned int gridDimY, unsigned int gridDimZ, unsigned int blockDimX, unsigned int blockDimY, unsigned int blockDimZ, unsigned int sharedMemBytes, CUstream hStream, void **kernelParams, void **extra), (f, gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ, sharedMemBytes, hStream, kernelParams, extra), 0, 0) \
    X(cuLaunchKernel_ptsz, hook_launch_kernel, (CUfunction f, unsigned int gridDimX, unsigned int gridDimY, unsigned int gridDimZ, unsigned int blockDimX, unsigned int blockDimY, unsigned int blockDimZ, unsigned int sharedMemBytes, CUstream hStream, void **kernelParams, void **extra), (f, gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ, sharedMemBytes, hStream, kernelParams, extra), 0, 0) \
    X(cuLaunchKernelEx, hook_launch_kernel_ex, (const CUlaunchConfig *config, CUfunction f, void **kernelParams, void **extra), (config, f, kernelParams, extra), 0, 0) \
    X(cuLaunchKernelEx_ptsz, hook_launch_kernel_ex, (const CUlaunchConfig *config, CUfunction f, void **kernelParams, void **extra), (config, f, kernelParams, extra), 0, 0) \
    X(cuLaunchCooperativeKernel, hook_launch_cooperative, (CUfunction f, unsigned int gridDimX, unsigned int gridDimY, unsigned int gridDimZ, unsigned int blockDimX, unsigned int blockDimY, unsigned int blockDimZ, unsigned int sharedMemBytes, CUstream hStream, void **kernelParams), (f, gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ, sharedMemBytes, hStream, kernelParams), 0, 0) \
    X(cuLaunchCooperativeKernel_ptsz, hook_launch_cooperative, (CUfunction f, unsigned int gridDimX, unsigned int gridDimY, unsigned int gridDimZ, unsigned int blockDimX, unsigned int blockDimY, unsigned int blockDimZ, unsigned int sharedMemBytes, CUstream hStream, void **kernelParams), (f, gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ, sharedMemBytes, hStream, kernelParams), 0, 0) \
    X(cuLaunchCooperativeKernelMultiDevice, hook_launch_cooperative_multi, (CUDA_LAUNCH_PARAMS *launchParamsList, unsigned int numDevices, unsigned int flags), (launchParamsList, numDevices, flags), 0, 0) \
    X(cuLaunch, hook_launch_legacy, (CUfunction f), (f), 0, 0) \
    X(cuLaunchGrid, hook_launch_grid, (CUfunction f, int grid_width, int grid_height), (f, grid_width, grid_height), 0, 0) \
    X(cuLaunchGridAsync, hook_launch_grid_async, (CUfunction f, int grid_width, int grid_height, CUstream hStream), (f, grid_width, grid_height, hStream), 0, 0) \
    X(cuGraphLaunch, hook_graph_launch, (CUgraphExec hGraphExec, CUstream hStream), (hGraphExec, hStream), 0, 0) \
    X(cuGraphLaunch_ptsz, hook_graph_launch, (CUgraphExec hGraphExec, CUstream hStream), (hGraphExec, hStream), 0, 0) \
    /* stream capture: captured launches do not run, and timing events are not allowed meanwhile */ \
    X(cuStreamBeginCapture, hook_begin_capture_v1, (CUstream hStream), (hStream), 0, 0) \
    X(cuStreamBeginCapture_ptsz, hook_begin_capture_v1, (CUstream hStream), (hStream), 0, 0) \
    X(cuStreamBeginCapture_v2, hook_begin_capture, (CUstream hStream, int mode), (hStream, mode), 10010, 0) \
    X(cuStreamBeginCapture_v2_ptsz, hook_begin_capture, (CUstream hStream, int mode), (hStream, mode), 10010, 0) \
    X(cuStreamBeginCaptureToGraph, hook_begin_capture_to_graph, (CUstream hStream, CUgraph hGraph, const void *dependencies, const void *dependencyData, size_t numDependencies, int mode), (hStream, hGraph, dependencies, dependencyData, numDependencies, mode), 12030, 0) \
    X(cuStreamBeginCaptureToGraph_ptsz, hook_begin_capture_to_graph, (CUstream hStream, CUgraph hGraph, const void *dependencies, const void *dependencyData, size_t numDependencies, int mode), (hStream, hGraph, dependencies, dependencyData, numDependencies, mode), 12030, 0) \
    X(cuStreamEndCapture, hook_end_capture, (CUstream hStream, CUgraph *phGraph), (hStream, phGraph), 0, 0) \
    X(cuStreamEndCapture_ptsz, hook_end_capture, (CUstream hStream, CUgraph *phGraph), (hStream, phGraph), 0, 0)

#define VGPU_NVML_HOOKS(X) \
    X(nvmlInit, hook_nvml_init, (void), (), 0, 0) \
    X(nvmlInit_v2, hook_nvml_init, (void), (), 0, 0) \
    X(nvmlInitWithFlags, hook_nvml_init_with_flags, (unsigned int flags), (flags), 0, 0) \
    X(nvmlDeviceGetMemoryInfo, hook_nvml_memory_info, (nvmlDevice_t device, nvmlMemory_t *memory), (device, memory), 0, 0) \
    X(nvmlDeviceGetMemoryInfo_v2, hook_nvml_memory_info_v2, (nvmlDevice_t device, nvmlMemory_v2_t *memory), (device, memory), 0, 0) \
    X(nvmlDeviceGetConfComputeProtectedMemoryUsage, hook_nvml_memory_info, (nvmlDevice_t device, nvmlMemory_t *memory), (device, memory), 0, 0) \
    X(nvmlDeviceGetComputeRunningProcesses, hook_nvml_processes_v1, (nvmlDevice_t device, unsigned int *infoCount, nvmlProcessInfo_v1_t *infos), (device, infoCount, infos), 0, 0) \
    X(nvmlDeviceGetComputeRunningProcesses_v2, hook_nvml_processes, (nvmlDevice_t device, unsigned int *infoCount, nvmlProcessInfo_t *infos), (device, infoCount, infos), 0, 0) \
    X(nvmlDeviceGetComputeRunningProcesses_v3, hook_nvml_processes, (nvmlDevice_t device, unsigned int *infoCount, nvmlProcessInfo_t *infos), (device, infoCount, infos), 0, 0) \
    X(nvmlDeviceGetGraphicsRunningProcesses, hook_nvml_processes_v1, (nvmlDevice_t device, unsigned int *infoCount, nvmlProcessInfo_v1_t *infos), (device, infoCount, infos), 0, 0) \
    X(nvmlDeviceGetGraphicsRunningProcesses_v2, hook_nvml_processes, (nvmlDevice_t device, unsigned int *infoCount, nvmlProcessInfo_t *infos), (device, infoCount, infos), 0, 0) \
    X(nvmlDeviceGetGraphicsRunningProcesses_v3, hook_nvml_processes, (nvmlDevice_t device, unsigned int *infoCount, nvmlProcessInfo_t *infos), (device, infoCount, infos), 0, 0) \
    X(nvmlDeviceGetMPSComputeRunningProcesses, hook_nvml_processes_v1, (nvmlDevice_t device, unsigned int *infoCount, nvmlProcessInfo_v1_t *infos), (device, infoCount, infos), 0, 0) \
    X(nvmlDeviceGetMPSComputeRunningProcesses_v2, hook_nvml_processes, (nvmlDevice_t device, unsigned int *infoCount, nvmlProcessInfo_t *infos), (device, infoCount, infos), 0, 0) \
    X(nvmlDeviceGetMPSComputeRunningProcesses_v3, hook_nvml_processes, (nvmlDevice_t device, unsigned int *infoCount, nvmlProcessInfo_t *infos), (device, infoCount, infos), 0, 0)

/* Driver functions the limiter calls for itself but does not intercept. H(symbol, ret, params) */
#define VGPU_CUDA_HELPERS(H) \
    H(cuCtxGetDevice, CUresult, (CUdevice *device)) \
    H(cuDeviceGet, CUresult, (CUdevice *device, int ordinal)) \
    H(cuDeviceGetCount, CUresult, (int *count)) \
    H(cuDeviceGetUuid, CUresult, (CUuuid *uuid, CUdevice dev)) \
    H(cuDeviceGetMemPool, CUresult, (CUmemoryPool *pool, CUdevice dev)) \
    H(cuMemPoolGetAttribute, CUresult, (CUmemoryPool pool, CUmemPool_attribute attr, void *value)) \
    H(cuArrayGetMemoryRequirements, CUresult, (CUDA_ARRAY_MEMORY_REQUIREMENTS *req, CUarray array, CUdevice device)) \
    H(cuMipmappedArrayGetMemoryRequirements, CUresult, (CUDA_ARRAY_MEMORY_REQUIREMENTS *req, CUmipmappedArray mipmap, CUdevice device)) \
    H(cuMemAdvise_v2, CUresult, (CUdeviceptr devPtr, size_t count, CUmem_advise advice, CUmemLocation location)) \
    H(cuMemAdvise, CUresult, (CUdeviceptr devPtr, size_t count, CUmem_advise advice, CUdevice device)) \
    H(cuStreamSynchronize, CUresult, (CUstream hStream)) \
    H(cuPointerGetAttribute, CUresult, (void *data, CUpointer_attribute attribute, CUdeviceptr ptr)) \
    H(cuCtxGetCurrent, CUresult, (CUcontext *ctx)) \
    H(cuStreamIsCapturing, CUresult, (CUstream hStream, int *status)) \
    H(cuEventCreate, CUresult, (CUevent *event, unsigned int flags)) \
    H(cuEventRecord, CUresult, (CUevent event, CUstream hStream)) \
    H(cuEventQuery, CUresult, (CUevent event)) \
    H(cuEventElapsedTime, CUresult, (float *ms, CUevent start, CUevent end)) \
    H(cuEventDestroy_v2, CUresult, (CUevent event)) \
    H(cuStreamQuery, CUresult, (CUstream hStream)) \
    H(cuDeviceGetGraphMemAttribute, CUresult, (CUdevice device, CUgraphMem_attribute attr, void *value))

#define VGPU_NVML_HELPERS(H) \
    H(nvmlDeviceGetUUID, nvmlReturn_t, (nvmlDevice_t device, char *uuid, unsigned int length)) \
    H(nvmlDeviceGetHandleByUUID, nvmlReturn_t, (const char *uuid, nvmlDevice_t *device)) \
    H(nvmlDeviceGetIndex, nvmlReturn_t, (nvmlDevice_t device, unsigned int *index)) \
    H(nvmlDeviceGetUtilizationRates, nvmlReturn_t, (nvmlDevice_t device, nvmlUtilization_t *utilization)) \
    H(nvmlDeviceGetSamples, nvmlReturn_t, (nvmlDevice_t device, nvmlSamplingType_t type, unsigned long long lastSeenTimeStamp, nvmlValueType_t *valueType, unsigned int *count, nvmlSample_t *samples)) \
    H(nvmlDeviceGetProcessUtilization, nvmlReturn_t, (nvmlDevice_t device, nvmlProcessUtilizationSample_t *utilization, unsigned int *count, unsigned long long lastSeenTimeStamp)) \
    H(nvmlDeviceGetPowerUsage, nvmlReturn_t, (nvmlDevice_t device, unsigned int *milliwatts)) \
    H(nvmlDeviceGetEnforcedPowerLimit, nvmlReturn_t, (nvmlDevice_t device, unsigned int *milliwatts))

/* Driver entry points that look like allocations or submissions by name (the classes of
 * `vgpu driver-check`, src/cli/driver_check.c) but were reviewed and need no hook.
 * R(pattern, reason): pattern is matched against the name without its _vN/_ptsz/_ptds
 * suffixes; a trailing '*' matches any name it starts. A new driver entry point in these
 * classes that is neither hooked above nor listed here is what driver-check reports. */
#define VGPU_DRIVER_REVIEWED(R) \
    R("cuMemcpy*", "copies between memory that is already charged") \
    R("cuMemset*", "writes memory that is already charged") \
    R("cuMemHost*", "page-locked host memory, not GPU memory") \
    R("cuMemAllocHost", "page-locked host memory, not GPU memory") \
    R("cuMemFreeHost", "page-locked host memory, not GPU memory") \
    R("cuMemGetAddressRange", "a query") \
    R("cuMemGetAllocationGranularity", "a query") \
    R("cuMemGetAllocationPropertiesFromHandle", "a query") \
    R("cuMemGetAccess", "a query") \
    R("cuMemGetHandleForAddressRange", "a query on charged memory") \
    R("cuMemGetDefaultMemPool", "a query") \
    R("cuMemGetMemPool", "a query") \
    R("cuMemRangeGetAttribute*", "a query") \
    R("cuMemPoolGet*", "a query") \
    R("cuArrayGet*", "a query") \
    R("cuArray3DGetDescriptor", "a query") \
    R("cuMipmappedArrayGet*", "a query, or a level of an array already charged") \
    R("cuMemAddressReserve", "virtual address space only") \
    R("cuMemAddressFree", "virtual address space only") \
    R("cuMemMap", "maps memory charged at cuMemCreate") \
    R("cuMemUnmap", "unmaps memory charged until cuMemRelease") \
    R("cuMemMapArrayAsync", "maps memory charged at cuMemCreate") \
    R("cuMemSetAccess", "access rights of mapped memory") \
    R("cuMemRetainAllocationHandle", "a handle of memory already charged") \
    R("cuMemExportToShareableHandle", "exports memory already charged") \
    R("cuMemImportFromShareableHandle", "memory the exporting process was charged for") \
    R("cuExternalMemoryGetMapped*", "a view of imported memory, charged at cuImportExternalMemory") \
    R("cuMemGetAttribute", "a deprecated query, in no current cuda.h") \
    R("cuMemBatchDecompressAsync", "decompresses into memory already charged, on the copy engines") \
    R("cuMemPoolSetAttribute", "settings; the pool's reservation is trued up at allocation") \
    R("cuMemPoolSetAccess", "access rights of a pool") \
    R("cuMemSetMemPool", "selects a pool; charged by its reservation") \
    R("cuMemPoolExport*", "exports a pool already charged") \
    R("cuMemPoolImport*", "memory the exporting process was charged for") \
    R("cuMemPrefetch*", "moves managed memory charged at allocation") \
    R("cuMemAdvise", "hints for managed memory charged at allocation") \
    R("cuMemDiscard*", "managed memory charged at allocation") \
    R("cuIpcGetMemHandle", "exports memory already charged") \
    R("cuIpcOpenMemHandle", "memory the exporting process was charged for") \
    R("cuIpcCloseMemHandle", "memory the exporting process was charged for") \
    R("cuIpcGetEventHandle", "events, no memory") \
    R("cuIpcOpenEventHandle", "events, no memory") \
    R("cuGraphAddMemcpyNode", "a copy node: no memory of its own") \
    R("cuGraphMemcpyNode*", "a copy node: no memory of its own") \
    R("cuGraphExecMemcpyNode*", "a copy node: no memory of its own") \
    R("cuGraphAddMemsetNode", "a set node: no memory of its own") \
    R("cuGraphMemsetNode*", "a set node: no memory of its own") \
    R("cuGraphExecMemsetNode*", "a set node: no memory of its own") \
    R("cuGraphAddBatchMemOpNode", "memory operations: no memory of their own") \
    R("cuGraphBatchMemOpNode*", "memory operations: no memory of their own") \
    R("cuGraphExecBatchMemOpNode*", "memory operations: no memory of their own") \
    R("cuGraphMemAllocNodeGetParams", "a query") \
    R("cuGraphAddMemFreeNode", "gives memory back to the graph pool, which stays charged until trimmed") \
    R("cuGraphMemFreeNodeGetParams", "a query") \
    R("cuDeviceGetGraphMemAttribute", "a query") \
    R("cuDeviceSetGraphMemAttribute", "resets the driver's high-water marks") \
    R("cuLaunchHostFunc", "runs on the CPU") \
    R("nvmlDeviceGetBAR1MemoryInfo", "the BAR1 aperture for CPU mappings, not GPU memory use")
/* clang-format on */

/* Symbol ids: VGPU_SYM_<symbol> for hooks, VGPU_HELPER_<symbol> for helpers. */
#define VGPU_ENUM_HOOK(sym, impl, params, args, since, flags) VGPU_SYM_##sym,
enum vgpu_sym { VGPU_CUDA_HOOKS(VGPU_ENUM_HOOK) VGPU_SYM_CUDA_END, VGPU_NVML_HOOKS(VGPU_ENUM_HOOK) VGPU_SYM_COUNT };
#undef VGPU_ENUM_HOOK
#define VGPU_ENUM_HELPER(sym, ret, params) VGPU_HELPER_##sym,
enum vgpu_helper { VGPU_CUDA_HELPERS(VGPU_ENUM_HELPER) VGPU_HELPER_CUDA_END, VGPU_NVML_HELPERS(VGPU_ENUM_HELPER) VGPU_HELPER_COUNT };
#undef VGPU_ENUM_HELPER

/* Function-pointer types: vgpu_fn_<symbol>, vgpu_helper_fn_<symbol>. */
#define VGPU_TYPEDEF_CUDA(sym, impl, params, args, since, flags) typedef CUresult(*vgpu_fn_##sym) params;
#define VGPU_TYPEDEF_NVML(sym, impl, params, args, since, flags) typedef nvmlReturn_t(*vgpu_fn_##sym) params;
#define VGPU_TYPEDEF_HELPER(sym, ret, params) typedef ret(*vgpu_helper_fn_##sym) params;
VGPU_CUDA_HOOKS(VGPU_TYPEDEF_CUDA)
VGPU_NVML_HOOKS(VGPU_TYPEDEF_NVML)
VGPU_CUDA_HELPERS(VGPU_TYPEDEF_HELPER)
VGPU_NVML_HELPERS(VGPU_TYPEDEF_HELPER)
#undef VGPU_TYPEDEF_CUDA
#undef VGPU_TYPEDEF_NVML
#undef VGPU_TYPEDEF_HELPER

/* Call an implementation with the real entry point first: VGPU_CALL(impl, real, (a, b)) is
 * impl(real, a, b) and VGPU_CALL(impl, real, ()) is impl(real). */
#define VGPU_UNPAREN(...) __VA_ARGS__
#define VGPU_CALL(impl, real, args) VGPU_CALL2_(impl, real, VGPU_UNPAREN args)
#define VGPU_CALL2_(impl, real, ...) impl(real __VA_OPT__(, ) __VA_ARGS__)

#endif
