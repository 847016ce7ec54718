/* cuda_probe.c - a driver-API program that exercises every allocation family under the limiter.
 *
 * Why this exists: the same program runs in CI over the simulated driver and on the real GPU
 * (tests/gpu/run), so both check the same behaviour. It reaches the driver through one of the
 * three doors applications use (VGPU_PROBE_DOOR = link | dlsym | gpa | gpa11): linked symbols,
 * dlopen+dlsym, or cuGetProcAddress (v2 at CUDA 12.0 with per-thread streams, or v1 at 11.3).
 * It reads the pod's ledger directly to check that each family is charged exactly what the
 * limiter claims, and given back.
 *
 *   cuda_probe families     every family charged and given back; each refused past the cap
 *   cuda_probe fill         allocate 64 MiB blocks until refused; print how much fitted
 *   cuda_probe info         print the view: total, free, device total
 *   cuda_probe nvml         print NVML's view: total, used, processes
 *   cuda_probe hold M [S]   hold M MiB for S seconds (print HELD when held)
 *   cuda_probe try M        allocate M MiB: exit 0 if it fits, 2 if refused
 *   cuda_probe async M      cuMemAllocAsync M MiB: exit 0 if it fits, 2 if refused
 *   cuda_probe init         cuInit only: print its result
 *   cuda_probe threads      8 threads allocating and freeing at once, then check nothing leaked
 *   cuda_probe fork         a forked child is its own process in the ledger
 *   cuda_probe calibrate    what the driver takes per family (NVML), to run without the limiter
 *   cuda_probe ledger       print the pod's ledger
 *   cuda_probe spin S US [THREADS] [GRAPH_NODES]
 *                           launch kernels of US microseconds for S seconds (THREADS threads;
 *                           or graphs of GRAPH_NODES such kernels) and print launches per
 *                           second in each half-second (VGPU_PROBE_BUCKET_MS: other steps),
 *                           and t0, the CLOCK_MONOTONIC second the first step starts at
 *                           VGPU_PROBE_LAUNCH picks the entry point: kernel (cuLaunchKernel,
 *                           the default), legacy (cuLaunch), grid (cuLaunchGrid), gridasync
 *                           (cuLaunchGridAsync), multi1 (cuLaunchCooperativeKernelMultiDevice
 *                           over one GPU); the legacy ones pass no parameter: simulator only
 *   cuda_probe multi N      cuLaunchCooperativeKernelMultiDevice over GPUs 0..N-1: print multi=rc
 *   cuda_probe import A B   import A MiB of external memory, then B MiB more, then destroy both:
 *                           print both results, what cuMemGetInfo's free fell by with the first,
 *                           and what is still missing after the destroy (simulator only: the
 *                           handle is not a real exported allocation)
 *   cuda_probe set-core P [SOFT]   set the pod's compute limits at run time (percent)
 *   cuda_probe gate         print the pod's compute gate counters
 *   cuda_probe control      print the node daemon's control fields of the pod's region
 *   cuda_probe node         print the node region the daemon publishes (NVML's GPUs, processes)
 *
 * VGPU_PROBE_DEV=N: use GPU N (CUDA ordinal and NVML index) instead of GPU 0, for the tests of
 * limits on several GPUs.
 *   cuda_probe pulse M S    every 100 ms for S seconds allocate M MiB and free it again; print
 *                           "t=<CLOCK_MONOTONIC s> OK|REFUSED" for each
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../src/limiter/cuda_abi.h"
#include "../../src/common/nvml_abi.h"
#include "../../src/common/node_region.h"
#include "../../src/common/shm_ledger.h"
#include "../../src/common/ctl_region.h"
#include "../../src/common/shm_region.h"
#include "../../src/limiter/config.h"
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

#define DECLARE(sym, base, params) extern CUresult sym params;
PROBE_FUNCS(DECLARE)
PROBE_EXTRA(DECLARE)
#define FIELD(sym, base, params) CUresult(*sym) params;
static struct {
    PROBE_FUNCS(FIELD)
    PROBE_EXTRA(FIELD)
} cu;

typedef CUresult (*gpa_v2_fn)(const char *, void **, int, cuuint64_t,
                              CUdriverProcAddressQueryResult *);
typedef CUresult (*gpa_v1_fn)(const char *, void **, int, cuuint64_t);

static int load_door(const char *door)
{
    if (!strcmp(door, "link")) {
#define LINK(sym, base, params) cu.sym = sym;
        PROBE_FUNCS(LINK)
        PROBE_EXTRA(LINK)
        return 0;
    }
    void *h = dlopen("libcuda.so.1", RTLD_NOW);
    if (!h) {
        fprintf(stderr, "dlopen libcuda.so.1: %s\n", dlerror());
        return -1;
    }
    if (!strcmp(door, "dlsym")) {
#define BY_DLSYM(sym, base, params) *(void **)&cu.sym = dlsym(h, #sym);
        PROBE_FUNCS(BY_DLSYM)
        PROBE_EXTRA(BY_DLSYM)
        return 0;
    }
    gpa_v2_fn gpa2 = (gpa_v2_fn)dlsym(h, "cuGetProcAddress_v2");
    gpa_v1_fn gpa1 = (gpa_v1_fn)dlsym(h, "cuGetProcAddress");
    if (!gpa2 || !gpa1) return -1;
    /* like the CUDA runtime: ask for cuGetProcAddress itself first, then everything through it */
    int v11 = !strcmp(door, "gpa11");
    void *self = NULL;
    if (v11) {
        if (gpa1("cuGetProcAddress", &self, 11030, 0) != CUDA_SUCCESS || !self) return -1;
        gpa1 = (gpa_v1_fn)self;
    } else {
        if (gpa2("cuGetProcAddress", &self, 12000, 0, NULL) != CUDA_SUCCESS || !self) return -1;
        gpa2 = (gpa_v2_fn)self;
    }
    int failed = 0;
#define BY_GPA(sym, base, params)                                                                  \
    {                                                                                              \
        void *p = NULL;                                                                            \
        CUresult r =                                                                               \
            v11 ? gpa1(base, &p, 11030, 0)                                                         \
                : gpa2(base, &p, 12000, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM, NULL);      \
        if (v11 && r != CUDA_SUCCESS) r = gpa1(base, &p, 12000, 0); /* newer than CUDA 11.3 */     \
        if (r != CUDA_SUCCESS || !p) {                                                             \
            fprintf(stderr, "cuGetProcAddress(%s) failed: %d\n", base, r);                         \
            failed++;                                                                              \
        }                                                                                          \
        *(void **)&cu.sym = p;                                                                     \
    }
    PROBE_FUNCS(BY_GPA)
    int optional = 0; /* an extra that does not resolve stays NULL */
#define BY_GPA_OPTIONAL(sym, base, params)                                                         \
    {                                                                                              \
        void *p = NULL;                                                                            \
        if ((v11 ? gpa1(base, &p, 12000, 0) : gpa2(base, &p, 12000, 0, NULL)) != CUDA_SUCCESS)     \
            optional++;                                                                            \
        *(void **)&cu.sym = p;                                                                     \
    }
    PROBE_EXTRA(BY_GPA_OPTIONAL)
    (void)optional;
    return failed ? -1 : 0;
}

