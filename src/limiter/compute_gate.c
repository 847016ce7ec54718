/* compute_gate.c - the GPU-time budget every submission passes (see compute_gate.h). */
#define _GNU_SOURCE
#include "compute_gate.h"

#include <errno.h>
#include <stdatomic.h>
#include <time.h>

#include "../common/shm_region.h"
#include "devices.h"
#include "hook_dispatch.h"
#include "hv_client.h"
#include "limiter.h"

#define RELAXED memory_order_relaxed
#define TLS __thread __attribute__((tls_model("initial-exec")))
#define UNLIMITED(share) ((share) == 0 || (share) >= 10000)

static _Atomic int captures; /* stream captures in progress in this process */
static _Atomic int visible_devices = -1;

static TLS struct vgpu_shm_dev *tl_dev; /* GPU the thread's pending charge belongs to */
static TLS uint64_t tl_pending;         /* GPU time not yet published */
static TLS uint64_t tl_launches;        /* submissions not yet counted */

void vgpu_capture_begin(void)
{
    atomic_fetch_add(&captures, 1);
}
void vgpu_capture_end(void)
{
    int n = atomic_load(&captures);
    while (n > 0 && !atomic_compare_exchange_weak(&captures, &n, n - 1)) {
    }
}
int vgpu_capturing(void)
{
    return atomic_load_explicit(&captures, RELAXED) > 0;
}
void vgpu_gate_reset_in_child(void)
{
    atomic_store(&captures, 0);
}

static int device_count(void)
{
    int n = atomic_load_explicit(&visible_devices, RELAXED);
    if (n >= 0) return n;
    vgpu_helper_fn_cuDeviceGetCount count = VGPU_HELPER(cuDeviceGetCount);
    if (!count || count(&n) != CUDA_SUCCESS) return 0;
    atomic_store(&visible_devices, n);
    return n;
}

static int stream_capturing(CUstream stream, int per_thread)
{
    vgpu_helper_fn_cuStreamIsCapturing is = VGPU_HELPER(cuStreamIsCapturing);
    int status = 0;
    if (!stream && per_thread) stream = CU_STREAM_PER_THREAD;
    return is && is(stream, &status) == CUDA_SUCCESS && status != 0;
}

struct vgpu_shm_dev *vgpu_gate_lookup(CUstream stream, int per_thread_stream)
{
    if (!vgpu_g.cfg.gate_on) return NULL; /* no compute limit and no daemon that may set one */
    CUdevice dev = 0;
    /* one visible GPU: no need to ask the driver which one is current */
    if (device_count() != 1 && vgpu_current_device(&dev) != CUDA_SUCCESS) return NULL;
    const struct vgpu_binding *b = vgpu_bind(dev);
    if (atomic_load_explicit(&b->state, RELAXED) != VGPU_BIND_LEDGER) return NULL;
    struct vgpu_shm *s = atomic_load_explicit(&vgpu_g.shm, memory_order_acquire);
    /* suspended by the node daemon: one relaxed load of a line every submission reads */
    if (__builtin_expect(atomic_load_explicit(&s->suspended, RELAXED) != 0, 0))
        vgpu_hv_wait_resumed(s);
    struct vgpu_shm_dev *d = &s->dev[b->ledger];
    /* Unlimited: nothing to enforce. But under the node daemon the pod's use must still be
     * counted (gate_charged_ns), or its scheduler would take a busy pod for an idle one. */
    if (UNLIMITED(atomic_load_explicit(&d->core_effective, RELAXED)) &&
        !atomic_load_explicit(&s->managed, RELAXED))
        return NULL;
    if (__builtin_expect(vgpu_capturing(), 0) && stream_capturing(stream, per_thread_stream))
        return NULL;
    return d;
}

static void sleep_until(uint64_t t)
{
    struct timespec ts = {.tv_sec = (time_t)(t / 1000000000ull),
                          .tv_nsec = (long)(t % 1000000000ull)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
}

/* Wait for our turn. A share changed meanwhile rescales what is left of the wait. */
static void wait_turn(struct vgpu_shm_dev *d, uint64_t target, uint32_t share)
{
    uint64_t start = vgpu_now_ns(), now = start;
    while (now < target) {
        uint32_t cur = atomic_load_explicit(&d->core_effective, RELAXED);
        if (UNLIMITED(cur)) break;
        if (cur != share) {
            target = now + (target - now) * share / cur;
            share = cur;
            continue;
        }
        uint64_t step = target - now < 50000000ull ? target : now + 50000000ull;
        sleep_until(step);
        now = vgpu_now_ns();
    }
    atomic_fetch_add_explicit(&d->gate_waited_ns, now - start, RELAXED);
}

static void publish(struct vgpu_shm_dev *d, uint64_t cost)
{
    uint32_t share = atomic_load_explicit(&d->core_effective, RELAXED);
    atomic_fetch_add_explicit(&d->gate_charged_ns, cost, RELAXED);
    atomic_fetch_add_explicit(&d->gate_launches, tl_launches, RELAXED);
    tl_launches = 0;
    if (UNLIMITED(share)) return;
    /* the measured correction of the cost model (compute_feedback.c) */
    uint32_t scale = atomic_load_explicit(&d->gate_scale, RELAXED);
    if (scale) cost = cost * scale / 1024u;
    int64_t entitle = (int64_t)(cost * 10000ull / share);
    int64_t now = (int64_t)vgpu_now_ns();
    int64_t old = atomic_load_explicit(&d->gate_vclock, RELAXED), base;
    do {
        base = old > now - VGPU_GATE_BURST_NS ? old : now - VGPU_GATE_BURST_NS;
    } while (!atomic_compare_exchange_weak_explicit(&d->gate_vclock, &old, base + entitle,
                                                    memory_order_acq_rel, RELAXED));
    if (base > now) wait_turn(d, (uint64_t)base, share);
}

void vgpu_gate_charge(struct vgpu_shm_dev *d, uint64_t cost_ns)
{
    if (__builtin_expect(tl_dev != d, 0)) {
        if (tl_dev && tl_pending) publish(tl_dev, tl_pending);
        tl_dev = d;
        tl_pending = 0;
    }
    tl_pending += cost_ns;
    tl_launches++;
    if (tl_pending < VGPU_GATE_FLUSH_NS) return;
    uint64_t cost = tl_pending;
    tl_pending = 0;
    publish(d, cost);
}

void vgpu_gate_set_effective(struct vgpu_shm_dev *d, uint32_t share)
{
    uint32_t old = atomic_exchange(&d->core_effective, share);
    if (old == share) return;
    int64_t now = (int64_t)vgpu_now_ns();
    int64_t v = atomic_load(&d->gate_vclock), nv;
    do {
        if (UNLIMITED(old) || UNLIMITED(share) || v <= now)
            nv = 0; /* no debt carried across an unlimited period */
        else
            nv = now + (int64_t)((uint64_t)(v - now) * old / share);
    } while (!atomic_compare_exchange_weak(&d->gate_vclock, &v, nv));
}
