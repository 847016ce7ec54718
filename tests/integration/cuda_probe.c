/* cuda_probe.c - a driver-API program that exercises every allocation family under the limiter.
 *
 * Why this exists: the same program runs in CI over the simulated driver and on the real GPU
 * (tests/gpu/run), so both check the same behaviour. It reaches the driver through one of the
 * three doors applications use (VGPU_PROBE_DOOR = link | dlsym | gpa | gpa11): linked symbols,
 * dlopen+dlsym, or cuGetProcAddress (v2 at CUDA 12.0 with per-thread streams, or v1 at 11.3).
 * It reads the pod's ledger directly to check that each family is charged exactly what the
 * limiter claims, and given back.
 * This file has the doors, the helpers every mode shares (probe.h) and the table of modes; the
 * modes are in probe_memory.c, probe_launch.c and probe_state.c.
 *
 *   cuda_probe families     every family charged and given back; each refused past the cap
 *   cuda_probe fill         allocate 64 MiB blocks until refused; print how much fitted
 *   cuda_probe info         print the view: total, free, device total
 *   cuda_probe nvml         print NVML's view: total, used, processes
 *   cuda_probe hold M [S]   hold M MiB for S seconds (print HELD when held)
 *   cuda_probe try M        allocate M MiB: exit 0 if it fits, 2 if refused
 *   cuda_probe async M      cuMemAllocAsync M MiB: exit 0 if it fits, 2 if refused
 *   cuda_probe init         cuInit only: print its result
 *   cuda_probe doors        which library answers cuLaunchKernel and cuMemAlloc through the
 *                           door: "launch=<file> alloc=<file>" (the limiter's, or the driver's)
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

#include "probe.h"

#define DECLARE(sym, base, params) extern CUresult sym params;
PROBE_FUNCS(DECLARE)
PROBE_EXTRA(DECLARE)
struct probe_cu cu;
int vgpu_test_failures;

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

CUdevice dev;
struct vgpu_shm *shm;
int slot = -1, ledger = -1;
uint64_t cap;

/* The GPU the probe works on: VGPU_PROBE_DEV, default 0. */
int probe_dev(void)
{
    const char *v = getenv("VGPU_PROBE_DEV");
    return v && *v ? atoi(v) : 0;
}

void setup(void)
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
const struct vgpu_ctl *probe_ctl;

/* The pod's ledger: the one in VGPU_PROBE_POD_DIR (a managed pod's directory under the
 * daemon's --shm-dir), else the standalone one the limiter would use from this environment;
 * NULL (said on `say`, when given) if there is none. */
struct vgpu_shm *open_pod_region(FILE *say)
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
const struct vgpu_dev_limits *lim_at(struct vgpu_shm *s, int d)
{
    static const struct vgpu_dev_limits none = {.mem_limit = VGPU_UNLIMITED};
    if (!probe_ctl) return &s->dev[d].lim;
    int k = vgpu_ctl_dev_find(probe_ctl, s->dev[d].uuid);
    return k < 0 ? &none : &probe_ctl->dev[k].lim;
}

/* the ledger as the limiter keeps it; found after the first allocation bound the GPU */
void find_ledger(void)
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
uint64_t mine(void)
{
    find_ledger();
    return (shm && slot >= 0 && ledger >= 0) ? atomic_load(&shm->proc[slot].mem[ledger]) : 0;
}

size_t vmm_prop(CUmemAllocationProp *prop)
{
    memset(prop, 0, sizeof(*prop));
    prop->type = CU_MEM_ALLOCATION_TYPE_PINNED;
    prop->location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    prop->location.id = dev;
    size_t gran = 0;
    CU_OK(cu.cuMemGetAllocationGranularity(&gran, prop, CU_MEM_ALLOC_GRANULARITY_MINIMUM));
    return gran;
}

double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

uint64_t round2m(uint64_t n)
{
    return (n + 2 * MIB - 1) & ~(2 * MIB - 1);
}
/* the limiter's documented rule (docs/accounting.md): 512-byte steps up to 1 MiB, else 2 MiB */
uint64_t charge_of(uint64_t n)
{
    return n <= MIB ? (n + 511) & ~511ull : round2m(n);
}

