/* test_sim_driver.c - checks the simulated GPU driver (libcuda.so.1 + libnvidia-ml.so.1).
 *
 * Why this exists: every limiter test stands on the simulator, so its accounting, timing and
 * symbol resolution must be right first. The libraries are dlopened by path (as the limiter
 * finds the driver) over a private state file; a forked process shows memory shared across
 * processes and given back when a process is killed with SIGKILL.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../test_util.h"
#include "sim_api.h"
#include "sim_state.h"

#define MiB (1ull << 20)
#define GiB (1ull << 30)
#define OK(call) CHECK_EQ_INT((call), CUDA_SUCCESS)

/* clang-format off */
#define CU_FNS(X) X(cuInit) X(cuDeviceGetCount) X(cuDeviceGet) X(cuDeviceGetName) X(cuDeviceGetUuid_v2) \
    X(cuDeviceTotalMem_v2) X(cuDeviceTotalMem) X(cuDeviceGetAttribute) X(cuDevicePrimaryCtxRetain) \
    X(cuDevicePrimaryCtxRelease_v2) X(cuCtxSetCurrent) X(cuCtxCreate_v2) X(cuCtxDestroy_v2) X(cuCtxGetDevice) \
    X(cuMemAlloc_v2) X(cuMemAlloc) X(cuMemFree_v2) X(cuMemFree) X(cuMemGetInfo_v2) X(cuMemGetInfo) \
    X(cuMemAllocPitch_v2) X(cuMemAllocPitch) X(cuMemcpyHtoD_v2) X(cuMemsetD32_v2) X(cuPointerGetAttribute) \
    X(cuMemGetAddressRange_v2) X(cuMemAllocManaged) X(cuMemAdvise_v2) X(cuArrayCreate_v2) X(cuArray3DCreate_v2) \
    X(cuArrayDestroy) X(cuMipmappedArrayCreate) X(cuMipmappedArrayDestroy) X(cuArrayGetMemoryRequirements) \
    X(cuMipmappedArrayGetMemoryRequirements) X(cuDeviceGetDefaultMemPool) X(cuMemPoolCreate) X(cuMemPoolDestroy) \
    X(cuMemPoolTrimTo) X(cuMemPoolSetAttribute) X(cuMemPoolGetAttribute) X(cuMemAllocAsync) \
    X(cuMemAllocFromPoolAsync) X(cuMemFreeAsync) X(cuMemGetAllocationGranularity) X(cuMemCreate) X(cuMemRelease) \
    X(cuMemAddressReserve) X(cuMemAddressFree) X(cuMemMap) X(cuMemUnmap) X(cuMemSetAccess) X(cuGetProcAddress) \
    X(cuGetProcAddress_v2) X(cuModuleLoadData) X(cuModuleGetFunction) X(cuLaunchKernel) X(cuStreamCreate) \
    X(cuStreamSynchronize) X(cuEventCreate) X(cuEventRecord) X(cuEventSynchronize) X(cuEventElapsedTime) \
    X(cuEventQuery) X(cuGraphCreate) X(cuGraphAddKernelNode_v2) X(cuGraphInstantiateWithFlags) X(cuGraphLaunch) \
    X(cuCtxSynchronize) X(cuGetErrorName) X(cuLaunch) X(cuLaunchGrid) X(cuLaunchGridAsync) \
    X(cuLaunchCooperativeKernelMultiDevice) X(cuImportExternalMemory) X(cuDestroyExternalMemory)
#define NV_FNS(X) X(nvmlInit_v2) X(nvmlShutdown) X(nvmlDeviceGetCount_v2) X(nvmlDeviceGetHandleByIndex_v2) \
    X(nvmlDeviceGetHandleByUUID) X(nvmlDeviceGetUUID) X(nvmlDeviceGetName) X(nvmlDeviceGetMemoryInfo) \
    X(nvmlDeviceGetMemoryInfo_v2) X(nvmlDeviceGetComputeRunningProcesses_v3) \
    X(nvmlDeviceGetComputeRunningProcesses) X(nvmlDeviceGetUtilizationRates) X(nvmlDeviceGetProcessUtilization) \
    X(nvmlDeviceGetSamples) X(nvmlDeviceGetMPSComputeRunningProcesses) \
    X(nvmlDeviceGetMPSComputeRunningProcesses_v2) X(nvmlDeviceGetConfComputeProtectedMemoryUsage) \
    X(nvmlDeviceGetMemoryBusWidth)
/* clang-format on */
#define DECL(n) static __typeof__(n) *p_##n;
CU_FNS(DECL)
NV_FNS(DECL)

static void *cu, *nv;
static char state_path[128];
static nvmlDevice_t nvd[2];
static CUcontext ctx0;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static size_t cu_free(void)
{
    size_t f = 0, t = 0;
    OK(p_cuMemGetInfo_v2(&f, &t));
    return f;
}

static unsigned long long nv_used(int d)
{
    nvmlMemory_t m = {0};
    CHECK_EQ_INT(p_nvmlDeviceGetMemoryInfo(nvd[d], &m), NVML_SUCCESS);
    CHECK_EQ_U64(m.free + m.used, m.total);
    return m.used;
}

/* processes on device d; returns the count, fills up to 8 entries */
static unsigned nv_procs(int d, nvmlProcessInfo_t *out)
{
    unsigned n = 8;
    CHECK_EQ_INT(p_nvmlDeviceGetComputeRunningProcesses_v3(nvd[d], &n, out), NVML_SUCCESS);
    return n;
}

static unsigned long long nv_proc_mem(int d, int pid)
{
    nvmlProcessInfo_t p[8];
    unsigned n = nv_procs(d, p);
    for (unsigned i = 0; i < n; i++)
        if ((int)p[i].pid == pid) return p[i].usedGpuMemory;
    return 0;
}

static const struct sim_proc *state_proc(const struct sim_state *s, int pid)
{
    for (int i = 0; i < SIM_MAX_PROC; i++)
        if (s->proc[i].in_use && s->proc[i].pid == pid) return &s->proc[i];
    return NULL;
}

