/* test_scheduler.c - the "weighted" policy splits a GPU the way docs/hypervisor.md says:
 * weights, idle time handed on, hard limits kept, new pods rebalanced, never over 100%, and
 * a seeded property test over random pods for the invariants. */
#include <stdint.h>

#include "../../src/hypervisor/scheduler.h"

static int find_policy(void);
#define UNIT_SETUP find_policy
#include "unit_case.h"

static const struct sched_policy *pol;

static struct sched_pod pod(uint32_t limit, uint32_t weight, int soft, uint32_t used, int wants,
                            uint32_t prev)
{
    struct sched_pod p = {limit, weight, soft, used, wants, prev};
    return p;
}

static int near(uint32_t a, uint32_t b, uint32_t tol)
{
    return a > b ? a - b <= tol : b - a <= tol;
}

static uint64_t sum(const uint32_t *v, size_t n)
{
    uint64_t s = 0;
    for (size_t i = 0; i < n; i++)
        s += v[i];
    return s;
}

UNIT_CASE(policies_found_by_name)
{
    CHECK(pol != NULL);
    CHECK_STR(pol->name, "weighted");
    CHECK(sched_policy_find("nope") == NULL);
    CHECK(sched_policy_find(NULL) == NULL);
}

UNIT_CASE(weights_1_3_split_busy_gpu)
{
    struct sched_pod p[2] = {pod(10000, 1, 1, 5000, 1, 5000), pod(10000, 3, 1, 5000, 1, 5000)};
    uint32_t out[2] = {0, 0};
    pol->allocate(p, 2, out);
    CHECK(near(out[0], 2500, 1));
    CHECK(near(out[1], 7500, 1));
    CHECK(sum(out, 2) <= 10000);
    /* and it stays there: feed the result back as the next tick's prev, both saturating */
    for (int t = 0; t < 20; t++) {
        p[0].prev = out[0], p[0].used = out[0];
        p[1].prev = out[1], p[1].used = out[1];
        p[0].wants_more = p[1].wants_more = 0; /* "used nearly all" must count as wanting more */
        pol->allocate(p, 2, out);
    }
    CHECK(near(out[0], 2500, 1));
    CHECK(near(out[1], 7500, 1));
}

UNIT_CASE(idle_pod_gives_way)
{
    struct sched_pod p[2] = {pod(5000, 1, 1, 0, 0, 5000), pod(5000, 1, 1, 5000, 1, 5000)};
    uint32_t out[2];
    pol->allocate(p, 2, out);
    CHECK(out[1] >= 9500);
    CHECK(out[0] >= 1);
    CHECK(sum(out, 2) <= 10000);
    /* the idle one comes back: it uses all of its small share -> it gets its limit again */
    p[0].used = out[0];
    p[0].prev = out[0];
    p[1].prev = out[1];
    p[1].used = out[1];
    pol->allocate(p, 2, out);
    CHECK(out[0] >= 5000);
    CHECK(sum(out, 2) <= 10000);
}

UNIT_CASE(hard_share_never_above_limit)
{
    /* a hard pod alone and waiting still gets its limit, not the idle GPU */
    struct sched_pod p[3] = {pod(3000, 1, 0, 3000, 1, 3000), pod(2000, 5, 0, 0, 0, 2000),
                             pod(2000, 1, 1, 2000, 1, 2000)};
    uint32_t out[3];
    pol->allocate(p, 1, out);
    CHECK_EQ_U64(out[0], 3000);
    pol->allocate(p, 3, out);
    CHECK_EQ_U64(out[0], 3000);
    CHECK_EQ_U64(out[1], 2000);
    /* the soft one gets what the hard ones do not use: 10000 - 3000 - idle hard's ~200 */
    CHECK(out[2] >= 6500);
    CHECK(out[2] + 3000 <= 10000);
}

UNIT_CASE(soft_limits_kept)
{
    struct sched_pod p[2] = {pod(3000, 1, 1, 3000, 1, 3000), pod(5000, 1, 1, 5000, 1, 5000)};
    uint32_t out[2];
    pol->allocate(p, 2, out);
    CHECK(out[0] >= 3000);
    CHECK(out[1] >= 5000);
    CHECK(near(sum(out, 2), 10000, 0));           /* the idle 2000 is handed out */
    CHECK(near(out[0] - 3000, out[1] - 5000, 1)); /* equal weights share it equally */
}

UNIT_CASE(new_pod_rebalances)
{
    struct sched_pod p[2] = {pod(10000, 1, 1, 10000, 1, 10000), pod(5000, 1, 1, 0, 0, 0)};
    uint32_t out[2];
    pol->allocate(p, 1, out);
    CHECK_EQ_U64(out[0], 10000);
    pol->allocate(p, 2, out);
    CHECK(near(out[1], 5000, 1)); /* the newcomer counts as wanting its limit */
    CHECK(near(out[0], 5000, 1));
    CHECK(sum(out, 2) <= 10000);
    /* a new hard pod takes its limit off the soft one */
    p[1] = pod(4000, 1, 0, 0, 0, 0);
    pol->allocate(p, 2, out);
    CHECK_EQ_U64(out[1], 4000);
    CHECK(near(out[0], 6000, 1));
}

