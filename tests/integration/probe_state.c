/* probe_state.c - cuda_probe's modes that read or set shared state: NVML's view, calibration,
 * the pod's ledger, its compute limits and gate counters, the control and node regions.
 *
 * Why this exists: these modes look at what the limiter and the daemon keep, rather than
 * allocating or launching; cuda_probe.c dispatches to them. */
#define _GNU_SOURCE
#include "probe.h"

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

int mode_nvml(void)
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
int mode_calibrate(void)
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
    size_t gran = vmm_prop(&prop);
    CUmemGenericAllocationHandle hd;
    before = nvml_self_used();
    CU_OK(cu.cuMemCreate(&hd, 8 * gran, &prop, 0));
    printf("calib cuMemCreate request=%llu nvml=%lld granularity=%zu\n", 8ull * gran,
           nvml_self_used() - before, gran);
    CU_OK(cu.cuMemRelease(hd));
    TEST_MAIN_END();
}

/* Dump the pod's ledger (for debugging tests). */
int mode_ledger(void)
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

int mode_set_core(double pct, double soft)
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

int mode_gate(void)
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

int mode_node(void)
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

int mode_control(void)
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
