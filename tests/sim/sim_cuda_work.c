/* sim_cuda_work.c - simulated driver API: modules, streams, launches, events, graphs.
 *
 * Why this exists: the limiter throttles GPU time, so simulated work must take simulated time.
 * A device runs one piece of work at a time across all processes (its timeline lives in the
 * shared state); a launch returns at once unless the queue is more than 200 ms deep (a real
 * driver's holds seconds of long kernels: VGPU_SIM_QUEUE_MS sets the depth), and every
 * synchronisation sleeps until the work it waits for has ended. Busy time is accounted per
 * device and per process for NVML's utilisation figures.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "sim_cuda.h"

#define QUEUE_NS (200 * SIM_MS)

struct sim_stream {
    struct sim_hdr h;
    struct sim_ctx *ctx;
    unsigned flags;
    int priority;
    uint64_t tail;
};
struct sim_event {
    struct sim_hdr h;
    unsigned flags;
    int recorded;
    uint64_t t;
};
struct sim_func {
    struct sim_hdr h;
    uint64_t dur_ns;
    struct sim_func *next;
};
struct sim_module { /* modules and libraries */
    struct sim_hdr h;
    struct sim_func *funcs;
};
struct sim_node {
    struct sim_hdr h;
    struct sim_node *next;
};
struct sim_graph { /* graphs and their executable instances */
    struct sim_hdr h;
    uint64_t dur_ns;
    struct sim_node *nodes;
};

static __thread uint64_t t_ptds_tail[SIM_MAX_DEV]; /* the per-thread default stream */

/* --- modules, libraries, functions ----------------------------------------------------------- */

static uint64_t name_duration(const char *name) /* "...sim_kernel_<N>us..." runs N us */
{
    const char *p = strstr(name, "sim_kernel_");
    if (p && isdigit((unsigned char)p[11])) {
        char *end;
        unsigned long long us = strtoull(p + 11, &end, 10);
        if (end[0] == 'u' && end[1] == 's') return us * 1000;
    }
    return g_cfg.kernel_ns;
}

static CUresult module_new(void **out, const void *image, int kind, int need_ctx)
{
    struct sim_ctx *c;
    CUresult rc = need_ctx ? sim_enter_ctx(&c) : sim_enter();
    if (rc != CUDA_SUCCESS) return rc;
    if (!out || !image) return CUDA_ERROR_INVALID_VALUE;
    return (*out = sim_obj_new(kind, sizeof(struct sim_module))) ? CUDA_SUCCESS
                                                                 : CUDA_ERROR_OUT_OF_MEMORY;
}

static CUresult module_unload(void *h, int kind)
{
    if (!g_inited) return CUDA_ERROR_NOT_INITIALIZED;
    pthread_mutex_lock(&g_mu);
    struct sim_module *m = sim_obj_get(h, kind);
    if (m) {
        for (struct sim_func *f = m->funcs, *next; f; f = next) {
            next = f->next;
            sim_obj_free(f);
        }
        sim_obj_free(m);
    }
    pthread_mutex_unlock(&g_mu);
    return m ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}

static CUresult func_new(void **out, void *h, int kind, const char *name)
{
    if (!g_inited) return CUDA_ERROR_NOT_INITIALIZED;
    if (!out || !name) return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = CUDA_ERROR_INVALID_HANDLE;
    pthread_mutex_lock(&g_mu);
    struct sim_module *m = sim_obj_get(h, kind);
    struct sim_func *f = m ? sim_obj_new(K_FUNC, sizeof *f) : NULL;
    if (f) {
        f->dur_ns = name_duration(name);
        f->next = m->funcs;
        m->funcs = f;
        *out = f;
        rc = CUDA_SUCCESS;
    } else if (m) {
        rc = CUDA_ERROR_OUT_OF_MEMORY;
    }
    pthread_mutex_unlock(&g_mu);
    return rc;
}

