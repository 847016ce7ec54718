/* probe_memory.c - cuda_probe's memory modes: every allocation family charged and given back,
 * fill, hold, try, async, pulse, threads, fork, and imported external memory.
 *
 * Why this exists: cuda_probe.c has the modes' table and the driver doors; the memory modes are
 * the larger half of what the probe checks, kept apart from the compute and state modes. */
#define _GNU_SOURCE
#include "probe.h"

int mode_families(void)
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
    size_t gran = vmm_prop(&prop);
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

int mode_fill(void)
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

int mode_info(void)
{
    setup();
    size_t free_b = 0, total = 0, dtotal = 0;
    CU_OK(cu.cuMemGetInfo_v2(&free_b, &total));
    CU_OK(cu.cuDeviceTotalMem_v2(&dtotal, dev));
    printf("total=%zu free=%zu devtotal=%zu\n", total, free_b, dtotal);
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

int mode_import(uint64_t a, uint64_t b)
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

int mode_pulse(uint64_t mib, double seconds)
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

int mode_hold(uint64_t mib, int seconds)
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

int mode_try(uint64_t mib)
{
    setup();
    CUdeviceptr p;
    CUresult r = cu.cuMemAlloc_v2(&p, mib * MIB);
    printf("%s %d\n", r == CUDA_SUCCESS ? "OK" : "REFUSED", r);
    return r == CUDA_SUCCESS ? 0 : r == CUDA_ERROR_OUT_OF_MEMORY ? 2 : 1;
}

int mode_async(uint64_t mib)
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

int mode_threads(void)
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

int mode_fork(void)
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
