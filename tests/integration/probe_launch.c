/* probe_launch.c - cuda_probe's compute modes: kernels of a given length launched through each
 * entry point (spin) and the multi-device cooperative launch (multi).
 *
 * Why this exists: the compute limit is checked by launch rates over time; this is the code that
 * launches and counts, apart from the memory and state modes. */
#define _GNU_SOURCE
#include "probe.h"

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

int mode_spin(double seconds, unsigned us, int nthreads, int nodes)
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
int mode_multi(int n)
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
