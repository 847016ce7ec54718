/* sim_api.h - prototypes of every function the simulated libcuda.so.1 / libnvidia-ml.so.1 export.
 *
 * Why this exists: the definitions are spread over several files and cuGetProcAddress takes
 * their addresses in another; one list of prototypes (signatures as in the CUDA 13 cuda.h and
 * nvml.h, legacy variants included) keeps them consistent, and the test uses it to type the
 * pointers it gets from dlsym.
 */
#ifndef VGPU_SIM_API_H
#define VGPU_SIM_API_H

#include "sim_abi_extra.h"

#define P(name, params) SIM_API CUresult name params;
#define SIM_LAUNCH_PARAMS                                                                          \
    (CUfunction f, unsigned int gridDimX, unsigned int gridDimY, unsigned int gridDimZ,            \
     unsigned int blockDimX, unsigned int blockDimY, unsigned int blockDimZ,                       \
     unsigned int sharedMemBytes, CUstream hStream, void **kernelParams, void **extra)
#define SIM_COOP_PARAMS                                                                            \
    (CUfunction f, unsigned int gridDimX, unsigned int gridDimY, unsigned int gridDimZ,            \
     unsigned int blockDimX, unsigned int blockDimY, unsigned int blockDimZ,                       \
     unsigned int sharedMemBytes, CUstream hStream, void **kernelParams)
#define SIM_GI_PARAMS                                                                              \
    (CUgraphExec * phGraphExec, CUgraph hGraph, CUgraphNode * phErrorNode, char *logBuffer,        \
     size_t bufferSize)

