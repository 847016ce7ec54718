/* mem_charge.c - the accounting steps shared by all allocation hooks (see mem_charge.h). */
#include "mem_charge.h"

#include "../common/shm_ledger.h"
#include "../common/shm_region.h"
#include "../common/size_parse.h"
#include "limiter.h"
#include "log.h"

#define CTL() atomic_load_explicit(&vgpu_g.ctl, memory_order_acquire)

uint64_t vgpu_footprint(uint64_t size)
{
    /* The driver's rule, which tests/gpu/run case calibrate checks against the installed driver
     * (bench/results/README.md): above 1 MiB an allocation takes whole 2 MiB pages; up to 1 MiB
     * allocations are packed 512-byte aligned into shared 2 MiB chunks. The chunks' unused rest
     * is driver overhead, counted by the NVML true-up (mem_overhead.c). */
    const uint64_t page = 2 * VGPU_MIB, small = 512;
    if (size <= VGPU_MIB) return (size + small - 1) & ~(small - 1);
    return (size + page - 1) & ~(page - 1);
}

static _Atomic uint64_t ops_epoch;
static _Atomic int ops_inflight;
static __thread int ops_mine __attribute__((tls_model("initial-exec")));

void vgpu_mem_op_begin(void)
{
    ops_mine++;
    atomic_fetch_add_explicit(&ops_epoch, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&ops_inflight, 1, memory_order_acq_rel);
}

void vgpu_mem_op_end(void)
{
    atomic_fetch_sub_explicit(&ops_inflight, 1, memory_order_acq_rel);
    ops_mine--;
}

int vgpu_mem_quiet_begin(uint64_t *epoch)
{
    *epoch = atomic_load_explicit(&ops_epoch, memory_order_acquire);
    return atomic_load_explicit(&ops_inflight, memory_order_acquire) == ops_mine;
}

int vgpu_mem_quiet_end(uint64_t epoch)
{
    return atomic_load_explicit(&ops_inflight, memory_order_acquire) == ops_mine &&
           atomic_load_explicit(&ops_epoch, memory_order_acquire) == epoch;
}

int vgpu_charge_begin(CUdevice dev, struct vgpu_charge *c, CUresult *err)
{
    if (vgpu_check_config()) {
        *err = CUDA_ERROR_INVALID_VALUE;
        return VGPU_CHARGE_REFUSE;
    }
    if (atomic_load_explicit(&vgpu_g.exiting, memory_order_relaxed)) return VGPU_CHARGE_PASS;
    if (__builtin_expect(vgpu_pod_broken(), 0)) {
        VLOG_ERROR("the node daemon found this pod's ledger unusable: GPU memory is refused");
        *err = CUDA_ERROR_OUT_OF_MEMORY;
        return VGPU_CHARGE_REFUSE;
    }
    c->b = vgpu_bind(dev);
    int st = atomic_load_explicit(&c->b->state, memory_order_relaxed);
    if (st == VGPU_BIND_PASS) return VGPU_CHARGE_PASS;
    if (st == VGPU_BIND_LEDGER) {
        c->s = atomic_load_explicit(&vgpu_g.shm, memory_order_acquire);
        c->slot = vgpu_slot();
        if (c->s && c->slot >= 0) return VGPU_CHARGE_YES;
    }
    *err = CUDA_ERROR_OUT_OF_MEMORY; /* capped but we cannot account: refuse, never unlimited */
    return VGPU_CHARGE_REFUSE;
}

int vgpu_charge_begin_current(struct vgpu_charge *c, CUresult *err, CUdevice *dev_out)
{
    CUdevice dev = 0;
    if (vgpu_check_config()) {
        *err = CUDA_ERROR_INVALID_VALUE;
        return VGPU_CHARGE_REFUSE;
    }
    if (!vgpu_g.cfg.ledger_on) return VGPU_CHARGE_PASS;
    if (vgpu_current_device(&dev) != CUDA_SUCCESS) return VGPU_CHARGE_PASS;
    if (dev_out) *dev_out = dev;
    return vgpu_charge_begin(dev, c, err);
}

static int64_t (*_Atomic on_refusal)(void);

void vgpu_charge_on_refusal(int64_t (*reclaim)(void))
{
    atomic_store(&on_refusal, reclaim);
}