SIM_API CUresult cuModuleLoad(CUmodule *module, const char *fname)
{
    return module_new((void **)module, fname, K_MODULE, 1);
}
SIM_API CUresult cuModuleLoadData(CUmodule *module, const void *image)
{
    return module_new((void **)module, image, K_MODULE, 1);
}
SIM_API CUresult cuModuleLoadDataEx(CUmodule *module, const void *image, unsigned int numOptions,
                                    CUjit_option *options, void **optionValues)
{
    return module_new((void **)module, image, K_MODULE, 1);
}
SIM_API CUresult cuModuleUnload(CUmodule hmod)
{
    return module_unload(hmod, K_MODULE);
}
SIM_API CUresult cuModuleGetFunction(CUfunction *hfunc, CUmodule hmod, const char *name)
{
    return func_new((void **)hfunc, hmod, K_MODULE, name);
}
SIM_API CUresult cuLibraryLoadData(CUlibrary *library, const void *code, CUjit_option *jitOptions,
                                   void **jitOptionsValues, unsigned int numJitOptions,
                                   CUlibraryOption *libraryOptions, void **libraryOptionValues,
                                   unsigned int numLibraryOptions)
{
    return module_new((void **)library, code, K_LIBRARY, 0);
}
SIM_API CUresult cuLibraryUnload(CUlibrary library)
{
    return module_unload(library, K_LIBRARY);
}
SIM_API CUresult cuLibraryGetKernel(CUkernel *pKernel, CUlibrary library, const char *name)
{
    return func_new((void **)pKernel, library, K_LIBRARY, name);
}
SIM_API CUresult cuKernelGetFunction(CUfunction *pFunc, CUkernel kernel)
{
    struct sim_ctx *c;
    CUresult rc = sim_enter_ctx(&c);
    if (rc != CUDA_SUCCESS) return rc;
    if (!pFunc) return CUDA_ERROR_INVALID_VALUE;
    if (!sim_obj_get(kernel, K_FUNC)) return CUDA_ERROR_INVALID_HANDLE;
    *pFunc = (CUfunction)(void *)kernel; /* a kernel is its own function in every context */
    return CUDA_SUCCESS;
}

/* --- streams and the device timeline ---------------------------------------------------------- */

int sim_stream_ok(CUstream s)
{
    return !s || s == CU_STREAM_LEGACY || s == CU_STREAM_PER_THREAD || sim_obj_get(s, K_STREAM);
}

/* Where work on stream s ends up: its tail, and whether it orders with the legacy stream.
 * NULL for a bad handle; g_mu held. */
static uint64_t *stream_tail(struct sim_ctx **c, CUstream s, int ptds, int *blocking)
{
    *blocking = 1;
    if (s == CU_STREAM_PER_THREAD || (!s && ptds)) return &t_ptds_tail[(*c)->dev];
    if (!s || s == CU_STREAM_LEGACY) return &(*c)->blocking_tail;
    struct sim_stream *st = sim_obj_get(s, K_STREAM);
    if (!st || !sim_ctx_of((CUcontext)st->ctx)) return NULL;
    *c = st->ctx;
    *blocking = !(st->flags & CU_STREAM_NON_BLOCKING);
    return &st->tail;
}

/* VGPU_SIM_SWITCH_US: what the GPU spends switching to another process's context before its
 * work starts, as time-slicing contexts cost a real GPU: busy (NVML counts it, to the incoming
 * process) but not the work's: a timing event recorded before the work completes after the
 * switch (event_record), so the events around the work leave it out. sim_lock held; returns
 * when the caller's work or event may start. */
static uint64_t switch_in_locked(struct sim_dev *d, int dev, uint64_t start, uint64_t now)
{
    static int64_t switch_ns = -1;
    if (switch_ns < 0) {
        const char *e = getenv("VGPU_SIM_SWITCH_US");
        switch_ns = e && atoi(e) > 0 ? (int64_t)atoi(e) * 1000 : 0;
    }
    if (switch_ns && d->last_slot && d->last_slot != (uint32_t)g_slot + 1) {
        sim_busy_add_locked(g_slot, dev, start, start + (uint64_t)switch_ns, now);
        start += (uint64_t)switch_ns;
        d->busy_until = SIM_MAX(d->busy_until, start);
    }
    d->last_slot = (uint32_t)g_slot + 1;
    return start;
}

/* Queue dur_ns of work on the device after everything already queued; g_mu held. Returns the
 * time the caller must wait until before returning (a full launch queue), or 0. */