void expect_delta(const char *what, uint64_t before, uint64_t lo, uint64_t hi)
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

void expect_back(const char *what, uint64_t before)
{
    uint64_t now = mine();
    if (now != before) {
        fprintf(stderr, "%s: %llu bytes still charged after the free\n", what,
                (unsigned long long)(now - before));
        vgpu_test_failures++;
    }
}

void expect_oom(const char *what, CUresult r)
{
    if (r != CUDA_ERROR_OUT_OF_MEMORY) {
        fprintf(stderr, "%s past the cap returned %d, expected CUDA_ERROR_OUT_OF_MEMORY\n", what,
                r);
        vgpu_test_failures++;
    }
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *door = getenv("VGPU_PROBE_DOOR");
    if (!door || !*door) door = "link";
    const char *cmd = argc > 1 ? argv[1] : "families";
    if (strcmp(cmd, "nvml") == 0) return mode_nvml();
    if (strcmp(cmd, "ledger") == 0) return mode_ledger();
    if (strcmp(cmd, "set-core") == 0 && argc > 2)
        return mode_set_core(atof(argv[2]), argc > 3 ? atof(argv[3]) : 0);
    if (strcmp(cmd, "gate") == 0) return mode_gate();
    if (strcmp(cmd, "control") == 0) return mode_control();
    if (strcmp(cmd, "node") == 0) return mode_node();
    if (load_door(door) != 0) {
        fprintf(stderr, "cannot reach the driver through door '%s'\n", door);
        return 1;
    }
    if (strcmp(cmd, "init") == 0) {
        CUresult r = cu.cuInit(0);
        printf("cuInit=%d\n", r);
        return r == CUDA_SUCCESS ? 0 : 3;
    }
    if (strcmp(cmd, "doors") == 0) {
        Dl_info a = {0}, b = {0};
        if (!dladdr(*(void **)&cu.cuLaunchKernel, &a) || !dladdr(*(void **)&cu.cuMemAlloc_v2, &b))
            return 1;
        printf("launch=%s alloc=%s\n", basename(a.dli_fname), basename(b.dli_fname));
        return 0;
    }
    if (strcmp(cmd, "families") == 0) {
        printf("families through door '%s':\n", door);
        mode_families();
        TEST_MAIN_END();
    }
    if (strcmp(cmd, "fill") == 0) return mode_fill();
    if (strcmp(cmd, "info") == 0) return mode_info();
    if (strcmp(cmd, "hold") == 0 && argc > 2)
        return mode_hold(strtoull(argv[2], NULL, 10), argc > 3 ? atoi(argv[3]) : 60);
    if (strcmp(cmd, "try") == 0 && argc > 2) return mode_try(strtoull(argv[2], NULL, 10));
    if (strcmp(cmd, "async") == 0 && argc > 2) return mode_async(strtoull(argv[2], NULL, 10));
    if (strcmp(cmd, "threads") == 0) return mode_threads();
    if (strcmp(cmd, "calibrate") == 0) return mode_calibrate();
    if (strcmp(cmd, "spin") == 0 && argc > 3)
        return mode_spin(atof(argv[2]), (unsigned)atoi(argv[3]), argc > 4 ? atoi(argv[4]) : 1,
                         argc > 5 ? atoi(argv[5]) : 0);
    if (strcmp(cmd, "fork") == 0) return mode_fork();
    if (strcmp(cmd, "multi") == 0 && argc > 2) return mode_multi(atoi(argv[2]));
    if (strcmp(cmd, "import") == 0 && argc > 3)
        return mode_import(strtoull(argv[2], NULL, 10), strtoull(argv[3], NULL, 10));
    if (strcmp(cmd, "pulse") == 0 && argc > 3)
        return mode_pulse(strtoull(argv[2], NULL, 10), atof(argv[3]));
    fprintf(stderr,
            "usage: cuda_probe families|fill|info|nvml|hold M [S]|try M|init|threads|fork\n");
    return 64;
}
