/* sim_cuda_pool_vmm.c - simulated driver API: stream-ordered memory pools and virtual memory.
 *
 * Why this exists: pools and VMM are the two ways a program holds device memory that plain
 * cuMemAlloc accounting misses (a pool keeps freed memory reserved; a VMM handle is memory
 * without an address). The simulator models both the way the driver does - pools grow in
 * chunks and shrink only at synchronisation or trim - so the limiter is tested against them.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "sim_cuda.h"

/* --- pools ---------------------------------------------------------------------------------- */

struct sim_pool {
    struct sim_hdr h;
    int dev, is_default, destroyed;
    uint64_t reserved, used, reserved_high, used_high, threshold;
    int reuse[4]; /* CU_MEMPOOL_ATTR_REUSE_* (1..3) */
    struct sim_pool *next;
};
static struct sim_pool *g_pools, *g_default[SIM_MAX_DEV], *g_current[SIM_MAX_DEV];

static struct sim_pool *pool_new(int dev, int is_default) /* g_mu held */
{
    struct sim_pool *p = sim_obj_new(K_POOL, sizeof *p);
    if (p) {
        p->dev = dev;
        p->is_default = is_default;
        p->reuse[1] = p->reuse[2] = p->reuse[3] = 1;
        p->next = g_pools;
        g_pools = p;
    }
    return p;
}

static struct sim_pool *pool_current(int dev) /* g_mu held */
{
    if (!g_default[dev]) g_default[dev] = pool_new(dev, 1);
    return g_current[dev] ? g_current[dev] : g_default[dev];
}

static struct sim_pool *pool_get(CUmemoryPool h)
{
    struct sim_pool *p = sim_obj_get(h, K_POOL);
    return p && !p->destroyed ? p : NULL;
}

static int pool_set_reserved(struct sim_pool *p, uint64_t r) /* g_mu held */
{
    if (r > p->reserved && sim_charge(g_slot, p->dev, SIM_USE_POOL, (int64_t)(r - p->reserved)) < 0)
        return -1;
    if (r < p->reserved) sim_charge(g_slot, p->dev, SIM_USE_POOL, -(int64_t)(p->reserved - r));
    p->reserved = r;
    p->reserved_high = SIM_MAX(p->reserved_high, r);
    return 0;
}