static uint64_t submit(struct sim_ctx *c, uint64_t *tail, int blocking, uint64_t dur)
{
    sim_lock();
    uint64_t now = sim_now_ns();
    struct sim_dev *d = &sim_st->dev[c->dev];
    uint64_t start = switch_in_locked(d, c->dev, SIM_MAX(SIM_MAX(now, d->busy_until), *tail), now);
    uint64_t end = start + dur;
    d->busy_until = end;
    sim_busy_add_locked(g_slot, c->dev, start, end, now);
    sim_unlock();
    *tail = end;
    c->tail = SIM_MAX(c->tail, end);
    if (blocking) c->blocking_tail = SIM_MAX(c->blocking_tail, end);
    static uint64_t depth;
    if (!depth) {
        const char *e = getenv("VGPU_SIM_QUEUE_MS");
        depth = e && atoi(e) > 0 ? (uint64_t)atoi(e) * SIM_MS : QUEUE_NS;
    }
    return end - now > depth ? end - depth : 0;
}

/* VGPU_SIM_KERNEL_JITTER=J: every piece of work takes 1 to 1+J times its duration (uniform,
 * a fixed sequence per thread), as kernels do on a GPU whose clock moves under a power cap;
 * the events time what it really took */
static uint64_t jittered(uint64_t dur)
{
    static _Atomic long ppm = -1; /* the jitter in millionths, read once */
    static __thread unsigned seed = 12345;
    long j = atomic_load(&ppm);
    if (j < 0) {
        const char *e = getenv("VGPU_SIM_KERNEL_JITTER");
        j = e && atof(e) > 0 ? (long)(atof(e) * 1e6) : 0;
        atomic_store(&ppm, j);
    }
    return j ? (uint64_t)((double)dur * (1.0 + j / 1e6 * rand_r(&seed) / (double)RAND_MAX)) : dur;
}

static CUresult run_work(int ptds, CUstream s, uint64_t dur)
{
    dur = jittered(dur);
    struct sim_ctx *c;
    CUresult rc = sim_enter_ctx(&c);
    if (rc != CUDA_SUCCESS) return rc;
    int blocking;
    uint64_t wait = 0;
    pthread_mutex_lock(&g_mu);
    uint64_t *tail = stream_tail(&c, s, ptds, &blocking);
    if (tail) wait = submit(c, tail, blocking, dur);
    pthread_mutex_unlock(&g_mu);
    if (wait) sim_sleep_until(wait);
    return tail ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}

CUresult sim_launch(int ptds, CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                    unsigned by, unsigned bz, CUstream s)
{
    if (!g_inited) return CUDA_ERROR_NOT_INITIALIZED;
    struct sim_func *fn = sim_obj_get(f, K_FUNC);
    if (!fn) return CUDA_ERROR_INVALID_HANDLE;
    if (!gx || !gy || !gz || !bx || !by || !bz || (uint64_t)bx * by * bz > 1024)
        return CUDA_ERROR_INVALID_VALUE;
    return run_work(ptds, s, fn->dur_ns);
}

SIM_API CUresult cuLaunchKernel SIM_LAUNCH_PARAMS
{
    return sim_launch(0, f, gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ, hStream);
}
SIM_API CUresult cuLaunchKernel_ptsz SIM_LAUNCH_PARAMS
{
    return sim_launch(1, f, gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ, hStream);
}
SIM_API CUresult cuLaunchCooperativeKernel SIM_COOP_PARAMS
{
    return sim_launch(0, f, gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ, hStream);
}
SIM_API CUresult cuLaunchCooperativeKernel_ptsz SIM_COOP_PARAMS
{
    return sim_launch(1, f, gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ, hStream);
}

static CUresult launch_ex(int ptds, const CUlaunchConfig *k, CUfunction f)
{
    if (!k) return g_inited ? CUDA_ERROR_INVALID_VALUE : CUDA_ERROR_NOT_INITIALIZED;
    return sim_launch(ptds, f, k->gridDimX, k->gridDimY, k->gridDimZ, k->blockDimX, k->blockDimY,
                      k->blockDimZ, k->hStream);
}
SIM_API CUresult cuLaunchKernelEx(const CUlaunchConfig *config, CUfunction f, void **kernelParams,
                                  void **extra)
{
    return launch_ex(0, config, f);
}
SIM_API CUresult cuLaunchKernelEx_ptsz(const CUlaunchConfig *config, CUfunction f,
                                       void **kernelParams, void **extra)
{
    return launch_ex(1, config, f);
}

