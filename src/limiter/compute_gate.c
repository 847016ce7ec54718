/* compute_gate.c - the GPU-time budget every submission passes (see compute_gate.h). */
#define _GNU_SOURCE
#include "compute_gate.h"

#include <errno.h>
#include <stdatomic.h>
#include <time.h>

#include "../common/shm_region.h"
#include "devices.h"
#include "real_driver.h"
#include "limiter.h"
#include "cost_model.h"
#include "fork_hooks.h"
#include "log.h"

#define RELAXED memory_order_relaxed
#define TLS __thread __attribute__((tls_model("initial-exec")))
#define UNLIMITED(share) VGPU_GATE_UNLIMITED(share)

static _Atomic int visible_devices = -1;

static TLS struct vgpu_shm_dev *tl_dev; /* GPU the thread's pending charge belongs to */
static TLS uint64_t tl_pending;         /* GPU time not yet published */
static TLS uint64_t tl_launches;        /* submissions not yet counted */

void vgpu_gate_wait_resumed(const _Atomic uint32_t *word)
{
    /* no lock is held here, so exit() from another thread (or a signal) is never blocked */
    while (atomic_load_explicit(word, RELAXED)) {
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 1000000L};
        while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
        }
    }
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

int vgpu_stream_capturing(CUstream stream, int per_thread)
{
    vgpu_helper_fn_cuStreamIsCapturing is = VGPU_HELPER(cuStreamIsCapturing);
    int status = 0;
    if (!stream && per_thread) stream = CU_STREAM_PER_THREAD;
    return is && is(stream, &status) == CUDA_SUCCESS && status != 0;
}

/* The full lookup: the first submissions of a process, and every one where several GPUs are
 * visible. Once the only GPU is bound, it fills vgpu_gate_hot and is not asked again. */
struct vgpu_shm_dev *vgpu_gate_lookup_slow(CUstream stream, int per_thread_stream)
{
    if (!vgpu_g.cfg.gate_on) return NULL; /* no compute limit and no daemon that may set one */
    /* no ledger to gate with (a daemon that has not answered, no limits of our own): wait */
    const _Atomic uint32_t *local = &vgpu_g.local_suspended;
    if (__builtin_expect(atomic_load_explicit(local, RELAXED) != 0, 0))
        vgpu_gate_wait_resumed(local);
    CUdevice dev = 0;
    int one = device_count() == 1;
    /* one visible GPU: no need to ask the driver which one is current */
    if (!one && vgpu_current_device(&dev) != CUDA_SUCCESS) return NULL;
    const struct vgpu_binding *b = vgpu_bind(dev);
    if (atomic_load_explicit(&b->state, RELAXED) != VGPU_BIND_LEDGER) return NULL;
    struct vgpu_shm *s = atomic_load_explicit(&vgpu_g.shm, memory_order_acquire);
    struct vgpu_shm_dev *d = &s->dev[b->ledger];
    const _Atomic uint32_t *susp = vgpu_suspended_word();
    if (one && !vgpu_failed_closed()) {
        atomic_store_explicit(&vgpu_gate_hot.susp, susp, RELAXED);
        atomic_store_explicit(&vgpu_gate_hot.dev, d, memory_order_release);
    }
    return vgpu_gate_admit(susp, d, stream, per_thread_stream);
}