/* clang-format off */
/* init, errors, proc address */
P(cuInit, (unsigned int Flags))
P(cuDriverGetVersion, (int *driverVersion))
P(cuGetErrorString, (CUresult error, const char **pStr))
P(cuGetErrorName, (CUresult error, const char **pStr))
P(cuGetProcAddress, (const char *symbol, void **pfn, int cudaVersion, cuuint64_t flags))
P(cuGetProcAddress_v2, (const char *symbol, void **pfn, int cudaVersion, cuuint64_t flags, CUdriverProcAddressQueryResult *symbolStatus))
/* devices */
P(cuDeviceGet, (CUdevice *device, int ordinal))
P(cuDeviceGetCount, (int *count))
P(cuDeviceGetName, (char *name, int len, CUdevice dev))
P(cuDeviceGetUuid, (CUuuid *uuid, CUdevice dev))
P(cuDeviceGetUuid_v2, (CUuuid *uuid, CUdevice dev))
P(cuDeviceTotalMem, (unsigned int *bytes, CUdevice dev))
P(cuDeviceTotalMem_v2, (size_t *bytes, CUdevice dev))
P(cuDeviceGetAttribute, (int *pi, CUdevice_attribute attrib, CUdevice dev))
P(cuDeviceGetPCIBusId, (char *pciBusId, int len, CUdevice dev))
/* contexts */
P(cuDevicePrimaryCtxRetain, (CUcontext *pctx, CUdevice dev))
P(cuDevicePrimaryCtxRelease, (CUdevice dev))
P(cuDevicePrimaryCtxRelease_v2, (CUdevice dev))
P(cuDevicePrimaryCtxReset, (CUdevice dev))
P(cuDevicePrimaryCtxReset_v2, (CUdevice dev))
P(cuDevicePrimaryCtxSetFlags, (CUdevice dev, unsigned int flags))
P(cuDevicePrimaryCtxSetFlags_v2, (CUdevice dev, unsigned int flags))
P(cuDevicePrimaryCtxGetState, (CUdevice dev, unsigned int *flags, int *active))
P(cuCtxCreate, (CUcontext *pctx, unsigned int flags, CUdevice dev))
P(cuCtxCreate_v2, (CUcontext *pctx, unsigned int flags, CUdevice dev))
P(cuCtxCreate_v3, (CUcontext *pctx, CUexecAffinityParam *paramsArray, int numParams, unsigned int flags, CUdevice dev))
P(cuCtxCreate_v4, (CUcontext *pctx, CUctxCreateParams *ctxCreateParams, unsigned int flags, CUdevice dev))
P(cuCtxDestroy, (CUcontext ctx))
P(cuCtxDestroy_v2, (CUcontext ctx))
P(cuCtxSetCurrent, (CUcontext ctx))
P(cuCtxGetCurrent, (CUcontext *pctx))
P(cuCtxGetDevice, (CUdevice *device))
P(cuCtxGetDevice_v2, (CUdevice *device, CUcontext ctx))
P(cuCtxPushCurrent, (CUcontext ctx))
P(cuCtxPushCurrent_v2, (CUcontext ctx))
P(cuCtxPopCurrent, (CUcontext *pctx))
P(cuCtxPopCurrent_v2, (CUcontext *pctx))
P(cuCtxSynchronize, (void))
P(cuCtxSynchronize_v2, (CUcontext ctx))
P(cuCtxGetApiVersion, (CUcontext ctx, unsigned int *version))
/* memory */
P(cuMemAlloc, (CUdeviceptr_v1 *dptr, unsigned int bytesize))
P(cuMemAlloc_v2, (CUdeviceptr *dptr, size_t bytesize))
P(cuMemAllocPitch, (CUdeviceptr_v1 *dptr, unsigned int *pPitch, unsigned int WidthInBytes, unsigned int Height, unsigned int ElementSizeBytes))
P(cuMemAllocPitch_v2, (CUdeviceptr *dptr, size_t *pPitch, size_t WidthInBytes, size_t Height, unsigned int ElementSizeBytes))
P(cuMemFree, (CUdeviceptr_v1 dptr))
P(cuMemFree_v2, (CUdeviceptr dptr))
P(cuMemGetInfo, (unsigned int *free, unsigned int *total))
P(cuMemGetInfo_v2, (size_t *free, size_t *total))
P(cuMemGetAddressRange, (CUdeviceptr_v1 *pbase, unsigned int *psize, CUdeviceptr_v1 dptr))
P(cuMemGetAddressRange_v2, (CUdeviceptr *pbase, size_t *psize, CUdeviceptr dptr))
P(cuPointerGetAttribute, (void *data, CUpointer_attribute attribute, CUdeviceptr ptr))
P(cuMemcpyHtoD_v2, (CUdeviceptr dstDevice, const void *srcHost, size_t ByteCount))
P(cuMemcpyHtoD_v2_ptds, (CUdeviceptr dstDevice, const void *srcHost, size_t ByteCount))
P(cuMemcpyDtoH_v2, (void *dstHost, CUdeviceptr srcDevice, size_t ByteCount))
P(cuMemcpyDtoH_v2_ptds, (void *dstHost, CUdeviceptr srcDevice, size_t ByteCount))
P(cuMemcpyDtoD_v2, (CUdeviceptr dstDevice, CUdeviceptr srcDevice, size_t ByteCount))
P(cuMemcpyDtoD_v2_ptds, (CUdeviceptr dstDevice, CUdeviceptr srcDevice, size_t ByteCount))
P(cuMemsetD8_v2, (CUdeviceptr dstDevice, unsigned char uc, size_t N))
P(cuMemsetD8_v2_ptds, (CUdeviceptr dstDevice, unsigned char uc, size_t N))
P(cuMemsetD32_v2, (CUdeviceptr dstDevice, unsigned int ui, size_t N))
P(cuMemsetD32_v2_ptds, (CUdeviceptr dstDevice, unsigned int ui, size_t N))
P(cuMemAllocHost, (void **pp, unsigned int bytesize))
P(cuMemAllocHost_v2, (void **pp, size_t bytesize))
P(cuMemFreeHost, (void *p))
P(cuMemAllocManaged, (CUdeviceptr *dptr, size_t bytesize, unsigned int flags))
P(cuMemAdvise, (CUdeviceptr devPtr, size_t count, CUmem_advise advice, CUdevice device))
P(cuMemAdvise_v2, (CUdeviceptr devPtr, size_t count, CUmem_advise advice, CUmemLocation location))
P(cuMemPrefetchAsync, (CUdeviceptr devPtr, size_t count, CUdevice dstDevice, CUstream hStream))
P(cuMemPrefetchAsync_ptsz, (CUdeviceptr devPtr, size_t count, CUdevice dstDevice, CUstream hStream))
P(cuMemPrefetchAsync_v2, (CUdeviceptr devPtr, size_t count, CUmemLocation location, unsigned int flags, CUstream hStream))
P(cuMemPrefetchAsync_v2_ptsz, (CUdeviceptr devPtr, size_t count, CUmemLocation location, unsigned int flags, CUstream hStream))
/* arrays */
P(cuArrayCreate, (CUarray *pHandle, const CUDA_ARRAY_DESCRIPTOR_v1 *pAllocateArray))
P(cuArrayCreate_v2, (CUarray *pHandle, const CUDA_ARRAY_DESCRIPTOR *pAllocateArray))
P(cuArray3DCreate, (CUarray *pHandle, const CUDA_ARRAY3D_DESCRIPTOR_v1 *pAllocateArray))
P(cuArray3DCreate_v2, (CUarray *pHandle, const CUDA_ARRAY3D_DESCRIPTOR *pAllocateArray))
P(cuArrayDestroy, (CUarray hArray))
P(cuMipmappedArrayCreate, (CUmipmappedArray *pHandle, const CUDA_ARRAY3D_DESCRIPTOR *pMipmappedArrayDesc, unsigned int numMipmapLevels))
P(cuMipmappedArrayDestroy, (CUmipmappedArray hMipmappedArray))
P(cuArrayGetMemoryRequirements, (CUDA_ARRAY_MEMORY_REQUIREMENTS *memoryRequirements, CUarray array, CUdevice device))
P(cuMipmappedArrayGetMemoryRequirements, (CUDA_ARRAY_MEMORY_REQUIREMENTS *memoryRequirements, CUmipmappedArray mipmap, CUdevice device))
/* stream-ordered pools */
P(cuDeviceGetDefaultMemPool, (CUmemoryPool *pool_out, CUdevice dev))
P(cuDeviceGetMemPool, (CUmemoryPool *pool, CUdevice dev))
P(cuDeviceSetMemPool, (CUdevice dev, CUmemoryPool pool))
P(cuMemPoolCreate, (CUmemoryPool *pool, const CUmemPoolProps *poolProps))
P(cuMemPoolDestroy, (CUmemoryPool pool))
P(cuMemPoolTrimTo, (CUmemoryPool pool, size_t minBytesToKeep))
P(cuMemPoolSetAttribute, (CUmemoryPool pool, CUmemPool_attribute attr, void *value))
P(cuMemPoolGetAttribute, (CUmemoryPool pool, CUmemPool_attribute attr, void *value))
P(cuMemAllocAsync, (CUdeviceptr *dptr, size_t bytesize, CUstream hStream))
P(cuMemAllocAsync_ptsz, (CUdeviceptr *dptr, size_t bytesize, CUstream hStream))
P(cuMemAllocFromPoolAsync, (CUdeviceptr *dptr, size_t bytesize, CUmemoryPool pool, CUstream hStream))
P(cuMemAllocFromPoolAsync_ptsz, (CUdeviceptr *dptr, size_t bytesize, CUmemoryPool pool, CUstream hStream))
P(cuMemFreeAsync, (CUdeviceptr dptr, CUstream hStream))
P(cuMemFreeAsync_ptsz, (CUdeviceptr dptr, CUstream hStream))
/* virtual memory management */
P(cuMemGetAllocationGranularity, (size_t *granularity, const CUmemAllocationProp *prop, CUmemAllocationGranularity_flags option))
P(cuMemCreate, (CUmemGenericAllocationHandle *handle, size_t size, const CUmemAllocationProp *prop, unsigned long long flags))
P(cuMemRelease, (CUmemGenericAllocationHandle handle))
P(cuMemAddressReserve, (CUdeviceptr *ptr, size_t size, size_t alignment, CUdeviceptr addr, unsigned long long flags))
P(cuMemAddressFree, (CUdeviceptr ptr, size_t size))
P(cuMemMap, (CUdeviceptr ptr, size_t size, size_t offset, CUmemGenericAllocationHandle handle, unsigned long long flags))
P(cuMemUnmap, (CUdeviceptr ptr, size_t size))
P(cuMemSetAccess, (CUdeviceptr ptr, size_t size, const CUmemAccessDesc *desc, size_t count))
/* modules and libraries */
P(cuModuleLoad, (CUmodule *module, const char *fname))
P(cuModuleLoadData, (CUmodule *module, const void *image))
P(cuModuleLoadDataEx, (CUmodule *module, const void *image, unsigned int numOptions, CUjit_option *options, void **optionValues))
P(cuModuleUnload, (CUmodule hmod))
P(cuModuleGetFunction, (CUfunction *hfunc, CUmodule hmod, const char *name))
P(cuLibraryLoadData, (CUlibrary *library, const void *code, CUjit_option *jitOptions, void **jitOptionsValues, unsigned int numJitOptions, CUlibraryOption *libraryOptions, void **libraryOptionValues, unsigned int numLibraryOptions))
P(cuLibraryUnload, (CUlibrary library))
P(cuLibraryGetKernel, (CUkernel *pKernel, CUlibrary library, const char *name))
P(cuKernelGetFunction, (CUfunction *pFunc, CUkernel kernel))
/* streams */
P(cuStreamCreate, (CUstream *phStream, unsigned int Flags))
P(cuStreamCreateWithPriority, (CUstream *phStream, unsigned int flags, int priority))
P(cuStreamDestroy, (CUstream hStream))
P(cuStreamDestroy_v2, (CUstream hStream))
P(cuStreamSynchronize, (CUstream hStream))
P(cuStreamSynchronize_ptsz, (CUstream hStream))
P(cuStreamQuery, (CUstream hStream))
P(cuStreamQuery_ptsz, (CUstream hStream))
/* launches */
P(cuLaunchKernel, SIM_LAUNCH_PARAMS)
P(cuLaunchKernel_ptsz, SIM_LAUNCH_PARAMS)
P(cuLaunchKernelEx, (const CUlaunchConfig *config, CUfunction f, void **kernelParams, void **extra))
P(cuLaunchKernelEx_ptsz, (const CUlaunchConfig *config, CUfunction f, void **kernelParams, void **extra))
P(cuLaunchCooperativeKernel, SIM_COOP_PARAMS)
P(cuLaunchCooperativeKernel_ptsz, SIM_COOP_PARAMS)
/* events */
P(cuEventCreate, (CUevent *phEvent, unsigned int Flags))
P(cuEventDestroy, (CUevent hEvent))
P(cuEventDestroy_v2, (CUevent hEvent))
P(cuEventRecord, (CUevent hEvent, CUstream hStream))
P(cuEventRecord_ptsz, (CUevent hEvent, CUstream hStream))
P(cuEventRecordWithFlags, (CUevent hEvent, CUstream hStream, unsigned int flags))
P(cuEventRecordWithFlags_ptsz, (CUevent hEvent, CUstream hStream, unsigned int flags))
P(cuEventQuery, (CUevent hEvent))
P(cuEventSynchronize, (CUevent hEvent))
P(cuEventElapsedTime, (float *pMilliseconds, CUevent hStart, CUevent hEnd))
P(cuEventElapsedTime_v2, (float *pMilliseconds, CUevent hStart, CUevent hEnd))
/* graphs */
P(cuGraphCreate, (CUgraph *phGraph, unsigned int flags))
P(cuGraphAddKernelNode, (CUgraphNode *phGraphNode, CUgraph hGraph, const CUgraphNode *dependencies, size_t numDependencies, const CUDA_KERNEL_NODE_PARAMS_v1 *nodeParams))
P(cuGraphAddKernelNode_v2, (CUgraphNode *phGraphNode, CUgraph hGraph, const CUgraphNode *dependencies, size_t numDependencies, const CUDA_KERNEL_NODE_PARAMS_v2 *nodeParams))
P(cuGraphInstantiate, SIM_GI_PARAMS)
P(cuGraphInstantiate_v2, SIM_GI_PARAMS)
P(cuGraphInstantiateWithFlags, (CUgraphExec *phGraphExec, CUgraph hGraph, unsigned long long flags))
P(cuGraphLaunch, (CUgraphExec hGraphExec, CUstream hStream))
P(cuGraphLaunch_ptsz, (CUgraphExec hGraphExec, CUstream hStream))
P(cuGraphExecDestroy, (CUgraphExec hGraphExec))
P(cuGraphDestroy, (CUgraph hGraph))
P(cuGraphAddMemAllocNode, (CUgraphNode *phGraphNode, CUgraph hGraph, const CUgraphNode *dependencies, size_t numDependencies, CUDA_MEM_ALLOC_NODE_PARAMS *nodeParams))
P(cuGraphAddMemFreeNode, (CUgraphNode *phGraphNode, CUgraph hGraph, const CUgraphNode *dependencies, size_t numDependencies, CUdeviceptr dptr))
P(cuDeviceGraphMemTrim, (CUdevice device))
P(cuDeviceGetGraphMemAttribute, (CUdevice device, CUgraphMem_attribute attr, void *value))
#undef P