static CUresult stream_create(CUstream *ph, unsigned flags, int priority)
{
    struct sim_ctx *c;
    CUresult rc = sim_enter_ctx(&c);
    if (rc != CUDA_SUCCESS) return rc;
    if (!ph || (flags & ~(unsigned)CU_STREAM_NON_BLOCKING)) return CUDA_ERROR_INVALID_VALUE;
    struct sim_stream *s = sim_obj_new(K_STREAM, sizeof *s);
    if (!s) return CUDA_ERROR_OUT_OF_MEMORY;
    s->ctx = c;
    s->flags = flags;
    s->priority = priority;
    *ph = (CUstream)s;
    return CUDA_SUCCESS;
}
SIM_API CUresult cuStreamCreate(CUstream *phStream, unsigned int Flags)
{
    return stream_create(phStream, Flags, 0);
}
SIM_API CUresult cuStreamCreateWithPriority(CUstream *phStream, unsigned int flags, int priority)
{
    return stream_create(phStream, flags, priority);
}

static CUresult destroy(void *h, int kind)
{
    if (!g_inited) return CUDA_ERROR_NOT_INITIALIZED;
    pthread_mutex_lock(&g_mu);
    void *o = sim_obj_get(h, kind);
    if (o) sim_obj_free(o);
    pthread_mutex_unlock(&g_mu);
    return o ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}
SIM_API CUresult cuStreamDestroy(CUstream hStream)
{
    return destroy(hStream, K_STREAM);
}
SIM_API CUresult cuStreamDestroy_v2(CUstream hStream)
{
    return destroy(hStream, K_STREAM);
}

/* The time stream s is done; 0 with *rc set for a bad handle. */
static uint64_t stream_end(CUstream s, int ptds, CUresult *rc)
{
    struct sim_ctx *c;
    int blocking;
    uint64_t t = 0;
    if ((*rc = sim_enter_ctx(&c)) != CUDA_SUCCESS) return 0;
    pthread_mutex_lock(&g_mu);
    uint64_t *tail = stream_tail(&c, s, ptds, &blocking);
    if (tail)
        t = *tail;
    else
        *rc = CUDA_ERROR_INVALID_HANDLE;
    pthread_mutex_unlock(&g_mu);
    return t;
}

static CUresult stream_sync(CUstream s, int ptds)
{
    CUresult rc;
    uint64_t t = stream_end(s, ptds, &rc);
    if (rc == CUDA_SUCCESS) {
        sim_sleep_until(t);
        sim_pools_release_at_sync();
    }
    return rc;
}
SIM_API CUresult cuStreamSynchronize(CUstream hStream)
{
    return stream_sync(hStream, 0);
}
SIM_API CUresult cuStreamSynchronize_ptsz(CUstream hStream)
{
    return stream_sync(hStream, 1);
}

static CUresult stream_query(CUstream s, int ptds)
{
    CUresult rc;
    uint64_t t = stream_end(s, ptds, &rc);
    return rc != CUDA_SUCCESS ? rc : sim_now_ns() >= t ? CUDA_SUCCESS : CUDA_ERROR_NOT_READY;
}
SIM_API CUresult cuStreamQuery(CUstream hStream)
{
    return stream_query(hStream, 0);
}
SIM_API CUresult cuStreamQuery_ptsz(CUstream hStream)
{
    return stream_query(hStream, 1);
}

static CUresult ctx_sync(CUcontext ctx)
{
    struct sim_ctx *c;
    CUresult rc = sim_enter_ctx(&c);
    if (rc == CUDA_ERROR_NOT_INITIALIZED) return rc;
    if (ctx) c = sim_ctx_of(ctx);
    if (!c) return CUDA_ERROR_INVALID_CONTEXT;
    pthread_mutex_lock(&g_mu);
    uint64_t t = c->tail;
    pthread_mutex_unlock(&g_mu);
    sim_sleep_until(t);
    sim_pools_release_at_sync();
    return CUDA_SUCCESS;
}
SIM_API CUresult cuCtxSynchronize(void)
{
    return ctx_sync(NULL);
}
SIM_API CUresult cuCtxSynchronize_v2(CUcontext ctx)
{
    return ctx_sync(ctx);
}