static void test_before_init(void)
{
    int n = -1;
    CUdeviceptr p;
    CHECK_EQ_INT(p_cuDeviceGetCount(&n), CUDA_ERROR_NOT_INITIALIZED);
    CHECK_EQ_INT(p_cuMemAlloc_v2(&p, 1), CUDA_ERROR_NOT_INITIALIZED);
    unsigned c = 0;
    CHECK_EQ_INT(p_nvmlDeviceGetCount_v2(&c), NVML_ERROR_UNINITIALIZED);
    /* NVML works without cuInit */
    CHECK_EQ_INT(p_nvmlInit_v2(), NVML_SUCCESS);
    CHECK_EQ_INT(p_nvmlDeviceGetCount_v2(&c), NVML_SUCCESS);
    CHECK_EQ_INT(c, 2);
    for (int d = 0; d < 2; d++)
        CHECK_EQ_INT(p_nvmlDeviceGetHandleByIndex_v2((unsigned)d, &nvd[d]), NVML_SUCCESS);
    nvmlProcessInfo_t pi[8];
    CHECK_EQ_INT(nv_procs(0, pi), 0);
    CHECK_EQ_U64(nv_used(0), 0);
}

static void test_devices(void)
{
    int n = 0;
    CUdevice dev;
    char name[64];
    CUuuid u;
    OK(p_cuInit(0));
    OK(p_cuDeviceGetCount(&n));
    CHECK_EQ_INT(n, 2);
    CHECK_EQ_INT(p_cuDeviceGet(&dev, 2), CUDA_ERROR_INVALID_DEVICE);
    OK(p_cuDeviceGet(&dev, 1));
    CHECK_EQ_INT(dev, 1);
    OK(p_cuDeviceGetName(name, sizeof name, 1));
    CHECK_STR(name, "vgpu simulated H100");
    OK(p_cuDeviceGetUuid_v2(&u, 1));
    const unsigned char want[16] = {0x5e, 0x1a, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2};
    CHECK(memcmp(u.bytes, want, 16) == 0);
    char s[96];
    CHECK_EQ_INT(p_nvmlDeviceGetUUID(nvd[1], s, sizeof s), NVML_SUCCESS);
    CHECK_STR(s, "GPU-5e1a0000-0000-0000-0000-000000000002");
    CHECK_EQ_INT(p_nvmlDeviceGetUUID(nvd[1], s, 10), NVML_ERROR_INSUFFICIENT_SIZE);
    nvmlDevice_t h = NULL;
    CHECK_EQ_INT(p_nvmlDeviceGetHandleByUUID("GPU-5e1a0000-0000-0000-0000-000000000001", &h),
                 NVML_SUCCESS);
    CHECK(h == nvd[0]);
    CHECK_EQ_INT(p_nvmlDeviceGetName(nvd[0], s, sizeof s), NVML_SUCCESS);
    CHECK_STR(s, "vgpu simulated H100");
    size_t total = 0;
    unsigned total32 = 0;
    OK(p_cuDeviceTotalMem_v2(&total, 0));
    CHECK_EQ_U64(total, 8 * GiB);
    OK(p_cuDeviceTotalMem(&total32, 0));
    CHECK_EQ_U64(total32, 0xFFFFFFFFu); /* saturates */
    int v = 0;
    OK(p_cuDeviceGetAttribute(&v, 75, 0));
    CHECK_EQ_INT(v, 9);
    OK(p_cuDeviceGetAttribute(&v, 16, 0));
    CHECK_EQ_INT(v, 132);
    const char *en = NULL;
    OK(p_cuGetErrorName(CUDA_ERROR_OUT_OF_MEMORY, &en));
    CHECK_STR(en, "CUDA_ERROR_OUT_OF_MEMORY");
}

static void test_context(void)
{
    size_t f, t;
    CHECK_EQ_INT(p_cuMemGetInfo_v2(&f, &t), CUDA_ERROR_INVALID_CONTEXT);
    OK(p_cuDevicePrimaryCtxRetain(&ctx0, 0));
    OK(p_cuCtxSetCurrent(ctx0));
    CUdevice d = -1;
    OK(p_cuCtxGetDevice(&d));
    CHECK_EQ_INT(d, 0);
    CHECK_EQ_U64(nv_used(0), 64 * MiB); /* context overhead */
    CHECK_EQ_U64(nv_proc_mem(0, getpid()), 64 * MiB);
    CHECK_EQ_U64(cu_free(), 8 * GiB - 64 * MiB);
    /* a second context on device 1 costs there, and takes its memory with it */
    CUcontext c1;
    CUdeviceptr p;
    OK(p_cuCtxCreate_v2(&c1, 0, 1));
    OK(p_cuMemAlloc_v2(&p, 10 * MiB));
    CHECK_EQ_U64(nv_used(1), 74 * MiB);
    OK(p_cuCtxDestroy_v2(c1));
    CHECK_EQ_U64(nv_used(1), 0);
    OK(p_cuCtxSetCurrent(ctx0));
}

