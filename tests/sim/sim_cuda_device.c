/* sim_cuda_device.c - simulated driver API: initialisation, errors, devices and contexts.
 *
 * Why this exists: everything else in the simulated driver needs an initialised driver, a
 * device and a current context; this file owns them, charges a context's memory overhead to
 * the process, and resets the process-local driver state in a forked child (like a real
 * driver, the child must call cuInit and create its own contexts).
 */
#define _GNU_SOURCE
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim_cuda.h"

struct sim_cfg g_cfg;
int g_inited, g_slot = -1;
pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER; /* lock order: g_mu, then the shared lock */

/* --- handles -------------------------------------------------------------------------------- */

#define OBJ_MAGIC 0x5e1a0b1eu
static pthread_mutex_t obj_mu = PTHREAD_MUTEX_INITIALIZER; /* leaf lock */
static struct sim_hdr *free_objs[K_NKINDS], *live_objs[K_NKINDS];

void *sim_obj_new(int kind, size_t size)
{
    pthread_mutex_lock(&obj_mu);
    struct sim_hdr *h = free_objs[kind];
    if (h) free_objs[kind] = h->next;
    pthread_mutex_unlock(&obj_mu);
    if (h)
        memset(h, 0, size);
    else if (!(h = calloc(1, size)))
        return NULL;
    h->kind = (uint32_t)kind;
    h->magic = OBJ_MAGIC;
    pthread_mutex_lock(&obj_mu);
    h->next = live_objs[kind];
    if (h->next) h->next->prev = h;
    live_objs[kind] = h;
    pthread_mutex_unlock(&obj_mu);
    return h;
}

void sim_obj_free(void *obj)
{
    struct sim_hdr *h = obj;
    int kind = (int)h->kind;
    pthread_mutex_lock(&obj_mu);
    if (h->prev)
        h->prev->next = h->next;
    else
        live_objs[kind] = h->next;
    if (h->next) h->next->prev = h->prev;
    h->kind = K_NONE; /* kept for reuse, so a stale handle fails cleanly */
    h->prev = NULL;
    h->next = free_objs[kind];
    free_objs[kind] = h;
    pthread_mutex_unlock(&obj_mu);
}

void *sim_obj_get(const void *handle, int kind)
{
    const struct sim_hdr *h = handle;
    return h && h->magic == OBJ_MAGIC && h->kind == (uint32_t)kind ? (void *)h : NULL;
}

/* --- initialisation, errors ----------------------------------------------------------------- */

int sim_ndev(void)
{
    return (int)sim_st->ndev;
}
int sim_dev_ok(CUdevice dev)
{
    return dev >= 0 && dev < sim_ndev();
}
CUresult sim_enter(void)
{
    return g_inited ? CUDA_SUCCESS : CUDA_ERROR_NOT_INITIALIZED;
}

SIM_API CUresult cuInit(unsigned int Flags)
{
    if (Flags) return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = CUDA_SUCCESS;
    pthread_mutex_lock(&g_mu);
    if (!g_inited) {
        if (!sim_state_open()) {
            rc = CUDA_ERROR_OPERATING_SYSTEM;
        } else if (sim_st->ndev == 0) {
            rc = CUDA_ERROR_NO_DEVICE;
        } else {
            sim_lock();
            g_slot = sim_register_locked();
            sim_unlock();
            g_cfg.ctx_overhead = sim_env_size("VGPU_SIM_CTX_OVERHEAD", 64ull << 20);
            g_cfg.pool_chunk = sim_env_size("VGPU_SIM_POOL_CHUNK", SIM_2M);
            g_cfg.kernel_ns = sim_env_size("VGPU_SIM_KERNEL_US", 10) * 1000;
            if (!g_cfg.pool_chunk) g_cfg.pool_chunk = SIM_2M;
            rc = g_slot < 0 ? CUDA_ERROR_OUT_OF_MEMORY : CUDA_SUCCESS;
            g_inited = g_slot >= 0;
        }
    }
    pthread_mutex_unlock(&g_mu);
    return rc;
}

