/* hooks.h - the implementations behind the generated wrappers of hook_table.h.
 *
 * Why this exists: each implementation receives the real entry point of the variant that was
 * called (e.g. cuLaunchKernel or cuLaunchKernel_ptsz) as its first argument, so one function
 * serves every ABI variant of an API. Grouped by the file that implements them.
 */
#ifndef VGPU_HOOKS_H
#define VGPU_HOOKS_H

#include "hook_table.h"

/* init_hooks.c: start-up, fail-closed */
CUresult hook_init(void *real, unsigned int flags);
/* hook_dispatch.c: cuGetProcAddress, which answers with the wrappers */
CUresult hook_get_proc_address_v1(void *real, const char *symbol, void **pfn, int cudaVersion,
                                  cuuint64_t flags);
CUresult hook_get_proc_address_v2(void *real, const char *symbol, void **pfn, int cudaVersion,
                                  cuuint64_t flags, CUdriverProcAddressQueryResult *symbolStatus);

/* mem_hooks.c: every allocation family */
CUresult hook_mem_alloc(void *real, CUdeviceptr *dptr, size_t bytesize);
CUresult hook_mem_alloc_v1(void *real, CUdeviceptr_v1 *dptr, unsigned int bytesize);
CUresult hook_mem_alloc_pitch(void *real, CUdeviceptr *dptr, size_t *pPitch, size_t WidthInBytes,
                              size_t Height, unsigned int ElementSizeBytes);
CUresult hook_mem_alloc_pitch_v1(void *real, CUdeviceptr_v1 *dptr, unsigned int *pPitch,
                                 unsigned int WidthInBytes, unsigned int Height,
                                 unsigned int ElementSizeBytes);
CUresult hook_mem_alloc_managed(void *real, CUdeviceptr *dptr, size_t bytesize, unsigned int flags);
CUresult hook_mem_free(void *real, CUdeviceptr dptr);
CUresult hook_mem_free_v1(void *real, CUdeviceptr_v1 dptr);
CUresult hook_array_create(void *real, CUarray *pHandle, const CUDA_ARRAY_DESCRIPTOR *desc);
CUresult hook_array_create_v1(void *real, CUarray *pHandle, const CUDA_ARRAY_DESCRIPTOR_v1 *desc);
CUresult hook_array3d_create(void *real, CUarray *pHandle, const CUDA_ARRAY3D_DESCRIPTOR *desc);
CUresult hook_array3d_create_v1(void *real, CUarray *pHandle,
                                const CUDA_ARRAY3D_DESCRIPTOR_v1 *desc);
CUresult hook_array_destroy(void *real, CUarray hArray);
CUresult hook_mipmapped_array_create(void *real, CUmipmappedArray *pHandle,
                                     const CUDA_ARRAY3D_DESCRIPTOR *desc, unsigned int levels);
CUresult hook_mipmapped_array_destroy(void *real, CUmipmappedArray hMipmappedArray);
CUresult hook_mem_alloc_async(void *real, CUdeviceptr *dptr, size_t bytesize, CUstream hStream);
CUresult hook_mem_alloc_from_pool_async(void *real, CUdeviceptr *dptr, size_t bytesize,
                                        CUmemoryPool pool, CUstream hStream);
CUresult hook_mem_free_async(void *real, CUdeviceptr dptr, CUstream hStream);
CUresult hook_mem_pool_create(void *real, CUmemoryPool *pool, const CUmemPoolProps *props);
CUresult hook_mem_pool_destroy(void *real, CUmemoryPool pool);
CUresult hook_mem_pool_trim_to(void *real, CUmemoryPool pool, size_t minBytesToKeep);
CUresult hook_mem_create(void *real, CUmemGenericAllocationHandle *handle, size_t size,
                         const CUmemAllocationProp *prop, unsigned long long flags);
CUresult hook_mem_release(void *real, CUmemGenericAllocationHandle handle);
CUresult hook_import_external_memory(void *real, CUexternalMemory *extMem_out,
                                     const CUDA_EXTERNAL_MEMORY_HANDLE_DESC *desc);
CUresult hook_destroy_external_memory(void *real, CUexternalMemory extMem);