/* NVML */
#define N(name, params) SIM_API nvmlReturn_t name params;
N(nvmlInit, (void))
N(nvmlInit_v2, (void))
N(nvmlInitWithFlags, (unsigned int flags))
N(nvmlShutdown, (void))
SIM_API const char *nvmlErrorString(nvmlReturn_t result);
N(nvmlSystemGetDriverVersion, (char *version, unsigned int length))
N(nvmlSystemGetCudaDriverVersion, (int *cudaDriverVersion))
N(nvmlSystemGetCudaDriverVersion_v2, (int *cudaDriverVersion))
N(nvmlDeviceGetCount, (unsigned int *deviceCount))
N(nvmlDeviceGetCount_v2, (unsigned int *deviceCount))
N(nvmlDeviceGetHandleByIndex, (unsigned int index, nvmlDevice_t *device))
N(nvmlDeviceGetHandleByIndex_v2, (unsigned int index, nvmlDevice_t *device))
N(nvmlDeviceGetHandleByUUID, (const char *uuid, nvmlDevice_t *device))
N(nvmlDeviceGetUUID, (nvmlDevice_t device, char *uuid, unsigned int length))
N(nvmlDeviceGetName, (nvmlDevice_t device, char *name, unsigned int length))
N(nvmlDeviceGetIndex, (nvmlDevice_t device, unsigned int *index))
N(nvmlDeviceGetMemoryInfo, (nvmlDevice_t device, nvmlMemory_t *memory))
N(nvmlDeviceGetMemoryInfo_v2, (nvmlDevice_t device, nvmlMemory_v2_t *memory))
N(nvmlDeviceGetComputeRunningProcesses, (nvmlDevice_t device, unsigned int *infoCount, nvmlProcessInfo_v1_t *infos))
N(nvmlDeviceGetComputeRunningProcesses_v2, (nvmlDevice_t device, unsigned int *infoCount, nvmlProcessInfo_t *infos))
N(nvmlDeviceGetComputeRunningProcesses_v3, (nvmlDevice_t device, unsigned int *infoCount, nvmlProcessInfo_t *infos))
N(nvmlDeviceGetGraphicsRunningProcesses, (nvmlDevice_t device, unsigned int *infoCount, nvmlProcessInfo_v1_t *infos))
N(nvmlDeviceGetGraphicsRunningProcesses_v2, (nvmlDevice_t device, unsigned int *infoCount, nvmlProcessInfo_t *infos))
N(nvmlDeviceGetGraphicsRunningProcesses_v3, (nvmlDevice_t device, unsigned int *infoCount, nvmlProcessInfo_t *infos))
N(nvmlDeviceGetMPSComputeRunningProcesses_v3, (nvmlDevice_t device, unsigned int *infoCount, nvmlProcessInfo_t *infos))
N(nvmlDeviceGetUtilizationRates, (nvmlDevice_t device, nvmlUtilization_t *utilization))
N(nvmlDeviceGetProcessUtilization, (nvmlDevice_t device, nvmlProcessUtilizationSample_t *utilization, unsigned int *processSamplesCount, unsigned long long lastSeenTimeStamp))
N(nvmlDeviceGetSamples, (nvmlDevice_t device, nvmlSamplingType_t type, unsigned long long lastSeenTimeStamp, nvmlValueType_t *valueType, unsigned int *count, nvmlSample_t *samples))
#undef N
/* clang-format on */

#endif