#define CU_OK(call)                                                                                \
    do {                                                                                           \
        CUresult r_ = (call);                                                                      \
        if (r_ != CUDA_SUCCESS) {                                                                  \
            fprintf(stderr, "%s:%d: %s = %d\n", __FILE__, __LINE__, #call, r_);                    \
            vgpu_test_failures++;                                                                  \
        }                                                                                          \
    } while (0)

static CUdevice dev;
static struct vgpu_shm *shm;
static int slot = -1, ledger = -1;
static uint64_t cap;

/* The GPU the probe works on: VGPU_PROBE_DEV, default 0. */
static int probe_dev(void)
{
    const char *v = getenv("VGPU_PROBE_DEV");
    return v && *v ? atoi(v) : 0;
}

static void setup(void)
{
    CU_OK(cu.cuInit(0));
    CU_OK(cu.cuDeviceGet(&dev, probe_dev()));
    if (getenv("VGPU_PROBE_EARLY_TOTALMEM")) {
        /* like PyTorch: ask for the device's memory before any context exists */
        size_t t = 0;
        CU_OK(cu.cuDeviceTotalMem_v2(&t, dev));
    }
    CUcontext ctx;
    CU_OK(cu.cuDevicePrimaryCtxRetain(&ctx, dev));
    CU_OK(cu.cuCtxSetCurrent(ctx));
}

/* The control region of a managed pod, when VGPU_PROBE_POD_DIR names its directory. */
static const struct vgpu_ctl *probe_ctl;

/* The pod's ledger: the one in VGPU_PROBE_POD_DIR (a managed pod's directory under the
 * daemon's --shm-dir), else the standalone one the limiter would use from this environment;
 * NULL (said on `say`, when given) if there is none. */
static struct vgpu_shm *open_pod_region(FILE *say)
{
    char err[512], path[600];
    const char *dir = getenv("VGPU_PROBE_POD_DIR");
    if (dir && *dir) {
        snprintf(path, sizeof(path), "%s/%s", dir, VGPU_CTL_PATH);
        if (!probe_ctl) probe_ctl = vgpu_ctl_open(path, err, sizeof(err));
        if (!probe_ctl) {
            if (say) fprintf(say, "no control region: %s\n", err);
            return NULL;
        }
        snprintf(path, sizeof(path), "%s/%s", dir, VGPU_LEDGER_PATH);
        struct vgpu_shm *s = vgpu_shm_map_existing(path, err, sizeof(err));
        if (!s && say) fprintf(say, "no ledger: %s\n", err);
        return s;
    }
    struct vgpu_config cfg;
    vgpu_config_load(&cfg, environ);
    struct vgpu_shm *s = vgpu_shm_open(cfg.shm_dir, cfg.pod_id, 0, err, sizeof(err));
    if (!s && say) fprintf(say, "no ledger for pod %s: %s\n", cfg.pod_id, err);
    return s;
}

/* the limits ledger device d is held to (the control region's for a managed pod) */
static const struct vgpu_dev_limits *lim_at(struct vgpu_shm *s, int d)
{
    static const struct vgpu_dev_limits none = {.mem_limit = VGPU_UNLIMITED};
    if (!probe_ctl) return &s->dev[d].lim;
    int k = vgpu_ctl_dev_find(probe_ctl, s->dev[d].uuid);
    return k < 0 ? &none : &probe_ctl->dev[k].lim;
}

/* the ledger as the limiter keeps it; found after the first allocation bound the GPU */
static void find_ledger(void)
{
    if (shm && slot >= 0 && ledger >= 0) return;
    shm = open_pod_region(stderr);
    if (!shm) return;
    CUuuid u;
    cu.cuDeviceGetUuid(&u, dev);
    const unsigned char *b = (const unsigned char *)u.bytes;
    char uuid[64];
    snprintf(uuid, sizeof(uuid),
             "gpu-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
             b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
             b[15]);
    ledger = vgpu_ledger_dev_find(shm, uuid);
    for (int i = 0; i < VGPU_MAX_PROCS; i++)
        if (atomic_load(&shm->proc[i].pid) == getpid()) slot = i;
    if (ledger >= 0) cap = atomic_load(&lim_at(shm, ledger)->mem_limit);
}

/* bytes of allocations this process is charged for (overhead excluded) */
static uint64_t mine(void)
{
    find_ledger();
    return (shm && slot >= 0 && ledger >= 0) ? atomic_load(&shm->proc[slot].mem[ledger]) : 0;
}

static uint64_t round2m(uint64_t n)
{
    return (n + 2 * MIB - 1) & ~(2 * MIB - 1);
}
/* the limiter's documented rule (docs/accounting.md): 512-byte steps up to 1 MiB, else 2 MiB */
static uint64_t charge_of(uint64_t n)
{
    return n <= MIB ? (n + 511) & ~511ull : round2m(n);
}

static void expect_delta(const char *what, uint64_t before, uint64_t lo, uint64_t hi)
{
    uint64_t now = mine();
    uint64_t d = now - before;
    printf("  %-28s charged %8.2f MiB\n", what, (double)d / MIB);
    if (d < lo || d > hi) {
        fprintf(stderr, "%s: charged %llu bytes, expected %llu..%llu\n", what,
                (unsigned long long)d, (unsigned long long)lo, (unsigned long long)hi);
        vgpu_test_failures++;
    }
}

static void expect_back(const char *what, uint64_t before)
{
    uint64_t now = mine();
    if (now != before) {
        fprintf(stderr, "%s: %llu bytes still charged after the free\n", what,
                (unsigned long long)(now - before));
        vgpu_test_failures++;
    }
}

static void expect_oom(const char *what, CUresult r)
{
    if (r != CUDA_ERROR_OUT_OF_MEMORY) {
        fprintf(stderr, "%s past the cap returned %d, expected CUDA_ERROR_OUT_OF_MEMORY\n", what,
                r);
        vgpu_test_failures++;
    }
}

static int families(void)
{
    setup();
    CUdeviceptr p, q;
    size_t pitch;
    uint64_t b;

    b = mine();
    CU_OK(cu.cuMemAlloc_v2(&p, 3 * MIB + 1));
    find_ledger();
    CHECK(shm && slot >= 0 && ledger >= 0);
    if (!shm || slot < 0 || ledger < 0) return 1;
    b = 0; /* the first allocation bound the ledger: count from an empty record */
    expect_delta("cuMemAlloc 3 MiB + 1", b, 4 * MIB, 4 * MIB);
    CU_OK(cu.cuMemFree_v2(p));
    expect_back("cuMemFree", b);
    b = mine();

    CUdeviceptr small[16];
    for (int i = 0; i < 16; i++)
        CU_OK(cu.cuMemAlloc_v2(&small[i], 4000));
    expect_delta("cuMemAlloc 16 x 4000 bytes", b, 16 * 4096, 16 * 4096);
    for (int i = 0; i < 16; i++)
        CU_OK(cu.cuMemFree_v2(small[i]));
    expect_back("cuMemFree (small)", b);

    CU_OK(cu.cuMemAllocPitch_v2(&p, &pitch, 1000, 1000, 4));
    CHECK(pitch >= 1000);
    expect_delta("cuMemAllocPitch 1000x1000", b, charge_of(pitch * 1000), charge_of(pitch * 1000));
    CU_OK(cu.cuMemFree_v2(p));
    expect_back("cuMemFree (pitch)", b);

    CU_OK(cu.cuMemAllocManaged(&p, 5 * MIB, CU_MEM_ATTACH_GLOBAL));
    expect_delta("cuMemAllocManaged 5 MiB", b, 6 * MIB, 6 * MIB);
    CU_OK(cu.cuMemFree_v2(p));
    expect_back("cuMemFree (managed)", b);

    CUarray arr;
    CUDA_ARRAY_DESCRIPTOR d2 = {1024, 1024, CU_AD_FORMAT_FLOAT, 4};
    CU_OK(cu.cuArrayCreate_v2(&arr, &d2));
    expect_delta("cuArrayCreate 1024^2 float4", b, 16 * MIB, 34 * MIB);
    CU_OK(cu.cuArrayDestroy(arr));
    expect_back("cuArrayDestroy", b);

    CUDA_ARRAY3D_DESCRIPTOR d3 = {256, 256, 64, CU_AD_FORMAT_HALF, 2, 0};
    CU_OK(cu.cuArray3DCreate_v2(&arr, &d3));
    expect_delta("cuArray3DCreate 256^2x64 half2", b, 16 * MIB, 34 * MIB);
    CU_OK(cu.cuArrayDestroy(arr));
    expect_back("cuArrayDestroy (3D)", b);

    CUDA_ARRAY3D_DESCRIPTOR dl = {512, 512, 16, CU_AD_FORMAT_UNSIGNED_INT8, 4, 0x01 /* layered */};
    CU_OK(cu.cuArray3DCreate_v2(&arr, &dl));
    expect_delta("cuArray3DCreate layered", b, 16 * MIB, 34 * MIB);
    CU_OK(cu.cuArrayDestroy(arr));
    expect_back("cuArrayDestroy (layered)", b);

    CUmipmappedArray mip;
    CUDA_ARRAY3D_DESCRIPTOR dm = {2048, 2048, 0, CU_AD_FORMAT_FLOAT, 1, 0};
    CU_OK(cu.cuMipmappedArrayCreate(&mip, &dm, 4));
    expect_delta("cuMipmappedArrayCreate 4 levels", b, 16 * MIB + 5 * MIB, 48 * MIB);
    CU_OK(cu.cuMipmappedArrayDestroy(mip));
    expect_back("cuMipmappedArrayDestroy", b);

    CUstream st;
    CU_OK(cu.cuStreamCreate(&st, CU_STREAM_NON_BLOCKING));
    CUmemoryPool def;
    CU_OK(cu.cuDeviceGetMemPool(&def, dev));
    CU_OK(cu.cuMemAllocAsync(&p, 64 * MIB, st));
    expect_delta("cuMemAllocAsync 64 MiB", b, 64 * MIB, 96 * MIB);
    CU_OK(cu.cuMemAllocAsync(&q, 1 * MIB, st));
    CU_OK(cu.cuMemFreeAsync(p, st));
    CU_OK(cu.cuMemFreeAsync(q, st));
    CU_OK(cu.cuStreamSynchronize(st));
    CU_OK(cu.cuMemPoolTrimTo(def, 0));
    expect_back("cuMemPoolTrimTo(default, 0)", b);

    CUmemPoolProps props;
    memset(&props, 0, sizeof(props));
    props.allocType = CU_MEM_ALLOCATION_TYPE_PINNED;
    props.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    props.location.id = dev;
    CUmemoryPool pool;
    CU_OK(cu.cuMemPoolCreate(&pool, &props));
    CU_OK(cu.cuMemAllocFromPoolAsync(&p, 32 * MIB, pool, st));
    expect_delta("cuMemAllocFromPoolAsync 32 MiB", b, 32 * MIB, 64 * MIB);
    CU_OK(cu.cuMemFreeAsync(p, st));
    CU_OK(cu.cuStreamSynchronize(st));
    CU_OK(cu.cuMemPoolDestroy(pool));
    expect_back("cuMemPoolDestroy", b);

    CUmemAllocationProp prop;
    memset(&prop, 0, sizeof(prop));
    prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
    prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    prop.location.id = dev;
    size_t gran = 0;
    CU_OK(cu.cuMemGetAllocationGranularity(&gran, &prop, CU_MEM_ALLOC_GRANULARITY_MINIMUM));
    CHECK(gran > 0);
    CUmemGenericAllocationHandle h;
    CU_OK(cu.cuMemCreate(&h, 8 * gran, &prop, 0));
    expect_delta("cuMemCreate 8 x granularity", b, 8 * gran, 8 * gran);
    CU_OK(cu.cuMemRelease(h));
    expect_back("cuMemRelease", b);

    /* graph memory nodes: charged by the graph pool's reservation when the graph runs */
    CUDA_MEM_ALLOC_NODE_PARAMS ap;
    memset(&ap, 0, sizeof(ap));
    ap.poolProps.allocType = CU_MEM_ALLOCATION_TYPE_PINNED;
    ap.poolProps.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    ap.poolProps.location.id = dev;
    ap.bytesize = 64 * MIB;
    CUgraph g;
    CUgraphExec gx;
    CUgraphNode na, nf;
    CU_OK(cu.cuGraphCreate(&g, 0));
    CU_OK(cu.cuGraphAddMemAllocNode(&na, g, NULL, 0, &ap));
    CU_OK(cu.cuGraphAddMemFreeNode(&nf, g, &na, 1, ap.dptr));
    CU_OK(cu.cuGraphInstantiateWithFlags(&gx, g, 0));
    expect_delta("graph instantiated", b, 0, 0);
    CU_OK(cu.cuGraphLaunch(gx, st));
    CU_OK(cu.cuStreamSynchronize(st));
    expect_delta("graph memory node 64 MiB", b, 64 * MIB, 128 * MIB);
    CU_OK(cu.cuGraphLaunch(gx, st)); /* the pool's spare serves it again */
    CU_OK(cu.cuStreamSynchronize(st));
    expect_delta("graph launched again", b, 64 * MIB, 128 * MIB);
    CU_OK(cu.cuDeviceGraphMemTrim(dev));
    expect_back("cuDeviceGraphMemTrim", b);
    CU_OK(cu.cuGraphExecDestroy(gx));
    CU_OK(cu.cuGraphDestroy(g));
    /* a graph that fitted when it was built is refused at launch once the cap is used up */
    ap.bytesize = cap / 5 * 3;
    CU_OK(cu.cuGraphCreate(&g, 0));
    CU_OK(cu.cuGraphAddMemAllocNode(&na, g, NULL, 0, &ap));
    CU_OK(cu.cuGraphAddMemFreeNode(&nf, g, &na, 1, ap.dptr));
    CU_OK(cu.cuGraphInstantiateWithFlags(&gx, g, 0));
    CU_OK(cu.cuMemAlloc_v2(&p, cap / 5 * 3));
    expect_oom("cuGraphLaunch of a memory node", cu.cuGraphLaunch(gx, st));
    CU_OK(cu.cuMemFree_v2(p));
    CU_OK(cu.cuGraphLaunch(gx, st));
    CU_OK(cu.cuStreamSynchronize(st));
    CU_OK(cu.cuDeviceGraphMemTrim(dev));
    expect_back("graph memory trimmed after a refusal", b);
    CU_OK(cu.cuGraphExecDestroy(gx));
    CU_OK(cu.cuGraphDestroy(g));

    /* past the cap, each family is an ordinary out-of-memory error */
    printf("  cap %.0f MiB: every family refused past it\n", (double)cap / MIB);
    uint64_t over = cap + 64 * MIB;
    expect_oom("cuMemAlloc", cu.cuMemAlloc_v2(&p, over));
    expect_oom("cuMemAllocPitch", cu.cuMemAllocPitch_v2(&p, &pitch, over / 4, 4, 4));
    expect_oom("cuMemAllocManaged", cu.cuMemAllocManaged(&p, over, CU_MEM_ATTACH_GLOBAL));
    size_t side = 16384; /* side^2 * 16 bytes = 4 GiB */
    while ((uint64_t)side * side * 16 < over)
        side *= 2;
    CUDA_ARRAY_DESCRIPTOR big = {side, side, CU_AD_FORMAT_FLOAT, 4};
    expect_oom("cuArrayCreate", cu.cuArrayCreate_v2(&arr, &big));
    CUDA_ARRAY3D_DESCRIPTOR big3 = {side, side, 2, CU_AD_FORMAT_FLOAT, 4, 0};
    expect_oom("cuArray3DCreate", cu.cuArray3DCreate_v2(&arr, &big3));
    expect_oom("cuMemAllocAsync", cu.cuMemAllocAsync(&p, over, st));
    expect_oom("cuMemCreate", cu.cuMemCreate(&h, (over + gran - 1) / gran * gran, &prop, 0));
    CU_OK(cu.cuGraphCreate(&g, 0));
    ap.bytesize = over;
    expect_oom("cuGraphAddMemAllocNode", cu.cuGraphAddMemAllocNode(&na, g, NULL, 0, &ap));
    CU_OK(cu.cuGraphDestroy(g));
    CU_OK(cu.cuStreamSynchronize(st));
    CU_OK(cu.cuMemPoolTrimTo(def, 0));
    expect_back("after refusals", b);
    return 0;
}

static int fill(void)
{
    setup();
    CUdeviceptr ptrs[4096];
    int n = 0;
    CUresult r = CUDA_SUCCESS;
    while (n < 4096 && (r = cu.cuMemAlloc_v2(&ptrs[n], 64 * MIB)) == CUDA_SUCCESS)
        n++;
    size_t free_b = 0, total = 0;
    cu.cuMemGetInfo_v2(&free_b, &total);
    printf("fitted=%llu total=%zu free=%zu last=%d\n", (unsigned long long)n * 64 * MIB, total,
           free_b, r);
    while (n > 0)
        cu.cuMemFree_v2(ptrs[--n]);
    return r == CUDA_ERROR_OUT_OF_MEMORY ? 0 : 1;
}

static int info(void)
{
    setup();
    size_t free_b = 0, total = 0, dtotal = 0;
    CU_OK(cu.cuMemGetInfo_v2(&free_b, &total));
    CU_OK(cu.cuDeviceTotalMem_v2(&dtotal, dev));
    printf("total=%zu free=%zu devtotal=%zu\n", total, free_b, dtotal);
    return vgpu_test_failures ? 1 : 0;
}

/* The queries only some drivers have: confidential computing's protected memory (its result
 * code: NOT_SUPPORTED outside that mode), and the MPS process counts of versions 1 and 2. */
static void nvml_more(void *h, nvmlDevice_t d)
{
    nvmlReturn_t (*cc)(nvmlDevice_t, nvmlMemory_t *) = (nvmlReturn_t(*)(
        nvmlDevice_t, nvmlMemory_t *))dlsym(h, "nvmlDeviceGetConfComputeProtectedMemoryUsage");
    nvmlReturn_t (*mps1)(nvmlDevice_t, unsigned *, nvmlProcessInfo_v1_t *) =
        (nvmlReturn_t(*)(nvmlDevice_t, unsigned *, nvmlProcessInfo_v1_t *))dlsym(
            h, "nvmlDeviceGetMPSComputeRunningProcesses");
    nvmlReturn_t (*mps2)(nvmlDevice_t, unsigned *, nvmlProcessInfo_t *) =
        (nvmlReturn_t(*)(nvmlDevice_t, unsigned *, nvmlProcessInfo_t *))dlsym(
            h, "nvmlDeviceGetMPSComputeRunningProcesses_v2");
    nvmlMemory_t m;
    if (cc) printf(" cc=%d", cc(d, &m));
    nvmlProcessInfo_v1_t p1[64];
    nvmlProcessInfo_t p2[64];
    unsigned n1 = 64, n2 = 64;
    if (mps1 && mps2 && mps1(d, &n1, p1) == NVML_SUCCESS && mps2(d, &n2, p2) == NVML_SUCCESS)
        printf(" mps=%u,%u", n1, n2);
}

static int nvml(void)
{
    void *h = dlopen("libnvidia-ml.so.1", RTLD_NOW);
    if (!h) return 1;
    nvmlReturn_t (*init)(void) = (nvmlReturn_t(*)(void))dlsym(h, "nvmlInit_v2");
    nvmlReturn_t (*by_index)(unsigned, nvmlDevice_t *) =
        (nvmlReturn_t(*)(unsigned, nvmlDevice_t *))dlsym(h, "nvmlDeviceGetHandleByIndex_v2");
    nvmlReturn_t (*meminfo)(nvmlDevice_t, nvmlMemory_t *) =
        (nvmlReturn_t(*)(nvmlDevice_t, nvmlMemory_t *))dlsym(h, "nvmlDeviceGetMemoryInfo");
    nvmlReturn_t (*meminfo2)(nvmlDevice_t, nvmlMemory_v2_t *) =
        (nvmlReturn_t(*)(nvmlDevice_t, nvmlMemory_v2_t *))dlsym(h, "nvmlDeviceGetMemoryInfo_v2");
    nvmlReturn_t (*procs)(nvmlDevice_t, unsigned *, nvmlProcessInfo_t *) =
        (nvmlReturn_t(*)(nvmlDevice_t, unsigned *, nvmlProcessInfo_t *))dlsym(
            h, "nvmlDeviceGetComputeRunningProcesses_v3");
    if (!init || !by_index || !meminfo || !meminfo2 || !procs) return 1;
    nvmlReturn_t r = init();
    if (r != NVML_SUCCESS) {
        printf("nvmlInit=%d\n", r);
        return 3;
    }
    nvmlDevice_t d;
    if (by_index((unsigned)probe_dev(), &d) != NVML_SUCCESS) return 1;
    nvmlMemory_t m;
    nvmlMemory_v2_t m2;
    memset(&m2, 0, sizeof(m2));
    m2.version = nvmlMemory_v2;
    if (meminfo(d, &m) != NVML_SUCCESS || meminfo2(d, &m2) != NVML_SUCCESS) return 1;
    printf("total=%llu used=%llu free=%llu total2=%llu used2=%llu", m.total, m.used, m.free,
           m2.total, m2.used);
    nvmlProcessInfo_t infos[64];
    unsigned n = 64;
    if (procs(d, &n, infos) != NVML_SUCCESS) return 1;
    printf(" procs=");
    for (unsigned i = 0; i < n; i++)
        printf("%s%u", i ? "," : "", infos[i].pid);
    nvml_more(h, d);
    printf("\n");
    return 0;
}

/* The driver's own count of this process's memory (NVML), for calibration without the limiter. */
static long long nvml_self_used(void)
{
    static nvmlReturn_t (*procs)(nvmlDevice_t, unsigned *, nvmlProcessInfo_t *);
    static nvmlDevice_t d;
    if (!procs) {
        void *h = dlopen("libnvidia-ml.so.1", RTLD_NOW);
        if (!h) return -1;
        nvmlReturn_t (*init)(void) = (nvmlReturn_t(*)(void))dlsym(h, "nvmlInit_v2");
        nvmlReturn_t (*by_index)(unsigned, nvmlDevice_t *) =
            (nvmlReturn_t(*)(unsigned, nvmlDevice_t *))dlsym(h, "nvmlDeviceGetHandleByIndex_v2");
        procs = (nvmlReturn_t(*)(nvmlDevice_t, unsigned *, nvmlProcessInfo_t *))dlsym(
            h, "nvmlDeviceGetComputeRunningProcesses_v3");
        if (!init || !by_index || !procs || init() != NVML_SUCCESS ||
            by_index((unsigned)probe_dev(), &d) != NVML_SUCCESS)
            return -1;
    }
    nvmlProcessInfo_t infos[128];
    unsigned n = 128;
    if (procs(d, &n, infos) != NVML_SUCCESS) return -1;
    for (unsigned i = 0; i < n; i++)
        if (infos[i].pid == (unsigned)getpid()) return (long long)infos[i].usedGpuMemory;
    return 0;
}

/* How much the driver really takes per allocation family (run without the limiter). */
static int calibrate(void)
{
    setup();
    CUdeviceptr p[16];
    long long base = nvml_self_used();
    printf("calib context nvml=%lld\n", base);
    static const uint64_t sizes[] = {1,       4096,    65536,   512 * 1024,
                                     MIB + 1, 2 * MIB, 3 * MIB, 64 * MIB + 1};
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        long long before = nvml_self_used();
        for (int i = 0; i < 16; i++)
            CU_OK(cu.cuMemAlloc_v2(&p[i], sizes[k]));
        long long after = nvml_self_used();
        for (int i = 0; i < 16; i++)
            CU_OK(cu.cuMemFree_v2(p[i]));
        printf("calib cuMemAlloc request=%llu nvml=%lld charge=%llu\n",
               (unsigned long long)sizes[k], (after - before) / 16,
               (unsigned long long)charge_of(sizes[k]));
    }
    size_t pitch;
    long long before = nvml_self_used();
    CU_OK(cu.cuMemAllocPitch_v2(&p[0], &pitch, 1000, 1000, 4));
    printf("calib cuMemAllocPitch request=%llu nvml=%lld charge=%llu\n", 1000ull * 1000,
           nvml_self_used() - before, (unsigned long long)charge_of(pitch * 1000));
    CU_OK(cu.cuMemFree_v2(p[0]));
    CUarray arr;
    CUDA_ARRAY_DESCRIPTOR d2 = {1024, 1024, CU_AD_FORMAT_FLOAT, 4};
    before = nvml_self_used();
    CU_OK(cu.cuArrayCreate_v2(&arr, &d2));
    printf("calib cuArrayCreate request=%llu nvml=%lld\n", 16ull * MIB, nvml_self_used() - before);
    CU_OK(cu.cuArrayDestroy(arr));
    CUstream st;
    CU_OK(cu.cuStreamCreate(&st, CU_STREAM_NON_BLOCKING));
    CUmemoryPool def;
    CU_OK(cu.cuDeviceGetMemPool(&def, dev));
    static const uint64_t async_sizes[] = {1 * MIB, 64 * MIB + 1};
    for (int k = 0; k < 2; k++) {
        before = nvml_self_used();
        CU_OK(cu.cuMemAllocAsync(&p[0], async_sizes[k], st));
        CU_OK(cu.cuStreamSynchronize(st));
        cuuint64_t reserved = 0;
        void *h = dlopen("libcuda.so.1", RTLD_NOW);
        CUresult (*attr)(CUmemoryPool, int, void *) =
            (CUresult(*)(CUmemoryPool, int, void *))dlsym(h, "cuMemPoolGetAttribute");
        if (attr) attr(def, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT, &reserved);
        printf("calib cuMemAllocAsync request=%llu nvml=%lld pool_reserved=%llu\n",
               (unsigned long long)async_sizes[k], nvml_self_used() - before,
               (unsigned long long)reserved);
        CU_OK(cu.cuMemFreeAsync(p[0], st));
        CU_OK(cu.cuStreamSynchronize(st));
        CU_OK(cu.cuMemPoolTrimTo(def, 0));
    }
    CUmemAllocationProp prop;
    memset(&prop, 0, sizeof(prop));
    prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
    prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    prop.location.id = dev;
    size_t gran = 0;
    CU_OK(cu.cuMemGetAllocationGranularity(&gran, &prop, CU_MEM_ALLOC_GRANULARITY_MINIMUM));
    CUmemGenericAllocationHandle hd;
    before = nvml_self_used();
    CU_OK(cu.cuMemCreate(&hd, 8 * gran, &prop, 0));
    printf("calib cuMemCreate request=%llu nvml=%lld granularity=%zu\n", 8ull * gran,
           nvml_self_used() - before, gran);
    CU_OK(cu.cuMemRelease(hd));
    TEST_MAIN_END();
}