SIM_API CUresult cuDriverGetVersion(int *driverVersion)
{
    if (!driverVersion) return CUDA_ERROR_INVALID_VALUE;
    *driverVersion = 13000;
    return CUDA_SUCCESS;
}

#define SIM_ERRORS(E)                                                                              \
    E(CUDA_SUCCESS, "no error")                                                                    \
    E(CUDA_ERROR_INVALID_VALUE, "invalid argument")                                                \
    E(CUDA_ERROR_OUT_OF_MEMORY, "out of memory")                                                   \
    E(CUDA_ERROR_NOT_INITIALIZED, "initialization error")                                          \
    E(CUDA_ERROR_DEINITIALIZED, "driver shutting down")                                            \
    E(CUDA_ERROR_NO_DEVICE, "no CUDA-capable device is detected")                                  \
    E(CUDA_ERROR_INVALID_DEVICE, "invalid device ordinal")                                         \
    E(CUDA_ERROR_INVALID_IMAGE, "device kernel image is invalid")                                  \
    E(CUDA_ERROR_INVALID_CONTEXT, "invalid device context")                                        \
    E(CUDA_ERROR_FILE_NOT_FOUND, "file not found")                                                 \
    E(CUDA_ERROR_OPERATING_SYSTEM, "OS call failed or operation not supported on this OS")         \
    E(CUDA_ERROR_INVALID_HANDLE, "invalid resource handle")                                        \
    E(CUDA_ERROR_NOT_FOUND, "named symbol not found")                                              \
    E(CUDA_ERROR_NOT_READY, "device not ready")                                                    \
    E(CUDA_ERROR_CONTEXT_IS_DESTROYED, "context is destroyed")                                     \
    E(CUDA_ERROR_NOT_PERMITTED, "operation not permitted")                                         \
    E(CUDA_ERROR_NOT_SUPPORTED, "operation not supported")                                         \
    E(CUDA_ERROR_UNKNOWN, "unknown error")

static CUresult error_text(CUresult error, const char **pStr, int name)
{
    if (!pStr) return CUDA_ERROR_INVALID_VALUE;
#define E(code, text)                                                                              \
    if (error == code) {                                                                           \
        *pStr = name ? #code : text;                                                               \
        return CUDA_SUCCESS;                                                                       \
    }
    SIM_ERRORS(E)
#undef E
    *pStr = NULL;
    return CUDA_ERROR_INVALID_VALUE;
}

SIM_API CUresult cuGetErrorString(CUresult error, const char **pStr)
{
    return error_text(error, pStr, 0);
}
SIM_API CUresult cuGetErrorName(CUresult error, const char **pStr)
{
    return error_text(error, pStr, 1);
}

/* --- devices -------------------------------------------------------------------------------- */

#define DEV_ENTER(dev)                                                                             \
    do {                                                                                           \
        if (!g_inited) return CUDA_ERROR_NOT_INITIALIZED;                                          \
        if (!sim_dev_ok(dev)) return CUDA_ERROR_INVALID_DEVICE;                                    \
    } while (0)

SIM_API CUresult cuDeviceGet(CUdevice *device, int ordinal)
{
    if (!g_inited) return CUDA_ERROR_NOT_INITIALIZED;
    if (!device) return CUDA_ERROR_INVALID_VALUE;
    if (!sim_dev_ok(ordinal)) return CUDA_ERROR_INVALID_DEVICE;
    *device = ordinal;
    return CUDA_SUCCESS;
}

SIM_API CUresult cuDeviceGetCount(int *count)
{
    if (!g_inited) return CUDA_ERROR_NOT_INITIALIZED;
    if (!count) return CUDA_ERROR_INVALID_VALUE;
    *count = sim_ndev();
    return CUDA_SUCCESS;
}

