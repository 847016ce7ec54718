/* mem_pools.c - charging stream-ordered pools by their real reservation (see mem_pools.h). */
#include "mem_pools.h"

#include <pthread.h>
#include <string.h>

#include "../common/shm_ledger.h"
#include "real_driver.h"
#include "limiter.h"
#include "log.h"
#include "mem_charge.h"
#include "fork_hooks.h"

#define MAX_POOLS 256

struct pool {
    CUmemoryPool handle;
    int ledger;       /* ledger device, -1: not charged (host pool or uncapped GPU) */
    CUdevice ordinal; /* GPU the pool lives on, -1 if unknown yet */
    uint64_t charged; /* the reservation this process is charged for */
};

static pthread_mutex_t pools_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pool pools[MAX_POOLS];
static int npools;

static void vgpu_pools_lock(void)
{
    pthread_mutex_lock(&pools_lock);
}
static void vgpu_pools_unlock(void)
{
    pthread_mutex_unlock(&pools_lock);
}
static void vgpu_pools_reset_in_child(void)
{
    pthread_mutex_init(&pools_lock, NULL);
    npools = 0;
}

static uint64_t pool_attr(CUmemoryPool pool, CUmemPool_attribute attr)
{
    cuuint64_t v = 0;
    vgpu_helper_fn_cuMemPoolGetAttribute f = VGPU_HELPER(cuMemPoolGetAttribute);
    if (f) f(pool, attr, &v);
    return v;
}

/* locked */
static struct pool *find(CUmemoryPool h)
{
    for (int i = 0; i < npools; i++)
        if (pools[i].handle == h) return &pools[i];
    return NULL;
}

/* locked */
static struct pool *add(CUmemoryPool h, int ledger, CUdevice ordinal)
{
    struct pool *p = find(h);
    if (p) return p;
    if (npools >= MAX_POOLS) return NULL;
    p = &pools[npools++];
    p->handle = h;
    p->ledger = ledger;
    p->ordinal = ordinal;
    p->charged = 0;
    return p;
}

/* locked: set the charge of p to the pool's reservation now; returns the change */
static int64_t true_up_locked(struct pool *p)
{
    if (p->ledger < 0) return 0;
    struct vgpu_shm *s = atomic_load(&vgpu_g.shm);
    int slot = atomic_load(&vgpu_g.slot);
    if (!s || slot < 0) return 0;
    uint64_t now = pool_attr(p->handle, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT);
    int64_t delta = (int64_t)now - (int64_t)p->charged;
    if (delta) vgpu_ledger_adjust(s, slot, p->ledger, delta);
    p->charged = now;
    return delta;
}

void vgpu_pool_created(CUmemoryPool pool, const CUmemPoolProps *props)
{
    int ledger = -1;
    CUdevice ordinal = -1;
    if (props && props->location.type == CU_MEM_LOCATION_TYPE_DEVICE) {
        struct vgpu_charge c;
        CUresult err;
        ordinal = props->location.id;
        if (vgpu_charge_begin(ordinal, &c, &err) == VGPU_CHARGE_YES) ledger = c.b->ledger;
    }
    pthread_mutex_lock(&pools_lock);
    struct pool *p = add(pool, ledger, ordinal);
    if (p) {
        p->ledger = ledger;
        p->ordinal = ordinal;
    }
    pthread_mutex_unlock(&pools_lock);
}

void vgpu_pool_destroyed(CUmemoryPool pool)
{
    pthread_mutex_lock(&pools_lock);
    struct pool *p = find(pool);
    if (p) {
        struct vgpu_shm *s = atomic_load(&vgpu_g.shm);
        int slot = atomic_load(&vgpu_g.slot);
        if (s && slot >= 0 && p->ledger >= 0 && p->charged)
            vgpu_ledger_adjust(s, slot, p->ledger, -(int64_t)p->charged);
        *p = pools[--npools];
    }
    pthread_mutex_unlock(&pools_lock);
}

void vgpu_pool_true_up(CUmemoryPool pool)
{
    pthread_mutex_lock(&pools_lock);
    struct pool *p = find(pool);
    if (p) true_up_locked(p);
    pthread_mutex_unlock(&pools_lock);
}