static void test_memory(void)
{
    size_t base = cu_free();
    unsigned long long used0 = nv_used(0);
    CUdeviceptr a = 0, b = 0;
    OK(p_cuMemAlloc_v2(&a, 1));
    CHECK_EQ_U64(base - cu_free(), 2 * MiB); /* 2 MiB footprint */
    OK(p_cuMemAlloc_v2(&b, 3 * MiB));
    CHECK_EQ_U64(base - cu_free(), 6 * MiB);
    CHECK_EQ_U64(nv_used(0) - used0, 6 * MiB);
    CHECK_EQ_U64(nv_proc_mem(0, getpid()), used0 + 6 * MiB);
    int ord = -1;
    unsigned type = 0;
    CUcontext c = NULL;
    OK(p_cuPointerGetAttribute(&ord, CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL, b + 5));
    CHECK_EQ_INT(ord, 0);
    OK(p_cuPointerGetAttribute(&type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, b));
    CHECK_EQ_INT(type, 2);
    OK(p_cuPointerGetAttribute(&c, CU_POINTER_ATTRIBUTE_CONTEXT, b));
    CHECK(c == ctx0);
    CHECK_EQ_INT(p_cuPointerGetAttribute(&ord, CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL, b + 3 * MiB),
                 CUDA_ERROR_INVALID_VALUE);
    CUdeviceptr rb = 0;
    size_t rs = 0;
    OK(p_cuMemGetAddressRange_v2(&rb, &rs, b + 100));
    CHECK_EQ_U64(rb, b);
    CHECK_EQ_U64(rs, 3 * MiB);
    char host[64] = {0};
    OK(p_cuMemcpyHtoD_v2(b + 3 * MiB - 64, host, 64));
    CHECK_EQ_INT(p_cuMemcpyHtoD_v2(b + 3 * MiB - 63, host, 64), CUDA_ERROR_INVALID_VALUE);
    OK(p_cuMemsetD32_v2(b, 0, 3 * MiB / 4));
    CHECK_EQ_INT(p_cuMemsetD32_v2(b, 0, 3 * MiB / 4 + 1), CUDA_ERROR_INVALID_VALUE);
    OK(p_cuMemFree_v2(a));
    OK(p_cuMemFree_v2(b));
    CHECK_EQ_INT(p_cuMemFree_v2(b), CUDA_ERROR_INVALID_VALUE);
    CHECK_EQ_INT(p_cuMemcpyHtoD_v2(b, host, 1), CUDA_ERROR_INVALID_VALUE);
    CHECK_EQ_U64(cu_free(), base);
    CHECK_EQ_INT(p_cuMemAlloc_v2(&a, 0), CUDA_ERROR_INVALID_VALUE);
    /* out of memory past the total */
    CHECK_EQ_INT(p_cuMemAlloc_v2(&a, base + 1), CUDA_ERROR_OUT_OF_MEMORY);
    OK(p_cuMemAlloc_v2(&a, base));
    CHECK_EQ_U64(cu_free(), 0);
    CHECK_EQ_INT(p_cuMemAlloc_v2(&b, 1), CUDA_ERROR_OUT_OF_MEMORY);
    OK(p_cuMemFree_v2(a));
    /* legacy 32-bit entry points */
    CUdeviceptr_v1 a32 = 0;
    unsigned f32 = 0, t32 = 0, pitch32 = 0;
    OK(p_cuMemAlloc(&a32, 5 * MiB));
    CHECK(a32 != 0);
    CHECK_EQ_U64(base - cu_free(), 6 * MiB);
    OK(p_cuMemGetInfo(&f32, &t32));
    CHECK_EQ_U64(f32, 0xFFFFFFFFu);
    CHECK_EQ_U64(t32, 0xFFFFFFFFu);
    OK(p_cuMemFree(a32));
    OK(p_cuMemAllocPitch(&a32, &pitch32, 100, 10, 4));
    CHECK_EQ_INT(pitch32, 512);
    OK(p_cuMemFree(a32));
    CHECK_EQ_U64(cu_free(), base);
    /* pitch: rounded to 512, footprint pitch*height rounded to 2 MiB */
    size_t pitch = 0;
    OK(p_cuMemAllocPitch_v2(&a, &pitch, 1000, 3000, 4));
    CHECK_EQ_U64(pitch, 1024);
    CHECK_EQ_U64(base - cu_free(), 4 * MiB);
    OK(p_cuMemGetAddressRange_v2(NULL, &rs, a));
    CHECK_EQ_U64(rs, 1024 * 3000);
    OK(p_cuMemFree_v2(a));
    CHECK_EQ_INT(p_cuMemAllocPitch_v2(&a, &pitch, 1000, 10, 3), CUDA_ERROR_INVALID_VALUE);
    CHECK_EQ_U64(cu_free(), base);
}

static void test_managed(const struct sim_state *st)
{
    size_t base = cu_free();
    CUdeviceptr m = 0, d = 0;
    OK(p_cuMemAllocManaged(&m, 100 * MiB, CU_MEM_ATTACH_GLOBAL));
    CHECK_EQ_U64(cu_free(), base); /* host-resident: no device memory */
    ((volatile char *)(uintptr_t)m)[0] = 1;
    ((volatile char *)(uintptr_t)m)[100 * MiB - 1] = 2;
    const struct sim_proc *me = state_proc(st, getpid());
    CHECK(me != NULL);
    if (me) CHECK_EQ_U64(me->managed, 100 * MiB);
    unsigned type = 0;
    OK(p_cuPointerGetAttribute(&type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, m));
    CHECK_EQ_INT(type, 1);
    CUmemLocation loc = {CU_MEM_LOCATION_TYPE_DEVICE, 0};
    OK(p_cuMemAdvise_v2(m, 100 * MiB, CU_MEM_ADVISE_SET_PREFERRED_LOCATION, loc));
    CHECK_EQ_INT(p_cuMemAdvise_v2(m, 100 * MiB + 1, CU_MEM_ADVISE_SET_PREFERRED_LOCATION, loc),
                 CUDA_ERROR_INVALID_VALUE);
    OK(p_cuMemAlloc_v2(&d, MiB));
    CHECK_EQ_INT(p_cuMemAdvise_v2(d, MiB, CU_MEM_ADVISE_SET_PREFERRED_LOCATION, loc),
                 CUDA_ERROR_INVALID_VALUE);
    OK(p_cuMemFree_v2(d));
    OK(p_cuMemFree_v2(m));
    if (me) CHECK_EQ_U64(me->managed, 0);
    CHECK_EQ_U64(cu_free(), base);
}