/* Dump the pod's ledger (for debugging tests). */
static int dump_ledger(void)
{
    struct vgpu_shm *s = open_pod_region(stdout);
    if (!s) return 1;
    for (int d = 0; d < VGPU_MAX_DEVICES; d++) {
        if (atomic_load(&s->dev[d].state) != VGPU_DEV_READY) continue;
        printf("dev %d %s limit=%llu used=%llu oversold=%llu\n", d, s->dev[d].uuid,
               (unsigned long long)atomic_load(&lim_at(s, d)->mem_limit),
               (unsigned long long)atomic_load(&s->dev[d].mem_used),
               (unsigned long long)atomic_load(&s->dev[d].oversold_used));
        for (int i = 0; i < VGPU_MAX_PROCS; i++) {
            int pid = atomic_load(&s->proc[i].pid);
            if (pid <= 0 && !atomic_load(&s->proc[i].mem[d]) && !atomic_load(&s->proc[i].ovh[d]))
                continue;
            printf("  proc %d pid=%d mem=%llu ovh=%llu oversold=%llu alive=%d\n", i, pid,
                   (unsigned long long)atomic_load(&s->proc[i].mem[d]),
                   (unsigned long long)atomic_load(&s->proc[i].ovh[d]),
                   (unsigned long long)atomic_load(&s->proc[i].oversold[d]),
                   vgpu_proc_alive(pid, s->proc[i].start_time));
        }
    }
    return 0;
}