SIM_API CUresult cuDeviceGetName(char *name, int len, CUdevice dev)
{
    DEV_ENTER(dev);
    if (!name || len <= 0) return CUDA_ERROR_INVALID_VALUE;
    snprintf(name, (size_t)len, "%s", SIM_DEVICE_NAME);
    return CUDA_SUCCESS;
}

static CUresult device_uuid(CUuuid *uuid, CUdevice dev)
{
    DEV_ENTER(dev);
    if (!uuid) return CUDA_ERROR_INVALID_VALUE;
    sim_uuid(dev, (unsigned char *)uuid->bytes);
    return CUDA_SUCCESS;
}
SIM_API CUresult cuDeviceGetUuid(CUuuid *uuid, CUdevice dev)
{
    return device_uuid(uuid, dev);
}
SIM_API CUresult cuDeviceGetUuid_v2(CUuuid *uuid, CUdevice dev)
{
    return device_uuid(uuid, dev);
}

SIM_API CUresult cuDeviceTotalMem_v2(size_t *bytes, CUdevice dev)
{
    DEV_ENTER(dev);
    if (!bytes) return CUDA_ERROR_INVALID_VALUE;
    *bytes = sim_st->total;
    return CUDA_SUCCESS;
}

SIM_API CUresult cuDeviceTotalMem(unsigned int *bytes, CUdevice dev)
{
    DEV_ENTER(dev);
    if (!bytes) return CUDA_ERROR_INVALID_VALUE;
    *bytes = (unsigned int)SIM_MIN(sim_st->total, (uint64_t)UINT_MAX);
    return CUDA_SUCCESS;
}

SIM_API CUresult cuDeviceGetAttribute(int *pi, CUdevice_attribute attrib, CUdevice dev)
{
    DEV_ENTER(dev);
    if (!pi || attrib <= 0 || attrib >= CU_DEVICE_ATTRIBUTE_MAX_) return CUDA_ERROR_INVALID_VALUE;
    switch (attrib) {
    case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR:
        *pi = 9;
        break;
    case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR:
        *pi = 0;
        break;
    case CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT:
        *pi = 132;
        break;
    case CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK:
        *pi = 1024;
        break;
    case CU_DEVICE_ATTRIBUTE_WARP_SIZE:
        *pi = 32;
        break;
    case CU_DEVICE_ATTRIBUTE_PCI_BUS_ID:
        *pi = 0x10 + dev;
        break;
    case CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING:
    case CU_DEVICE_ATTRIBUTE_MANAGED_MEMORY:
    case CU_DEVICE_ATTRIBUTE_CONCURRENT_MANAGED_ACCESS:
    case CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED:
    case CU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED:
        *pi = 1;
        break;
    default:
        *pi = 0;
    }
    return CUDA_SUCCESS;
}

SIM_API CUresult cuDeviceGetPCIBusId(char *pciBusId, int len, CUdevice dev)
{
    DEV_ENTER(dev);
    if (!pciBusId || len <= 0) return CUDA_ERROR_INVALID_VALUE;
    snprintf(pciBusId, (size_t)len, "0000:%02X:00.0", 0x10 + dev);
    return CUDA_SUCCESS;
}

/* --- contexts ------------------------------------------------------------------------------- */

#define CTX_STACK 64
static __thread struct sim_ctx *t_stack[CTX_STACK];
static __thread int t_depth;
static struct sim_ctx g_primary[SIM_MAX_DEV];
static struct sim_ctx *g_created;
static int g_ctx_count[SIM_MAX_DEV];

struct sim_ctx *sim_ctx_of(CUcontext c)
{
    struct sim_ctx *x = sim_obj_get(c, K_CTX);
    return x && x->active ? x : NULL;
}

CUresult sim_enter_ctx(struct sim_ctx **ctx)
{
    if (!g_inited) return CUDA_ERROR_NOT_INITIALIZED;
    *ctx = t_depth ? sim_ctx_of((CUcontext)t_stack[t_depth - 1]) : NULL;
    return *ctx ? CUDA_SUCCESS : CUDA_ERROR_INVALID_CONTEXT;
}