static void pool_maybe_drop(struct sim_pool *p) /* a destroyed pool goes once nothing is in use */
{
    if (!p->destroyed || p->used) return;
    for (struct sim_pool **pp = &g_pools; *pp; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    sim_obj_free(p);
}

void sim_pool_give_back(struct sim_pool *p, uint64_t n)
{
    p->used -= SIM_MIN(n, p->used);
    if (p->destroyed) {
        pool_set_reserved(p, p->used);
        pool_maybe_drop(p);
    }
}

void sim_pools_release_at_sync(void)
{
    pthread_mutex_lock(&g_mu);
    for (struct sim_pool *p = g_pools; p; p = p->next)
        if (!p->destroyed && p->reserved > p->threshold)
            pool_set_reserved(p, SIM_MAX(p->threshold, p->used));
    pthread_mutex_unlock(&g_mu);
}

static CUresult alloc_from(CUdeviceptr *dptr, size_t size, struct sim_pool *p, CUstream s,
                           struct sim_ctx *c)
{
    if (!dptr || !size) return CUDA_ERROR_INVALID_VALUE;
    if (!sim_stream_ok(s)) return CUDA_ERROR_INVALID_HANDLE;
    uint64_t n = sim_round_up(size, 512), avail = p->reserved - p->used;
    if (n < size) return CUDA_ERROR_OUT_OF_MEMORY;
    if (n > avail &&
        pool_set_reserved(p, p->reserved + sim_round_up(n - avail, g_cfg.pool_chunk)) < 0)
        return CUDA_ERROR_OUT_OF_MEMORY;
    struct sim_alloc a = {.size = size,
                          .span = sim_round_up(n, SIM_2M),
                          .kind = A_ASYNC,
                          .dev = p->dev,
                          .ctx = c,
                          .pool = p};
    if (sim_addr_insert(&a, 0, SIM_2M, dptr) < 0) return CUDA_ERROR_OUT_OF_MEMORY;
    p->used += n;
    p->used_high = SIM_MAX(p->used_high, p->used);
    return CUDA_SUCCESS;
}

static CUresult alloc_async(CUdeviceptr *dptr, size_t size, CUmemoryPool pool, int from_pool,
                            CUstream s)
{
    struct sim_ctx *c;
    CUresult rc = sim_enter_ctx(&c);
    if (rc != CUDA_SUCCESS) return rc;
    pthread_mutex_lock(&g_mu);
    struct sim_pool *p = from_pool ? pool_get(pool) : pool_current(c->dev);
    rc = p           ? alloc_from(dptr, size, p, s, c)
         : from_pool ? CUDA_ERROR_INVALID_VALUE
                     : CUDA_ERROR_OUT_OF_MEMORY;
    pthread_mutex_unlock(&g_mu);
    return rc;
}
SIM_API CUresult cuMemAllocAsync(CUdeviceptr *dptr, size_t bytesize, CUstream hStream)
{
    return alloc_async(dptr, bytesize, NULL, 0, hStream);
}
SIM_API CUresult cuMemAllocAsync_ptsz(CUdeviceptr *dptr, size_t bytesize, CUstream hStream)
{
    return alloc_async(dptr, bytesize, NULL, 0, hStream);
}
SIM_API CUresult cuMemAllocFromPoolAsync(CUdeviceptr *dptr, size_t bytesize, CUmemoryPool pool,
                                         CUstream hStream)
{
    return alloc_async(dptr, bytesize, pool, 1, hStream);
}
SIM_API CUresult cuMemAllocFromPoolAsync_ptsz(CUdeviceptr *dptr, size_t bytesize, CUmemoryPool pool,
                                              CUstream hStream)
{
    return alloc_async(dptr, bytesize, pool, 1, hStream);
}

static CUresult free_async(CUdeviceptr dptr, CUstream s)
{
    struct sim_ctx *c;
    CUresult rc = sim_enter_ctx(&c);
    if (rc != CUDA_SUCCESS) return rc;
    if (!sim_stream_ok(s)) return CUDA_ERROR_INVALID_HANDLE;
    pthread_mutex_lock(&g_mu);
    rc = sim_mem_free_locked(dptr); /* pool memory stays reserved; cuMemAlloc memory is freed */
    pthread_mutex_unlock(&g_mu);
    return rc;
}
SIM_API CUresult cuMemFreeAsync(CUdeviceptr dptr, CUstream hStream)
{
    return free_async(dptr, hStream);
}
SIM_API CUresult cuMemFreeAsync_ptsz(CUdeviceptr dptr, CUstream hStream)
{
    return free_async(dptr, hStream);
}

static CUresult device_pool(CUmemoryPool *out, CUdevice dev, int current)
{
    if (!g_inited) return CUDA_ERROR_NOT_INITIALIZED;
    if (!out) return CUDA_ERROR_INVALID_VALUE;
    if (!sim_dev_ok(dev)) return CUDA_ERROR_INVALID_DEVICE;
    pthread_mutex_lock(&g_mu);
    struct sim_pool *p = pool_current(dev);
    if (!current) p = g_default[dev];
    pthread_mutex_unlock(&g_mu);
    *out = (CUmemoryPool)p;
    return p ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
}
SIM_API CUresult cuDeviceGetDefaultMemPool(CUmemoryPool *pool_out, CUdevice dev)
{
    return device_pool(pool_out, dev, 0);
}
SIM_API CUresult cuDeviceGetMemPool(CUmemoryPool *pool, CUdevice dev)
{
    return device_pool(pool, dev, 1);
}

SIM_API CUresult cuDeviceSetMemPool(CUdevice dev, CUmemoryPool pool)
{
    if (!g_inited) return CUDA_ERROR_NOT_INITIALIZED;
    if (!sim_dev_ok(dev)) return CUDA_ERROR_INVALID_DEVICE;
    pthread_mutex_lock(&g_mu);
    struct sim_pool *p = pool_get(pool);
    if (p && p->dev == dev) g_current[dev] = p;
    pthread_mutex_unlock(&g_mu);
    return p && p->dev == dev ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

SIM_API CUresult cuMemPoolCreate(CUmemoryPool *pool, const CUmemPoolProps *props)
{
    if (!g_inited) return CUDA_ERROR_NOT_INITIALIZED;
    if (!pool || !props || props->allocType != CU_MEM_ALLOCATION_TYPE_PINNED ||
        props->location.type != CU_MEM_LOCATION_TYPE_DEVICE || !sim_dev_ok(props->location.id))
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&g_mu);
    struct sim_pool *p = pool_new(props->location.id, 0);
    pthread_mutex_unlock(&g_mu);
    *pool = (CUmemoryPool)p;
    return p ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
}

SIM_API CUresult cuMemPoolDestroy(CUmemoryPool pool)
{
    if (!g_inited) return CUDA_ERROR_NOT_INITIALIZED;
    CUresult rc = CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&g_mu);
    struct sim_pool *p = pool_get(pool);
    if (p && !p->is_default) {
        if (g_current[p->dev] == p) g_current[p->dev] = NULL;
        p->destroyed = 1; /* outstanding allocations keep their memory until freed */
        pool_set_reserved(p, p->used);
        pool_maybe_drop(p);
        rc = CUDA_SUCCESS;
    }
    pthread_mutex_unlock(&g_mu);
    return rc;
}

