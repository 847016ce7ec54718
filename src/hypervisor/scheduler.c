/* scheduler.c - the "weighted" compute policy: how a GPU's time is split among its pods.
 *
 * Why this exists: each tick the daemon turns measured use into each pod's core_effective.
 * Hard pods get exactly their limit. Soft pods first get min(limit, demand), shared by weight
 * when those do not fit, then the idle rest of the GPU goes to soft pods that want more, again
 * by weight. Both steps are weighted water-filling with caps, done on doubles and rounded by
 * largest remainder so that integer shares add up exactly. Pure function: no state between
 * ticks other than what the caller passes back in (prev).
 */
#include "scheduler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define FULL 10000u
#define MIN_DEMAND 100u
#define MIN_HEADROOM 200u
/* A pod that used at least this share (per mille) of what it had is treated as wanting more:
 * the gate limited it even if it never had to wait visibly. Without this, a pod running right
 * at its share would be offered use + 25% one tick and more the next, and oscillate. */
#define NEARLY_ALL_PERMILLE 900u

struct wf_item {
    double weight;
    double cap; /* the most this item may receive in this round */
    double x;   /* real-valued share */
    uint32_t got;
};

static uint32_t clamp_u32(uint32_t v, uint32_t lo, uint32_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* Demand of one pod: how much it could use next tick. */
static uint32_t pod_demand(const struct sched_pod *p)
{
    if (p->wants_more) return FULL;
    if (p->prev > 0 && (uint64_t)p->used * 1000u >= (uint64_t)p->prev * NEARLY_ALL_PERMILLE)
        return FULL;
    uint32_t used = p->used > FULL ? FULL : p->used;
    uint32_t headroom = used / 4 > MIN_HEADROOM ? used / 4 : MIN_HEADROOM;
    uint32_t d = used + headroom;
    if (p->prev == 0 && d < p->limit) d = p->limit; /* a new pod wants its limit */
    return clamp_u32(d, MIN_DEMAND, FULL);
}

static double filled(const struct wf_item *it, size_t n, double level)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) {
        double v = it[i].weight * level;
        s += v < it[i].cap ? v : it[i].cap;
    }
    return s;
}

/* Weighted water-filling: give item i min(cap_i, weight_i * L) with L chosen so the total is
 * min(budget, sum of caps); then round down and hand the units lost to rounding to the items
 * with the largest fractions. Caps and budget are whole units, so the result is exact. Returns
 * the units handed out; items' `got` hold their shares. */
static uint32_t waterfill(struct wf_item *it, size_t n, uint32_t budget)
{
    double caps = 0, top = 0;
    for (size_t i = 0; i < n; i++) {
        it[i].got = 0;
        caps += it[i].cap;
        if (it[i].weight > 0 && it[i].cap / it[i].weight > top) top = it[i].cap / it[i].weight;
    }
    if (caps <= budget) {
        uint32_t total = 0;
        for (size_t i = 0; i < n; i++) {
            it[i].x = it[i].cap;
            it[i].got = (uint32_t)it[i].cap;
            total += it[i].got;
        }
        return total;
    }
    double lo = 0, hi = top;
    for (int iter = 0; iter < 100 && hi - lo > 1e-12 * (hi > 1 ? hi : 1); iter++) {
        double mid = (lo + hi) / 2;
        if (filled(it, n, mid) < budget)
            lo = mid;
        else
            hi = mid;
    }
    uint32_t total = 0;
    for (size_t i = 0; i < n; i++) {
        double v = it[i].weight * hi;
        it[i].x = v < it[i].cap ? v : it[i].cap;
        /* shave floating-point noise so 2499.9999999 does not become 2499 + a lottery */
        double r = floor(it[i].x + 1e-7);
        if (r > it[i].cap) r = it[i].cap;
        it[i].got = (uint32_t)r;
        total += it[i].got;
    }
    /* Rounding leftovers: at most one unit each, largest fraction first, ties by larger
     * weight then lower index (deterministic). */
    while (total < budget) {
        size_t best = n;
        double best_frac = -1;
        for (size_t i = 0; i < n; i++) {
            if ((double)it[i].got + 1 > it[i].cap) continue;
            if ((double)it[i].got > floor(it[i].x + 1e-7)) continue; /* already got one */
            double frac = it[i].x - (double)it[i].got;
            if (frac > best_frac + 1e-9 ||
                (best < n && fabs(frac - best_frac) <= 1e-9 && it[i].weight > it[best].weight)) {
                best = i;
                best_frac = frac;
            }
        }
        if (best == n) break;
        it[best].got++;
        total++;
    }
    return total;
}

static void weighted_allocate(const struct sched_pod *pods, size_t n, uint32_t *out)
{
    if (n == 0) return;
    struct wf_item stack_items[64];
    uint32_t stack_dem[64];
    struct wf_item *it = stack_items;
    uint32_t *dem = stack_dem;
    void *heap = NULL;
    if (n > 64) {
        heap = malloc(n * (sizeof(*it) + sizeof(*dem)));
        if (!heap) { /* cannot plan: everyone keeps its own limit */
            for (size_t i = 0; i < n; i++)
                out[i] = clamp_u32(pods[i].limit, 1, FULL);
            return;
        }
        it = heap;
        dem = (uint32_t *)(it + n);
    }

    /* Hard pods: their limit, and what they will really use comes off the GPU first. */
    uint64_t hard_use = 0;
    uint32_t n_soft = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t limit = clamp_u32(pods[i].limit, 1, FULL);
        dem[i] = pod_demand(&pods[i]);
        if (!pods[i].soft) {
            out[i] = limit;
            hard_use += dem[i] < limit ? dem[i] : limit;
        } else {
            n_soft++;
        }
    }
    if (n_soft == 0) goto done;

    /* Every soft pod keeps at least 1 unit; the rest of the budget is shared. */
    uint32_t avail = hard_use >= FULL ? 0 : FULL - (uint32_t)hard_use;
    uint32_t budget = avail > n_soft ? avail - n_soft : 0;

    /* Round 1: min(limit, demand), by weight when that does not fit. */
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (!pods[i].soft) continue;
        uint32_t limit = clamp_u32(pods[i].limit, 1, FULL);
        uint32_t base = limit < dem[i] ? limit : dem[i];
        it[k].weight = pods[i].weight ? pods[i].weight : 1;
        it[k].cap = base - 1;
        k++;
    }
    uint32_t given = waterfill(it, k, budget);
    k = 0;
    for (size_t i = 0; i < n; i++) {
        if (!pods[i].soft) continue;
        out[i] = 1 + it[k].got;
        k++;
    }

    /* Round 2: the idle rest to those that want more than they got, by weight, each capped
     * at its demand (which is at most the whole GPU). */
    uint32_t rest = budget - given;
    if (rest > 0) {
        k = 0;
        for (size_t i = 0; i < n; i++) {
            if (!pods[i].soft) continue;
            it[k].weight = pods[i].weight ? pods[i].weight : 1;
            it[k].cap = dem[i] > out[i] ? dem[i] - out[i] : 0;
            k++;
        }
        waterfill(it, k, rest);
        k = 0;
        for (size_t i = 0; i < n; i++) {
            if (!pods[i].soft) continue;
            out[i] += it[k].got;
            k++;
        }
    }

done:
    free(heap);
}

static const struct sched_policy weighted_policy = {"weighted", weighted_allocate};

const struct sched_policy *sched_policy_find(const char *name)
{
    if (name && strcmp(name, weighted_policy.name) == 0) return &weighted_policy;
    return NULL;
}
