/* mem_hooks.c - every allocation family goes through the pod's ledger.
 *
 * Why this exists: a cap holds only if no family is left out. Plain, pitch, managed, arrays
 * (1D/2D/3D, layered, cubemap, mipmapped), VMM handles, imported external memory and
 * stream-ordered pools are charged here before the driver allocates and given back after it
 * frees. Sizes are what the driver really
 * takes: 2 MiB pages, the pitch the driver chose, the array layout the driver computes, the
 * reservation of a pool (mem_pools.c).
 */
#include <string.h>

#include "../common/shm_ledger.h"
#include "real_driver.h"
#include "hooks.h"
#include "limiter.h"
#include "log.h"
#include "mem_charge.h"
#include "mem_pools.h"

#define ARRAY3D_SPARSE 0x40
#define ARRAY3D_DEFERRED_MAPPING 0x80

/* After the real call: keep the reservation under (cls, key) or give it back. */
static CUresult finish(const struct vgpu_charge *c, CUresult r, uint64_t bytes, int cls,
                       uint64_t key)
{
    if (r != CUDA_SUCCESS) {
        vgpu_charge_release(c, bytes);
        return r;
    }
    struct vgpu_alloc a = {
        .bytes = bytes, .ledger = (int16_t)c->b->ledger, .kind = VGPU_ALLOC_DEVICE};
    vgpu_alloc_map_put(cls, key, a);
    return r;
}

/* After the real free: give back what the record held, or restore it if the free failed. */
static CUresult finish_free(CUresult r, int had, int cls, uint64_t key, const struct vgpu_alloc *a)
{
    if (!had) return r;
    if (r == CUDA_SUCCESS)
        vgpu_charge_give_back(a);
    else
        vgpu_alloc_map_put(cls, key, *a);
    return r;
}

/* ---- plain, pitch, managed ------------------------------------------------------------------ */

static void advise_host(CUdeviceptr p, size_t size, CUdevice dev)
{
    vgpu_helper_fn_cuMemAdvise_v2 adv2 = VGPU_HELPER(cuMemAdvise_v2);
    if (adv2) {
        CUmemLocation host = {CU_MEM_LOCATION_TYPE_HOST, 0},
                      gpu = {CU_MEM_LOCATION_TYPE_DEVICE, dev};
        adv2(p, size, CU_MEM_ADVISE_SET_PREFERRED_LOCATION, host);
        adv2(p, size, CU_MEM_ADVISE_SET_ACCESSED_BY, gpu);
        return;
    }
    vgpu_helper_fn_cuMemAdvise adv = VGPU_HELPER(cuMemAdvise);
    if (adv) {
        adv(p, size, CU_MEM_ADVISE_SET_PREFERRED_LOCATION, CU_DEVICE_CPU);
        adv(p, size, CU_MEM_ADVISE_SET_ACCESSED_BY, dev);
    }
}