static void sleep_until(uint64_t t)
{
    struct timespec ts = {.tv_sec = (time_t)(t / 1000000000ull),
                          .tv_nsec = (long)(t % 1000000000ull)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
}

/* One launch's charge on a pod's clock, for a second look while the pod waits (see
 * second_look). */
struct charge {
    struct vgpu_shm_dev *dev;
    int slot;        /* the cost model's slot of the launch; -1: several launches, or none */
    uint64_t est;    /* the estimate it was charged at */
    int64_t entitle; /* the wall time of the pod's clock it took */
    int64_t full;    /* what it would have taken but for VGPU_GATE_UNSURE_MAX_NS */
};
static TLS struct charge tl_prev; /* the thread's charge before the one now waiting */

/* How much of charge c was too much, now that the model has read the samples that finished
 * meanwhile: all that the estimate went down by, when it fell to half or less. A smaller fall
 * is what the GPU's clock does to every estimate, and is left to the model. */
static int64_t overcharged(struct charge *c, const struct vgpu_shm_dev *d)
{
    if (c->dev != d || c->slot < 0 || c->entitle <= 0 || !c->est) return 0;
    uint64_t est = vgpu_cost_recheck(c->slot);
    if (!est || est * 2 > c->est) return 0;
    int64_t want = (int64_t)((double)c->full * (double)est / (double)c->est);
    int64_t back = c->entitle > want ? c->entitle - want : 0;
    c->entitle -= back;
    c->full = want;
    c->est = est;
    return back;
}

/* While a thread waits 50 ms or more for its turn, a second look: an estimate taken while many
 * contexts time-sliced the GPU can be tens of times a kernel's own time (its events span the
 * other contexts' slices), and at a low share each launch charged at it holds the pod for
 * seconds. The thread's launch before this one was timed if it waited long (cost_model.h),
 * and has usually finished by now; where it brought the estimate down, the launch now waiting
 * and that launch before it (the charge this thread waits for) give back what they were charged
 * too much, so that one wrong estimate costs the pod a 50 ms step and not the seconds it charged
 * (hv-64, tests/gpu/run). Another process of the pod giving back what it was charged before this
 * one moves the pod's clock back: the target follows it down, never below where this charge now
 * begins. Returns the new target. */
static uint64_t second_look(struct vgpu_shm_dev *d, const struct vgpu_dev_limits *lim,
                            uint64_t target, uint32_t share, struct charge *cur)
{
    int64_t mine = overcharged(cur, d), before = overcharged(&tl_prev, d);
    if (mine + before > 0) {
        atomic_fetch_sub_explicit(&d->limiter.gate_vclock, mine + before, RELAXED);
        VLOG_DEBUG("gate: estimates fell (to %llu ns): %.1f ms of the pod's clock given back",
                   (unsigned long long)(mine ? cur->est : tl_prev.est), (mine + before) / 1e6);
        target = (uint64_t)before < target ? target - (uint64_t)before : 0;
    }
    if (atomic_load_explicit(&lim->core_effective, RELAXED) != share) return target;
    int64_t clock = atomic_load_explicit(&d->limiter.gate_vclock, RELAXED) - cur->entitle;
    return clock >= 0 && (uint64_t)clock < target ? (uint64_t)clock : target;
}

/* Wait for our turn. A share changed meanwhile rescales what is left of the wait. The time
 * waited is published every step of at most 50 ms, not at the end: the node daemon reads a
 * pod whose waited time grows as one that wants more, and one that has waited a whole tick
 * without a sign as idle (its share would shrink while it waits, and the wait with it grow). */
static void wait_turn(struct vgpu_shm_dev *d, const struct vgpu_dev_limits *lim, uint64_t target,
                      uint32_t share, struct charge *cur)
{
    uint64_t now = vgpu_now_ns();
    while (now < target) {
        uint32_t was = share, next = atomic_load_explicit(&lim->core_effective, RELAXED);
        if (UNLIMITED(next)) break;
        if (next != share) {
            target = now + (target - now) * share / next;
            share = next;
            /* the charges' wall time, in the new share's (the pod's clock is rescaled alike) */
            cur->entitle = cur->entitle * was / next;
            cur->full = cur->full * was / next;
            tl_prev.entitle = tl_prev.entitle * was / next;
            tl_prev.full = tl_prev.full * was / next;
            continue;
        }
        uint64_t step = target - now < 50000000ull ? target : now + 50000000ull;
        sleep_until(step);
        uint64_t after = vgpu_now_ns();
        atomic_fetch_add_explicit(&d->gate_waited_ns, after - now, RELAXED);
        now = after;
        if (now < target) target = second_look(d, lim, target, share, cur);
    }
}

/* The virtual clock runs also while the share is unlimited, at the full share, and nobody waits
 * then: it tells how far ahead of the GPU the pod has queued work. A program that ran unlimited
 * has filled the driver's queue (a bf16 8192 matmul loop: seconds of work), and when a limit
 * comes that work still runs first; the pod's next submission waits for it, so the share holds
 * from the time the GPU is through it. Without it a pod cut from unlimited keeps the GPU full
 * for seconds while the model says it holds its share, and the closed loop takes that backlog
 * for a wrong model (bench/results/compute-runs.md, fourth run; limiter_compute-backlog).
 * At most VGPU_GATE_BACKLOG_NS is tracked, so that estimates of work never timed yet cannot
 * stall a pod for long when a limit comes. */
/* the limits of ledger device d in this process (bound before any charge reaches it) */
static const struct vgpu_dev_limits *lim_of(const struct vgpu_shm_dev *d)
{
    const struct vgpu_shm *s = atomic_load_explicit(&vgpu_g.shm, RELAXED);
    return atomic_load_explicit(&vgpu_ledger_lim[d - s->dev], memory_order_acquire);
}

static int publish(struct vgpu_shm_dev *d, uint64_t cost, int slot)
{
    struct charge cur = {d, slot, cost, 0, 0};
    const struct vgpu_dev_limits *lim = lim_of(d);
    uint32_t share = vgpu_gate_sync(d, lim);
    atomic_fetch_add_explicit(&d->gate_charged_ns, cost, RELAXED);
    atomic_fetch_add_explicit(&d->limiter.gate_launches, tl_launches, RELAXED);
    tl_launches = 0;
    int unlimited = UNLIMITED(share);
    /* the measured correction of the cost model (compute_feedback.c) */
    uint32_t scale = atomic_load_explicit(&d->limiter.gate_scale, RELAXED);
    if (scale) cost = cost * scale / 1024u;
    /* a limited pod pays its GPU time at the speed of a full GPU (dvfs_model.h); the queued work
     * tracked while unlimited is real GPU time */
    uint32_t dvfs = atomic_load_explicit(&d->gate_dvfs, RELAXED);
    if (dvfs > 1024u && !unlimited) cost = cost * dvfs / 1024u;
    /* and, while its context time-slices the GPU with other pods', the part of the GPU's time
     * that sharing costs beyond the model: the daemon's factor (src/hypervisor/contention.h),
     * bounded here too (the control region is the daemon's, but its bound is the contract) */
    uint32_t shared = atomic_load_explicit(&lim->core_shared, RELAXED);
    if (shared > 1024u && !unlimited)
        cost = cost * (shared > VGPU_SHARED_MAX ? VGPU_SHARED_MAX : shared) / 1024u;
    int64_t entitle = unlimited ? (int64_t)cost : (int64_t)(cost * 10000ull / share);
    cur.full = entitle;
    if (!unlimited && entitle > VGPU_GATE_UNSURE_MAX_NS && vgpu_cost_unsure(slot)) {
        entitle = VGPU_GATE_UNSURE_MAX_NS;
        VLOG_DEBUG("gate: estimate %llu ns not sure yet: %.1f s of the pod's clock, not %.1f",
                   (unsigned long long)cur.est, entitle / 1e9, cur.full / 1e9);
    }
    int64_t now = (int64_t)vgpu_now_ns();
    int64_t old = atomic_load_explicit(&d->limiter.gate_vclock, RELAXED), base, next;
    do {
        /* a pod's first charge (clock 0) starts with an empty bank: over a run measured from
         * its start, a full one is VGPU_GATE_BURST_NS x share of GPU time on top */
        int64_t edge = old ? now - VGPU_GATE_BURST_NS : now;
        base = old > edge ? old : edge;
        next = base + entitle;
        if (unlimited && next > now + VGPU_GATE_BACKLOG_NS) next = now + VGPU_GATE_BACKLOG_NS;
    } while (!atomic_compare_exchange_weak_explicit(&d->limiter.gate_vclock, &old, next,
                                                    memory_order_acq_rel, RELAXED));
    cur.entitle = unlimited ? 0 : entitle;
    if (!unlimited && base > now) wait_turn(d, lim, (uint64_t)base, share, &cur);
    tl_prev = cur;
    return !unlimited && base - now >= VGPU_GATE_LONG_WAIT_NS;
}

int vgpu_gate_charge(struct vgpu_shm_dev *d, uint64_t cost_ns)
{
    if (__builtin_expect(tl_dev != d, 0)) {
        if (tl_dev && tl_pending) publish(tl_dev, tl_pending, -1);
        tl_dev = d;
        tl_pending = 0;
    }
    tl_pending += cost_ns;
    tl_launches++;
    if (tl_pending < VGPU_GATE_FLUSH_NS) return 0;
    uint64_t cost = tl_pending;
    tl_pending = 0;
    /* one launch's charge can be looked at again (second_look); a batch's is not */
    return publish(d, cost, tl_launches == 1 ? vgpu_cost_last_slot() : -1);
}

uint32_t vgpu_gate_sync(struct vgpu_shm_dev *d, const struct vgpu_dev_limits *lim)
{
    uint32_t share = atomic_load_explicit(&lim->core_effective, RELAXED);
    uint32_t old = atomic_load_explicit(&d->limiter.gate_share, RELAXED);
    if (__builtin_expect(old == share, 1)) return share;
    /* one process of the pod rescales: the one whose exchange moves gate_share */
    if (!atomic_compare_exchange_strong(&d->limiter.gate_share, &old, share)) return share;
    int64_t now = (int64_t)vgpu_now_ns();
    int64_t v = atomic_load(&d->limiter.gate_vclock), nv;
    do {
        /* a pod not ahead of its clock keeps what it has banked: the daemon moves shares every
         * tick, and a bank reset on each move would hand out a fresh burst every 100 ms */
        if (v <= now) return share;
        if (UNLIMITED(old) || UNLIMITED(share))
            nv = v; /* queued work (see publish): the pod waits until the GPU is through it */
        else
            nv = now + (int64_t)((uint64_t)(v - now) * old / share); /* budget: rescaled */
    } while (!atomic_compare_exchange_weak(&d->limiter.gate_vclock, &v, nv));
    return share;
}

void vgpu_gate_debit(struct vgpu_shm_dev *d, uint64_t gpu_ns, uint32_t share)
{
    if (!gpu_ns || UNLIMITED(share)) return;
    /* a clock behind the bank's edge absorbs the debt: the pod was under its share anyway */
    atomic_fetch_add_explicit(&d->limiter.gate_vclock, (int64_t)(gpu_ns * 10000ull / share),
                              RELAXED);
}

void vgpu_gate_set_effective(struct vgpu_shm_dev *d, uint32_t share)
{
    atomic_store(&d->lim.core_effective, share);
    vgpu_gate_sync(d, &d->lim);
}

/* the forking thread's last charge is its parent's: a child must not give it back again */
static void vgpu_gate_clock_reset_in_child(void)
{
    tl_prev = (struct charge){0};
}

__attribute__((constructor)) static void register_fork(void)
{
    vgpu_fork_register(VGPU_FORK_GATE_CLOCK, NULL, NULL, vgpu_gate_clock_reset_in_child);
}
