/* cost_model.c - per-kernel and per-graph GPU time, measured with sampled events (see
 * cost_model.h). */
#include "cost_model.h"

#include <pthread.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "gate_hot.h"
#include "real_driver.h"
#include "log.h"
#include "fork_hooks.h"

#define RELAXED memory_order_relaxed
#define TLS __thread __attribute__((tls_model("initial-exec")))
#define SLOTS 8192u /* power of two */
#define PROBES 16
#define FIRST_SAMPLES 3 /* time every launch of a key until it has this many samples */
/* then at every SAMPLE_EVERY-th submission of a thread, and one that waited long in the gate */
#define SAMPLE_GAP_NS 20000000ull /* a key not sampled in the last 20 ms */
#define MAX_PENDING 32
#define DEFAULT_COST_NS 1000000u /* until anything is measured: 1 ms, on the safe side */
#define SMOOTH_BELOW_NS 20000u   /* estimates under this are smoothed (see learn) */
/* The least a measured kernel is charged: NVML counts a tiny kernel's launch at about 2 us of
 * busy time whatever its events say (they read half that or less), so a new pod charged by its
 * events runs near its free pace until the closed loop has scaled its cost up (bench/results/
 * README.md, first seconds). The floor is part of the model the loop scales, always applied, so
 * the model never changes under the loop, and the loop still scales it down where a GPU counts
 * less per launch. */
#define FLOOR_NS 2000u  /* applied where estimates are stored (learn), not per launch */
#define SMOOTH_DIV 4096 /* by this fraction of the difference a sample */

static int find_slot(uint64_t key, int insert);
static int sample_slot_if_due(int i);
/* VGPU_SAMPLE_GAP_MS (diagnosis, benchmarks): the least time between two samples of a key */
static uint64_t sample_gap_ns = SAMPLE_GAP_NS;
static int recent_on = 1;          /* VGPU_COST_RECENT=0 turns it off */
static _Atomic int gpu_shared = 1; /* vgpu_cost_set_shared; unknown counts as shared */
void vgpu_cost_set_shared(int shared)
{
    atomic_store_explicit(&gpu_shared, shared != 0, RELAXED);
}

void vgpu_cost_configure(const char *gap_ms, const char *recent)
{
    recent_on = !(recent && !strcmp(recent, "0"));
    if (recent && *recent && strcmp(recent, "0") && strcmp(recent, "1"))
        VLOG_WARN("VGPU_COST_RECENT: '%s' is not 0 or 1: 1 applies", recent);
    if (gap_ms && atoi(gap_ms) > 0) sample_gap_ns = (uint64_t)atoi(gap_ms) * 1000000ull;
}

#define RING 8
struct entry {
    _Atomic uint64_t key;
    _Atomic uint32_t ema_ns; /* the estimate: the smallest of the recent samples */
    _Atomic uint32_t samples;
    _Atomic uint32_t inflight;       /* samples of this key not read yet */
    uint32_t ema_frac;               /* ema_ns's fraction, in 1/SMOOTH_DIV ns, written under mu */
    _Atomic uint64_t last_sample_ns; /* when this key was last timed */
    uint32_t ring[RING];             /* recent samples, written under mu */
};
static struct entry table[SLOTS] __attribute__((aligned(64))); /* one line per entry */
static _Atomic uint32_t default_ns = DEFAULT_COST_NS;          /* for keys never measured yet */
static _Atomic int64_t event_overhead_ns = -1; /* measured once: an empty pair of events */

struct pending {
    int slot; /* table index; -1: an overhead calibration */
    CUevent start, end;
    CUcontext ctx;
    uint64_t gap_ns; /* launch call time to subtract (idle stream), else 0 */
};
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct pending pend[MAX_PENDING];
/* written under mu; read without it by vgpu_samples_poll's early return, hence atomic */
static _Atomic int npend;
struct spare {
    CUevent e;
    CUcontext ctx;
};
static struct spare spares[2 * MAX_PENDING];
static int nspares;
static CUcontext calibrated_ctx;

static TLS uint64_t tl_key; /* the thread's last key and its slot: loops launch the same work */
static TLS int tl_slot = -1;
static TLS uint32_t tl_count; /* the thread's submissions, for sampling by count */
#define SAMPLE_EVERY 64u      /* a key already known: time every 64th submission */

static int find(uint64_t key, int insert)
{
    if (key == tl_key && tl_slot >= 0) return tl_slot;
    int i = find_slot(key, insert);
    tl_key = i >= 0 ? key : 0; /* also when not found: tl_slot is the last key's (or -1) */
    tl_slot = i;
    return i;
}