SIM_API CUresult cuMemPoolTrimTo(CUmemoryPool pool, size_t minBytesToKeep)
{
    if (!g_inited) return CUDA_ERROR_NOT_INITIALIZED;
    pthread_mutex_lock(&g_mu);
    struct sim_pool *p = pool_get(pool);
    if (p) pool_set_reserved(p, SIM_MAX(p->used, SIM_MIN(p->reserved, (uint64_t)minBytesToKeep)));
    pthread_mutex_unlock(&g_mu);
    return p ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

static CUresult pool_attr(CUmemoryPool pool, CUmemPool_attribute attr, void *value, int set)
{
    if (!g_inited) return CUDA_ERROR_NOT_INITIALIZED;
    if (!value) return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = CUDA_SUCCESS;
    pthread_mutex_lock(&g_mu);
    struct sim_pool *p = pool_get(pool);
    cuuint64_t *v64 = value, v = set ? *v64 : 0;
    if (!p) {
        rc = CUDA_ERROR_INVALID_VALUE;
    } else if (attr >= CU_MEMPOOL_ATTR_REUSE_FOLLOW_EVENT_DEPENDENCIES &&
               attr <= CU_MEMPOOL_ATTR_REUSE_ALLOW_INTERNAL_DEPENDENCIES) {
        if (set)
            p->reuse[attr] = *(int *)value;
        else
            *(int *)value = p->reuse[attr];
    } else if (set) {
        if (attr == CU_MEMPOOL_ATTR_RELEASE_THRESHOLD)
            p->threshold = v;
        else if (attr == CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH && !v)
            p->reserved_high = p->reserved;
        else if (attr == CU_MEMPOOL_ATTR_USED_MEM_HIGH && !v)
            p->used_high = p->used;
        else
            rc = CUDA_ERROR_INVALID_VALUE;
    } else {
        switch (attr) {
        case CU_MEMPOOL_ATTR_RELEASE_THRESHOLD:
            *v64 = p->threshold;
            break;
        case CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT:
            *v64 = p->reserved;
            break;
        case CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH:
            *v64 = p->reserved_high;
            break;
        case CU_MEMPOOL_ATTR_USED_MEM_CURRENT:
            *v64 = p->used;
            break;
        case CU_MEMPOOL_ATTR_USED_MEM_HIGH:
            *v64 = p->used_high;
            break;
        default:
            rc = CUDA_ERROR_INVALID_VALUE;
        }
    }
    pthread_mutex_unlock(&g_mu);
    return rc;
}
SIM_API CUresult cuMemPoolSetAttribute(CUmemoryPool pool, CUmemPool_attribute attr, void *value)
{
    return pool_attr(pool, attr, value, 1);
}
SIM_API CUresult cuMemPoolGetAttribute(CUmemoryPool pool, CUmemPool_attribute attr, void *value)
{
    return pool_attr(pool, attr, value, 0);
}

/* --- virtual memory management -------------------------------------------------------------- */

struct sim_vmm {
    struct sim_hdr h;
    int dev, released, refs; /* refs: the handle itself plus one per mapping */
    uint64_t size;
    struct sim_vmm *next;
};
struct sim_map {
    uint64_t ptr, size;
    struct sim_vmm *v;
    int access;
};
static struct sim_vmm *g_vmms;
static struct sim_map *g_maps;
static size_t g_nmaps, g_capmaps;

static int prop_ok(const CUmemAllocationProp *prop)
{
    return prop && prop->type == CU_MEM_ALLOCATION_TYPE_PINNED &&
           prop->location.type == CU_MEM_LOCATION_TYPE_DEVICE && sim_dev_ok(prop->location.id);
}

static struct sim_vmm *vmm_get(CUmemGenericAllocationHandle h)
{
    struct sim_vmm *v = sim_obj_get((void *)(uintptr_t)h, K_VMM);
    return v && !v->released ? v : NULL;
}

static void vmm_unref(struct sim_vmm *v) /* g_mu held */
{
    if (--v->refs) return;
    sim_charge(g_slot, v->dev, SIM_USE_VMM, -(int64_t)v->size);
    for (struct sim_vmm **pp = &g_vmms; *pp; pp = &(*pp)->next)
        if (*pp == v) {
            *pp = v->next;
            break;
        }
    sim_obj_free(v);
}

int sim_vmm_mapped(uint64_t p, uint64_t n, int *dev, int need_access)
{
    for (size_t i = 0; i < g_nmaps; i++) {
        struct sim_map *m = &g_maps[i];
        if (p >= m->ptr && p - m->ptr < m->size && n <= m->ptr + m->size - p &&
            (!need_access || m->access)) {
            if (dev) *dev = m->v->dev;
            return 1;
        }
    }
    return 0;
}

SIM_API CUresult cuMemGetAllocationGranularity(size_t *granularity, const CUmemAllocationProp *prop,
                                               CUmemAllocationGranularity_flags option)
{
    if (!g_inited) return CUDA_ERROR_NOT_INITIALIZED;
    if (!granularity || !prop_ok(prop) ||
        (option != CU_MEM_ALLOC_GRANULARITY_MINIMUM &&
         option != CU_MEM_ALLOC_GRANULARITY_RECOMMENDED))
        return CUDA_ERROR_INVALID_VALUE;
    *granularity = SIM_2M;
    return CUDA_SUCCESS;
}

SIM_API CUresult cuMemCreate(CUmemGenericAllocationHandle *handle, size_t size,
                             const CUmemAllocationProp *prop, unsigned long long flags)
{
    if (!g_inited) return CUDA_ERROR_NOT_INITIALIZED;
    if (!handle || !prop_ok(prop) || flags || !size || size % SIM_2M)
        return CUDA_ERROR_INVALID_VALUE;
    struct sim_vmm *v = sim_obj_new(K_VMM, sizeof *v);
    if (!v) return CUDA_ERROR_OUT_OF_MEMORY;
    v->dev = prop->location.id;
    v->size = size;
    v->refs = 1;
    CUresult rc = CUDA_SUCCESS;
    pthread_mutex_lock(&g_mu);
    if (sim_charge(g_slot, v->dev, SIM_USE_VMM, (int64_t)size) < 0) {
        rc = CUDA_ERROR_OUT_OF_MEMORY;
    } else {
        v->next = g_vmms;
        g_vmms = v;
    }
    pthread_mutex_unlock(&g_mu);
    if (rc != CUDA_SUCCESS)
        sim_obj_free(v);
    else
        *handle = (uintptr_t)v;
    return rc;
}

SIM_API CUresult cuMemRelease(CUmemGenericAllocationHandle handle)
{
    if (!g_inited) return CUDA_ERROR_NOT_INITIALIZED;
    pthread_mutex_lock(&g_mu);
    struct sim_vmm *v = vmm_get(handle);
    if (v) {
        v->released = 1; /* the memory lives on while mapped */
        vmm_unref(v);
    }
    pthread_mutex_unlock(&g_mu);
    return v ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

SIM_API CUresult cuMemAddressReserve(CUdeviceptr *ptr, size_t size, size_t alignment,
                                     CUdeviceptr addr, unsigned long long flags)
{
    if (!g_inited) return CUDA_ERROR_NOT_INITIALIZED;
    if (!ptr || !size || size % SIM_2M || flags || (alignment & (alignment - 1)))
        return CUDA_ERROR_INVALID_VALUE;
    struct sim_alloc a = {.size = size, .span = size, .kind = A_RESERVE};
    pthread_mutex_lock(&g_mu);
    int r = sim_addr_insert(&a, 0, SIM_MAX(alignment, SIM_2M), ptr);
    pthread_mutex_unlock(&g_mu);
    return r < 0 ? CUDA_ERROR_OUT_OF_MEMORY : CUDA_SUCCESS;
}

SIM_API CUresult cuMemAddressFree(CUdeviceptr ptr, size_t size)
{
    if (!g_inited) return CUDA_ERROR_NOT_INITIALIZED;
    CUresult rc = CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&g_mu);
    struct sim_alloc *a = sim_addr_find(ptr);
    if (a && a->kind == A_RESERVE && a->base == ptr && a->size == size) {
        int inside = 0; /* still mapped: unmap first */
        for (size_t i = 0; i < g_nmaps; i++)
            inside |= g_maps[i].ptr >= ptr && g_maps[i].ptr < ptr + size;
        if (!inside) {
            sim_addr_remove(ptr);
            rc = CUDA_SUCCESS;
        }
    }
    pthread_mutex_unlock(&g_mu);
    return rc;
}

SIM_API CUresult cuMemMap(CUdeviceptr ptr, size_t size, size_t offset,
                          CUmemGenericAllocationHandle handle, unsigned long long flags)
{
    if (!g_inited) return CUDA_ERROR_NOT_INITIALIZED;
    CUresult rc = CUDA_SUCCESS;
    pthread_mutex_lock(&g_mu);
    struct sim_vmm *v = vmm_get(handle);
    struct sim_alloc *r = sim_addr_find(ptr);
    if (!v)
        rc = CUDA_ERROR_INVALID_HANDLE;
    else if (flags || !size || size % SIM_2M || ptr % SIM_2M || offset % SIM_2M ||
             offset > v->size || size > v->size - offset || !r || r->kind != A_RESERVE ||
             size > r->base + r->size - ptr)
        rc = CUDA_ERROR_INVALID_VALUE;
    for (size_t i = 0; rc == CUDA_SUCCESS && i < g_nmaps; i++)
        if (g_maps[i].ptr < ptr + size && ptr < g_maps[i].ptr + g_maps[i].size)
            rc = CUDA_ERROR_INVALID_VALUE; /* already mapped */
    if (rc == CUDA_SUCCESS && g_nmaps == g_capmaps) {
        size_t cap = g_capmaps ? g_capmaps * 2 : 16;
        struct sim_map *m = realloc(g_maps, cap * sizeof *m);
        if (m) {
            g_maps = m;
            g_capmaps = cap;
        } else {
            rc = CUDA_ERROR_OUT_OF_MEMORY;
        }
    }
    if (rc == CUDA_SUCCESS) {
        g_maps[g_nmaps++] = (struct sim_map){ptr, size, v, 0};
        v->refs++;
    }
    pthread_mutex_unlock(&g_mu);
    return rc;
}

SIM_API CUresult cuMemUnmap(CUdeviceptr ptr, size_t size)
{
    if (!g_inited) return CUDA_ERROR_NOT_INITIALIZED;
    int n = 0;
    pthread_mutex_lock(&g_mu);
    for (size_t i = g_nmaps; i-- > 0;) {
        struct sim_map m = g_maps[i];
        if (m.ptr >= ptr && m.ptr - ptr < size && m.size <= ptr + size - m.ptr) {
            g_maps[i] = g_maps[--g_nmaps];
            vmm_unref(m.v);
            n++;
        }
    }
    pthread_mutex_unlock(&g_mu);
    return n ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

SIM_API CUresult cuMemSetAccess(CUdeviceptr ptr, size_t size, const CUmemAccessDesc *desc,
                                size_t count)
{
    if (!g_inited) return CUDA_ERROR_NOT_INITIALIZED;
    if (!desc || !count || !size) return CUDA_ERROR_INVALID_VALUE;
    int access = 0;
    for (size_t i = 0; i < count; i++) {
        if (desc[i].location.type != CU_MEM_LOCATION_TYPE_DEVICE ||
            !sim_dev_ok(desc[i].location.id) ||
            (desc[i].flags != CU_MEM_ACCESS_FLAGS_PROT_NONE &&
             desc[i].flags != CU_MEM_ACCESS_FLAGS_PROT_READ &&
             desc[i].flags != CU_MEM_ACCESS_FLAGS_PROT_READWRITE))
            return CUDA_ERROR_INVALID_VALUE;
        access |= (int)desc[i].flags;
    }
    CUresult rc = CUDA_SUCCESS;
    pthread_mutex_lock(&g_mu);
    for (uint64_t cur = ptr;
         rc == CUDA_SUCCESS && cur - ptr < size;) { /* the range must be mapped */
        size_t i = 0;
        while (i < g_nmaps && !(cur >= g_maps[i].ptr && cur - g_maps[i].ptr < g_maps[i].size))
            i++;
        if (i == g_nmaps)
            rc = CUDA_ERROR_INVALID_VALUE;
        else
            cur = g_maps[i].ptr + g_maps[i].size;
    }
    for (size_t i = 0; rc == CUDA_SUCCESS && i < g_nmaps; i++)
        if (g_maps[i].ptr < ptr + size && ptr < g_maps[i].ptr + g_maps[i].size)
            g_maps[i].access = access;
    pthread_mutex_unlock(&g_mu);
    return rc;
}

void sim_pool_fork_reset(void)
{
    memset(g_default, 0, sizeof g_default);
    memset(g_current, 0, sizeof g_current);
    while (g_pools) {
        struct sim_pool *p = g_pools;
        g_pools = p->next;
        sim_obj_free(p);
    }
    while (g_vmms) {
        struct sim_vmm *v = g_vmms;
        g_vmms = v->next;
        sim_obj_free(v);
    }
    g_nmaps = 0;
}