/* A kernel that keeps the GPU busy for `us` microseconds: on a real GPU it spins on the global
 * timer for its parameter (ns); the simulator reads the duration from its name. */
static CUfunction spin_kernel(unsigned us)
{
    char name[64], ptx[1024];
    snprintf(name, sizeof(name), "sim_kernel_%uus", us);
    snprintf(ptx, sizeof(ptx),
             ".version 7.0\n.target sm_52\n.address_size 64\n"
             ".visible .entry %s(.param .u64 ns)\n{\n"
             "  .reg .u64 %%rd<5>;\n  .reg .pred %%p;\n"
             "  ld.param.u64 %%rd1, [ns];\n  mov.u64 %%rd2, %%globaltimer;\n"
             "L1:\n  mov.u64 %%rd3, %%globaltimer;\n  sub.u64 %%rd4, %%rd3, %%rd2;\n"
             "  setp.lt.u64 %%p, %%rd4, %%rd1;\n  @%%p bra L1;\n  ret;\n}\n",
             name);
    CUmodule mod;
    CUfunction f = NULL;
    if (cu.cuModuleLoadData(&mod, ptx) != CUDA_SUCCESS ||
        cu.cuModuleGetFunction(&f, mod, name) != CUDA_SUCCESS)
        return NULL;
    return f;
}