int vgpu_charge_try(const struct vgpu_charge *c, uint64_t bytes)
{
    struct vgpu_binding *b = (struct vgpu_binding *)c->b;
    if (!atomic_load_explicit(&b->ovh_found, memory_order_relaxed) &&
        !atomic_exchange(&b->ovh_tried, 1)) {
        /* first allocation here: the context exists now, count what the driver took for it
         * before weighing this allocation against the cap */
        vgpu_devices_true_up_now();
    }
    int r = vgpu_ledger_reserve(c->s, c->slot, c->b->ledger, bytes, c->b->lim, CTL());
    if (r == VGPU_LEDGER_ERROR) {
        /* our record was taken back (another process judged us dead): claim a new one */
        VLOG_WARN("this process's record in the pod's ledger was released; claiming a new one");
        int expected = c->slot;
        atomic_compare_exchange_strong(&vgpu_g.slot, &expected, -1);
        ((struct vgpu_charge *)c)->slot = vgpu_slot();
        if (c->slot < 0) return VGPU_LEDGER_OVER_CAP;
        r = vgpu_ledger_reserve(c->s, c->slot, c->b->ledger, bytes, c->b->lim, CTL());
    }
    int64_t (*reclaim)(void) = atomic_load(&on_refusal);
    if (r == VGPU_LEDGER_OVER_CAP && reclaim && reclaim() < 0) {
        /* our pools gave memory back to the driver since we last looked: try again */
        r = vgpu_ledger_reserve(c->s, c->slot, c->b->ledger, bytes, c->b->lim, CTL());
    }
    return r == VGPU_LEDGER_OK ? VGPU_LEDGER_OK : VGPU_LEDGER_OVER_CAP;
}

CUresult vgpu_charge_reserve(const struct vgpu_charge *c, uint64_t bytes, uint64_t request)
{
    if (vgpu_charge_try(c, bytes) == VGPU_LEDGER_OK) return CUDA_SUCCESS;
    vgpu_charge_log_refusal(c, request, 0);
    return CUDA_ERROR_OUT_OF_MEMORY;
}

static int reserve_after_begin(int st, struct vgpu_charge *c, uint64_t bytes, uint64_t request,
                               CUresult *err)
{
    if (st != VGPU_CHARGE_YES) return st;
    if (vgpu_charge_try(c, bytes) == VGPU_LEDGER_OK) return VGPU_CHARGE_YES;
    if (c->b->oversold) return VGPU_CHARGE_OVER;
    vgpu_charge_log_refusal(c, request, 0);
    *err = CUDA_ERROR_OUT_OF_MEMORY;
    return VGPU_CHARGE_REFUSE;
}

int vgpu_charge_current(struct vgpu_charge *c, uint64_t bytes, uint64_t request, CUresult *err,
                        CUdevice *dev)
{
    return reserve_after_begin(vgpu_charge_begin_current(c, err, dev), c, bytes, request, err);
}

int vgpu_charge_device(CUdevice dev, struct vgpu_charge *c, uint64_t bytes, uint64_t request,
                       CUresult *err)
{
    return reserve_after_begin(vgpu_charge_begin(dev, c, err), c, bytes, request, err);
}

void vgpu_charge_release(const struct vgpu_charge *c, uint64_t bytes)
{
    vgpu_ledger_unreserve(c->s, c->slot, c->b->ledger, bytes);
}

void vgpu_charge_give_back(const struct vgpu_alloc *a)
{
    struct vgpu_shm *s = atomic_load_explicit(&vgpu_g.shm, memory_order_acquire);
    int slot = atomic_load_explicit(&vgpu_g.slot, memory_order_acquire);
    if (!s || slot < 0) return;
    if (a->kind == VGPU_ALLOC_OVERSOLD)
        vgpu_ledger_unreserve_oversold(s, slot, a->ledger, a->bytes);
    else
        vgpu_ledger_unreserve(s, slot, a->ledger, a->bytes);
}

int vgpu_charge_over_cap(const struct vgpu_charge *c)
{
    const struct vgpu_shm_dev *v = &c->s->dev[c->b->ledger];
    return atomic_load(&v->mem_used) > atomic_load(&c->b->lim->mem_limit);
}

void vgpu_charge_log_refusal(const struct vgpu_charge *c, uint64_t request, int oversold)
{
    static _Atomic uint64_t last_ns, suppressed;
    uint64_t now = vgpu_now_ns(), last = atomic_load(&last_ns);
    if (now - last < 1000000000ull || !atomic_compare_exchange_strong(&last_ns, &last, now)) {
        atomic_fetch_add(&suppressed, 1);
        return;
    }
    uint64_t more = atomic_exchange(&suppressed, 0);
    const struct vgpu_shm_dev *v = &c->s->dev[c->b->ledger];
    char a[32], b[32], l[32], o[32];
    if (oversold)
        VLOG_WARN("out of memory on GPU %d (%s): %s requested; the pod holds %s of its %s cap and "
                  "%s of host memory past it (the most allowed)%s",
                  c->b->ordinal, c->b->uuid, vgpu_format_size(request, a, sizeof(a)),
                  vgpu_format_size(atomic_load(&v->mem_used), b, sizeof(b)),
                  vgpu_format_size(atomic_load(&c->b->lim->mem_limit), l, sizeof(l)),
                  vgpu_format_size(atomic_load(&v->oversold_used), o, sizeof(o)),
                  more ? " (more refusals in the last second not shown)" : "");
    else
        VLOG_WARN("out of memory on GPU %d (%s): %s requested, the pod holds %s of its %s cap%s",
                  c->b->ordinal, c->b->uuid, vgpu_format_size(request, a, sizeof(a)),
                  vgpu_format_size(atomic_load(&v->mem_used), b, sizeof(b)),
                  vgpu_format_size(atomic_load(&c->b->lim->mem_limit), l, sizeof(l)),
                  more ? " (more refusals in the last second not shown)" : "");
}