static int find_slot(uint64_t key, int insert)
{
    uint32_t h = (uint32_t)(key ^ (key >> 29) ^ (key >> 47)) & (SLOTS - 1);
    for (int i = 0; i < PROBES; i++) {
        struct entry *e = &table[(h + (uint32_t)i) & (SLOTS - 1)];
        uint64_t k = atomic_load_explicit(&e->key, RELAXED);
        if (k == key) return (int)((h + (uint32_t)i) & (SLOTS - 1));
        if (k == 0) {
            if (!insert) return -1;
            uint64_t zero = 0;
            if (atomic_compare_exchange_strong(&e->key, &zero, key) || zero == key)
                return (int)((h + (uint32_t)i) & (SLOTS - 1));
        }
    }
    return -1; /* neighbourhood full: treated as never measured */
}

/* events of the current context, reused */
static CUevent take_event(CUcontext ctx)
{
    for (int i = 0; i < nspares; i++) {
        if (spares[i].ctx != ctx) continue;
        CUevent e = spares[i].e;
        spares[i] = spares[--nspares];
        return e;
    }
    vgpu_helper_fn_cuEventCreate create = VGPU_HELPER(cuEventCreate);
    CUevent e = NULL;
    if (!create || create(&e, CU_EVENT_DEFAULT) != CUDA_SUCCESS) return NULL;
    return e;
}

static void give_event(CUevent e, CUcontext ctx)
{
    if (!e) return;
    if (nspares < (int)(sizeof(spares) / sizeof(spares[0]))) {
        spares[nspares].e = e;
        spares[nspares++].ctx = ctx;
        return;
    }
    vgpu_helper_fn_cuEventDestroy_v2 destroy = VGPU_HELPER(cuEventDestroy_v2);
    if (destroy) destroy(e);
}

static CUresult record(CUevent e, CUstream stream, int per_thread)
{
    vgpu_helper_fn_cuEventRecord rec = VGPU_HELPER(cuEventRecord);
    if (!stream && per_thread) stream = CU_STREAM_PER_THREAD;
    return rec ? rec(e, stream) : CUDA_ERROR_NOT_FOUND;
}