/* CUDA_KERNEL_NODE_PARAMS_v2 */
struct kernel_node {
    CUfunction func;
    unsigned gx, gy, gz, bx, by, bz, shmem;
    void **params, **extra;
    void *kern;
    CUcontext ctx;
};

enum launch_api { API_KERNEL, API_LEGACY, API_GRID, API_GRID_ASYNC, API_MULTI1 };

struct spinner {
    CUfunction f;
    int api; /* enum launch_api */
    unsigned long long ns;
    double seconds;
    int nodes;
    _Atomic unsigned long long count[1024]; /* launches per step */
    double t0, step;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* One launch of the spin kernel through the entry point the run tests. */
static CUresult spin_launch(const struct spinner *sp, CUstream st, void **params)
{
    CUDA_LAUNCH_PARAMS one = {sp->f, 1, 1, 1, 1, 1, 1, 0, st, params};
    switch (sp->api) {
    case API_LEGACY:
        return cu.cuLaunch(sp->f);
    case API_GRID:
        return cu.cuLaunchGrid(sp->f, 1, 1);
    case API_GRID_ASYNC:
        return cu.cuLaunchGridAsync(sp->f, 1, 1, st);
    case API_MULTI1:
        return cu.cuLaunchCooperativeKernelMultiDevice(&one, 1, 0);
    default:
        return cu.cuLaunchKernel(sp->f, 1, 1, 1, 1, 1, 1, 0, st, params, NULL);
    }
}

/* VGPU_PROBE_LAUNCH's entry point; -1 when unknown or the driver lacks it. */
static int launch_api(void)
{
    const char *v = getenv("VGPU_PROBE_LAUNCH");
    if (!v || !*v || !strcmp(v, "kernel")) return API_KERNEL;
    if (!strcmp(v, "legacy")) return cu.cuLaunch ? API_LEGACY : -1;
    if (!strcmp(v, "grid")) return cu.cuLaunchGrid ? API_GRID : -1;
    if (!strcmp(v, "gridasync")) return cu.cuLaunchGridAsync ? API_GRID_ASYNC : -1;
    if (!strcmp(v, "multi1")) return cu.cuLaunchCooperativeKernelMultiDevice ? API_MULTI1 : -1;
    return -1;
}

static void *spin_thread(void *arg)
{
    struct spinner *sp = arg;
    CUcontext ctx;
    cu.cuDevicePrimaryCtxRetain(&ctx, dev);
    cu.cuCtxSetCurrent(ctx);
    CUstream st;
    if (cu.cuStreamCreate(&st, CU_STREAM_NON_BLOCKING) != CUDA_SUCCESS) return NULL;
    void *params[] = {&sp->ns};
    CUgraphExec exec = NULL;
    if (sp->nodes) {
        CUgraph g;
        CU_OK(cu.cuGraphCreate(&g, 0));
        void *prev = NULL;
        for (int i = 0; i < sp->nodes; i++) {
            struct kernel_node kn = {sp->f, 1, 1, 1, 1, 1, 1, 0, params, NULL, NULL, NULL};
            void *node = NULL;
            CU_OK(cu.cuGraphAddKernelNode_v2(&node, g, prev ? &prev : NULL, prev ? 1 : 0, &kn));
            prev = node;
        }
        CU_OK(cu.cuGraphInstantiateWithFlags(&exec, g, 0));
    }
    for (;;) {
        double t = now_s() - sp->t0;
        if (t >= sp->seconds) break;
        CUresult r = exec ? cu.cuGraphLaunch(exec, st) : spin_launch(sp, st, params);
        if (r != CUDA_SUCCESS) {
            fprintf(stderr, "launch failed: %d\n", r);
            vgpu_test_failures++;
            break;
        }
        int k = (int)((now_s() - sp->t0) / sp->step); /* when it returned: it may have waited */
        if (k < 1024) atomic_fetch_add(&sp->count[k], 1);
    }
    cu.cuStreamSynchronize(st);
    return NULL;
}

static void on_alarm(int sig)
{
    (void)sig;
}

/* GPU busy percent over the last second, as NVML reports it (-1 if unavailable) */
static int nvml_util(void)
{
    void *h = dlopen("libnvidia-ml.so.1", RTLD_NOW);
    if (!h) return -1;
    nvmlReturn_t (*init)(void) = (nvmlReturn_t(*)(void))dlsym(h, "nvmlInit_v2");
    nvmlReturn_t (*by_index)(unsigned, nvmlDevice_t *) =
        (nvmlReturn_t(*)(unsigned, nvmlDevice_t *))dlsym(h, "nvmlDeviceGetHandleByIndex_v2");
    nvmlReturn_t (*util)(nvmlDevice_t, nvmlUtilization_t *) =
        (nvmlReturn_t(*)(nvmlDevice_t, nvmlUtilization_t *))dlsym(h,
                                                                  "nvmlDeviceGetUtilizationRates");
    nvmlDevice_t d;
    nvmlUtilization_t u;
    if (!init || !by_index || !util || init() || by_index((unsigned)probe_dev(), &d) || util(d, &u))
        return -1;
    return (int)u.gpu;
}

static int spin(double seconds, unsigned us, int nthreads, int nodes)
{
    if (getenv("VGPU_PROBE_FORK")) fork(); /* parent and child both spin, as two processes */
    setup();
    if (getenv("VGPU_PROBE_SIGNALS")) {
        /* a timer signal every millisecond interrupts whatever the threads are blocked in */
        struct sigaction sa = {0};
        sa.sa_handler = on_alarm;
        sigaction(SIGALRM, &sa, NULL);
        struct itimerval it = {{0, 1000}, {0, 1000}};
        setitimer(ITIMER_REAL, &it, NULL);
    }
    struct spinner sp = {.f = spin_kernel(us),
                         .ns = (unsigned long long)us * 1000ull,
                         .seconds = seconds,
                         .nodes = nodes,
                         .api = launch_api(),
                         .step = 0.5};
    if (sp.api < 0) {
        fprintf(stderr, "VGPU_PROBE_LAUNCH=%s: unknown, or the driver lacks it\n",
                getenv("VGPU_PROBE_LAUNCH"));
        return 1;
    }
    const char *bucket = getenv("VGPU_PROBE_BUCKET_MS");
    if (bucket && atoi(bucket) >= 1) sp.step = atoi(bucket) / 1000.0;
    if (!sp.f) {
        fprintf(stderr, "cannot load the spin kernel\n");
        return 1;
    }
    sp.t0 = now_s();
    pthread_t t[32];
    if (nthreads < 1) nthreads = 1;
    if (nthreads > 32) nthreads = 32;
    for (int i = 0; i < nthreads; i++)
        pthread_create(&t[i], NULL, spin_thread, &sp);
    const char *exit_after = getenv("VGPU_PROBE_EXIT_AFTER");
    if (exit_after) {
        /* leave while the threads may be waiting in the gate: the process must end now */
        usleep((useconds_t)(atof(exit_after) * 1e6));
        printf("EXITING\n");
        exit(0);
    }
    for (int i = 0; i < nthreads; i++)
        pthread_join(t[i], NULL);
    unsigned long long total = 0;
    printf("rates=");
    for (int h = 0; h < (int)(seconds / sp.step + 0.5) && h < 1024; h++) {
        printf("%s%.0f", h ? "," : "", atomic_load(&sp.count[h]) / sp.step);
        total += atomic_load(&sp.count[h]);
    }
    printf(" launches=%llu rate=%.1f util=%d t0=%.6f\n", total, total / seconds, nvml_util(),
           sp.t0);
    return vgpu_test_failures ? 1 : 0;
}

/* cuLaunchCooperativeKernelMultiDevice over GPUs 0..n-1, each entry on a stream of its GPU. */
static int multi(int n)
{
    setup();
    CUDA_LAUNCH_PARAMS l[8];
    unsigned long long ns = 1000000;
    void *params[] = {&ns};
    if (n < 1 || n > 8 || !cu.cuLaunchCooperativeKernelMultiDevice) return 1;
    for (int i = n - 1; i >= 0; i--) { /* ends in GPU 0's context */
        CUdevice d;
        CUcontext c;
        CU_OK(cu.cuDeviceGet(&d, i));
        CU_OK(cu.cuDevicePrimaryCtxRetain(&c, d));
        CU_OK(cu.cuCtxSetCurrent(c));
        CUDA_LAUNCH_PARAMS e = {spin_kernel(1000), 1, 1, 1, 1, 1, 1, 0, NULL, params};
        CU_OK(cu.cuStreamCreate(&e.hStream, CU_STREAM_NON_BLOCKING));
        l[i] = e;
    }
    if (vgpu_test_failures) return 1;
    printf("multi=%d\n", cu.cuLaunchCooperativeKernelMultiDevice(l, (unsigned)n, 0));
    for (int i = 0; i < n; i++)
        CU_OK(cu.cuStreamSynchronize(l[i].hStream));
    return vgpu_test_failures ? 1 : 0;
}

static size_t free_now(void)
{
    size_t f = 0, t = 0;
    CU_OK(cu.cuMemGetInfo_v2(&f, &t));
    return f;
}

static CUresult import_mib(CUexternalMemory *m, uint64_t mib, int fd)
{
    CUDA_EXTERNAL_MEMORY_HANDLE_DESC d;
    memset(&d, 0, sizeof(d));
    d.type = 1; /* CU_EXTERNAL_MEMORY_HANDLE_TYPE_OPAQUE_FD */
    d.handle.fd = fd;
    d.size = mib * MIB;
    return cu.cuImportExternalMemory(m, &d);
}

static int import_ext(uint64_t a, uint64_t b)
{
    setup();
    if (!cu.cuImportExternalMemory || !cu.cuDestroyExternalMemory) return 1;
    int fd = open("/dev/null", O_RDONLY);
    CUexternalMemory m1 = NULL, m2 = NULL;
    size_t f0 = free_now();
    CUresult r1 = import_mib(&m1, a, fd);
    size_t f1 = free_now();
    CUresult r2 = import_mib(&m2, b, fd);
    if (r2 == CUDA_SUCCESS) CU_OK(cu.cuDestroyExternalMemory(m2));
    CUresult rd = r1 == CUDA_SUCCESS ? cu.cuDestroyExternalMemory(m1) : CUDA_SUCCESS;
    size_t f2 = free_now();
    printf("first=%d fell=%zu second=%d destroyed=%d missing=%zu\n", r1, f0 - f1, r2, rd,
           f0 > f2 ? f0 - f2 : 0);
    close(fd);
    return vgpu_test_failures ? 1 : 0;
}

static int pulse(uint64_t mib, double seconds)
{
    setup();
    double t0 = now_s();
    while (now_s() - t0 < seconds) {
        CUdeviceptr p;
        CUresult r = cu.cuMemAlloc_v2(&p, mib * MIB);
        printf("t=%.3f %s\n", now_s(), r == CUDA_SUCCESS ? "OK" : "REFUSED");
        if (r == CUDA_SUCCESS) cu.cuMemFree_v2(p);
        usleep(100000);
    }
    return 0;
}

static int set_core(double pct, double soft)
{
    struct vgpu_shm *s = open_pod_region(stderr);
    if (!s) return 1;
    for (int d = 0; d < VGPU_MAX_DEVICES; d++) {
        if (atomic_load(&s->dev[d].state) != VGPU_DEV_READY) continue;
        atomic_store(&s->dev[d].lim.core_soft, (uint32_t)(soft * 100));
        atomic_store(&s->dev[d].lim.core_limit, (uint32_t)(pct * 100));
    }
    return 0;
}

static int gate_stats(void)
{
    struct vgpu_shm *s = open_pod_region(NULL);
    if (!s) return 1;
    for (int d = 0; d < VGPU_MAX_DEVICES; d++) {
        if (atomic_load(&s->dev[d].state) != VGPU_DEV_READY) continue;
        printf("dev=%d limit=%u soft=%u effective=%u charged_ns=%llu waited_ns=%llu launches=%llu "
               "scale=%u "
               "fb_ratio=%u fb_modelled_ppm=%llu dvfs=%u\n",
               d, atomic_load(&lim_at(s, d)->core_limit), atomic_load(&lim_at(s, d)->core_soft),
               atomic_load(&lim_at(s, d)->core_effective),
               (unsigned long long)atomic_load(&s->dev[d].gate_charged_ns),
               (unsigned long long)atomic_load(&s->dev[d].gate_waited_ns),
               (unsigned long long)atomic_load(&s->dev[d].limiter.gate_launches),
               atomic_load(&s->dev[d].limiter.gate_scale), atomic_load(&s->dev[d].limiter.fb_ratio),
               (unsigned long long)atomic_load(&s->dev[d].limiter.fb_modelled_ppm),
               atomic_load(&s->dev[d].gate_dvfs));
    }
    return 0;
}

static int node_dump(void)
{
    struct vgpu_config cfg;
    vgpu_config_load(&cfg, environ);
    char dir[400];
    snprintf(dir, sizeof(dir), "%s/%s", cfg.shm_dir, VGPU_NODE_DIR);
    const struct vgpu_node_shm *n = vgpu_node_open(dir);
    static struct vgpu_node_view v;
    if (!n) {
        printf("no node region\n");
        return 1;
    }
    int fresh = vgpu_node_read(n, &v, vgpu_now_ns()) == 0;
    printf("fresh=%d gpus=%u procs=%u\n", fresh, v.ngpu, v.nproc);
    for (unsigned i = 0; i < v.ngpu; i++)
        printf("gpu=%u uuid=%s util=%u mem_used=%llu mem_total=%llu\n", i, v.gpu[i].uuid,
               v.gpu[i].util, (unsigned long long)v.gpu[i].mem_used,
               (unsigned long long)v.gpu[i].mem_total);
    for (unsigned i = 0; i < v.nproc; i++)
        printf("proc host_pid=%u gpu=%u sm_util=%u mem=%llu\n", v.proc[i].host_pid, v.proc[i].gpu,
               v.proc[i].sm_util, (unsigned long long)v.proc[i].mem);
    vgpu_node_unmap(n);
    return fresh ? 0 : 1;
}

static int control(void)
{
    struct vgpu_shm *s = open_pod_region(stdout);
    if (!s) return 1;
    if (probe_ctl)
        printf("suspended=%u state=%u control_seq=%llu\n", atomic_load(&probe_ctl->suspended),
               atomic_load(&probe_ctl->state),
               (unsigned long long)atomic_load(&probe_ctl->control_seq));
    for (int d = 0; d < VGPU_MAX_DEVICES; d++) {
        if (atomic_load(&s->dev[d].state) != VGPU_DEV_READY) continue;
        printf("dev=%d uuid=%s mem_limit=%llu core_limit=%u core_soft=%u core_effective=%u "
               "weight=%u\n",
               d, s->dev[d].uuid, (unsigned long long)atomic_load(&lim_at(s, d)->mem_limit),
               atomic_load(&lim_at(s, d)->core_limit), atomic_load(&lim_at(s, d)->core_soft),
               atomic_load(&lim_at(s, d)->core_effective), atomic_load(&lim_at(s, d)->weight));
    }
    return 0;
}

static int hold(uint64_t mib, int seconds)
{
    setup();
    CUdeviceptr p;
    CUresult r = cu.cuMemAlloc_v2(&p, mib * MIB);
    if (r != CUDA_SUCCESS) {
        printf("REFUSED %d\n", r);
        return 2;
    }
    /* managed memory means the limiter served it from host memory (oversubscription) */
    unsigned int managed = 0;
    CUresult (*attr)(void *, int, CUdeviceptr) = (CUresult(*)(void *, int, CUdeviceptr))dlsym(
        dlopen("libcuda.so.1", RTLD_NOW), "cuPointerGetAttribute");
    if (attr) attr(&managed, 8 /* CU_POINTER_ATTRIBUTE_IS_MANAGED */, p);
    printf("HELD %llu managed=%u\n", (unsigned long long)mib, managed);
    fflush(stdout);
    sleep((unsigned)seconds);
    return 0;
}

static int try_alloc(uint64_t mib)
{
    setup();
    CUdeviceptr p;
    CUresult r = cu.cuMemAlloc_v2(&p, mib * MIB);
    printf("%s %d\n", r == CUDA_SUCCESS ? "OK" : "REFUSED", r);
    return r == CUDA_SUCCESS ? 0 : r == CUDA_ERROR_OUT_OF_MEMORY ? 2 : 1;
}

static int async_alloc(uint64_t mib)
{
    setup();
    CUstream st;
    CU_OK(cu.cuStreamCreate(&st, CU_STREAM_NON_BLOCKING));
    CUdeviceptr p;
    CUresult r = cu.cuMemAllocAsync(&p, mib * MIB, st);
    cu.cuStreamSynchronize(st);
    printf("%s %d\n", r == CUDA_SUCCESS ? "OK" : "REFUSED", r);
    return r == CUDA_SUCCESS ? 0 : r == CUDA_ERROR_OUT_OF_MEMORY ? 2 : 1;
}

static _Atomic int thread_errors;
static void *thread_body(void *arg)
{
    (void)arg;
    CUcontext ctx;
    cu.cuDevicePrimaryCtxRetain(&ctx, dev);
    cu.cuCtxSetCurrent(ctx);
    unsigned seed = (unsigned)(uintptr_t)pthread_self();
    for (int i = 0; i < 300; i++) {
        CUdeviceptr p;
        size_t n = (size_t)(rand_r(&seed) % 16 + 1) * MIB;
        CUresult r = cu.cuMemAlloc_v2(&p, n);
        if (r == CUDA_SUCCESS) {
            if (shm && ledger >= 0 && atomic_load(&shm->dev[ledger].mem_used) > cap)
                atomic_fetch_add(&thread_errors, 1);
            if (cu.cuMemFree_v2(p) != CUDA_SUCCESS) atomic_fetch_add(&thread_errors, 1);
        } else if (r != CUDA_ERROR_OUT_OF_MEMORY) {
            atomic_fetch_add(&thread_errors, 1);
        }
    }
    return NULL;
}

static int threads(void)
{
    setup();
    CUdeviceptr p;
    CU_OK(cu.cuMemAlloc_v2(&p, 2 * MIB));
    CU_OK(cu.cuMemFree_v2(p));
    find_ledger();
    uint64_t b = mine();
    pthread_t t[8];
    for (int i = 0; i < 8; i++)
        pthread_create(&t[i], NULL, thread_body, NULL);
    for (int i = 0; i < 8; i++)
        pthread_join(t[i], NULL);
    CHECK_EQ_INT(atomic_load(&thread_errors), 0);
    expect_back("8 threads x 300 alloc/free", b);
    TEST_MAIN_END();
}

static int forked(void)
{
    setup();
    CUdeviceptr p;
    CU_OK(cu.cuMemAlloc_v2(&p, 10 * MIB));
    uint64_t b = mine();
    pid_t c = fork();
    if (c == 0) {
        /* the child is a new process of the pod: it holds nothing of the parent's memory */
        find_ledger();
        int parent_slot = slot;
        slot = -1;
        for (int i = 0; i < VGPU_MAX_PROCS; i++)
            if (atomic_load(&shm->proc[i].pid) == getpid()) slot = i;
        _exit(slot == -1 && parent_slot >= 0 ? 0 : 1);
    }
    int st = 0;
    waitpid(c, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK_EQ_U64(mine(), b);
    CU_OK(cu.cuMemFree_v2(p));
    CHECK_EQ_U64(mine(), 0);
    TEST_MAIN_END();
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *door = getenv("VGPU_PROBE_DOOR");
    if (!door || !*door) door = "link";
    const char *cmd = argc > 1 ? argv[1] : "families";
    if (strcmp(cmd, "nvml") == 0) return nvml();
    if (strcmp(cmd, "ledger") == 0) return dump_ledger();
    if (strcmp(cmd, "set-core") == 0 && argc > 2)
        return set_core(atof(argv[2]), argc > 3 ? atof(argv[3]) : 0);
    if (strcmp(cmd, "gate") == 0) return gate_stats();
    if (strcmp(cmd, "control") == 0) return control();
    if (strcmp(cmd, "node") == 0) return node_dump();
    if (load_door(door) != 0) {
        fprintf(stderr, "cannot reach the driver through door '%s'\n", door);
        return 1;
    }
    if (strcmp(cmd, "init") == 0) {
        CUresult r = cu.cuInit(0);
        printf("cuInit=%d\n", r);
        return r == CUDA_SUCCESS ? 0 : 3;
    }
    if (strcmp(cmd, "families") == 0) {
        printf("families through door '%s':\n", door);
        families();
        TEST_MAIN_END();
    }
    if (strcmp(cmd, "fill") == 0) return fill();
    if (strcmp(cmd, "info") == 0) return info();
    if (strcmp(cmd, "hold") == 0 && argc > 2)
        return hold(strtoull(argv[2], NULL, 10), argc > 3 ? atoi(argv[3]) : 60);
    if (strcmp(cmd, "try") == 0 && argc > 2) return try_alloc(strtoull(argv[2], NULL, 10));
    if (strcmp(cmd, "async") == 0 && argc > 2) return async_alloc(strtoull(argv[2], NULL, 10));
    if (strcmp(cmd, "threads") == 0) return threads();
    if (strcmp(cmd, "calibrate") == 0) return calibrate();
    if (strcmp(cmd, "spin") == 0 && argc > 3)
        return spin(atof(argv[2]), (unsigned)atoi(argv[3]), argc > 4 ? atoi(argv[4]) : 1,
                    argc > 5 ? atoi(argv[5]) : 0);
    if (strcmp(cmd, "fork") == 0) return forked();
    if (strcmp(cmd, "multi") == 0 && argc > 2) return multi(atoi(argv[2]));
    if (strcmp(cmd, "import") == 0 && argc > 3)
        return import_ext(strtoull(argv[2], NULL, 10), strtoull(argv[3], NULL, 10));
    if (strcmp(cmd, "pulse") == 0 && argc > 3)
        return pulse(strtoull(argv[2], NULL, 10), atof(argv[3]));
    fprintf(stderr,
            "usage: cuda_probe families|fill|info|nvml|hold M [S]|try M|init|threads|fork\n");
    return 64;
}