/* The first context of the process on a device costs VGPU_SIM_CTX_OVERHEAD there; g_mu held. */
static CUresult ctx_count_add(int dev, int delta)
{
    if (delta > 0 && !g_ctx_count[dev] &&
        sim_charge(g_slot, dev, SIM_USE_CTX, (int64_t)g_cfg.ctx_overhead) < 0)
        return CUDA_ERROR_OUT_OF_MEMORY;
    g_ctx_count[dev] += delta;
    if (delta < 0 && !g_ctx_count[dev])
        sim_charge(g_slot, dev, SIM_USE_CTX, -(int64_t)g_cfg.ctx_overhead);
    sim_lock();
    sim_st->proc[g_slot].dev[dev].contexts = (uint32_t)g_ctx_count[dev];
    sim_unlock();
    return CUDA_SUCCESS;
}

static void ctx_teardown(struct sim_ctx *x) /* g_mu held */
{
    sim_ctx_free_allocs(x);
    x->active = 0;
    x->refs = 0;
    ctx_count_add(x->dev, -1);
}

SIM_API CUresult cuDevicePrimaryCtxRetain(CUcontext *pctx, CUdevice dev)
{
    DEV_ENTER(dev);
    if (!pctx) return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = CUDA_SUCCESS;
    pthread_mutex_lock(&g_mu);
    struct sim_ctx *p = &g_primary[dev];
    if (!p->active && (rc = ctx_count_add(dev, 1)) == CUDA_SUCCESS) p->active = 1;
    if (rc == CUDA_SUCCESS) {
        p->refs++;
        *pctx = (CUcontext)p;
    }
    pthread_mutex_unlock(&g_mu);
    return rc;
}

static CUresult primary_release(CUdevice dev, int reset)
{
    DEV_ENTER(dev);
    CUresult rc = CUDA_SUCCESS;
    pthread_mutex_lock(&g_mu);
    struct sim_ctx *p = &g_primary[dev];
    if (!reset && !p->active)
        rc = CUDA_ERROR_INVALID_CONTEXT;
    else if (p->active && (reset || --p->refs == 0))
        ctx_teardown(p);
    pthread_mutex_unlock(&g_mu);
    return rc;
}
SIM_API CUresult cuDevicePrimaryCtxRelease(CUdevice dev)
{
    return primary_release(dev, 0);
}
SIM_API CUresult cuDevicePrimaryCtxRelease_v2(CUdevice dev)
{
    return primary_release(dev, 0);
}
SIM_API CUresult cuDevicePrimaryCtxReset(CUdevice dev)
{
    return primary_release(dev, 1);
}
SIM_API CUresult cuDevicePrimaryCtxReset_v2(CUdevice dev)
{
    return primary_release(dev, 1);
}

static CUresult primary_set_flags(CUdevice dev, unsigned int flags)
{
    DEV_ENTER(dev);
    if (flags & ~(unsigned)CU_CTX_FLAGS_MASK) return CUDA_ERROR_INVALID_VALUE;
    g_primary[dev].flags = flags;
    return CUDA_SUCCESS;
}
SIM_API CUresult cuDevicePrimaryCtxSetFlags(CUdevice dev, unsigned int flags)
{
    return primary_set_flags(dev, flags);
}
SIM_API CUresult cuDevicePrimaryCtxSetFlags_v2(CUdevice dev, unsigned int flags)
{
    return primary_set_flags(dev, flags);
}

SIM_API CUresult cuDevicePrimaryCtxGetState(CUdevice dev, unsigned int *flags, int *active)
{
    DEV_ENTER(dev);
    if (!flags || !active) return CUDA_ERROR_INVALID_VALUE;
    *flags = g_primary[dev].flags;
    *active = g_primary[dev].active;
    return CUDA_SUCCESS;
}