UNIT_CASE(shares_of_many_pods_sum_within_gpu)
{
    struct sched_pod p[40];
    uint32_t out[40];
    for (int i = 0; i < 40; i++)
        p[i] = pod(10000, (uint32_t)(i % 7) + 1, 1, 250, 1, 250);
    pol->allocate(p, 40, out);
    CHECK(sum(out, 40) <= 10000);
    CHECK(sum(out, 40) >= 9999);
    for (int i = 0; i < 40; i++)
        CHECK(out[i] >= 1 && out[i] <= 10000);
    /* heavier pods get more */
    CHECK(out[6] > out[0]);
}

static uint32_t rng_state = 12345u;
static uint32_t rnd(uint32_t n)
{
    rng_state = rng_state * 1664525u + 1013904223u;
    return (rng_state >> 8) % n;
}

UNIT_CASE(random_pods_keep_invariants)
{
    int bad = 0;
    for (int round = 0; round < 20000 && bad < 10; round++) {
        size_t n = 1 + rnd(12);
        struct sched_pod p[12], rev[12];
        uint32_t out[12], out2[12], rout[12];
        int all_soft = rnd(3) == 0;
        for (size_t i = 0; i < n; i++) {
            uint32_t limit = 1 + rnd(10000);
            uint32_t prev = rnd(4) == 0 ? 0 : 1 + rnd(10000);
            uint32_t used = prev ? rnd(prev + 1) : 0;
            p[i] = pod(limit, 1 + rnd(rnd(2) ? 10 : 10000), all_soft ? 1 : (int)rnd(2), used,
                       (int)rnd(2), prev);
        }
        pol->allocate(p, n, out);
        pol->allocate(p, n, out2);
        for (size_t i = 0; i < n; i++)
            rev[i] = p[n - 1 - i];
        pol->allocate(rev, n, rout);

        uint64_t soft_sum = 0, hard_limits = 0, all_limits = 0;
        int some_soft_hungry_below_full = 0;
        for (size_t i = 0; i < n; i++) {
            int ok = out[i] >= 1 && out[i] <= 10000 && out[i] == out2[i] &&
                     near(out[i], rout[n - 1 - i], 1);
            if (!p[i].soft) ok = ok && out[i] == p[i].limit;
            if (!ok) bad++;
            all_limits += p[i].limit;
            if (p[i].soft) {
                soft_sum += out[i];
                if (p[i].wants_more && out[i] < 10000) some_soft_hungry_below_full = 1;
            } else {
                hard_limits += p[i].limit;
            }
        }
        size_t n_soft = 0;
        for (size_t i = 0; i < n; i++)
            n_soft += p[i].soft != 0;
        /* never over the GPU (hard pods count with at most their limit) */
        /* (a hard pod that waits uses its whole limit; idle ones leave room for soft pods) */
        uint64_t hard_busy = 0;
        for (size_t i = 0; i < n; i++)
            if (!p[i].soft && p[i].wants_more) hard_busy += p[i].limit;
        if (hard_busy + n_soft <= 10000 && soft_sum + hard_busy > 10000) bad++;
        if (all_soft && soft_sum > 10000) bad++;
        /* work conserving: a soft pod that wants more is below 100% only when the GPU is full */
        if (some_soft_hungry_below_full && soft_sum + hard_limits < 10000) bad++;
        /* limits that fit are honoured for pods that want more */
        if (all_limits <= 10000)
            for (size_t i = 0; i < n; i++)
                if (p[i].wants_more && out[i] < p[i].limit) bad++;
        /* weights: two soft pods both wanting more with the same limit */
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < n; j++)
                if (p[i].soft && p[j].soft && p[i].wants_more && p[j].wants_more &&
                    p[i].limit == p[j].limit && p[i].weight > p[j].weight && out[i] + 1 < out[j])
                    bad++;
        if (bad) {
            fprintf(stderr, "property failed in round %d:\n", round);
            for (size_t i = 0; i < n; i++)
                fprintf(stderr, "  limit %u weight %u soft %d used %u wants %d prev %u -> %u\n",
                        p[i].limit, p[i].weight, p[i].soft, p[i].used, p[i].wants_more, p[i].prev,
                        out[i]);
            break;
        }
    }
    CHECK_EQ_INT(bad, 0);
}

/* every case uses the weighted policy */
static int find_policy(void)
{
    pol = sched_policy_find("weighted");
    if (!pol) fprintf(stderr, "no weighted policy\n");
    return pol ? 0 : -1;
}
