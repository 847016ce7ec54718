/* test_share_balance.c - on a saturated GPU the trims bring what the pods really got to their
 * weights, in a closed loop like the daemon's (use averaged over a second, 10 ticks a second),
 * without swinging; without contention they go back to none; the policy's limits are kept. */
#include <math.h>
#include <stdio.h>
#include <stdint.h>

#include "../../src/hypervisor/share_balance.h"
#include "unit_case.h"

/* Two pods, weights 1 and 3, policy shares 2500 / 7500. The 25% pod gets exactly what its
 * gate allows; the other gets what is left after `loss` of the GPU goes to switching (what
 * the H200 showed: 26.6% / 68.3% of solo). Returns A's part of what the two got after
 * `ticks` ticks, and the largest part seen in the last `tail` ticks. */
static double run(uint32_t loss, int ticks, int tail, double *worst, uint32_t *trim_a)
{
    struct balance_pod p[2] = {{2500, 0, BALANCE_WARM, 0}, {7500, 0, BALANCE_WARM, 0}};
    double avg_a = 0, avg_b = 0, part = 0;
    *worst = 0;
    for (int t = 0; t < ticks; t++) {
        double a = share_trimmed(2500, p[0].trim ? p[0].trim : BALANCE_NONE) * 1.066;
        double b = 10000.0 - a - loss;
        if (b > share_trimmed(7500, p[1].trim ? p[1].trim : BALANCE_NONE))
            b = share_trimmed(7500, p[1].trim ? p[1].trim : BALANCE_NONE);
        avg_a += (a - avg_a) * 0.1; /* the daemon's 1 s average at 100 ms ticks */
        avg_b += (b - avg_b) * 0.1;
        p[0].used = (uint32_t)avg_a;
        p[1].used = (uint32_t)avg_b;
        share_balance(p, 2, 1);
        part = avg_a / (avg_a + avg_b);
        if (t >= ticks - tail && fabs(part - 0.25) > *worst) *worst = fabs(part - 0.25);
    }
    *trim_a = p[0].trim;
    return part;
}

UNIT_CASE(trims_bring_use_to_weights)
{
    double worst;
    uint32_t trim;
    double part = run(500, 200, 100, &worst, &trim);
    CHECK(fabs(part - 0.25) < 0.005);
    CHECK(worst < 0.01); /* settled, not swinging, over the last 10 s */
    CHECK(trim < BALANCE_NONE && trim > 8000);
    /* without the stage, A's part would be 0.266 / (0.266 + 0.684) */
    CHECK(2665.0 / (2665.0 + 6835.0) > 0.27);
}

UNIT_CASE(single_or_idle_pod_relaxes)
{
    struct balance_pod p[2] = {{2500, 2000, BALANCE_WARM, 7000}, {7500, 100, 0, 9000}};
    for (int t = 0; t < 60; t++)
        share_balance(p, 2, 1); /* only one pod contends: nothing to balance */
    CHECK(p[0].trim > 9950 && p[1].trim > 9950);
    struct balance_pod q[2] = {{2500, 2000, BALANCE_WARM, 7000}, {7500, 7000, BALANCE_WARM, 9000}};
    for (int t = 0; t < 60; t++)
        share_balance(q, 2, 0); /* the GPU has room: no trims */
    CHECK(q[0].trim > 9950 && q[1].trim > 9950);
}

UNIT_CASE(newcomer_not_held_against_others)
{
    /* B has just started: its 1 s average still shows little. A is not cut for that */
    struct balance_pod p[2] = {{2500, 7000, 50, 0}, {7500, 300, 3, 0}};
    for (int t = 0; t < 5; t++) {
        p[1].contending++;
        share_balance(p, 2, 1);
    }
    CHECK(p[0].trim == BALANCE_NONE);
    /* once B counts, A moves at most 1% of its share a tick */
    p[1].contending = BALANCE_WARM;
    share_balance(p, 2, 1);
    CHECK(p[0].trim == BALANCE_NONE - 100);
}

UNIT_CASE(limits_set_the_target_over_weights)
{
    /* weights 1:3 but limits 30 / 70 (the policy gave 3000 / 7000): 30:70 is the target */
    struct balance_pod p[2] = {{3000, 3000, 50, 0}, {7000, 7000, 50, 0}};
    for (int t = 0; t < 50; t++)
        share_balance(p, 2, 1);
    CHECK(p[0].trim == BALANCE_NONE && p[1].trim == BALANCE_NONE);
}

UNIT_CASE(trims_stay_within_bounds)
{
    /* a pod far over its part is trimmed at most to half; a bad trim reads as none */
    struct balance_pod p[2] = {{5000, 9000, BALANCE_WARM, 0}, {5000, 500, BALANCE_WARM, 123456}};
    for (int t = 0; t < 500; t++)
        share_balance(p, 2, 1);
    CHECK(p[0].trim == BALANCE_MIN);
    CHECK(p[1].trim == BALANCE_NONE);
    CHECK(share_trimmed(2500, BALANCE_MIN) == 1250);
    CHECK(share_trimmed(1, BALANCE_MIN) == 1);
}