static CUresult ctx_create(CUcontext *pctx, unsigned int flags, CUdevice dev)
{
    DEV_ENTER(dev);
    if (!pctx || (flags & ~(unsigned)CU_CTX_FLAGS_MASK)) return CUDA_ERROR_INVALID_VALUE;
    struct sim_ctx *x = sim_obj_new(K_CTX, sizeof *x);
    if (!x) return CUDA_ERROR_OUT_OF_MEMORY;
    pthread_mutex_lock(&g_mu);
    CUresult rc = ctx_count_add(dev, 1);
    if (rc == CUDA_SUCCESS) {
        x->dev = dev;
        x->flags = flags;
        x->active = x->refs = 1;
        x->next = g_created;
        g_created = x;
        if (t_depth < CTX_STACK) t_stack[t_depth++] = x; /* a new context becomes current */
        *pctx = (CUcontext)x;
    }
    pthread_mutex_unlock(&g_mu);
    if (rc != CUDA_SUCCESS) sim_obj_free(x);
    return rc;
}
SIM_API CUresult cuCtxCreate(CUcontext *pctx, unsigned int flags, CUdevice dev)
{
    return ctx_create(pctx, flags, dev);
}
SIM_API CUresult cuCtxCreate_v2(CUcontext *pctx, unsigned int flags, CUdevice dev)
{
    return ctx_create(pctx, flags, dev);
}
SIM_API CUresult cuCtxCreate_v3(CUcontext *pctx, CUexecAffinityParam *paramsArray, int numParams,
                                unsigned int flags, CUdevice dev)
{
    if (numParams < 0 || (numParams > 0 && !paramsArray))
        return g_inited ? CUDA_ERROR_INVALID_VALUE : CUDA_ERROR_NOT_INITIALIZED;
    return ctx_create(pctx, flags, dev);
}
SIM_API CUresult cuCtxCreate_v4(CUcontext *pctx, CUctxCreateParams *ctxCreateParams,
                                unsigned int flags, CUdevice dev)
{
    return ctx_create(pctx, flags, dev);
}

static CUresult ctx_destroy(CUcontext ctx)
{
    if (!g_inited) return CUDA_ERROR_NOT_INITIALIZED;
    pthread_mutex_lock(&g_mu);
    struct sim_ctx *x = sim_ctx_of(ctx);
    if (!x || x->primary) {
        pthread_mutex_unlock(&g_mu);
        return CUDA_ERROR_INVALID_CONTEXT;
    }
    ctx_teardown(x);
    for (struct sim_ctx **pp = &g_created; *pp; pp = &(*pp)->next)
        if (*pp == x) {
            *pp = x->next;
            break;
        }
    int keep = 0; /* the calling thread's stack forgets it; other threads see it dead */
    for (int i = 0; i < t_depth; i++)
        if (t_stack[i] != x) t_stack[keep++] = t_stack[i];
    t_depth = keep;
    pthread_mutex_unlock(&g_mu);
    sim_obj_free(x);
    return CUDA_SUCCESS;
}
SIM_API CUresult cuCtxDestroy(CUcontext ctx)
{
    return ctx_destroy(ctx);
}
SIM_API CUresult cuCtxDestroy_v2(CUcontext ctx)
{
    return ctx_destroy(ctx);
}

SIM_API CUresult cuCtxSetCurrent(CUcontext ctx)
{
    if (!g_inited) return CUDA_ERROR_NOT_INITIALIZED;
    if (!ctx) {
        if (t_depth) t_depth--;
        return CUDA_SUCCESS;
    }
    struct sim_ctx *x = sim_ctx_of(ctx);
    if (!x) return CUDA_ERROR_INVALID_CONTEXT;
    if (!t_depth) t_depth = 1;
    t_stack[t_depth - 1] = x;
    return CUDA_SUCCESS;
}