/* --- events ---------------------------------------------------------------------------------- */

SIM_API CUresult cuEventCreate(CUevent *phEvent, unsigned int Flags)
{
    struct sim_ctx *c;
    CUresult rc = sim_enter_ctx(&c);
    if (rc != CUDA_SUCCESS) return rc;
    if (!phEvent || (Flags & ~7u) ||
        ((Flags & CU_EVENT_INTERPROCESS) && !(Flags & CU_EVENT_DISABLE_TIMING)))
        return CUDA_ERROR_INVALID_VALUE;
    struct sim_event *e = sim_obj_new(K_EVENT, sizeof *e);
    if (!e) return CUDA_ERROR_OUT_OF_MEMORY;
    e->flags = Flags;
    *phEvent = (CUevent)e;
    return CUDA_SUCCESS;
}
SIM_API CUresult cuEventDestroy(CUevent hEvent)
{
    return destroy(hEvent, K_EVENT);
}
SIM_API CUresult cuEventDestroy_v2(CUevent hEvent)
{
    return destroy(hEvent, K_EVENT);
}

static CUresult event_record(CUevent ev, CUstream s, int ptds, unsigned flags)
{
    struct sim_ctx *c;
    CUresult rc = sim_enter_ctx(&c);
    if (rc != CUDA_SUCCESS) return rc;
    if (flags & ~(unsigned)CU_EVENT_RECORD_EXTERNAL) return CUDA_ERROR_INVALID_VALUE;
    int blocking;
    pthread_mutex_lock(&g_mu);
    struct sim_event *e = sim_obj_get(ev, K_EVENT);
    uint64_t *tail = e ? stream_tail(&c, s, ptds, &blocking) : NULL;
    if (tail) {
        /* completes when the stream's earlier work has, and not before the GPU runs this
         * context again: like a real GPU, which time-slices contexts, an event does not count
         * the time the GPU spent on other processes' work queued before it */
        sim_lock();
        struct sim_dev *d = &sim_st->dev[c->dev];
        uint64_t now = sim_now_ns();
        e->t = switch_in_locked(d, c->dev, SIM_MAX(SIM_MAX(now, *tail), d->busy_until), now);
        sim_unlock();
        e->recorded = 1;
    }
    pthread_mutex_unlock(&g_mu);
    return tail ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}
SIM_API CUresult cuEventRecord(CUevent hEvent, CUstream hStream)
{
    return event_record(hEvent, hStream, 0, 0);
}
SIM_API CUresult cuEventRecord_ptsz(CUevent hEvent, CUstream hStream)
{
    return event_record(hEvent, hStream, 1, 0);
}
SIM_API CUresult cuEventRecordWithFlags(CUevent hEvent, CUstream hStream, unsigned int flags)
{
    return event_record(hEvent, hStream, 0, flags);
}
SIM_API CUresult cuEventRecordWithFlags_ptsz(CUevent hEvent, CUstream hStream, unsigned int flags)
{
    return event_record(hEvent, hStream, 1, flags);
}

/* completion time of a recorded event (0 when never recorded); NULL handle check by caller */
static struct sim_event *event_get(CUevent ev, uint64_t *t)
{
    pthread_mutex_lock(&g_mu);
    struct sim_event *e = sim_obj_get(ev, K_EVENT);
    *t = e && e->recorded ? e->t : 0;
    pthread_mutex_unlock(&g_mu);
    return e;
}

SIM_API CUresult cuEventQuery(CUevent hEvent)
{
    uint64_t t;
    if (!g_inited) return CUDA_ERROR_NOT_INITIALIZED;
    if (!event_get(hEvent, &t)) return CUDA_ERROR_INVALID_HANDLE;
    return sim_now_ns() >= t ? CUDA_SUCCESS : CUDA_ERROR_NOT_READY;
}

SIM_API CUresult cuEventSynchronize(CUevent hEvent)
{
    uint64_t t;
    if (!g_inited) return CUDA_ERROR_NOT_INITIALIZED;
    if (!event_get(hEvent, &t)) return CUDA_ERROR_INVALID_HANDLE;
    sim_sleep_until(t);
    sim_pools_release_at_sync();
    return CUDA_SUCCESS;
}

