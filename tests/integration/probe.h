/* probe.h - what the files of cuda_probe share: the driver entry points the probe reaches through
 * its chosen door, the GPU and ledger it works on, and the checks that count failures.
 *
 * Why this exists: cuda_probe.c (the modes' table, the doors, the shared helpers) and its mode
 * files (probe_memory.c, probe_launch.c, probe_state.c) are one program; every check counts
 * into one vgpu_test_failures (test_util.h, VGPU_TEST_FAILURES_SHARED), defined in cuda_probe.c.
 */
#ifndef VGPU_CUDA_PROBE_H
#define VGPU_CUDA_PROBE_H

#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../src/common/ctl_region.h"
#include "../../src/common/node_region.h"
#include "../../src/common/nvml_abi.h"
#include "../../src/common/shm_ledger.h"
#include "../../src/common/shm_region.h"
#include "../../src/limiter/config.h"
#include "../../src/limiter/cuda_abi.h"
#define VGPU_TEST_FAILURES_SHARED
#include "../test_util.h"

#define MIB (1024ull * 1024ull)
extern char **environ;

/* P(symbol linked, base name for cuGetProcAddress, parameters) */
#define PROBE_FUNCS(P)                                                                             \
    P(cuInit, "cuInit", (unsigned int))                                                            \
    P(cuDeviceGet, "cuDeviceGet", (CUdevice *, int))                                               \
    P(cuDeviceGetUuid, "cuDeviceGetUuid", (CUuuid *, CUdevice))                                    \
    P(cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain", (CUcontext *, CUdevice))               \
    P(cuCtxSetCurrent, "cuCtxSetCurrent", (CUcontext))                                             \
    P(cuMemGetInfo_v2, "cuMemGetInfo", (size_t *, size_t *))                                       \
    P(cuDeviceTotalMem_v2, "cuDeviceTotalMem", (size_t *, CUdevice))                               \
    P(cuMemAlloc_v2, "cuMemAlloc", (CUdeviceptr *, size_t))                                        \
    P(cuMemFree_v2, "cuMemFree", (CUdeviceptr))                                                    \
    P(cuMemAllocPitch_v2, "cuMemAllocPitch",                                                       \
      (CUdeviceptr *, size_t *, size_t, size_t, unsigned int))                                     \
    P(cuMemAllocManaged, "cuMemAllocManaged", (CUdeviceptr *, size_t, unsigned int))               \
    P(cuArrayCreate_v2, "cuArrayCreate", (CUarray *, const CUDA_ARRAY_DESCRIPTOR *))               \
    P(cuArray3DCreate_v2, "cuArray3DCreate", (CUarray *, const CUDA_ARRAY3D_DESCRIPTOR *))         \
    P(cuArrayDestroy, "cuArrayDestroy", (CUarray))                                                 \
    P(cuMipmappedArrayCreate, "cuMipmappedArrayCreate",                                            \
      (CUmipmappedArray *, const CUDA_ARRAY3D_DESCRIPTOR *, unsigned int))                         \
    P(cuMipmappedArrayDestroy, "cuMipmappedArrayDestroy", (CUmipmappedArray))                      \
    P(cuStreamCreate, "cuStreamCreate", (CUstream *, unsigned int))                                \
    P(cuStreamSynchronize, "cuStreamSynchronize", (CUstream))                                      \
    P(cuMemAllocAsync, "cuMemAllocAsync", (CUdeviceptr *, size_t, CUstream))                       \
    P(cuMemFreeAsync, "cuMemFreeAsync", (CUdeviceptr, CUstream))                                   \
    P(cuDeviceGetMemPool, "cuDeviceGetMemPool", (CUmemoryPool *, CUdevice))                        \
    P(cuMemPoolTrimTo, "cuMemPoolTrimTo", (CUmemoryPool, size_t))                                  \
    P(cuMemPoolCreate, "cuMemPoolCreate", (CUmemoryPool *, const CUmemPoolProps *))                \
    P(cuMemPoolDestroy, "cuMemPoolDestroy", (CUmemoryPool))                                        \
    P(cuMemAllocFromPoolAsync, "cuMemAllocFromPoolAsync",                                          \
      (CUdeviceptr *, size_t, CUmemoryPool, CUstream))                                             \
    P(cuMemGetAllocationGranularity, "cuMemGetAllocationGranularity",                              \
      (size_t *, const CUmemAllocationProp *, CUmemAllocationGranularity_flags))                   \
    P(cuMemCreate, "cuMemCreate",                                                                  \
      (CUmemGenericAllocationHandle *, size_t, const CUmemAllocationProp *, unsigned long long))   \
    P(cuMemRelease, "cuMemRelease", (CUmemGenericAllocationHandle))                                \
    P(cuModuleLoadData, "cuModuleLoadData", (CUmodule *, const void *))                            \
    P(cuModuleGetFunction, "cuModuleGetFunction", (CUfunction *, CUmodule, const char *))          \
    P(cuLaunchKernel, "cuLaunchKernel",                                                            \
      (CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, CUstream, \
       void **, void **))                                                                          \
    P(cuGraphCreate, "cuGraphCreate", (CUgraph *, unsigned int))                                   \
    P(cuGraphAddKernelNode_v2, "cuGraphAddKernelNode",                                             \
      (void **, CUgraph, const void *, size_t, const void *))                                      \
    P(cuGraphInstantiateWithFlags, "cuGraphInstantiateWithFlags",                                  \
      (CUgraphExec *, CUgraph, unsigned long long))                                                \
    P(cuGraphLaunch, "cuGraphLaunch", (CUgraphExec, CUstream))                                     \
    P(cuGraphAddMemAllocNode, "cuGraphAddMemAllocNode",                                            \
      (CUgraphNode *, CUgraph, const CUgraphNode *, size_t, CUDA_MEM_ALLOC_NODE_PARAMS *))         \
    P(cuGraphAddMemFreeNode, "cuGraphAddMemFreeNode",                                              \
      (CUgraphNode *, CUgraph, const CUgraphNode *, size_t, CUdeviceptr))                          \
    P(cuDeviceGraphMemTrim, "cuDeviceGraphMemTrim", (CUdevice))                                    \
    P(cuGraphExecDestroy, "cuGraphExecDestroy", (CUgraphExec))                                     \
    P(cuGraphDestroy, "cuGraphDestroy", (CUgraph))

/* Entry points only some modes use, absent or unresolvable on some drivers: NULL then. */
#define PROBE_EXTRA(P)                                                                             \
    P(cuLaunch, "cuLaunch", (CUfunction))                                                          \
    P(cuLaunchGrid, "cuLaunchGrid", (CUfunction, int, int))                                        \
    P(cuLaunchGridAsync, "cuLaunchGridAsync", (CUfunction, int, int, CUstream))                    \
    P(cuLaunchCooperativeKernelMultiDevice, "cuLaunchCooperativeKernelMultiDevice",                \
      (CUDA_LAUNCH_PARAMS *, unsigned int, unsigned int))                                          \
    P(cuImportExternalMemory, "cuImportExternalMemory",                                            \
      (CUexternalMemory *, const CUDA_EXTERNAL_MEMORY_HANDLE_DESC *))                              \
    P(cuDestroyExternalMemory, "cuDestroyExternalMemory", (CUexternalMemory))

#define PROBE_FIELD(sym, base, params) CUresult(*sym) params;
struct probe_cu {
    PROBE_FUNCS(PROBE_FIELD)
    PROBE_EXTRA(PROBE_FIELD)
};
#undef PROBE_FIELD
/* the entry points, through the door VGPU_PROBE_DOOR chose */
extern struct probe_cu cu;

#define CU_OK(call)                                                                                \
    do {                                                                                           \
        CUresult r_ = (call);                                                                      \
        if (r_ != CUDA_SUCCESS) {                                                                  \
            fprintf(stderr, "%s:%d: %s = %d\n", __FILE__, __LINE__, #call, r_);                    \
            vgpu_test_failures++;                                                                  \
        }                                                                                          \
    } while (0)

/* The GPU the probe works on (VGPU_PROBE_DEV, default 0), the pod's ledger, this process's
 * record in it and the GPU's entry, and the cap it is held to (found after the first allocation
 * bound the GPU: find_ledger). */
extern CUdevice dev;
extern struct vgpu_shm *shm;
extern int slot, ledger;
extern uint64_t cap;
/* the control region of a managed pod, when VGPU_PROBE_POD_DIR names its directory */
extern const struct vgpu_ctl *probe_ctl;

int probe_dev(void);
/* cuInit, the GPU, its primary context made current */
void setup(void);
/* The pod's ledger: VGPU_PROBE_POD_DIR's, else the standalone one of this environment; NULL
 * (said on `say` when given) if there is none. */
struct vgpu_shm *open_pod_region(FILE *say);
/* the limits ledger device d is held to (the control region's for a managed pod) */
const struct vgpu_dev_limits *lim_at(struct vgpu_shm *s, int d);
void find_ledger(void);
/* bytes of allocations this process is charged for (overhead excluded) */
uint64_t mine(void);
/* a VMM allocation on the probe's GPU (prop filled in); returns its minimum granularity */
size_t vmm_prop(CUmemAllocationProp *prop);
/* CLOCK_MONOTONIC in seconds */
double now_s(void);
uint64_t round2m(uint64_t n);
/* the limiter's documented rule (docs/accounting.md): 512-byte steps up to 1 MiB, else 2 MiB */
uint64_t charge_of(uint64_t n);
/* checks of what a step charged: between lo and hi; all of it back; refused past the cap */
void expect_delta(const char *what, uint64_t before, uint64_t lo, uint64_t hi);
void expect_back(const char *what, uint64_t before);
void expect_oom(const char *what, CUresult r);

/* the modes (cuda_probe.c's header comment says what each does) */
int mode_families(void);
int mode_fill(void);
int mode_info(void);
int mode_hold(uint64_t mib, int seconds);
int mode_try(uint64_t mib);
int mode_async(uint64_t mib);
int mode_pulse(uint64_t mib, double seconds);
int mode_threads(void);
int mode_fork(void);
int mode_import(uint64_t a, uint64_t b);
int mode_nvml(void);
int mode_calibrate(void);
int mode_ledger(void);
int mode_set_core(double pct, double soft);
int mode_gate(void);
int mode_node(void);
int mode_control(void);
int mode_spin(double seconds, unsigned us, int nthreads, int nodes);
int mode_multi(int n);

#endif
