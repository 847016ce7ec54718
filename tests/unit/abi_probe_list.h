/* abi_probe_list.h - layout facts of the CUDA ABI that vgpu relies on. Evaluated once against
 * src/limiter/cuda_abi.h and once against the real cuda.h; the two lists must be equal. */
#define VGPU_ABI_PROBES(X) \
    X(sizeof(CUdeviceptr)) X(sizeof(CUdevice)) X(sizeof(CUresult)) X(sizeof(CUuuid)) \
    X(sizeof(CUmemGenericAllocationHandle)) \
    X(sizeof(CUDA_ARRAY_DESCRIPTOR)) X(offsetof(CUDA_ARRAY_DESCRIPTOR, Format)) \
    X(offsetof(CUDA_ARRAY_DESCRIPTOR, NumChannels)) \
    X(sizeof(CUDA_ARRAY3D_DESCRIPTOR)) X(offsetof(CUDA_ARRAY3D_DESCRIPTOR, Depth)) \
    X(offsetof(CUDA_ARRAY3D_DESCRIPTOR, Format)) X(offsetof(CUDA_ARRAY3D_DESCRIPTOR, Flags)) \
    X(sizeof(CUDA_ARRAY_MEMORY_REQUIREMENTS)) X(offsetof(CUDA_ARRAY_MEMORY_REQUIREMENTS, alignment)) \
    X(sizeof(CUmemLocation)) X(offsetof(CUmemLocation, id)) \
    X(sizeof(CUmemAllocationProp)) X(offsetof(CUmemAllocationProp, location)) \
    X(offsetof(CUmemAllocationProp, win32HandleMetaData)) X(offsetof(CUmemAllocationProp, allocFlags)) \
    X(sizeof(CUmemPoolProps)) X(offsetof(CUmemPoolProps, location)) X(offsetof(CUmemPoolProps, maxSize)) \
    X(sizeof(CUlaunchConfig)) X(offsetof(CUlaunchConfig, hStream)) X(offsetof(CUlaunchConfig, attrs)) \
    X(offsetof(CUlaunchConfig, numAttrs)) \
    X(sizeof(CUDA_LAUNCH_PARAMS)) X(offsetof(CUDA_LAUNCH_PARAMS, gridDimX)) \
    X(offsetof(CUDA_LAUNCH_PARAMS, hStream)) X(offsetof(CUDA_LAUNCH_PARAMS, kernelParams)) \
    X(sizeof(CUDA_EXTERNAL_MEMORY_HANDLE_DESC)) X(offsetof(CUDA_EXTERNAL_MEMORY_HANDLE_DESC, size)) \
    X(offsetof(CUDA_EXTERNAL_MEMORY_HANDLE_DESC, flags)) \
    X(CUDA_ERROR_OUT_OF_MEMORY) X(CUDA_ERROR_NOT_FOUND) X(CUDA_ERROR_NOT_SUPPORTED) \
    X(CUDA_ERROR_INVALID_CONTEXT) X(CUDA_ERROR_NOT_READY) X(CUDA_ERROR_NOT_INITIALIZED) \
    X(CUDA_ERROR_STREAM_CAPTURE_WRONG_THREAD) X(CU_EVENT_DEFAULT) \
    X(CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM) X(CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT) \
    X(CU_MEM_LOCATION_TYPE_DEVICE) X(CU_MEM_LOCATION_TYPE_HOST) X(CU_MEM_ALLOCATION_TYPE_PINNED) \
    X(CU_MEMPOOL_ATTR_RELEASE_THRESHOLD) X(CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT) \
    X(CU_MEMPOOL_ATTR_USED_MEM_CURRENT) X(CU_MEM_ADVISE_SET_PREFERRED_LOCATION) \
    X(CU_MEM_ADVISE_SET_ACCESSED_BY) X(CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL) X(CU_MEM_ATTACH_GLOBAL) \
    X(CU_AD_FORMAT_HALF) X(CU_AD_FORMAT_FLOAT) X(CU_AD_FORMAT_SIGNED_INT32) X(CU_DEVICE_CPU) \
    X((uintptr_t)CU_STREAM_PER_THREAD) X(CU_MEM_ALLOC_GRANULARITY_RECOMMENDED)