static CUresult elapsed(float *ms, CUevent a, CUevent b)
{
    uint64_t ta, tb;
    if (!g_inited) return CUDA_ERROR_NOT_INITIALIZED;
    if (!ms) return CUDA_ERROR_INVALID_VALUE;
    struct sim_event *ea = event_get(a, &ta), *eb = event_get(b, &tb);
    if (!ea || !eb || !ta || !tb || ((ea->flags | eb->flags) & CU_EVENT_DISABLE_TIMING))
        return CUDA_ERROR_INVALID_HANDLE;
    uint64_t now = sim_now_ns();
    if (now < ta || now < tb) return CUDA_ERROR_NOT_READY;
    /* VGPU_SIM_EVENT_SKEW: timing events that misreport by a factor, as events around tiny
     * kernels do on real GPUs; lets tests check that a limiter does not trust them blindly.
     * VGPU_SIM_EVENT_SKEW_AFTER_MS: only for events of a process this long after its first
     * timing (on real GPUs the events' figure for a tiny kernel changes with how the launches
     * are spaced, while the kernel does not). VGPU_SIM_EVENT_SKEW_UNTIL_MS: only before then
     * (on real GPUs a kernel's events span the time slices of every context that has work,
     * as when many processes start together) */
    static double skew = -1;
    static uint64_t skew_from, skew_until;
    if (skew < 0) {
        const char *e = getenv("VGPU_SIM_EVENT_SKEW"),
                   *after = getenv("VGPU_SIM_EVENT_SKEW_AFTER_MS"),
                   *until = getenv("VGPU_SIM_EVENT_SKEW_UNTIL_MS");
        skew_from = after ? now + (uint64_t)atoi(after) * 1000000ull : 0; /* 0: every event */
        skew_until = until ? now + (uint64_t)atoi(until) * 1000000ull : UINT64_MAX;
        skew = e && atof(e) > 0 ? atof(e) : 1.0;
    }
    int skewed = ta >= skew_from && ta < skew_until;
    *ms = (float)((double)(int64_t)(tb - ta) * (skewed ? skew : 1.0) / 1e6);
    return CUDA_SUCCESS;
}
SIM_API CUresult cuEventElapsedTime(float *pMilliseconds, CUevent hStart, CUevent hEnd)
{
    return elapsed(pMilliseconds, hStart, hEnd);
}
SIM_API CUresult cuEventElapsedTime_v2(float *pMilliseconds, CUevent hStart, CUevent hEnd)
{
    return elapsed(pMilliseconds, hStart, hEnd);
}

/* --- graphs: one block of work lasting the sum of the kernel nodes ---------------------------- */

SIM_API CUresult cuGraphCreate(CUgraph *phGraph, unsigned int flags)
{
    if (!g_inited) return CUDA_ERROR_NOT_INITIALIZED;
    if (!phGraph || flags) return CUDA_ERROR_INVALID_VALUE;
    return (*phGraph = sim_obj_new(K_GRAPH, sizeof(struct sim_graph))) ? CUDA_SUCCESS
                                                                       : CUDA_ERROR_OUT_OF_MEMORY;
}

static CUresult add_kernel_node(CUgraphNode *ph, CUgraph hg, const CUgraphNode *deps, size_t ndeps,
                                CUfunction f)
{
    if (!g_inited) return CUDA_ERROR_NOT_INITIALIZED;
    CUresult rc = CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&g_mu);
    struct sim_graph *g = sim_obj_get(hg, K_GRAPH);
    struct sim_func *fn = sim_obj_get(f, K_FUNC);
    if (ph && g && fn && (deps || !ndeps)) {
        struct sim_node *n = sim_obj_new(K_NODE, sizeof *n);
        rc = n ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
        if (n) {
            n->next = g->nodes;
            g->nodes = n;
            g->dur_ns += fn->dur_ns;
            *ph = (CUgraphNode)n;
        }
    }
    pthread_mutex_unlock(&g_mu);
    return rc;
}
SIM_API CUresult cuGraphAddKernelNode(CUgraphNode *phGraphNode, CUgraph hGraph,
                                      const CUgraphNode *dependencies, size_t numDependencies,
                                      const CUDA_KERNEL_NODE_PARAMS_v1 *p)
{
    return add_kernel_node(phGraphNode, hGraph, dependencies, numDependencies, p ? p->func : NULL);
}
SIM_API CUresult cuGraphAddKernelNode_v2(CUgraphNode *phGraphNode, CUgraph hGraph,
                                         const CUgraphNode *dependencies, size_t numDependencies,
                                         const CUDA_KERNEL_NODE_PARAMS_v2 *p)
{
    CUfunction f = p ? (p->func ? p->func : (CUfunction)(void *)p->kern) : NULL;
    return add_kernel_node(phGraphNode, hGraph, dependencies, numDependencies, f);
}