/* Past the cap on an oversubscribed GPU: managed memory that prefers the host. */
static CUresult alloc_oversold(const struct vgpu_charge *c, CUdeviceptr *dptr, size_t size,
                               unsigned int flags)
{
    uint64_t fp = vgpu_footprint(size);
    if (vgpu_ledger_reserve_oversold(c->s, c->slot, c->b->ledger, fp, c->b->lim,
                                     atomic_load(&vgpu_g.ctl)) != VGPU_LEDGER_OK) {
        vgpu_charge_log_refusal(c, size, 1);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    vgpu_fn_cuMemAllocManaged managed = VGPU_REAL(cuMemAllocManaged);
    CUresult r = managed ? managed(dptr, size, flags) : CUDA_ERROR_NOT_SUPPORTED;
    if (r != CUDA_SUCCESS) {
        vgpu_ledger_unreserve_oversold(c->s, c->slot, c->b->ledger, fp);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    advise_host(*dptr, size, c->b->ordinal);
    struct vgpu_alloc a = {
        .bytes = fp, .ledger = (int16_t)c->b->ledger, .kind = VGPU_ALLOC_OVERSOLD};
    vgpu_alloc_map_put(VGPU_KEY_PTR, *dptr, a);
    VLOG_DEBUG("GPU %d: %zu bytes past the cap served from host memory", c->b->ordinal, size);
    return CUDA_SUCCESS;
}

/* cuMemAlloc and its 32-bit legacy variant differ only in the types of the pointer and size */
static CUresult call_alloc(void *real, int v1, void *dptr, size_t bytesize)
{
    if (v1) return ((vgpu_fn_cuMemAlloc)real)(dptr, (unsigned int)bytesize);
    return ((vgpu_fn_cuMemAlloc_v2)real)(dptr, bytesize);
}

static uint64_t read_ptr(const void *dptr, int v1)
{
    return v1 ? *(const CUdeviceptr_v1 *)dptr : *(const CUdeviceptr *)dptr;
}

static CUresult plain_alloc(void *real, int v1, void *dptr, size_t bytesize)
{
    struct vgpu_charge c;
    CUresult r = CUDA_SUCCESS;
    uint64_t fp = vgpu_footprint(bytesize);
    if (!dptr || !bytesize) return call_alloc(real, v1, dptr, bytesize);
    switch (vgpu_charge_current(&c, fp, bytesize, &r, NULL)) {
    case VGPU_CHARGE_PASS:
        return call_alloc(real, v1, dptr, bytesize);
    case VGPU_CHARGE_REFUSE:
        return r;
    case VGPU_CHARGE_OVER:
        if (!v1) return alloc_oversold(&c, dptr, bytesize, CU_MEM_ATTACH_GLOBAL);
        vgpu_charge_log_refusal(&c, bytesize, 0); /* no 32-bit managed addresses */
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    r = call_alloc(real, v1, dptr, bytesize);
    return finish(&c, r, fp, VGPU_KEY_PTR, r == CUDA_SUCCESS ? read_ptr(dptr, v1) : 0);
}

CUresult hook_mem_alloc(void *real, CUdeviceptr *dptr, size_t bytesize)
{
    return plain_alloc(real, 0, dptr, bytesize);
}

CUresult hook_mem_alloc_v1(void *real, CUdeviceptr_v1 *dptr, unsigned int bytesize)
{
    return plain_alloc(real, 1, dptr, bytesize);
}

/* The driver picks the pitch: reserve for the widest it may choose, then keep what it took. */
static uint64_t pitch_estimate(uint64_t width, uint64_t height)
{
    return vgpu_footprint(((width + 511) & ~511ull) * (height ? height : 1));
}

static CUresult settle(const struct vgpu_charge *c, uint64_t reserved, uint64_t actual)
{
    if (actual > reserved) return vgpu_charge_reserve(c, actual - reserved, actual);
    if (actual < reserved) vgpu_charge_release(c, reserved - actual);
    return CUDA_SUCCESS;
}

static CUresult call_pitch(void *real, int v1, void *dptr, void *pitch, size_t w, size_t h,
                           unsigned e)
{
    if (v1) return ((vgpu_fn_cuMemAllocPitch)real)(dptr, pitch, (unsigned)w, (unsigned)h, e);
    return ((vgpu_fn_cuMemAllocPitch_v2)real)(dptr, pitch, w, h, e);
}

static CUresult pitch_alloc(void *real, int v1, void *dptr, void *pPitch, size_t w, size_t h,
                            unsigned e)
{
    struct vgpu_charge c;
    CUresult r = CUDA_SUCCESS;
    uint64_t est = pitch_estimate(w, h);
    if (!dptr || !pPitch || !w || !h) return call_pitch(real, v1, dptr, pPitch, w, h, e);
    switch (vgpu_charge_current(&c, est, est, &r, NULL)) {
    case VGPU_CHARGE_PASS:
        return call_pitch(real, v1, dptr, pPitch, w, h, e);
    case VGPU_CHARGE_REFUSE:
        return r;
    case VGPU_CHARGE_OVER:
        vgpu_charge_log_refusal(&c, est, 0);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    r = call_pitch(real, v1, dptr, pPitch, w, h, e);
    if (r != CUDA_SUCCESS) return finish(&c, r, est, VGPU_KEY_PTR, 0);
    uint64_t pitch = v1 ? *(unsigned *)pPitch : *(size_t *)pPitch;
    uint64_t actual = vgpu_footprint(pitch * h), ptr = read_ptr(dptr, v1);
    if (settle(&c, est, actual) != CUDA_SUCCESS) {
        if (v1)
            VGPU_REAL(cuMemFree)((CUdeviceptr_v1)ptr);
        else
            VGPU_REAL(cuMemFree_v2)(ptr);
        vgpu_charge_release(&c, est);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    return finish(&c, r, actual, VGPU_KEY_PTR, ptr);
}

CUresult hook_mem_alloc_pitch(void *real, CUdeviceptr *dptr, size_t *pPitch, size_t WidthInBytes,
                              size_t Height, unsigned int ElementSizeBytes)
{
    return pitch_alloc(real, 0, dptr, pPitch, WidthInBytes, Height, ElementSizeBytes);
}

CUresult hook_mem_alloc_pitch_v1(void *real, CUdeviceptr_v1 *dptr, unsigned int *pPitch,
                                 unsigned int WidthInBytes, unsigned int Height,
                                 unsigned int ElementSizeBytes)
{
    return pitch_alloc(real, 1, dptr, pPitch, WidthInBytes, Height, ElementSizeBytes);
}

CUresult hook_mem_alloc_managed(void *real, CUdeviceptr *dptr, size_t bytesize, unsigned int flags)
{
    vgpu_fn_cuMemAllocManaged fn = (vgpu_fn_cuMemAllocManaged)real;
    struct vgpu_charge c;
    CUresult r = CUDA_SUCCESS;
    uint64_t fp = vgpu_footprint(bytesize);
    if (!dptr || !bytesize) return fn(dptr, bytesize, flags);
    switch (vgpu_charge_current(&c, fp, bytesize, &r, NULL)) {
    case VGPU_CHARGE_PASS:
        return fn(dptr, bytesize, flags);
    case VGPU_CHARGE_REFUSE:
        return r;
    case VGPU_CHARGE_OVER:
        return alloc_oversold(&c, dptr, bytesize, flags);
    }
    r = fn(dptr, bytesize, flags);
    return finish(&c, r, fp, VGPU_KEY_PTR, r == CUDA_SUCCESS ? *dptr : 0);
}

CUresult hook_mem_free(void *real, CUdeviceptr dptr)
{
    struct vgpu_alloc a;
    int had = dptr && vgpu_alloc_map_take(VGPU_KEY_PTR, dptr, &a);
    return finish_free(((vgpu_fn_cuMemFree_v2)real)(dptr), had, VGPU_KEY_PTR, dptr, &a);
}

CUresult hook_mem_free_v1(void *real, CUdeviceptr_v1 dptr)
{
    struct vgpu_alloc a;
    int had = dptr && vgpu_alloc_map_take(VGPU_KEY_PTR, dptr, &a);
    return finish_free(((vgpu_fn_cuMemFree)real)(dptr), had, VGPU_KEY_PTR, dptr, &a);
}

/* ---- arrays -----------------------------------------------------------------------------------
 */

static unsigned format_bytes(CUarray_format f)
{
    switch (f) {
    case CU_AD_FORMAT_UNSIGNED_INT8:
    case CU_AD_FORMAT_SIGNED_INT8:
        return 1;
    case CU_AD_FORMAT_UNSIGNED_INT16:
    case CU_AD_FORMAT_SIGNED_INT16:
    case CU_AD_FORMAT_HALF:
        return 2;
    default:
        return 4; /* 32-bit formats; packed and block formats are at most this per texel */
    }
}

static uint64_t level_bytes(const CUDA_ARRAY3D_DESCRIPTOR *d, unsigned level)
{
    uint64_t w = d->Width >> level, h = d->Height >> level, z = d->Depth;
    if (!(d->Flags & 0x01) && !(d->Flags & 0x04)) z >>= level; /* layers and faces do not shrink */
    w = w ? w : 1;
    h = h ? h : 1;
    z = z ? z : 1;
    return w * h * z * format_bytes(d->Format) * (d->NumChannels ? d->NumChannels : 1);
}

/* The driver's own figure for an array of this shape: a deferred-mapping twin has no memory
 * but reports the requirements; 0 if the driver cannot tell (older GPUs). */
static uint64_t probe_array(const CUDA_ARRAY3D_DESCRIPTOR *d, unsigned levels, CUdevice dev)
{
    CUDA_ARRAY3D_DESCRIPTOR twin = *d;
    twin.Flags |= ARRAY3D_DEFERRED_MAPPING;
    CUDA_ARRAY_MEMORY_REQUIREMENTS req;
    memset(&req, 0, sizeof(req));
    if (!levels) {
        vgpu_fn_cuArray3DCreate_v2 create = VGPU_REAL(cuArray3DCreate_v2);
        vgpu_helper_fn_cuArrayGetMemoryRequirements query =
            VGPU_HELPER(cuArrayGetMemoryRequirements);
        CUarray tmp = NULL;
        if (!create || !query || create(&tmp, &twin) != CUDA_SUCCESS) return 0;
        if (query(&req, tmp, dev) != CUDA_SUCCESS) req.size = 0;
        VGPU_REAL(cuArrayDestroy)(tmp);
    } else {
        vgpu_fn_cuMipmappedArrayCreate create = VGPU_REAL(cuMipmappedArrayCreate);
        vgpu_helper_fn_cuMipmappedArrayGetMemoryRequirements query =
            VGPU_HELPER(cuMipmappedArrayGetMemoryRequirements);
        CUmipmappedArray tmp = NULL;
        if (!create || !query || create(&tmp, &twin, levels) != CUDA_SUCCESS) return 0;
        if (query(&req, tmp, dev) != CUDA_SUCCESS) req.size = 0;
        VGPU_REAL(cuMipmappedArrayDestroy)(tmp);
    }
    return req.size;
}

static uint64_t array_footprint(const CUDA_ARRAY3D_DESCRIPTOR *d, unsigned levels, CUdevice dev)
{
    uint64_t probed = probe_array(d, levels, dev);
    if (probed) return vgpu_footprint(probed);
    uint64_t bytes = 0;
    for (unsigned l = 0; l < (levels ? levels : 1); l++)
        bytes += level_bytes(d, l);
    return vgpu_footprint(bytes);
}

enum { ARRAY_2D, ARRAY_2D_V1, ARRAY_3D, ARRAY_3D_V1, ARRAY_MIPMAP };

static CUresult call_array_create(void *real, int variant, void *out, const void *desc,
                                  unsigned levels)
{
    switch (variant) {
    case ARRAY_2D:
        return ((vgpu_fn_cuArrayCreate_v2)real)(out, desc);
    case ARRAY_2D_V1:
        return ((vgpu_fn_cuArrayCreate)real)(out, desc);
    case ARRAY_3D:
        return ((vgpu_fn_cuArray3DCreate_v2)real)(out, desc);
    case ARRAY_3D_V1:
        return ((vgpu_fn_cuArray3DCreate)real)(out, desc);
    default:
        return ((vgpu_fn_cuMipmappedArrayCreate)real)(out, desc, levels);
    }
}

static CUresult array_create(void *real, int variant, void *out, const void *desc,
                             const CUDA_ARRAY3D_DESCRIPTOR *d3, unsigned levels)
{
    struct vgpu_charge c;
    CUresult r = CUDA_SUCCESS;
    CUdevice dev = 0;
    if (!out || !desc || (d3->Flags & (ARRAY3D_SPARSE | ARRAY3D_DEFERRED_MAPPING)))
        return call_array_create(real, variant, out, desc, levels); /* no memory behind it yet */
    int st = vgpu_charge_begin_current(&c, &r, &dev);
    if (st == VGPU_CHARGE_REFUSE) return r;
    if (st == VGPU_CHARGE_PASS) return call_array_create(real, variant, out, desc, levels);
    uint64_t fp = array_footprint(d3, variant == ARRAY_MIPMAP ? (levels ? levels : 1) : 0, dev);
    if ((r = vgpu_charge_reserve(&c, fp, fp)) != CUDA_SUCCESS) return r;
    r = call_array_create(real, variant, out, desc, levels);
    int cls = variant == ARRAY_MIPMAP ? VGPU_KEY_MIPMAP : VGPU_KEY_ARRAY;
    return finish(&c, r, fp, cls, r == CUDA_SUCCESS ? (uint64_t)(uintptr_t) * (void **)out : 0);
}

/* every descriptor variant names its shape fields alike; only their widths differ */
#define COPY_SHAPE(d3, desc)                                                                       \
    do {                                                                                           \
        if (desc) {                                                                                \
            (d3).Width = (desc)->Width;                                                            \
            (d3).Height = (desc)->Height;                                                          \
            (d3).Format = (desc)->Format;                                                          \
            (d3).NumChannels = (desc)->NumChannels;                                                \
        }                                                                                          \
    } while (0)

CUresult hook_array_create(void *real, CUarray *pHandle, const CUDA_ARRAY_DESCRIPTOR *desc)
{
    CUDA_ARRAY3D_DESCRIPTOR d3 = {0};
    COPY_SHAPE(d3, desc);
    return array_create(real, ARRAY_2D, pHandle, desc, &d3, 0);
}

CUresult hook_array_create_v1(void *real, CUarray *pHandle, const CUDA_ARRAY_DESCRIPTOR_v1 *desc)
{
    CUDA_ARRAY3D_DESCRIPTOR d3 = {0};
    COPY_SHAPE(d3, desc);
    return array_create(real, ARRAY_2D_V1, pHandle, desc, &d3, 0);
}

CUresult hook_array3d_create(void *real, CUarray *pHandle, const CUDA_ARRAY3D_DESCRIPTOR *desc)
{
    CUDA_ARRAY3D_DESCRIPTOR d3 = {0};
    if (desc) d3 = *desc;
    return array_create(real, ARRAY_3D, pHandle, desc, &d3, 0);
}

CUresult hook_array3d_create_v1(void *real, CUarray *pHandle,
                                const CUDA_ARRAY3D_DESCRIPTOR_v1 *desc)
{
    CUDA_ARRAY3D_DESCRIPTOR d3 = {0};
    COPY_SHAPE(d3, desc);
    if (desc) {
        d3.Depth = desc->Depth;
        d3.Flags = desc->Flags;
    }
    return array_create(real, ARRAY_3D_V1, pHandle, desc, &d3, 0);
}

CUresult hook_mipmapped_array_create(void *real, CUmipmappedArray *pHandle,
                                     const CUDA_ARRAY3D_DESCRIPTOR *desc, unsigned int levels)
{
    CUDA_ARRAY3D_DESCRIPTOR d3 = {0};
    if (desc) d3 = *desc;
    return array_create(real, ARRAY_MIPMAP, pHandle, desc, &d3, levels);
}

CUresult hook_array_destroy(void *real, CUarray hArray)
{
    struct vgpu_alloc a;
    uint64_t key = (uint64_t)(uintptr_t)hArray;
    int had = hArray && vgpu_alloc_map_take(VGPU_KEY_ARRAY, key, &a);
    return finish_free(((vgpu_fn_cuArrayDestroy)real)(hArray), had, VGPU_KEY_ARRAY, key, &a);
}

CUresult hook_mipmapped_array_destroy(void *real, CUmipmappedArray hMipmappedArray)
{
    struct vgpu_alloc a;
    uint64_t key = (uint64_t)(uintptr_t)hMipmappedArray;
    int had = hMipmappedArray && vgpu_alloc_map_take(VGPU_KEY_MIPMAP, key, &a);
    return finish_free(((vgpu_fn_cuMipmappedArrayDestroy)real)(hMipmappedArray), had,
                       VGPU_KEY_MIPMAP, key, &a);
}

/* ---- stream-ordered allocations (accounting in mem_pools.c) ---------------------------------- */

static CUresult call_alloc_async(void *real, CUdeviceptr *dptr, size_t size, CUmemoryPool pool,
                                 CUstream stream)
{
    (void)pool;
    return ((vgpu_fn_cuMemAllocAsync)real)(dptr, size, stream);
}

static CUresult call_alloc_from_pool(void *real, CUdeviceptr *dptr, size_t size, CUmemoryPool pool,
                                     CUstream stream)
{
    return ((vgpu_fn_cuMemAllocFromPoolAsync)real)(dptr, size, pool, stream);
}

CUresult hook_mem_alloc_async(void *real, CUdeviceptr *dptr, size_t bytesize, CUstream hStream)
{
    return vgpu_pool_alloc(real, call_alloc_async, dptr, bytesize, NULL, hStream);
}

CUresult hook_mem_alloc_from_pool_async(void *real, CUdeviceptr *dptr, size_t bytesize,
                                        CUmemoryPool pool, CUstream hStream)
{
    if (!pool) return ((vgpu_fn_cuMemAllocFromPoolAsync)real)(dptr, bytesize, pool, hStream);
    return vgpu_pool_alloc(real, call_alloc_from_pool, dptr, bytesize, pool, hStream);
}

CUresult hook_mem_free_async(void *real, CUdeviceptr dptr, CUstream hStream)
{
    /* memory from a pool stays in the pool (charged by reservation); memory from cuMemAlloc
     * freed this way is given back like cuMemFree */
    struct vgpu_alloc a;
    int had = dptr && vgpu_alloc_map_take(VGPU_KEY_PTR, dptr, &a);
    return finish_free(((vgpu_fn_cuMemFreeAsync)real)(dptr, hStream), had, VGPU_KEY_PTR, dptr, &a);
}

CUresult hook_mem_pool_create(void *real, CUmemoryPool *pool, const CUmemPoolProps *props)
{
    if (vgpu_check_config()) return CUDA_ERROR_INVALID_VALUE;
    CUresult r = ((vgpu_fn_cuMemPoolCreate)real)(pool, props);
    if (r == CUDA_SUCCESS && pool) vgpu_pool_created(*pool, props);
    return r;
}

CUresult hook_mem_pool_destroy(void *real, CUmemoryPool pool)
{
    CUresult r = ((vgpu_fn_cuMemPoolDestroy)real)(pool);
    if (r == CUDA_SUCCESS) vgpu_pool_destroyed(pool);
    return r;
}

CUresult hook_mem_pool_trim_to(void *real, CUmemoryPool pool, size_t minBytesToKeep)
{
    CUresult r = ((vgpu_fn_cuMemPoolTrimTo)real)(pool, minBytesToKeep);
    if (r == CUDA_SUCCESS) vgpu_pool_true_up(pool);
    return r;
}

/* ---- virtual memory management ------------------------------------------------------------- */

CUresult hook_mem_create(void *real, CUmemGenericAllocationHandle *handle, size_t size,
                         const CUmemAllocationProp *prop, unsigned long long flags)
{
    vgpu_fn_cuMemCreate fn = (vgpu_fn_cuMemCreate)real;
    if (vgpu_check_config()) return CUDA_ERROR_INVALID_VALUE;
    if (!handle || !prop || !size || prop->location.type != CU_MEM_LOCATION_TYPE_DEVICE)
        return fn(handle, size, prop, flags); /* host memory, or the driver's own error */
    struct vgpu_charge c;
    CUresult r = CUDA_SUCCESS;
    uint64_t fp = vgpu_footprint(size);
    switch (vgpu_charge_device(prop->location.id, &c, fp, size, &r)) {
    case VGPU_CHARGE_PASS:
        return fn(handle, size, prop, flags);
    case VGPU_CHARGE_REFUSE:
        return r;
    case VGPU_CHARGE_OVER:
        vgpu_charge_log_refusal(&c, size, 0);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    r = fn(handle, size, prop, flags);
    return finish(&c, r, fp, VGPU_KEY_VMM, r == CUDA_SUCCESS ? *handle : 0);
}

CUresult hook_mem_release(void *real, CUmemGenericAllocationHandle handle)
{
    struct vgpu_alloc a;
    int had = vgpu_alloc_map_take(VGPU_KEY_VMM, handle, &a);
    return finish_free(((vgpu_fn_cuMemRelease)real)(handle), had, VGPU_KEY_VMM, handle, &a);
}

/* ---- imported external memory ---------------------------------------------------------------- */

/* Memory imported from Vulkan, D3D or another process's fd is memory this process now keeps
 * alive on the GPU (the exporter may free its own handle and the memory stays): charging the
 * importer is the fail-closed choice, whoever else may be charged for it too. The descriptor's
 * size is what the import maps; it is charged like a device allocation of that size. */
CUresult hook_import_external_memory(void *real, CUexternalMemory *extMem_out,
                                     const CUDA_EXTERNAL_MEMORY_HANDLE_DESC *desc)
{
    vgpu_fn_cuImportExternalMemory fn = (vgpu_fn_cuImportExternalMemory)real;
    if (!extMem_out || !desc || !desc->size) return fn(extMem_out, desc); /* the driver's error */
    struct vgpu_charge c;
    CUresult r = CUDA_SUCCESS;
    uint64_t fp = vgpu_footprint(desc->size);
    switch (vgpu_charge_current(&c, fp, desc->size, &r, NULL)) {
    case VGPU_CHARGE_PASS:
        return fn(extMem_out, desc);
    case VGPU_CHARGE_REFUSE:
        return r;
    case VGPU_CHARGE_OVER:
        vgpu_charge_log_refusal(&c, desc->size, 0); /* an import cannot come from host memory */
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    r = fn(extMem_out, desc);
    return finish(&c, r, fp, VGPU_KEY_EXTERNAL,
                  r == CUDA_SUCCESS ? (uint64_t)(uintptr_t)*extMem_out : 0);
}

CUresult hook_destroy_external_memory(void *real, CUexternalMemory extMem)
{
    struct vgpu_alloc a;
    uint64_t key = (uint64_t)(uintptr_t)extMem;
    int had = extMem && vgpu_alloc_map_take(VGPU_KEY_EXTERNAL, key, &a);
    return finish_free(((vgpu_fn_cuDestroyExternalMemory)real)(extMem), had, VGPU_KEY_EXTERNAL, key,
                       &a);
}
