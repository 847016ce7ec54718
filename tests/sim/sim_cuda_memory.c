/* sim_cuda_memory.c - simulated driver API: device, pitched, managed and host memory, arrays.
 *
 * Why this exists: the limiter's main job is to police device memory, so the simulator must
 * hand out memory exactly like a driver that charges 2 MiB-rounded footprints against a shared
 * total: addresses are invented (no backing store is ever allocated for device memory), every
 * footprint is charged to the process in the shared state, and pointers can be looked up.
 */
#define _GNU_SOURCE
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "sim_cuda.h"

/* --- the process's address table: sorted by base ------------------------------------------- */

#define LOW_BASE 0x10000000ull /* legacy 32-bit allocations */
#define LOW_END 0x100000000ull
#define HIGH_BASE 0x300000000000ull
#define HIGH_END 0x400000000000ull

static struct sim_alloc *tab;
static size_t ntab, captab;
static uint64_t hint[2] = {HIGH_BASE, LOW_BASE}; /* next-fit cursors: [low] */

static size_t upper(uint64_t p) /* first entry with base > p */
{
    size_t lo = 0, hi = ntab;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (tab[mid].base <= p)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static uint64_t gap(uint64_t from, uint64_t to, uint64_t span, uint64_t align)
{
    size_t i = upper(from);
    uint64_t cur = sim_round_up(from, align);
    if (i && tab[i - 1].base + tab[i - 1].span > cur)
        cur = sim_round_up(tab[i - 1].base + tab[i - 1].span, align);
    for (; i < ntab && tab[i].base < cur + span; i++)
        cur = SIM_MAX(cur, sim_round_up(tab[i].base + tab[i].span, align));
    return cur + span <= to && cur + span > cur ? cur : 0;
}

int sim_addr_insert(const struct sim_alloc *a, int low, uint64_t align, CUdeviceptr *addr)
{
    uint64_t base = a->base;
    if (a->kind != A_HOST && a->kind != A_MANAGED) {
        uint64_t lo = low ? LOW_BASE : HIGH_BASE, hi = low ? LOW_END : HIGH_END;
        if (!(base = gap(hint[low], hi, a->span, align)) && !(base = gap(lo, hi, a->span, align)))
            return -1;
        hint[low] = base + a->span;
    }
    if (ntab == captab) {
        size_t cap = captab ? captab * 2 : 64;
        struct sim_alloc *t = realloc(tab, cap * sizeof *t);
        if (!t) return -1;
        tab = t;
        captab = cap;
    }
    size_t i = upper(base);
    memmove(&tab[i + 1], &tab[i], (ntab - i) * sizeof *tab);
    tab[i] = *a;
    tab[i].base = base;
    ntab++;
    if (addr) *addr = base;
    return 0;
}

struct sim_alloc *sim_addr_find(uint64_t p)
{
    size_t i = upper(p);
    if (!i) return NULL;
    struct sim_alloc *a = &tab[i - 1];
    return p - a->base < SIM_MAX(a->size, 1) ? a : NULL;
}

void sim_addr_remove(uint64_t base)
{
    size_t i = upper(base);
    if (i && tab[i - 1].base == base) {
        memmove(&tab[i - 1], &tab[i], (ntab - i) * sizeof *tab);
        ntab--;
    }
}

static void managed_add(int64_t delta)
{
    sim_lock();
    sim_st->proc[g_slot].managed += (uint64_t)delta;
    sim_unlock();
}

/* Small allocations (up to 1 MiB) are packed, 512-byte aligned, into 2 MiB chunks, as the real
 * driver does (measured on H100, driver 580: 16 x 1 byte took one 2 MiB chunk). The process is
 * charged whole chunks for its running total of small bytes; g_mu held. */
#define SMALL_MAX (1ull << 20)
static uint64_t small_total[SIM_MAX_DEV];

static int64_t small_charge(int dev, int64_t delta)
{
    uint64_t before = sim_round_up(small_total[dev], SIM_2M);
    small_total[dev] += (uint64_t)delta;
    return (int64_t)sim_round_up(small_total[dev], SIM_2M) - (int64_t)before;
}

/* Drop an entry and what it charged; g_mu held. Managed mappings stay mapped when their
 * context goes away (the application may still touch them); cuMemFree unmaps them. */
static void release(struct sim_alloc a, int unmap)
{
    sim_addr_remove(a.base);
    if (a.kind == A_DEV && a.size <= SMALL_MAX)
        sim_charge(g_slot, a.dev, SIM_USE_MEM, small_charge(a.dev, -(int64_t)a.fp));
    else if (a.kind == A_DEV)
        sim_charge(g_slot, a.dev, SIM_USE_MEM, -(int64_t)a.fp);
    else if (a.kind == A_ASYNC)
        sim_pool_give_back(a.pool, sim_round_up(a.size, 512));
    else if (a.kind == A_MANAGED) {
        managed_add(-(int64_t)a.size);
        if (unmap) munmap((void *)(uintptr_t)a.base, a.size);
    }
}

CUresult sim_mem_free_locked(uint64_t ptr)
{
    size_t i = upper(ptr);
    if (!i || tab[i - 1].base != ptr || tab[i - 1].kind == A_HOST || tab[i - 1].kind == A_RESERVE)
        return CUDA_ERROR_INVALID_VALUE;
    release(tab[i - 1], 1);
    return CUDA_SUCCESS;
}

/* --- device memory -------------------------------------------------------------------------- */

static CUresult alloc_dev(CUdeviceptr *out, uint64_t size, int low, struct sim_ctx *c)
{
    struct sim_alloc a = {
        .size = size, .span = sim_round_up(size, SIM_2M), .kind = A_DEV, .dev = c->dev, .ctx = c};
    a.fp = size <= SMALL_MAX ? sim_round_up(size, 512) : a.span;
    if (a.span < size) return CUDA_ERROR_OUT_OF_MEMORY;
    CUresult rc = CUDA_SUCCESS;
    pthread_mutex_lock(&g_mu);
    int64_t charge = size <= SMALL_MAX ? small_charge(c->dev, (int64_t)a.fp) : (int64_t)a.fp;
    if (sim_charge(g_slot, c->dev, SIM_USE_MEM, charge) < 0) {
        if (size <= SMALL_MAX) small_charge(c->dev, -(int64_t)a.fp);
        rc = CUDA_ERROR_OUT_OF_MEMORY;
    } else if (sim_addr_insert(&a, low, SIM_2M, out) < 0) {
        sim_charge(g_slot, c->dev, SIM_USE_MEM, -charge);
        if (size <= SMALL_MAX) small_charge(c->dev, -(int64_t)a.fp);
        rc = CUDA_ERROR_OUT_OF_MEMORY;
    }
    pthread_mutex_unlock(&g_mu);
    return rc;
}

CUresult sim_mem_alloc(CUdeviceptr *dptr, size_t bytesize)
{
    struct sim_ctx *c;
    CUresult rc = sim_enter_ctx(&c);
    if (rc != CUDA_SUCCESS) return rc;
    if (!dptr || !bytesize) return CUDA_ERROR_INVALID_VALUE;
    return alloc_dev(dptr, bytesize, 0, c);
}
SIM_API CUresult cuMemAlloc_v2(CUdeviceptr *dptr, size_t bytesize)
{
    return sim_mem_alloc(dptr, bytesize);
}

SIM_API CUresult cuMemAlloc(CUdeviceptr_v1 *dptr, unsigned int bytesize)
{
    struct sim_ctx *c;
    CUdeviceptr p = 0;
    CUresult rc = sim_enter_ctx(&c);
    if (rc == CUDA_SUCCESS && (!dptr || !bytesize)) rc = CUDA_ERROR_INVALID_VALUE;
    if (rc == CUDA_SUCCESS && (rc = alloc_dev(&p, bytesize, 1, c)) == CUDA_SUCCESS)
        *dptr = (CUdeviceptr_v1)p;
    return rc;
}

static CUresult alloc_pitch(CUdeviceptr *dptr, size_t *pitch, size_t w, size_t h, unsigned elem,
                            int low)
{
    struct sim_ctx *c;
    CUresult rc = sim_enter_ctx(&c);
    if (rc != CUDA_SUCCESS) return rc;
    if (!dptr || !pitch || !w || !h || (elem != 4 && elem != 8 && elem != 16))
        return CUDA_ERROR_INVALID_VALUE;
    uint64_t p = sim_round_up(w, 512), size;
    if (p < w || __builtin_mul_overflow(p, (uint64_t)h, &size)) return CUDA_ERROR_OUT_OF_MEMORY;
    if ((rc = alloc_dev(dptr, size, low, c)) == CUDA_SUCCESS) *pitch = p;
    return rc;
}

SIM_API CUresult cuMemAllocPitch_v2(CUdeviceptr *dptr, size_t *pPitch, size_t WidthInBytes,
                                    size_t Height, unsigned int ElementSizeBytes)
{
    return alloc_pitch(dptr, pPitch, WidthInBytes, Height, ElementSizeBytes, 0);
}

SIM_API CUresult cuMemAllocPitch(CUdeviceptr_v1 *dptr, unsigned int *pPitch,
                                 unsigned int WidthInBytes, unsigned int Height,
                                 unsigned int ElementSizeBytes)
{
    CUdeviceptr p = 0;
    size_t pitch = 0;
    CUresult rc =
        alloc_pitch(dptr && pPitch ? &p : NULL, &pitch, WidthInBytes, Height, ElementSizeBytes, 1);
    if (rc == CUDA_SUCCESS) {
        *dptr = (CUdeviceptr_v1)p;
        *pPitch = (unsigned int)pitch;
    }
    return rc;
}

static CUresult mem_free(CUdeviceptr dptr)
{
    if (!g_inited) return CUDA_ERROR_NOT_INITIALIZED;
    if (!dptr) return CUDA_SUCCESS;
    pthread_mutex_lock(&g_mu);
    CUresult rc = sim_mem_free_locked(dptr);
    pthread_mutex_unlock(&g_mu);
    return rc;
}
SIM_API CUresult cuMemFree_v2(CUdeviceptr dptr)
{
    return mem_free(dptr);
}
SIM_API CUresult cuMemFree(CUdeviceptr_v1 dptr)
{
    return mem_free(dptr);
}

CUresult sim_mem_get_info(size_t *free_b, size_t *total_b)
{
    struct sim_ctx *c;
    CUresult rc = sim_enter_ctx(&c);
    if (rc != CUDA_SUCCESS) return rc;
    if (!free_b || !total_b) return CUDA_ERROR_INVALID_VALUE;
    sim_lock();
    sim_reap_locked();
    uint64_t used = sim_used_locked(c->dev), total = sim_st->total;
    sim_unlock();
    *free_b = used < total ? total - used : 0;
    *total_b = total;
    return CUDA_SUCCESS;
}
SIM_API CUresult cuMemGetInfo_v2(size_t *free, size_t *total)
{
    return sim_mem_get_info(free, total);
}

SIM_API CUresult cuMemGetInfo(unsigned int *free, unsigned int *total)
{
    size_t f = 0, t = 0;
    CUresult rc = sim_mem_get_info(free && total ? &f : NULL, &t);
    if (rc == CUDA_SUCCESS) {
        *free = (unsigned int)SIM_MIN(f, (size_t)UINT_MAX);
        *total = (unsigned int)SIM_MIN(t, (size_t)UINT_MAX);
    }
    return rc;
}

static CUresult address_range(CUdeviceptr *pbase, size_t *psize, CUdeviceptr dptr)
{
    if (!g_inited) return CUDA_ERROR_NOT_INITIALIZED;
    CUresult rc = CUDA_ERROR_NOT_FOUND;
    pthread_mutex_lock(&g_mu);
    struct sim_alloc *a = sim_addr_find(dptr);
    if (a && a->kind != A_HOST && a->kind != A_RESERVE) {
        if (pbase) *pbase = a->base;
        if (psize) *psize = a->size;
        rc = CUDA_SUCCESS;
    }
    pthread_mutex_unlock(&g_mu);
    return rc;
}
SIM_API CUresult cuMemGetAddressRange_v2(CUdeviceptr *pbase, size_t *psize, CUdeviceptr dptr)
{
    return address_range(pbase, psize, dptr);
}
SIM_API CUresult cuMemGetAddressRange(CUdeviceptr_v1 *pbase, unsigned int *psize,
                                      CUdeviceptr_v1 dptr)
{
    CUdeviceptr b = 0;
    size_t s = 0;
    CUresult rc = address_range(&b, &s, dptr);
    if (rc == CUDA_SUCCESS && pbase) *pbase = (CUdeviceptr_v1)b;
    if (rc == CUDA_SUCCESS && psize) *psize = (unsigned int)SIM_MIN(s, (size_t)UINT_MAX);
    return rc;
}

SIM_API CUresult cuPointerGetAttribute(void *data, CUpointer_attribute attribute, CUdeviceptr ptr)
{
    if (!g_inited) return CUDA_ERROR_NOT_INITIALIZED;
    if (!data) return CUDA_ERROR_INVALID_VALUE;
    int dev = -1, kind = A_DEV;
    CUcontext ctx = NULL;
    pthread_mutex_lock(&g_mu);
    struct sim_alloc *a = sim_addr_find(ptr);
    if (a && a->kind != A_RESERVE) {
        dev = a->dev;
        kind = a->kind;
        ctx = (CUcontext)a->ctx;
    } else if (!sim_vmm_mapped(ptr, 1, &dev, 0)) {
        dev = -1;
    }
    pthread_mutex_unlock(&g_mu);
    if (dev < 0) return CUDA_ERROR_INVALID_VALUE;
    switch ((int)attribute) {
    case CU_POINTER_ATTRIBUTE_CONTEXT:
        *(CUcontext *)data = ctx;
        break;
    case CU_POINTER_ATTRIBUTE_MEMORY_TYPE:
        *(unsigned int *)data =
            kind == A_MANAGED || kind == A_HOST ? CU_MEMORYTYPE_HOST : CU_MEMORYTYPE_DEVICE;
        break;
    case CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL:
        *(int *)data = dev;
        break;
    case CU_POINTER_ATTRIBUTE_IS_MANAGED:
        *(unsigned int *)data = kind == A_MANAGED;
        break;
    default:
        return CUDA_ERROR_INVALID_VALUE;
    }
    return CUDA_SUCCESS;
}

/* --- copies and sets: the range must lie in live device memory; no data moves ------------- */

static CUresult check_range(CUdeviceptr p, size_t n)
{
    pthread_mutex_lock(&g_mu);
    struct sim_alloc *a = sim_addr_find(p);
    int ok = a && (a->kind == A_DEV || a->kind == A_ASYNC || a->kind == A_MANAGED)
                 ? n <= a->base + a->size - p
                 : sim_vmm_mapped(p, n, NULL, 1);
    pthread_mutex_unlock(&g_mu);
    return ok ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

/* ndev device ranges (a, then b) of n bytes, plus a host pointer when ndev is 1 */
static CUresult copy(size_t n, const void *host, int ndev, CUdeviceptr a, CUdeviceptr b)
{
    struct sim_ctx *c;
    CUresult rc = sim_enter_ctx(&c);
    if (rc != CUDA_SUCCESS || !n) return rc;
    if (ndev == 1 && !host) return CUDA_ERROR_INVALID_VALUE;
    if ((rc = check_range(a, n)) == CUDA_SUCCESS && ndev == 2) rc = check_range(b, n);
    return rc;
}

SIM_API CUresult cuMemcpyHtoD_v2(CUdeviceptr d, const void *s, size_t n)
{
    return copy(n, s, 1, d, 0);
}
SIM_API CUresult cuMemcpyHtoD_v2_ptds(CUdeviceptr d, const void *s, size_t n)
{
    return copy(n, s, 1, d, 0);
}
SIM_API CUresult cuMemcpyDtoH_v2(void *d, CUdeviceptr s, size_t n)
{
    return copy(n, d, 1, s, 0);
}
SIM_API CUresult cuMemcpyDtoH_v2_ptds(void *d, CUdeviceptr s, size_t n)
{
    return copy(n, d, 1, s, 0);
}
SIM_API CUresult cuMemcpyDtoD_v2(CUdeviceptr d, CUdeviceptr s, size_t n)
{
    return copy(n, NULL, 2, d, s);
}
SIM_API CUresult cuMemcpyDtoD_v2_ptds(CUdeviceptr d, CUdeviceptr s, size_t n)
{
    return copy(n, NULL, 2, d, s);
}

static CUresult memset_n(CUdeviceptr d, size_t n, size_t elem)
{
    struct sim_ctx *c;
    CUresult rc = sim_enter_ctx(&c);
    size_t bytes;
    if (rc != CUDA_SUCCESS || !n) return rc;
    if (d % elem || __builtin_mul_overflow(n, elem, &bytes)) return CUDA_ERROR_INVALID_VALUE;
    return check_range(d, bytes);
}
SIM_API CUresult cuMemsetD8_v2(CUdeviceptr d, unsigned char uc, size_t N)
{
    return memset_n(d, N, 1);
}
SIM_API CUresult cuMemsetD8_v2_ptds(CUdeviceptr d, unsigned char uc, size_t N)
{
    return memset_n(d, N, 1);
}
SIM_API CUresult cuMemsetD32_v2(CUdeviceptr d, unsigned int ui, size_t N)
{
    return memset_n(d, N, 4);
}
SIM_API CUresult cuMemsetD32_v2_ptds(CUdeviceptr d, unsigned int ui, size_t N)
{
    return memset_n(d, N, 4);
}

/* --- host and managed memory ---------------------------------------------------------------- */

static CUresult alloc_host(void **pp, size_t size)
{
    struct sim_ctx *c;
    CUresult rc = sim_enter_ctx(&c);
    if (rc != CUDA_SUCCESS) return rc;
    if (!pp || !size) return CUDA_ERROR_INVALID_VALUE;
    void *p = malloc(size);
    if (!p) return CUDA_ERROR_OUT_OF_MEMORY;
    struct sim_alloc a = {
        .base = (uintptr_t)p, .size = size, .span = size, .kind = A_HOST, .dev = c->dev, .ctx = c};
    pthread_mutex_lock(&g_mu);
    if (sim_addr_insert(&a, 0, 1, NULL) < 0) {
        free(p);
        rc = CUDA_ERROR_OUT_OF_MEMORY;
    }
    pthread_mutex_unlock(&g_mu);
    if (rc == CUDA_SUCCESS) *pp = p;
    return rc;
}
SIM_API CUresult cuMemAllocHost_v2(void **pp, size_t bytesize)
{
    return alloc_host(pp, bytesize);
}
SIM_API CUresult cuMemAllocHost(void **pp, unsigned int bytesize)
{
    return alloc_host(pp, bytesize);
}

SIM_API CUresult cuMemFreeHost(void *p)
{
    if (!g_inited) return CUDA_ERROR_NOT_INITIALIZED;
    CUresult rc = CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&g_mu);
    struct sim_alloc *a = p ? sim_addr_find((uintptr_t)p) : NULL;
    if (a && a->kind == A_HOST && a->base == (uintptr_t)p) {
        sim_addr_remove(a->base);
        free(p);
        rc = CUDA_SUCCESS;
    }
    pthread_mutex_unlock(&g_mu);
    return rc;
}

SIM_API CUresult cuMemAllocManaged(CUdeviceptr *dptr, size_t bytesize, unsigned int flags)
{
    struct sim_ctx *c;
    CUresult rc = sim_enter_ctx(&c);
    if (rc != CUDA_SUCCESS) return rc;
    if (!dptr || !bytesize || (flags != CU_MEM_ATTACH_GLOBAL && flags != CU_MEM_ATTACH_HOST))
        return CUDA_ERROR_INVALID_VALUE;
    /* host-resident: real pages the CPU can touch, committed lazily */
    void *p = mmap(NULL, bytesize, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) return CUDA_ERROR_OUT_OF_MEMORY;
    struct sim_alloc a = {.base = (uintptr_t)p,
                          .size = bytesize,
                          .span = bytesize,
                          .kind = A_MANAGED,
                          .dev = c->dev,
                          .ctx = c};
    pthread_mutex_lock(&g_mu);
    if (sim_addr_insert(&a, 0, 1, NULL) < 0) {
        munmap(p, bytesize);
        rc = CUDA_ERROR_OUT_OF_MEMORY;
    } else {
        managed_add((int64_t)bytesize);
    }
    pthread_mutex_unlock(&g_mu);
    if (rc == CUDA_SUCCESS) *dptr = (uintptr_t)p;
    return rc;
}

static CUresult managed_range(CUdeviceptr p, size_t n)
{
    if (!g_inited) return CUDA_ERROR_NOT_INITIALIZED;
    pthread_mutex_lock(&g_mu);
    struct sim_alloc *a = sim_addr_find(p);
    int ok = a && a->kind == A_MANAGED && n && n <= a->base + a->size - p;
    pthread_mutex_unlock(&g_mu);
    return ok ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

static CUresult advise(CUdeviceptr p, size_t n, CUmem_advise advice, CUmemLocation loc)
{
    CUresult rc = managed_range(p, n);
    if (rc != CUDA_SUCCESS) return rc;
    if ((int)advice < CU_MEM_ADVISE_SET_READ_MOSTLY ||
        (int)advice > CU_MEM_ADVISE_UNSET_ACCESSED_BY)
        return CUDA_ERROR_INVALID_VALUE;
    if (advice == CU_MEM_ADVISE_SET_PREFERRED_LOCATION || advice >= CU_MEM_ADVISE_SET_ACCESSED_BY) {
        if (loc.type == CU_MEM_LOCATION_TYPE_DEVICE ? !sim_dev_ok(loc.id)
                                                    : loc.type == CU_MEM_LOCATION_TYPE_INVALID)
            return CUDA_ERROR_INVALID_DEVICE;
    }
    return CUDA_SUCCESS;
}

static CUmemLocation loc_of(CUdevice dev)
{
    CUmemLocation l = {
        dev == CU_DEVICE_CPU ? CU_MEM_LOCATION_TYPE_HOST : CU_MEM_LOCATION_TYPE_DEVICE, dev};
    return l;
}
SIM_API CUresult cuMemAdvise(CUdeviceptr devPtr, size_t count, CUmem_advise advice, CUdevice device)
{
    return advise(devPtr, count, advice, loc_of(device));
}
SIM_API CUresult cuMemAdvise_v2(CUdeviceptr devPtr, size_t count, CUmem_advise advice,
                                CUmemLocation location)
{
    return advise(devPtr, count, advice, location);
}

static CUresult prefetch(CUdeviceptr p, size_t n)
{
    struct sim_ctx *c;
    CUresult rc = sim_enter_ctx(&c);
    return rc != CUDA_SUCCESS ? rc : managed_range(p, n);
}
SIM_API CUresult cuMemPrefetchAsync(CUdeviceptr devPtr, size_t count, CUdevice dstDevice,
                                    CUstream hStream)
{
    return prefetch(devPtr, count);
}
SIM_API CUresult cuMemPrefetchAsync_ptsz(CUdeviceptr devPtr, size_t count, CUdevice dstDevice,
                                         CUstream hStream)
{
    return prefetch(devPtr, count);
}
SIM_API CUresult cuMemPrefetchAsync_v2(CUdeviceptr devPtr, size_t count, CUmemLocation location,
                                       unsigned int flags, CUstream hStream)
{
    return prefetch(devPtr, count);
}
SIM_API CUresult cuMemPrefetchAsync_v2_ptsz(CUdeviceptr devPtr, size_t count,
                                            CUmemLocation location, unsigned int flags,
                                            CUstream hStream)
{
    return prefetch(devPtr, count);
}

/* --- arrays --------------------------------------------------------------------------------- */

struct sim_array {
    struct sim_hdr h;
    int dev, mip;
    uint64_t fp;
    struct sim_ctx *ctx;
    struct sim_array *next;
};
static struct sim_array *g_arrays;

static uint64_t elem_size(CUarray_format f, unsigned nch)
{
    uint64_t s = 0;
    switch (f) {
    case CU_AD_FORMAT_UNSIGNED_INT8:
    case CU_AD_FORMAT_SIGNED_INT8:
        s = 1;
        break;
    case CU_AD_FORMAT_UNSIGNED_INT16:
    case CU_AD_FORMAT_SIGNED_INT16:
    case CU_AD_FORMAT_HALF:
        s = 2;
        break;
    case CU_AD_FORMAT_UNSIGNED_INT32:
    case CU_AD_FORMAT_SIGNED_INT32:
    case CU_AD_FORMAT_FLOAT:
        s = 4;
        break;
    }
    return nch == 1 || nch == 2 || nch == 4 ? s * nch : 0;
}

/* levels == 0: a plain array; otherwise a mipmapped array with that many levels */
static CUresult array_create(void **out, uint64_t w, uint64_t h, uint64_t d, CUarray_format f,
                             unsigned nch, unsigned levels)
{
    struct sim_ctx *c;
    CUresult rc = sim_enter_ctx(&c);
    if (rc != CUDA_SUCCESS) return rc;
    uint64_t es = elem_size(f, nch), bytes = 0;
    if (!out || !es || !w || levels > 64) return CUDA_ERROR_INVALID_VALUE;
    for (unsigned l = 0; l < SIM_MAX(levels, 1u); l++) {
        uint64_t lw = SIM_MAX(w >> l, 1), lh = SIM_MAX(h >> l, 1), ld = SIM_MAX(d >> l, 1), b;
        if (__builtin_mul_overflow(lw, es, &b) || __builtin_mul_overflow(b, lh, &b) ||
            __builtin_mul_overflow(b, ld, &b) || __builtin_add_overflow(bytes, b, &bytes))
            return CUDA_ERROR_OUT_OF_MEMORY;
    }
    struct sim_array *a = sim_obj_new(K_ARRAY, sizeof *a);
    if (!a) return CUDA_ERROR_OUT_OF_MEMORY;
    a->dev = c->dev;
    a->mip = levels > 0;
    a->fp = sim_round_up(bytes, SIM_2M);
    a->ctx = c;
    pthread_mutex_lock(&g_mu);
    if (a->fp < bytes || sim_charge(g_slot, c->dev, SIM_USE_MEM, (int64_t)a->fp) < 0) {
        rc = CUDA_ERROR_OUT_OF_MEMORY;
    } else {
        a->next = g_arrays;
        g_arrays = a;
        *out = a;
    }
    pthread_mutex_unlock(&g_mu);
    if (rc != CUDA_SUCCESS) sim_obj_free(a);
    return rc;
}

SIM_API CUresult cuArrayCreate_v2(CUarray *pHandle, const CUDA_ARRAY_DESCRIPTOR *d)
{
    return d ? array_create((void **)pHandle, d->Width, d->Height, 0, d->Format, d->NumChannels, 0)
             : (g_inited ? CUDA_ERROR_INVALID_VALUE : CUDA_ERROR_NOT_INITIALIZED);
}
SIM_API CUresult cuArrayCreate(CUarray *pHandle, const CUDA_ARRAY_DESCRIPTOR_v1 *d)
{
    return d ? array_create((void **)pHandle, d->Width, d->Height, 0, d->Format, d->NumChannels, 0)
             : (g_inited ? CUDA_ERROR_INVALID_VALUE : CUDA_ERROR_NOT_INITIALIZED);
}
SIM_API CUresult cuArray3DCreate_v2(CUarray *pHandle, const CUDA_ARRAY3D_DESCRIPTOR *d)
{
    return d ? array_create((void **)pHandle, d->Width, d->Height, d->Depth, d->Format,
                            d->NumChannels, 0)
             : (g_inited ? CUDA_ERROR_INVALID_VALUE : CUDA_ERROR_NOT_INITIALIZED);
}
SIM_API CUresult cuArray3DCreate(CUarray *pHandle, const CUDA_ARRAY3D_DESCRIPTOR_v1 *d)
{
    return d ? array_create((void **)pHandle, d->Width, d->Height, d->Depth, d->Format,
                            d->NumChannels, 0)
             : (g_inited ? CUDA_ERROR_INVALID_VALUE : CUDA_ERROR_NOT_INITIALIZED);
}
SIM_API CUresult cuMipmappedArrayCreate(CUmipmappedArray *pHandle, const CUDA_ARRAY3D_DESCRIPTOR *d,
                                        unsigned int numMipmapLevels)
{
    if (!d || !numMipmapLevels)
        return g_inited ? CUDA_ERROR_INVALID_VALUE : CUDA_ERROR_NOT_INITIALIZED;
    return array_create((void **)pHandle, d->Width, d->Height, d->Depth, d->Format, d->NumChannels,
                        numMipmapLevels);
}

static void array_unlink(struct sim_array *a) /* g_mu held */
{
    for (struct sim_array **pp = &g_arrays; *pp; pp = &(*pp)->next)
        if (*pp == a) {
            *pp = a->next;
            break;
        }
    sim_charge(g_slot, a->dev, SIM_USE_MEM, -(int64_t)a->fp);
    sim_obj_free(a);
}

static CUresult array_destroy(void *h, int mip)
{
    if (!g_inited) return CUDA_ERROR_NOT_INITIALIZED;
    pthread_mutex_lock(&g_mu);
    struct sim_array *a = sim_obj_get(h, K_ARRAY);
    if (a && a->mip == mip) array_unlink(a);
    pthread_mutex_unlock(&g_mu);
    return a && a->mip == mip ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}
SIM_API CUresult cuArrayDestroy(CUarray hArray)
{
    return array_destroy(hArray, 0);
}
SIM_API CUresult cuMipmappedArrayDestroy(CUmipmappedArray hMipmappedArray)
{
    return array_destroy(hMipmappedArray, 1);
}

static CUresult array_requirements(CUDA_ARRAY_MEMORY_REQUIREMENTS *req, void *h, int mip,
                                   CUdevice dev)
{
    if (!g_inited) return CUDA_ERROR_NOT_INITIALIZED;
    if (!req) return CUDA_ERROR_INVALID_VALUE;
    if (!sim_dev_ok(dev)) return CUDA_ERROR_INVALID_DEVICE;
    pthread_mutex_lock(&g_mu);
    struct sim_array *a = sim_obj_get(h, K_ARRAY);
    CUresult rc = a && a->mip == mip ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
    if (rc == CUDA_SUCCESS) {
        memset(req, 0, sizeof *req);
        req->size = a->fp;
        req->alignment = SIM_2M;
    }
    pthread_mutex_unlock(&g_mu);
    return rc;
}
SIM_API CUresult cuArrayGetMemoryRequirements(CUDA_ARRAY_MEMORY_REQUIREMENTS *r, CUarray array,
                                              CUdevice device)
{
    return array_requirements(r, array, 0, device);
}
SIM_API CUresult cuMipmappedArrayGetMemoryRequirements(CUDA_ARRAY_MEMORY_REQUIREMENTS *r,
                                                       CUmipmappedArray mipmap, CUdevice device)
{
    return array_requirements(r, mipmap, 1, device);
}

/* --- contexts going away, fork -------------------------------------------------------------- */

void sim_ctx_free_allocs(struct sim_ctx *ctx)
{
    for (size_t i = ntab; i-- > 0;)
        if (tab[i].ctx == ctx && (tab[i].kind == A_DEV || tab[i].kind == A_MANAGED))
            release(tab[i], 0);
    for (struct sim_array *a = g_arrays, *next; a; a = next) {
        next = a->next;
        if (a->ctx == ctx) array_unlink(a);
    }
}

void sim_mem_fork_reset(void)
{
    ntab = 0;
    memset(small_total, 0, sizeof(small_total));
    hint[0] = HIGH_BASE;
    hint[1] = LOW_BASE;
    while (g_arrays) {
        struct sim_array *a = g_arrays;
        g_arrays = a->next;
        sim_obj_free(a);
    }
}