int64_t vgpu_pools_true_up_all(void)
{
    int64_t total = 0;
    pthread_mutex_lock(&pools_lock);
    for (int i = 0; i < npools; i++)
        total += true_up_locked(&pools[i]);
    pthread_mutex_unlock(&pools_lock);
    return total;
}

/* A pool grows in 32 MiB steps (the driver's rule, checked by tests/gpu/run case calibrate:
 * 1 MiB grows it by 32 MiB, 64 MiB + 1 by 96 MiB). Reserving the whole step up front makes the
 * undo below rare; a driver with other steps is still held to the cap by that undo. */
static uint64_t pool_growth(uint64_t bytes)
{
    const uint64_t step = 32 * VGPU_MIB;
    return (bytes + step - 1) / step * step;
}

CUresult vgpu_pool_alloc(void *real, vgpu_pool_alloc_fn call, CUdeviceptr *dptr, size_t size,
                         CUmemoryPool pool, CUstream stream)
{
    struct vgpu_charge c;
    CUresult err;
    CUdevice dev = 0;
    int known = 0;
    if (pool) {
        pthread_mutex_lock(&pools_lock);
        struct pool *p = find(pool);
        if (p) {
            known = 1;
            dev = p->ordinal;
        }
        pthread_mutex_unlock(&pools_lock);
        if (known && dev < 0) return call(real, dptr, size, pool, stream); /* a host pool */
    }
    /* a pool we saw created is charged to its GPU; otherwise the current context's GPU */
    int st = known ? vgpu_charge_begin(dev, &c, &err) : vgpu_charge_begin_current(&c, &err, &dev);
    if (st == VGPU_CHARGE_REFUSE) return err;
    if (st == VGPU_CHARGE_PASS || !dptr || !size) return call(real, dptr, size, pool, stream);
    CUmemoryPool target = pool;
    if (!target) {
        vgpu_helper_fn_cuDeviceGetMemPool get = VGPU_HELPER(cuDeviceGetMemPool);
        if (!get || get(&target, dev) != CUDA_SUCCESS) target = NULL;
    }
    /* provisional charge: what the pool may have to grow by */
    uint64_t need = 0;
    if (target) {
        uint64_t reserved = pool_attr(target, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT);
        uint64_t used = pool_attr(target, CU_MEMPOOL_ATTR_USED_MEM_CURRENT);
        uint64_t spare = reserved > used ? reserved - used : 0;
        need = size > spare ? pool_growth(size - spare) : 0;
    } else {
        need = pool_growth(size);
    }
    if (need && (err = vgpu_charge_reserve(&c, need, size)) != CUDA_SUCCESS) return err;
    CUresult r = call(real, dptr, size, pool, stream);
    if (r != CUDA_SUCCESS || !target) {
        if (r != CUDA_SUCCESS) vgpu_charge_release(&c, need);
        /* without a pool handle the provisional charge stands for the allocation */
        return r;
    }
    /* replace the provisional charge by the pool's real reservation */
    pthread_mutex_lock(&pools_lock);
    struct pool *p = add(target, c.b->ledger, dev);
    int64_t grown = p ? true_up_locked(p) : 0;
    pthread_mutex_unlock(&pools_lock);
    if (need) vgpu_charge_release(&c, need);
    if (grown > (int64_t)need && vgpu_charge_over_cap(&c)) {
        /* the pool grew by more than we could reserve: undo, so the cap holds */
        vgpu_fn_cuMemFreeAsync free_fn = VGPU_REAL(cuMemFreeAsync);
        vgpu_helper_fn_cuStreamSynchronize sync = VGPU_HELPER(cuStreamSynchronize);
        vgpu_fn_cuMemPoolTrimTo trim = VGPU_REAL(cuMemPoolTrimTo);
        if (free_fn) free_fn(*dptr, stream);
        if (sync) sync(stream);
        if (trim) trim(target, 0);
        vgpu_pool_true_up(target);
        vgpu_charge_log_refusal(&c, size, 0);
        *dptr = 0;
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    return CUDA_SUCCESS;
}

__attribute__((constructor)) static void init_module(void)
{
    vgpu_fork_register(VGPU_FORK_POOLS, vgpu_pools_lock, vgpu_pools_unlock,
                       vgpu_pools_reset_in_child);
    vgpu_charge_on_refusal(vgpu_pools_true_up_all);
}