SIM_API CUresult cuCtxGetCurrent(CUcontext *pctx)
{
    if (!g_inited) return CUDA_ERROR_NOT_INITIALIZED;
    if (!pctx) return CUDA_ERROR_INVALID_VALUE;
    *pctx = t_depth ? (CUcontext)t_stack[t_depth - 1] : NULL;
    return CUDA_SUCCESS;
}

static CUresult ctx_push(CUcontext ctx)
{
    if (!g_inited) return CUDA_ERROR_NOT_INITIALIZED;
    struct sim_ctx *x = sim_ctx_of(ctx);
    if (!x) return CUDA_ERROR_INVALID_CONTEXT;
    if (t_depth == CTX_STACK) return CUDA_ERROR_OUT_OF_MEMORY;
    t_stack[t_depth++] = x;
    return CUDA_SUCCESS;
}
SIM_API CUresult cuCtxPushCurrent(CUcontext ctx)
{
    return ctx_push(ctx);
}
SIM_API CUresult cuCtxPushCurrent_v2(CUcontext ctx)
{
    return ctx_push(ctx);
}

static CUresult ctx_pop(CUcontext *pctx)
{
    if (!g_inited) return CUDA_ERROR_NOT_INITIALIZED;
    if (!t_depth) return CUDA_ERROR_INVALID_CONTEXT;
    struct sim_ctx *x = t_stack[--t_depth];
    if (pctx) *pctx = (CUcontext)x;
    return CUDA_SUCCESS;
}
SIM_API CUresult cuCtxPopCurrent(CUcontext *pctx)
{
    return ctx_pop(pctx);
}
SIM_API CUresult cuCtxPopCurrent_v2(CUcontext *pctx)
{
    return ctx_pop(pctx);
}

static CUresult ctx_device(CUdevice *device, CUcontext ctx)
{
    struct sim_ctx *x = NULL;
    if (sim_enter_ctx(&x) == CUDA_ERROR_NOT_INITIALIZED) return CUDA_ERROR_NOT_INITIALIZED;
    if (ctx) x = sim_ctx_of(ctx);
    if (!x) return CUDA_ERROR_INVALID_CONTEXT;
    if (!device) return CUDA_ERROR_INVALID_VALUE;
    *device = x->dev;
    return CUDA_SUCCESS;
}
SIM_API CUresult cuCtxGetDevice(CUdevice *device)
{
    return ctx_device(device, NULL);
}
SIM_API CUresult cuCtxGetDevice_v2(CUdevice *device, CUcontext ctx)
{
    return ctx_device(device, ctx);
}

SIM_API CUresult cuCtxGetApiVersion(CUcontext ctx, unsigned int *version)
{
    CUdevice dev;
    CUresult rc = ctx_device(&dev, ctx);
    if (rc == CUDA_SUCCESS && !version) rc = CUDA_ERROR_INVALID_VALUE;
    if (rc == CUDA_SUCCESS) *version = 3020;
    return rc;
}

/* --- fork ----------------------------------------------------------------------------------- */

static void fork_child(void)
{
    pthread_mutex_init(&g_mu, NULL);
    pthread_mutex_init(&obj_mu, NULL);
    g_inited = 0;
    g_slot = -1;
    t_depth = 0;
    memset(g_ctx_count, 0, sizeof g_ctx_count);
    for (int d = 0; d < SIM_MAX_DEV; d++)
        g_primary[d].active = g_primary[d].refs = 0;
    while (g_created) {
        struct sim_ctx *x = g_created;
        g_created = x->next;
        sim_obj_free(x);
    }
    sim_mem_fork_reset();
    sim_pool_fork_reset();
    sim_work_fork_reset();
    sim_graph_mem_fork_reset();
}

__attribute__((constructor)) static void sim_cuda_ctor(void)
{
    for (int d = 0; d < SIM_MAX_DEV; d++)
        g_primary[d] =
            (struct sim_ctx){.h = {K_CTX, OBJ_MAGIC, NULL, NULL}, .dev = d, .primary = 1};
    pthread_atfork(NULL, NULL, fork_child);
}