static CUresult instantiate(CUgraphExec *pexec, CUgraph hg)
{
    if (!g_inited) return CUDA_ERROR_NOT_INITIALIZED;
    CUresult rc = CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&g_mu);
    struct sim_graph *g = sim_obj_get(hg, K_GRAPH);
    if (pexec && g) {
        struct sim_graph *x = sim_obj_new(K_EXEC, sizeof *x);
        rc = x ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
        if (x) {
            x->dur_ns = g->dur_ns;
            sim_graph_mem_copy(g, x);
            *pexec = (CUgraphExec)x;
        }
    }
    pthread_mutex_unlock(&g_mu);
    return rc;
}
SIM_API CUresult cuGraphInstantiateWithFlags(CUgraphExec *phGraphExec, CUgraph hGraph,
                                             unsigned long long flags)
{
    return instantiate(phGraphExec, hGraph);
}
static CUresult instantiate_log(CUgraphExec *pexec, CUgraph hg, CUgraphNode *err, char *log,
                                size_t n)
{
    if (err) *err = NULL;
    if (log && n) log[0] = 0;
    return instantiate(pexec, hg);
}
SIM_API CUresult cuGraphInstantiate SIM_GI_PARAMS
{
    return instantiate_log(phGraphExec, hGraph, phErrorNode, logBuffer, bufferSize);
}
SIM_API CUresult cuGraphInstantiate_v2 SIM_GI_PARAMS
{
    return instantiate_log(phGraphExec, hGraph, phErrorNode, logBuffer, bufferSize);
}

static CUresult graph_launch(CUgraphExec hx, CUstream s, int ptds)
{
    if (!g_inited) return CUDA_ERROR_NOT_INITIALIZED;
    pthread_mutex_lock(&g_mu);
    struct sim_graph *x = sim_obj_get(hx, K_EXEC);
    uint64_t dur = x ? x->dur_ns : 0;
    CUresult rc = x ? sim_graph_mem_run(x) : CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_unlock(&g_mu);
    return rc == CUDA_SUCCESS ? run_work(ptds, s, dur) : rc;
}
SIM_API CUresult cuGraphLaunch(CUgraphExec hGraphExec, CUstream hStream)
{
    return graph_launch(hGraphExec, hStream, 0);
}
SIM_API CUresult cuGraphLaunch_ptsz(CUgraphExec hGraphExec, CUstream hStream)
{
    return graph_launch(hGraphExec, hStream, 1);
}
SIM_API CUresult cuGraphExecDestroy(CUgraphExec hGraphExec)
{
    pthread_mutex_lock(&g_mu);
    if (sim_obj_get(hGraphExec, K_EXEC)) sim_graph_mem_forget(hGraphExec);
    pthread_mutex_unlock(&g_mu);
    return destroy(hGraphExec, K_EXEC);
}

SIM_API CUresult cuGraphDestroy(CUgraph hGraph)
{
    if (!g_inited) return CUDA_ERROR_NOT_INITIALIZED;
    pthread_mutex_lock(&g_mu);
    struct sim_graph *g = sim_obj_get(hGraph, K_GRAPH);
    if (g) {
        sim_graph_mem_forget(g);
        for (struct sim_node *n = g->nodes, *next; n; n = next) {
            next = n->next;
            sim_obj_free(n);
        }
        sim_obj_free(g);
    }
    pthread_mutex_unlock(&g_mu);
    return g ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}

void sim_work_fork_reset(void)
{
    memset(t_ptds_tail, 0, sizeof t_ptds_tail);
}
