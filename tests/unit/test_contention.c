/* test_contention.c - the factor by which pods that time-slice one GPU are charged more: it
 * follows NVML's busy time over the pods' charges, only ever up and at most x1.25, goes to 1 at
 * once when fewer than two pods work or a process of no limited pod is on the GPU, and holds
 * while a pod's report is far below what NVML shows of its processes. */
#include <stdint.h>

#include "../../src/hypervisor/contention.h"
#include "unit_case.h"

/* the factor after `secs` windows of the same figures, from none */
static uint32_t settle(const struct contention_pod *p, size_t n, double util, double part, int secs)
{
    uint32_t f = 0;
    for (int i = 0; i < secs; i++)
        f = contention_next(f, p, n, util, 0, part);
    return f;
}

UNIT_CASE(two_pods_follow_busy_time)
{
    /* the H200's two pods: charged 0.28 and 0.47 (after their clock factors), GPU 85% busy */
    struct contention_pod p[2] = {{0.28, 0.30}, {0.47, 0.52}};
    uint32_t f = settle(p, 2, 0.85, 1.0, 12);
    CHECK(f >= 1157 && f <= 1163); /* 0.85 / 0.75 = 1.133: x1024 = 1160 */
    /* half-way a second: after one window about half of it */
    uint32_t one = contention_next(1024, p, 2, 0.85, 0, 1.0);
    CHECK(one >= 1088 && one <= 1096);
    /* --shared-correction 50: half of the excess */
    f = settle(p, 2, 0.85, 0.5, 12);
    CHECK(f >= 1089 && f <= 1094);
    /* 0: none */
    CHECK(settle(p, 2, 0.85, 0.0, 12) == 1024);
}

UNIT_CASE(bounded_and_never_down)
{
    struct contention_pod p[2] = {{0.10, 0.12}, {0.10, 0.12}};
    CHECK(settle(p, 2, 0.90, 1.0, 20) == CONTENTION_MAX); /* 4.5x is never believed */
    CHECK(settle(p, 2, 0.12, 1.0, 20) == 1024);           /* less busy than charged: 1 */
    /* garbage in the state it is given starts from 1 */
    CHECK(contention_next(99999, p, 2, 0.20, 0, 1.0) == 1024);
}

UNIT_CASE(alone_or_foreign_goes_to_one_at_once)
{
    struct contention_pod two[2] = {{0.30, 0.3}, {0.50, 0.5}};
    uint32_t f = settle(two, 2, 0.90, 1.0, 12);
    CHECK(f > 1100);
    struct contention_pod one[2] = {{0.30, 0.3}, {0.005, 0.0}}; /* B stopped working */
    CHECK(contention_next(f, one, 2, 0.40, 0, 1.0) == 1024);
    CHECK(contention_next(f, two, 1, 0.40, 0, 1.0) == 1024); /* one pod left */
    CHECK(contention_next(f, two, 2, 0.90, 1, 1.0) == 1024); /* an unlimited process came */
}

UNIT_CASE(holds_while_a_report_does_not)
{
    /* pod B writes that it used 1% while NVML shows its processes at 40%: its neighbours'
     * charges must not rise for the time it hides, nor fall */
    struct contention_pod p[2] = {{0.30, 0.31}, {0.01, 0.40}};
    CHECK(contention_next(1024, p, 2, 0.75, 0, 1.0) == 1024);
    CHECK(contention_next(1100, p, 2, 0.75, 0, 1.0) == 1100);
    /* unknown NVML figures of the GPU, or a figure out of range: hold */
    struct contention_pod q[2] = {{0.30, 0.31}, {0.50, 0.5}};
    CHECK(contention_next(1100, q, 2, -1, 0, 1.0) == 1100);
    CHECK(contention_next(1100, q, 2, 7.0, 0, 1.0) == 1100);
    q[1].charged = -1; /* a pod's first window */
    CHECK(contention_next(1100, q, 2, 0.9, 0, 1.0) == 1100);
}

UNIT_CASE(state_says_why)
{
    /* what the daemon logs when it changes: a pod charged under 1% of the GPU is not working
     * (so a pod held to 1% that is charged a little under it leaves another alone) */
    struct contention_pod two[2] = {{0.30, 0.31}, {0.50, 0.52}};
    struct contention_pod small[2] = {{0.30, 0.31}, {0.009, 0.01}};
    struct contention_pod hides[3] = {{0.30, 0.31}, {0.20, 0.21}, {0.05, 0.40}};
    struct contention_pod none[2] = {{0.30, 0.31}, {-1, 0}};
    size_t who = 99;
    CHECK(contention_state(two, 2, 0.90, 0, &who) == CONTENTION_MOVES && who == 99);
    CHECK(contention_state(small, 2, 0.40, 0, &who) == CONTENTION_FEW);
    CHECK(contention_state(two, 2, 0.90, 1, &who) == CONTENTION_FOREIGN);
    CHECK(contention_state(two, 2, -1, 0, &who) == CONTENTION_NO_FIGURE);
    CHECK(contention_state(none, 2, 0.90, 0, &who) == CONTENTION_NO_FIGURE);
    CHECK(contention_state(hides, 3, 0.90, 0, &who) == CONTENTION_REPORT && who == 2);
    /* and the factor does what the state says */
    CHECK(contention_next(1100, hides, 3, 0.90, 0, 1.0) == 1100);
    CHECK(contention_next(1100, small, 2, 0.40, 0, 1.0) == 1024);
}