/* mu held: queue an event pair recorded around nothing, to learn what events cost */
static void calibrate_locked(CUcontext ctx, CUstream stream, int per_thread)
{
    for (int k = 0; k < 3 && npend < MAX_PENDING; k++) {
        struct pending *p = &pend[npend];
        p->start = take_event(ctx);
        p->end = take_event(ctx);
        p->ctx = ctx;
        p->slot = -1;
        p->gap_ns = 0;
        if (p->start && p->end && record(p->start, stream, per_thread) == CUDA_SUCCESS &&
            record(p->end, stream, per_thread) == CUDA_SUCCESS) {
            npend++;
        } else {
            give_event(p->start, ctx);
            give_event(p->end, ctx);
        }
    }
    calibrated_ctx = ctx;
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* the kernel's tick-granular clock (vDSO, no counter read): enough to space samples 20 ms
 * apart, and cheap even where reading the precise clock traps to the hypervisor */
static uint64_t coarse_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t vgpu_cost_estimate(uint64_t key, int *sample_slot)
{
    *sample_slot = -1;
    int i = find(key, 1);
    uint32_t n = i >= 0 ? atomic_load_explicit(&table[i].samples, RELAXED) : 0;
    uint64_t cost = n ? atomic_load_explicit(&table[i].ema_ns, RELAXED)
                      : atomic_load_explicit(&default_ns, RELAXED);
    int every = (++tl_count % SAMPLE_EVERY) == 0;
    if (__builtin_expect(!every && n >= FIRST_SAMPLES, 1)) return cost; /* the common case */
    *sample_slot = sample_slot_if_due(i);
    return cost;
}

/* slot i (or -1): time this submission of its key, unless one is in flight or, for a key past
 * its first samples, one was taken less than the gap ago */
static int sample_slot_if_due(int i)
{
    if (i < 0 || vgpu_capturing()) return -1;
    struct entry *e = &table[i];
    vgpu_samples_poll(); /* new keys learn as soon as they can */
    uint32_t n = atomic_load_explicit(&e->samples, RELAXED);
    uint64_t now = coarse_ns();
    if (atomic_load_explicit(&e->inflight, RELAXED)) return -1;
    if (n >= FIRST_SAMPLES &&
        now - atomic_load_explicit(&e->last_sample_ns, RELAXED) < sample_gap_ns)
        return -1;
    atomic_store_explicit(&e->last_sample_ns, now, RELAXED);
    return i;
}

int vgpu_cost_sample_after_wait(void)
{
    return sample_slot_if_due(vgpu_cost_last_slot());
}

void vgpu_sample_begin(int slot, CUstream stream, int per_thread, struct vgpu_sample *smp)
{
    smp->slot = -1;
    vgpu_helper_fn_cuCtxGetCurrent cur = VGPU_HELPER(cuCtxGetCurrent);
    vgpu_helper_fn_cuStreamQuery squery = VGPU_HELPER(cuStreamQuery);
    CUcontext ctx = NULL;
    if (!cur || cur(&ctx) != CUDA_SUCCESS || !ctx) return;
    pthread_mutex_lock(&mu);
    if (calibrated_ctx != ctx) calibrate_locked(ctx, stream, per_thread);
    if (npend < MAX_PENDING) {
        smp->start = take_event(ctx);
        smp->end = take_event(ctx);
        smp->ctx = ctx;
        CUstream s = !stream && per_thread ? CU_STREAM_PER_THREAD : stream;
        smp->idle = squery && squery(s) == CUDA_SUCCESS;
        if (smp->start && smp->end && record(smp->start, stream, per_thread) == CUDA_SUCCESS) {
            smp->slot = slot;
            smp->submit_ns = mono_ns();
        } else {
            give_event(smp->start, ctx);
            give_event(smp->end, ctx);
        }
    }
    pthread_mutex_unlock(&mu);
}

void vgpu_sample_end(struct vgpu_sample *smp, CUstream stream, int per_thread, CUresult launched)
{
    /* a launch call that took long was blocked (a full queue), not slow to reach the GPU */
    uint64_t gap = smp->idle ? mono_ns() - smp->submit_ns : 0;
    if (gap > 20000) gap = 0;
    pthread_mutex_lock(&mu);
    if (launched == CUDA_SUCCESS && npend < MAX_PENDING &&
        record(smp->end, stream, per_thread) == CUDA_SUCCESS) {
        pend[npend].slot = smp->slot;
        pend[npend].start = smp->start;
        pend[npend].end = smp->end;
        pend[npend].ctx = smp->ctx;
        pend[npend].gap_ns = gap;
        npend++;
        atomic_fetch_add_explicit(&table[smp->slot].inflight, 1, RELAXED);
    } else {
        give_event(smp->start, smp->ctx);
        give_event(smp->end, smp->ctx);
    }
    pthread_mutex_unlock(&mu);
}

/* mu held. Sharing the GPU only ever makes a kernel look longer (its events also span the
 * time slices the GPU gave to other contexts), so what is learnt is the smallest of the last
 * eight samples, which is not inflated by contention unless all eight were. For kernels
 * under 20 us the first eight samples set the estimate and later ones move it by 1/4096 of
 * the difference each (at most 50 samples a second: over minutes, not seconds). Events do not
 * time kernels of 1-3 us: their figures vary several-fold with how the launches are spaced,
 * while NVML's busy time per launch holds still whether the loop runs free or held. The scale
 * of the closed loop on NVML carries such a kernel's cost, and it can only settle on a model
 * that does not move under it: an estimate that follows its samples within seconds makes the
 * loop chase the model instead of NVML (bench/results/compute-runs.md, sixth run;
 * limiter_compute-tiny). Down it moves at once: a sample is never shorter than the kernel by
 * sharing, and the first eight of a new process can all be long (a throttled pod's launches
 * meet an idle GPU), which held a tiny kernel at twice its cost for minutes. A kernel that was
 * longer before moves at once. Longer kernels time
 * well and take the smallest of eight at once: their cost follows the GPU's clock, and a
 * lagging estimate would charge a pod starting beside another the clock of before.
 * The smallest of eight is also below what the kernel takes on average while the clock moves
 * under a power cap (it picks the fastest), and it keeps a new process's first samples, taken
 * on an idle GPU at its highest clock, for as long as they are in the ring. Where no other
 * context can inflate a sample (vgpu_cost_set_shared) the median of the last three follows the
 * clock without either (bench/results/README.md, "median of recent samples"); VGPU_COST_RECENT=0
 * keeps the smallest of eight throughout (diagnosis). */
static uint32_t median3(uint32_t a, uint32_t b, uint32_t c)
{
    uint32_t hi = a > b ? a : b, lo = a > b ? b : a;
    return c >= hi ? hi : (c <= lo ? lo : c);
}

static void learn(int slot, uint64_t ns)
{
    struct entry *e = &table[slot];
    uint32_t n = atomic_load_explicit(&e->samples, RELAXED);
    uint32_t v = ns > UINT32_MAX ? UINT32_MAX : (uint32_t)ns;
    e->ring[n % RING] = v;
    uint32_t have = n + 1 < RING ? n + 1 : RING, lo = UINT32_MAX;
    for (uint32_t k = 0; k < have; k++)
        if (e->ring[k] < lo) lo = e->ring[k];
    uint32_t cur = atomic_load_explicit(&e->ema_ns, RELAXED);
    if (have == RING && n >= RING && lo < SMOOTH_BELOW_NS && cur < SMOOTH_BELOW_NS && lo >= cur) {
        /* in 1/SMOOTH_DIV ns: whole ns would not move for differences under SMOOTH_DIV ns */
        int64_t fine = (int64_t)cur * SMOOTH_DIV + e->ema_frac;
        fine += (int64_t)lo - fine / SMOOTH_DIV;
        lo = (uint32_t)(fine / SMOOTH_DIV);
        e->ema_frac = (uint32_t)(fine % SMOOTH_DIV);
    } else {
        e->ema_frac = 0;
        if (recent_on && have >= 3 && lo >= SMOOTH_BELOW_NS &&
            !atomic_load_explicit(&gpu_shared, RELAXED))
            lo = median3(e->ring[n % RING], e->ring[(n + RING - 1) % RING],
                         e->ring[(n + RING - 2) % RING]);
    }
    atomic_store_explicit(&e->ema_ns, lo < FLOOR_NS ? FLOOR_NS : lo, RELAXED);
    if (n < UINT32_MAX) atomic_store_explicit(&e->samples, n + 1, RELAXED);
    VLOG_TRACE("cost sample: slot %d measured %llu ns, estimate now %u ns", slot,
               (unsigned long long)ns, lo < FLOOR_NS ? FLOOR_NS : lo);
    /* what a key never measured yet is charged follows the process's kernels down, never above
     * where it started: a sample taken while dozens of contexts start spans their work too, and
     * the first launch of every new key would have been charged that */
    uint32_t d = atomic_load_explicit(&default_ns, RELAXED);
    int64_t nd = (int64_t)d + ((int64_t)v - (int64_t)d) / 16;
    if (nd > DEFAULT_COST_NS) nd = DEFAULT_COST_NS;
    atomic_store_explicit(&default_ns, (uint32_t)(nd < FLOOR_NS ? FLOOR_NS : nd), RELAXED);
}

void vgpu_samples_poll(void)
{
    if (vgpu_capturing()) return; /* event queries would break the capture */
    if (!atomic_load_explicit(&npend, RELAXED)) return;
    vgpu_helper_fn_cuEventQuery query = VGPU_HELPER(cuEventQuery);
    vgpu_helper_fn_cuEventElapsedTime elapsed = VGPU_HELPER(cuEventElapsedTime);
    if (!query || !elapsed) return;
    if (pthread_mutex_trylock(&mu) != 0) return; /* someone else is at it */
    for (int k = 0; k < npend;) {
        struct pending *p = &pend[k];
        CUresult q = query(p->end);
        if (q == CUDA_ERROR_NOT_READY) {
            k++;
            continue;
        }
        float ms = 0;
        if (q == CUDA_SUCCESS && elapsed(&ms, p->start, p->end) == CUDA_SUCCESS) {
            int64_t ns = (int64_t)((double)ms * 1e6);
            if (p->slot < 0) {
                /* an empty pair of events costs a few microseconds; a longer one spanned other
                 * contexts' work and says nothing about the events */
                int64_t cur = atomic_load(&event_overhead_ns);
                if (ns <= 50000 && (cur < 0 || ns < cur)) atomic_store(&event_overhead_ns, ns);
            } else {
                int64_t ovh = atomic_load(&event_overhead_ns);
                ns -= (ovh > 0 ? ovh : 0) + (int64_t)p->gap_ns;
                learn(p->slot, ns > 500 ? (uint64_t)ns : 500);
            }
        }
        if (p->slot >= 0) atomic_fetch_sub_explicit(&table[p->slot].inflight, 1, RELAXED);
        give_event(p->start, p->ctx);
        give_event(p->end, p->ctx);
        *p = pend[--npend];
    }
    pthread_mutex_unlock(&mu);
}

int vgpu_cost_last_slot(void)
{
    return tl_key ? tl_slot : -1;
}

uint64_t vgpu_cost_recheck(int slot)
{
    if (slot < 0 || slot >= (int)SLOTS) return 0;
    vgpu_samples_poll();
    if (!atomic_load_explicit(&table[slot].samples, RELAXED)) return 0;
    return atomic_load_explicit(&table[slot].ema_ns, RELAXED);
}

int vgpu_cost_unsure(int slot)
{
    return slot >= 0 && slot < (int)SLOTS &&
           atomic_load_explicit(&table[slot].samples, RELAXED) < FIRST_SAMPLES + 2 &&
           atomic_load_explicit(&gpu_shared, RELAXED);
}

static void vgpu_cost_reset_in_child(void)
{
    /* events belong to the parent's contexts */
    pthread_mutex_init(&mu, NULL);
    for (int k = 0; k < npend; k++)
        if (pend[k].slot >= 0) atomic_store(&table[pend[k].slot].inflight, 0);
    npend = 0;
    nspares = 0;
    calibrated_ctx = NULL;
}

__attribute__((constructor)) static void register_fork(void)
{
    vgpu_fork_register(VGPU_FORK_COST_MODEL, NULL, NULL, vgpu_cost_reset_in_child);
}