static void test_arrays(void)
{
    size_t base = cu_free();
    CUarray a = NULL, a3 = NULL;
    CUmipmappedArray mm = NULL;
    CUDA_ARRAY_MEMORY_REQUIREMENTS req;
    CUDA_ARRAY_DESCRIPTOR d2 = {1000, 1000, CU_AD_FORMAT_FLOAT, 4}; /* 16,000,000 bytes */
    OK(p_cuArrayCreate_v2(&a, &d2));
    CHECK_EQ_U64(base - cu_free(), 16 * MiB);
    OK(p_cuArrayGetMemoryRequirements(&req, a, 0));
    CHECK_EQ_U64(req.size, 16 * MiB);
    CHECK_EQ_U64(req.alignment, 2 * MiB);
    CUDA_ARRAY3D_DESCRIPTOR d3 = {1024, 1024, 3, CU_AD_FORMAT_HALF, 2, 0}; /* 12 MiB */
    OK(p_cuArray3DCreate_v2(&a3, &d3));
    CHECK_EQ_U64(base - cu_free(), 28 * MiB);
    d2.NumChannels = 3;
    CHECK_EQ_INT(p_cuArrayCreate_v2(&a, &d2), CUDA_ERROR_INVALID_VALUE);
    /* 3 levels of 1024x1024 float: 4 MiB + 1 MiB + 256 KiB -> 6 MiB */
    CUDA_ARRAY3D_DESCRIPTOR dm = {1024, 1024, 0, CU_AD_FORMAT_FLOAT, 1, 0};
    OK(p_cuMipmappedArrayCreate(&mm, &dm, 3));
    OK(p_cuMipmappedArrayGetMemoryRequirements(&req, mm, 0));
    CHECK_EQ_U64(req.size, 6 * MiB);
    CHECK_EQ_U64(base - cu_free(), 34 * MiB);
    CHECK_EQ_INT(p_cuArrayDestroy((CUarray)(void *)mm), CUDA_ERROR_INVALID_HANDLE);
    OK(p_cuMipmappedArrayDestroy(mm));
    OK(p_cuArrayDestroy(a3));
    OK(p_cuArrayDestroy(a));
    CHECK_EQ_INT(p_cuArrayDestroy(a), CUDA_ERROR_INVALID_HANDLE);
    CHECK_EQ_U64(cu_free(), base);
}

static cuuint64_t pool_get(CUmemoryPool p, CUmemPool_attribute attr)
{
    cuuint64_t v = ~0ull;
    OK(p_cuMemPoolGetAttribute(p, attr, &v));
    return v;
}

static void test_pools(void)
{
    size_t base = cu_free();
    CUmemoryPool dp = NULL, mp = NULL;
    CUdeviceptr a, b, c;
    OK(p_cuDeviceGetDefaultMemPool(&dp, 0));
    CHECK_EQ_U64(pool_get(dp, CU_MEMPOOL_ATTR_RELEASE_THRESHOLD), 0);
    OK(p_cuMemAllocAsync(&a, MiB, NULL)); /* grows by one 2 MiB chunk */
    CHECK_EQ_U64(pool_get(dp, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT), 2 * MiB);
    CHECK_EQ_U64(pool_get(dp, CU_MEMPOOL_ATTR_USED_MEM_CURRENT), MiB);
    CHECK_EQ_U64(base - cu_free(), 2 * MiB);
    OK(p_cuMemAllocAsync(&b, 512 * 1024 - 100, NULL)); /* served from the reserve */
    CHECK_EQ_U64(pool_get(dp, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT), 2 * MiB);
    CHECK_EQ_U64(pool_get(dp, CU_MEMPOOL_ATTR_USED_MEM_CURRENT), MiB + 512 * 1024);
    OK(p_cuMemAllocAsync(&c, MiB, NULL)); /* needs 512 KiB more: one more chunk */
    CHECK_EQ_U64(pool_get(dp, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT), 4 * MiB);
    CHECK_EQ_U64(base - cu_free(), 4 * MiB);
    OK(p_cuMemFreeAsync(a, NULL));
    OK(p_cuMemFreeAsync(b, NULL));
    OK(p_cuMemFreeAsync(c, NULL));
    CHECK_EQ_INT(p_cuMemFreeAsync(c, NULL), CUDA_ERROR_INVALID_VALUE);
    CHECK_EQ_U64(pool_get(dp, CU_MEMPOOL_ATTR_USED_MEM_CURRENT), 0);
    CHECK_EQ_U64(pool_get(dp, CU_MEMPOOL_ATTR_USED_MEM_HIGH), 2 * MiB + 512 * 1024);
    CHECK_EQ_U64(base - cu_free(), 4 * MiB);  /* freed memory stays reserved ... */
    OK(p_cuMemAllocAsync(&a, 3 * MiB, NULL)); /* ... and is reused */
    CHECK_EQ_U64(pool_get(dp, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT), 4 * MiB);
    OK(p_cuMemFreeAsync(a, NULL));
    OK(p_cuStreamSynchronize(NULL)); /* ... until a synchronisation (threshold 0) */
    CHECK_EQ_U64(pool_get(dp, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT), 0);
    CHECK_EQ_U64(cu_free(), base);
    /* a release threshold keeps memory across synchronisation; trim gives it back */
    cuuint64_t thr = 8 * MiB;
    OK(p_cuMemPoolSetAttribute(dp, CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, &thr));
    OK(p_cuMemAllocAsync(&a, 5 * MiB, NULL));
    OK(p_cuMemFreeAsync(a, NULL));
    OK(p_cuCtxSynchronize());
    CHECK_EQ_U64(pool_get(dp, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT), 6 * MiB);
    OK(p_cuMemPoolTrimTo(dp, 2 * MiB));
    CHECK_EQ_U64(pool_get(dp, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT), 2 * MiB);
    OK(p_cuMemPoolTrimTo(dp, 0));
    CHECK_EQ_U64(cu_free(), base);
    thr = 0;
    OK(p_cuMemPoolSetAttribute(dp, CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, &thr));
    CHECK_EQ_INT(p_cuMemAllocAsync(&a, 9 * GiB, NULL), CUDA_ERROR_OUT_OF_MEMORY);
    /* an explicit pool on device 1 charges device 1; destroying it keeps what is in use */
    CUmemPoolProps props = {0};
    props.allocType = CU_MEM_ALLOCATION_TYPE_PINNED;
    props.location = (CUmemLocation){CU_MEM_LOCATION_TYPE_DEVICE, 1};
    OK(p_cuMemPoolCreate(&mp, &props));
    OK(p_cuMemAllocFromPoolAsync(&a, 1000, mp, NULL));
    CHECK_EQ_U64(nv_used(1), 2 * MiB);
    OK(p_cuMemPoolDestroy(mp));
    CHECK_EQ_U64(nv_used(1), 1024);
    OK(p_cuMemFreeAsync(a, NULL));
    CHECK_EQ_U64(nv_used(1), 0);
    props.location.id = 7;
    CHECK_EQ_INT(p_cuMemPoolCreate(&mp, &props), CUDA_ERROR_INVALID_VALUE);
}