/* graph_mem.c: graph memory nodes and the graph calls that allocate, map or give it back */
CUresult hook_graph_add_mem_alloc_node(void *real, CUgraphNode *phGraphNode, CUgraph hGraph,
                                       const CUgraphNode *dependencies, size_t numDependencies,
                                       CUDA_MEM_ALLOC_NODE_PARAMS *nodeParams);
CUresult hook_graph_instantiate_log(void *real, CUgraphExec *phGraphExec, CUgraph hGraph,
                                    CUgraphNode *phErrorNode, char *logBuffer, size_t bufferSize);
CUresult hook_graph_instantiate_flags(void *real, CUgraphExec *phGraphExec, CUgraph hGraph,
                                      unsigned long long flags);
CUresult hook_graph_instantiate_params(void *real, CUgraphExec *phGraphExec, CUgraph hGraph,
                                       CUDA_GRAPH_INSTANTIATE_PARAMS *params);
CUresult hook_graph_upload(void *real, CUgraphExec exec, CUstream hStream);
CUresult hook_graph_exec_destroy(void *real, CUgraphExec exec);
CUresult hook_graph_destroy(void *real, CUgraph graph);
CUresult hook_device_graph_mem_trim(void *real, CUdevice device);

/* mem_view.c: what the application and nvidia-smi see */
CUresult hook_mem_get_info(void *real, size_t *free, size_t *total);
CUresult hook_mem_get_info_v1(void *real, unsigned int *free, unsigned int *total);
CUresult hook_device_total_mem(void *real, size_t *bytes, CUdevice dev);
CUresult hook_device_total_mem_v1(void *real, unsigned int *bytes, CUdevice dev);
nvmlReturn_t hook_nvml_init(void *real);
nvmlReturn_t hook_nvml_init_with_flags(void *real, unsigned int flags);
nvmlReturn_t hook_nvml_memory_info(void *real, nvmlDevice_t device, nvmlMemory_t *memory);
nvmlReturn_t hook_nvml_memory_info_v2(void *real, nvmlDevice_t device, nvmlMemory_v2_t *memory);
nvmlReturn_t hook_nvml_processes_v1(void *real, nvmlDevice_t device, unsigned int *infoCount,
                                    nvmlProcessInfo_v1_t *infos);
nvmlReturn_t hook_nvml_processes(void *real, nvmlDevice_t device, unsigned int *infoCount,
                                 nvmlProcessInfo_t *infos);

/* launch_hooks.c: submissions of GPU work */
CUresult hook_launch_kernel(void *real, CUfunction f, unsigned int gx, unsigned int gy,
                            unsigned int gz, unsigned int bx, unsigned int by, unsigned int bz,
                            unsigned int shmem, CUstream hStream, void **params, void **extra);
CUresult hook_launch_kernel_ex(void *real, const CUlaunchConfig *config, CUfunction f,
                               void **params, void **extra);
CUresult hook_launch_cooperative(void *real, CUfunction f, unsigned int gx, unsigned int gy,
                                 unsigned int gz, unsigned int bx, unsigned int by, unsigned int bz,
                                 unsigned int shmem, CUstream hStream, void **params);
CUresult hook_graph_launch(void *real, CUgraphExec exec, CUstream hStream);
CUresult hook_begin_capture_v1(void *real, CUstream hStream);
CUresult hook_begin_capture(void *real, CUstream hStream, int mode);
CUresult hook_begin_capture_to_graph(void *real, CUstream hStream, CUgraph hGraph,
                                     const void *dependencies, const void *dependencyData,
                                     size_t numDependencies, int mode);
CUresult hook_end_capture(void *real, CUstream hStream, CUgraph *phGraph);

/* launch_legacy.c: the pre-CUDA-4 launches and the multi-device cooperative launch */
CUresult hook_launch_legacy(void *real, CUfunction f);
CUresult hook_launch_grid(void *real, CUfunction f, int grid_width, int grid_height);
CUresult hook_launch_grid_async(void *real, CUfunction f, int grid_width, int grid_height,
                                CUstream hStream);
CUresult hook_launch_cooperative_multi(void *real, CUDA_LAUNCH_PARAMS *list,
                                       unsigned int numDevices, unsigned int flags);

#endif