static void test_vmm(void)
{
    size_t base = cu_free(), g = 0;
    CUmemAllocationProp prop = {0};
    prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
    prop.location = (CUmemLocation){CU_MEM_LOCATION_TYPE_DEVICE, 0};
    OK(p_cuMemGetAllocationGranularity(&g, &prop, CU_MEM_ALLOC_GRANULARITY_MINIMUM));
    CHECK_EQ_U64(g, 2 * MiB);
    g = 0;
    OK(p_cuMemGetAllocationGranularity(&g, &prop, CU_MEM_ALLOC_GRANULARITY_RECOMMENDED));
    CHECK_EQ_U64(g, 2 * MiB);
    CUmemGenericAllocationHandle h = 0;
    CHECK_EQ_INT(p_cuMemCreate(&h, 3 * MiB, &prop, 0), CUDA_ERROR_INVALID_VALUE);
    OK(p_cuMemCreate(&h, 4 * MiB, &prop, 0));
    CHECK_EQ_U64(base - cu_free(), 4 * MiB);
    CUdeviceptr va = 0;
    char host[16] = {0};
    OK(p_cuMemAddressReserve(&va, 8 * MiB, 0, 0, 0));
    OK(p_cuMemMap(va, 4 * MiB, 0, h, 0));
    CHECK_EQ_INT(p_cuMemMap(va + 4 * MiB, 4 * MiB, 2 * MiB, h, 0), CUDA_ERROR_INVALID_VALUE);
    CHECK_EQ_INT(p_cuMemcpyHtoD_v2(va, host, 16), CUDA_ERROR_INVALID_VALUE); /* no access yet */
    CUmemAccessDesc acc = {{CU_MEM_LOCATION_TYPE_DEVICE, 0}, CU_MEM_ACCESS_FLAGS_PROT_READWRITE};
    OK(p_cuMemSetAccess(va, 4 * MiB, &acc, 1));
    CHECK_EQ_INT(p_cuMemSetAccess(va, 8 * MiB, &acc, 1), CUDA_ERROR_INVALID_VALUE);
    OK(p_cuMemcpyHtoD_v2(va, host, 16));
    OK(p_cuMemRelease(h));
    CHECK_EQ_U64(base - cu_free(), 4 * MiB); /* still mapped */
    OK(p_cuMemUnmap(va, 4 * MiB));
    CHECK_EQ_U64(cu_free(), base);
    OK(p_cuMemAddressFree(va, 8 * MiB));
}

static void test_proc_address(void)
{
    void *p = NULL;
    CUdriverProcAddressQueryResult st = 99;
#define GPA(sym, ver, flags) p_cuGetProcAddress_v2(sym, &p, ver, flags, &st)
    OK(GPA("cuMemAlloc", 3000, 0));
    CHECK_EQ_INT(st, CU_GET_PROC_ADDRESS_SUCCESS);
    CHECK(p && p == dlsym(cu, "cuMemAlloc"));
    void *old = p;
    OK(GPA("cuMemAlloc", 12000, 0));
    CHECK(p && p == dlsym(cu, "cuMemAlloc_v2") && p != old);
    OK(GPA("cuLaunchKernel", 12000, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM));
    CHECK(p && p == dlsym(cu, "cuLaunchKernel_ptsz"));
    OK(GPA("cuLaunchKernel", 12000, CU_GET_PROC_ADDRESS_LEGACY_STREAM));
    CHECK(p && p == dlsym(cu, "cuLaunchKernel"));
    OK(GPA("cuMemcpyHtoD", 12000, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM));
    CHECK(p && p == dlsym(cu, "cuMemcpyHtoD_v2_ptds"));
    OK(GPA("cuMemGetInfo", 12000,
           CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM)); /* no ptsz: legacy */
    CHECK(p && p == dlsym(cu, "cuMemGetInfo_v2"));
    OK(GPA("cuCtxCreate", 12050, 0));
    CHECK(p && p == dlsym(cu, "cuCtxCreate_v4"));
    OK(GPA("cuCtxCreate", 12040, 0));
    CHECK(p && p == dlsym(cu, "cuCtxCreate_v3"));
    OK(GPA("cuGetProcAddress", 12000, 0));
    CHECK(p && p == dlsym(cu, "cuGetProcAddress_v2"));
    OK(GPA("cuGetProcAddress", 11030, 0));
    CHECK(p && p == dlsym(cu, "cuGetProcAddress"));
    CHECK_EQ_INT(GPA("cuMemAlloc_v2", 12000, 0), CUDA_ERROR_NOT_FOUND); /* only base names */
    CHECK_EQ_INT(st, CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND);
    CHECK(p == NULL);
    CHECK_EQ_INT(GPA("cuNoSuchFunction", 12000, 0), CUDA_ERROR_NOT_FOUND);
    CHECK_EQ_INT(st, CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND);
    CHECK_EQ_INT(GPA("cuMemAllocAsync", 11010, 0), CUDA_ERROR_NOT_FOUND);
    CHECK_EQ_INT(st, CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT);
    p = NULL;
    OK(p_cuGetProcAddress("cuMemFree", &p, 13000, 0));
    CHECK(p && p == dlsym(cu, "cuMemFree_v2"));
    /* aliases: a different function that does the same */
    setenv("VGPU_SIM_GPA_ALIASES", "1", 1);
    OK(GPA("cuMemGetInfo", 12000, 0));
    CHECK(p && p != dlsym(cu, "cuMemGetInfo_v2"));
    size_t f = 0, t = 0;
    if (p) OK(((__typeof__(cuMemGetInfo_v2) *)p)(&f, &t));
    CHECK_EQ_U64(f, cu_free());
    CHECK_EQ_U64(t, 8 * GiB);
    OK(GPA("cuMemAlloc", 12000, 0));
    CHECK(p && p != dlsym(cu, "cuMemAlloc_v2"));
    CUdeviceptr d = 0;
    if (p) OK(((__typeof__(cuMemAlloc_v2) *)p)(&d, MiB));
    CHECK_EQ_U64(nv_proc_mem(0, getpid()), 66 * MiB);
    OK(p_cuMemFree_v2(d));
    OK(GPA("cuLaunchKernel", 12000, 0));
    CHECK(p && p != dlsym(cu, "cuLaunchKernel"));
    OK(GPA("cuLaunchKernel", 12000, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM));
    CHECK(p && p != dlsym(cu, "cuLaunchKernel_ptsz") && p != dlsym(cu, "cuLaunchKernel"));
    OK(GPA("cuMemFree", 12000, 0));
    CHECK(p && p == dlsym(cu, "cuMemFree_v2")); /* not aliased */
    unsetenv("VGPU_SIM_GPA_ALIASES");
#undef GPA
}

static void test_timing(void)
{
    CUmodule mod;
    CUfunction k1ms, k100ms, k5ms, plain;
    CUevent e0, e1;
    float ms = 0;
    OK(p_cuModuleLoadData(&mod, "sim"));
    OK(p_cuModuleGetFunction(&k1ms, mod, "sim_kernel_1000us"));
    OK(p_cuModuleGetFunction(&k100ms, mod, "_Z19sim_kernel_100000usPf"));
    OK(p_cuModuleGetFunction(&k5ms, mod, "sim_kernel_5000us"));
    OK(p_cuModuleGetFunction(&plain, mod, "saxpy"));
    OK(p_cuEventCreate(&e0, 0));
    OK(p_cuEventCreate(&e1, 0));
    /* 20 x 1 ms: launches return at once, synchronisation waits ~20 ms */
    OK(p_cuEventRecord(e0, NULL));
    double t0 = now_ms();
    for (int i = 0; i < 20; i++)
        OK(p_cuLaunchKernel(k1ms, 1, 1, 1, 32, 1, 1, 0, NULL, NULL, NULL));
    double t1 = now_ms();
    OK(p_cuEventRecord(e1, NULL));
    CHECK(t1 - t0 < 10);
    CHECK_EQ_INT(p_cuEventQuery(e1), CUDA_ERROR_NOT_READY);
    CHECK_EQ_INT(p_cuEventElapsedTime(&ms, e0, e1), CUDA_ERROR_NOT_READY);
    OK(p_cuStreamSynchronize(NULL));
    double t2 = now_ms();
    CHECK(t2 - t1 >= 19);
    OK(p_cuEventQuery(e1));
    OK(p_cuEventElapsedTime(&ms, e0, e1));
    CHECK(ms >= 15 && ms <= 25);
    CHECK_EQ_INT(p_cuLaunchKernel(k1ms, 0, 1, 1, 32, 1, 1, 0, NULL, NULL, NULL),
                 CUDA_ERROR_INVALID_VALUE);
    CHECK_EQ_INT(p_cuLaunchKernel((CUfunction)(void *)mod, 1, 1, 1, 1, 1, 1, 0, NULL, NULL, NULL),
                 CUDA_ERROR_INVALID_HANDLE);
    /* a kernel whose name does not say runs VGPU_SIM_KERNEL_US (10 us) */
    t0 = now_ms();
    for (int i = 0; i < 100; i++)
        OK(p_cuLaunchKernel(plain, 1, 1, 1, 1, 1, 1, 0, NULL, NULL, NULL));
    OK(p_cuCtxSynchronize());
    CHECK(now_ms() - t0 < 50);
    /* a graph of two 5 ms kernels on a created stream */
    CUgraph g;
    CUgraphExec gx;
    CUgraphNode n1, n2;
    CUstream s;
    CUDA_KERNEL_NODE_PARAMS_v2 kp = {0};
    kp.func = k5ms;
    kp.gridDimX = kp.gridDimY = kp.gridDimZ = kp.blockDimX = kp.blockDimY = kp.blockDimZ = 1;
    OK(p_cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
    OK(p_cuGraphCreate(&g, 0));
    OK(p_cuGraphAddKernelNode_v2(&n1, g, NULL, 0, &kp));
    OK(p_cuGraphAddKernelNode_v2(&n2, g, &n1, 1, &kp));
    OK(p_cuGraphInstantiateWithFlags(&gx, g, 0));
    OK(p_cuEventRecord(e0, s));
    OK(p_cuGraphLaunch(gx, s));
    OK(p_cuEventRecord(e1, s));
    OK(p_cuEventSynchronize(e1));
    OK(p_cuEventElapsedTime(&ms, e0, e1));
    CHECK(ms >= 9 && ms <= 14);
    /* 8 x 100 ms: the launch queue holds 200 ms, so launching blocks for ~600 ms */
    t0 = now_ms();
    for (int i = 0; i < 8; i++)
        OK(p_cuLaunchKernel(k100ms, 1, 1, 1, 1, 1, 1, 0, s, NULL, NULL));
    t1 = now_ms();
    CHECK(t1 - t0 >= 500 && t1 - t0 < 700);
    OK(p_cuStreamSynchronize(s));
    CHECK(now_ms() - t0 >= 790);
    nvmlUtilization_t u = {0, 0};
    CHECK_EQ_INT(p_nvmlDeviceGetUtilizationRates(nvd[0], &u), NVML_SUCCESS);
    CHECK(u.gpu > 50 && u.gpu <= 100);
    CHECK_EQ_INT(p_nvmlDeviceGetUtilizationRates(nvd[1], &u), NVML_SUCCESS);
    CHECK_EQ_INT(u.gpu, 0);
    nvmlProcessUtilizationSample_t smp[8];
    unsigned n = 0;
    CHECK_EQ_INT(p_nvmlDeviceGetProcessUtilization(nvd[0], NULL, &n, 0),
                 NVML_ERROR_INSUFFICIENT_SIZE);
    CHECK_EQ_INT(n, 1);
    n = 8;
    CHECK_EQ_INT(p_nvmlDeviceGetProcessUtilization(nvd[0], smp, &n, 0), NVML_SUCCESS);
    CHECK_EQ_INT(n, 1);
    CHECK_EQ_INT(smp[0].pid, getpid());
    CHECK(smp[0].smUtil > 50);
    CHECK(smp[0].timeStamp > 1600000000ull * 1000000ull);
    n = 8; /* nothing after "now" */
    CHECK_EQ_INT(p_nvmlDeviceGetProcessUtilization(nvd[0], smp, &n, smp[0].timeStamp + 1000000),
                 NVML_SUCCESS);
    CHECK_EQ_INT(n, 0);
    /* the driver's readings of the last second, oldest first; their mean is the 1 s figure */
    nvmlSample_t gs[16];
    nvmlValueType_t vt = NVML_VALUE_TYPE_DOUBLE;
    n = 16;
    CHECK_EQ_INT(p_nvmlDeviceGetSamples(nvd[0], NVML_GPU_UTILIZATION_SAMPLES, 0, &vt, &n, gs),
                 NVML_SUCCESS);
    CHECK_EQ_INT(vt, NVML_VALUE_TYPE_UNSIGNED_INT);
    CHECK_EQ_INT(n, 10);
    double mean = 0;
    for (unsigned k = 0; k < n; k++) {
        mean += nvml_value_number(vt, gs[k].sampleValue) / n;
        if (k) CHECK(gs[k].timeStamp > gs[k - 1].timeStamp);
    }
    CHECK(mean > 50 && mean <= 100);
    n = 16; /* only what is newer than the last one seen */
    CHECK_EQ_INT(
        p_nvmlDeviceGetSamples(nvd[0], NVML_GPU_UTILIZATION_SAMPLES, gs[7].timeStamp, &vt, &n, gs),
        NVML_SUCCESS);
    CHECK(n >= 2 && n <= 3);
    unsigned long long newest = gs[n - 1].timeStamp;
    n = 16;
    CHECK_EQ_INT(
        p_nvmlDeviceGetSamples(nvd[0], NVML_GPU_UTILIZATION_SAMPLES, newest + 1000000, &vt, &n, gs),
        NVML_ERROR_NOT_FOUND);
}

/* The legacy and multi-device launches take their kernels' time; an import takes its size. */
static void test_extra(void)
{
    CUmodule mod;
    CUfunction k5ms;
    OK(p_cuModuleLoadData(&mod, "sim"));
    OK(p_cuModuleGetFunction(&k5ms, mod, "sim_kernel_5000us"));
    OK(p_cuCtxSynchronize());
    double t0 = now_ms();
    OK(p_cuLaunch(k5ms));
    OK(p_cuLaunchGrid(k5ms, 2, 2));
    OK(p_cuLaunchGridAsync(k5ms, 1, 1, NULL));
    CUDA_LAUNCH_PARAMS lp[2] = {{k5ms, 1, 1, 1, 1, 1, 1, 0, NULL, NULL},
                                {k5ms, 1, 1, 1, 1, 1, 1, 0, NULL, NULL}};
    OK(p_cuLaunchCooperativeKernelMultiDevice(lp, 2, 0));
    OK(p_cuCtxSynchronize());
    CHECK(now_ms() - t0 >= 24); /* five 5 ms kernels */
    CHECK_EQ_INT(p_cuLaunchGrid(k5ms, 0, 1), CUDA_ERROR_INVALID_VALUE);
    CHECK_EQ_INT(p_cuLaunchCooperativeKernelMultiDevice(lp, 3, 0), CUDA_ERROR_INVALID_VALUE);

    unsigned long long used = nv_used(0);
    CUDA_EXTERNAL_MEMORY_HANDLE_DESC d = {0};
    CUexternalMemory m = NULL, big = NULL;
    d.type = 1; /* opaque fd */
    d.handle.fd = 0;
    d.size = 100 * MiB + 1;
    OK(p_cuImportExternalMemory(&m, &d));
    CHECK_EQ_U64(nv_used(0), used + 102 * MiB);
    d.size = 8 * GiB;
    CHECK_EQ_INT(p_cuImportExternalMemory(&big, &d), CUDA_ERROR_OUT_OF_MEMORY);
    d.size = 0;
    CHECK_EQ_INT(p_cuImportExternalMemory(&big, &d), CUDA_ERROR_INVALID_VALUE);
    OK(p_cuDestroyExternalMemory(m));
    CHECK_EQ_U64(nv_used(0), used);
    CHECK_EQ_INT(p_cuDestroyExternalMemory(m), CUDA_ERROR_INVALID_HANDLE);

    nvmlMemory_t pm;
    CHECK_EQ_INT(p_nvmlDeviceGetConfComputeProtectedMemoryUsage(nvd[0], &pm),
                 NVML_ERROR_NOT_SUPPORTED);
    unsigned width = 0, n = 8;
    CHECK_EQ_INT(p_nvmlDeviceGetMemoryBusWidth(nvd[0], &width), NVML_SUCCESS);
    CHECK_EQ_INT(width, 5120);
    nvmlProcessInfo_v1_t p1[8];
    nvmlProcessInfo_t p2[8];
    CHECK_EQ_INT(p_nvmlDeviceGetMPSComputeRunningProcesses(nvd[0], &n, p1), NVML_SUCCESS);
    CHECK_EQ_INT(n, 0);
    n = 8;
    CHECK_EQ_INT(p_nvmlDeviceGetMPSComputeRunningProcesses_v2(nvd[0], &n, p2), NVML_SUCCESS);
    CHECK_EQ_INT(n, 0);
}

/* A second process: its memory counts for everyone, and comes back when it is killed. */
static void test_processes(void)
{
    int fds[2];
    CHECK(pipe(fds) == 0);
    size_t base = cu_free();
    unsigned long long used0 = nv_used(0);
    pid_t pid = fork();
    if (pid == 0) {
        CUcontext c;
        CUdeviceptr p;
        int rc = p_cuInit(0);
        if (!rc) rc = p_cuDevicePrimaryCtxRetain(&c, 0);
        if (!rc) rc = p_cuCtxSetCurrent(c);
        if (!rc) rc = p_cuMemAlloc_v2(&p, GiB);
        if (write(fds[1], &rc, sizeof rc) != sizeof rc) _exit(2);
        pause();
        _exit(0);
    }
    int rc = -1;
    CHECK(read(fds[0], &rc, sizeof rc) == sizeof rc);
    CHECK_EQ_INT(rc, CUDA_SUCCESS);
    CHECK_EQ_U64(nv_proc_mem(0, pid), GiB + 64 * MiB);
    CHECK_EQ_U64(base - cu_free(), GiB + 64 * MiB);
    CHECK_EQ_U64(nv_used(0), used0 + GiB + 64 * MiB);
    nvmlProcessInfo_t pi[8];
    CHECK_EQ_INT(nv_procs(0, pi), 2);
    unsigned n = 1; /* too small: told how many */
    CHECK_EQ_INT(p_nvmlDeviceGetComputeRunningProcesses_v3(nvd[0], &n, pi),
                 NVML_ERROR_INSUFFICIENT_SIZE);
    CHECK_EQ_INT(n, 2);
    nvmlProcessInfo_v1_t pv1[8];
    n = 8;
    CHECK_EQ_INT(p_nvmlDeviceGetComputeRunningProcesses(nvd[0], &n, pv1), NVML_SUCCESS);
    CHECK_EQ_INT(n, 2);
    kill(pid, SIGKILL);
    /* gone as soon as it is a zombie, before anyone reaps it */
    double t0 = now_ms();
    while (nv_procs(0, pi) != 1 && now_ms() - t0 < 2000)
        usleep(1000);
    CHECK_EQ_INT(nv_procs(0, pi), 1);
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    CHECK_EQ_U64(cu_free(), base);
    CHECK_EQ_U64(nv_used(0), used0);
    CHECK_EQ_U64(nv_proc_mem(0, pid), 0);
    close(fds[0]);
    close(fds[1]);
}

/* A process killed while it holds the shared lock must not wedge everyone else. */
static void test_robust_lock(struct sim_state *st)
{
    int fds[2];
    CHECK(pipe(fds) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        pthread_mutex_lock(&st->lock);
        char c = 1;
        if (write(fds[1], &c, 1) != 1) _exit(2);
        pause();
        _exit(0);
    }
    char c = 0;
    CHECK(read(fds[0], &c, 1) == 1);
    CHECK_EQ_INT(pthread_mutex_trylock(&st->lock), EBUSY);
    kill(pid, SIGKILL);
    CHECK(waitpid(pid, NULL, 0) == pid);
    size_t base = cu_free(); /* recovers the lock (EOWNERDEAD) */
    CHECK(base > 0 && base == cu_free());
    CHECK_EQ_U64(nv_used(0), 8 * GiB - base);
    int r = pthread_mutex_trylock(&st->lock); /* consistent again, not ENOTRECOVERABLE */
    CHECK_EQ_INT(r, 0);
    if (r == 0) pthread_mutex_unlock(&st->lock);
    close(fds[0]);
    close(fds[1]);
}

static void test_release(void)
{
    OK(p_cuDevicePrimaryCtxRelease_v2(0));
    CHECK_EQ_U64(nv_used(0), 0);
    nvmlProcessInfo_t pi[8];
    CHECK_EQ_INT(nv_procs(0, pi), 0);
    size_t f, t;
    CHECK_EQ_INT(p_cuMemGetInfo_v2(&f, &t), CUDA_ERROR_INVALID_CONTEXT);
    nvmlMemory_v2_t m2 = {0};
    CHECK_EQ_INT(p_nvmlDeviceGetMemoryInfo_v2(nvd[0], &m2), NVML_ERROR_ARGUMENT_VERSION_MISMATCH);
    m2.version = nvmlMemory_v2;
    CHECK_EQ_INT(p_nvmlDeviceGetMemoryInfo_v2(nvd[0], &m2), NVML_SUCCESS);
    CHECK_EQ_U64(m2.free, 8 * GiB);
    CHECK_EQ_INT(p_nvmlShutdown(), NVML_SUCCESS);
    CHECK_EQ_INT(p_nvmlDeviceGetMemoryInfo_v2(nvd[0], &m2), NVML_ERROR_UNINITIALIZED);
}

int main(int argc, char **argv)
{
    const char *cu_path = argc > 1 ? argv[1] : SIM_CUDA_PATH,
               *nv_path = argc > 2 ? argv[2] : SIM_NVML_PATH;
    snprintf(state_path, sizeof state_path, "/tmp/vgpu-sim-test-%d.state", (int)getpid());
    unlink(state_path);
    alarm(30); /* a deadlock fails the test instead of hanging it */
    setenv("VGPU_SIM_STATE", state_path, 1);
    setenv("VGPU_SIM_DEVICES", "2", 1);
    setenv("VGPU_SIM_MEM", "8GiB", 1);
    setenv("VGPU_SIM_CTX_OVERHEAD", "64M", 1);
    unsetenv("VGPU_SIM_GPA_ALIASES");
    unsetenv("VGPU_SIM_KERNEL_US");
    unsetenv("VGPU_SIM_POOL_CHUNK");
    cu = dlopen(cu_path, RTLD_NOW | RTLD_LOCAL);
    nv = dlopen(nv_path, RTLD_NOW | RTLD_LOCAL);
    if (!cu || !nv) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        return 1;
    }
    int missing = 0;
#define LOAD(h, n) missing += !(p_##n = (__typeof__(p_##n))dlsym(h, #n));
#define LOAD_CU(n) LOAD(cu, n)
#define LOAD_NV(n) LOAD(nv, n)
    CU_FNS(LOAD_CU)
    NV_FNS(LOAD_NV)
    CHECK_EQ_INT(missing, 0);
    if (missing) TEST_MAIN_END();

    test_before_init();
    test_devices();
    int fd = open(state_path, O_RDWR);
    struct sim_state *st = mmap(NULL, sizeof *st, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(fd >= 0 && st != MAP_FAILED);
    if (st == MAP_FAILED) TEST_MAIN_END();
    CHECK_EQ_U64(st->magic, SIM_MAGIC);
    test_context();
    test_memory();
    test_managed(st);
    test_arrays();
    test_pools();
    test_vmm();
    test_proc_address();
    test_timing();
    test_extra();
    test_processes();
    test_robust_lock(st);
    test_release();
    munmap((void *)st, sizeof *st);
    close(fd);
    unlink(state_path);
    TEST_MAIN_END();
}
