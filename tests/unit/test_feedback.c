/* test_feedback.c - the compute loop's controller: moves towards measured/modelled (all the way
 * when far or quiet, half or a quarter of the way when close, not within 2%; at most x1.5 a step),
 * stays within 4x of the model, ignores windows without work; and the windows it steps on. */
#include "../../src/limiter/compute_feedback.h"

#include <stdatomic.h>

#include "../../src/common/shm_region.h"
#include "unit_case.h"

/* One second of the pod's life, without waiting a second: the loop's last update is moved a
 * second back, the model charges `modelled` of it, NVML says `measured`. */
static double nvml_says;
static double measure(void *ctx)
{
    (void)ctx;
    return nvml_says;
}
static void window(struct vgpu_shm_dev *d, uint32_t share, double modelled, double measured)
{
    atomic_store(&d->limiter.gate_share, share);
    atomic_store(&d->limiter.fb_last_ns, vgpu_now_ns() - VGPU_FEEDBACK_INTERVAL_NS);
    atomic_fetch_add(&d->gate_charged_ns, (uint64_t)(modelled * 1e9));
    nvml_says = measured;
    vgpu_feedback_tick(d, measure, NULL);
}

/* Only two consecutive steady windows under one share move the scale: a ratio left from
 * before a change of share, or from before an unsteady window, does not pair with a new one. */
UNIT_CASE(windows_pair_only_consecutive)
{
    static struct vgpu_shm_dev d;
    atomic_store(&d.limiter.gate_scale, 1024);
    atomic_store(&d.limiter.fb_last_ns, vgpu_now_ns() - VGPU_FEEDBACK_INTERVAL_NS);
    window(&d, 10000, 0.22, 0.15); /* unlimited: the share is new, skipped */
    window(&d, 10000, 0.22, 0.15); /* the first of its pace */
    window(&d, 10000, 0.22, 0.15); /* steady: ratio 0.68 ... */
    CHECK_EQ_INT(atomic_load(&d.limiter.gate_scale), 1024);
    window(&d, 10000, 0.22, 0.15); /* ... and again: the scale moves to about 0.68 */
    uint32_t s0 = atomic_load(&d.limiter.gate_scale);
    CHECK(s0 > 650 && s0 < 750);   /* and this window's ratio is left over */
    window(&d, 1000, 0.16, 0.10);  /* the share changes in this window: skipped */
    window(&d, 1000, 0.10, 0.078); /* not steady against the window before the change */
    window(&d, 1000, 0.10, 0.078); /* the first of a pair (0.78), not paired with 0.73 */
    CHECK_EQ_INT(atomic_load(&d.limiter.gate_scale), s0);
    window(&d, 1000, 0.10, 0.080); /* the pair: 0.79 */
    uint32_t s1 = atomic_load(&d.limiter.gate_scale);
    CHECK(s1 > s0);
    window(&d, 1000, 0.05, 0.04);  /* the pace halves: not steady ... */
    window(&d, 1000, 0.10, 0.05);  /* ... and so not steady again (and 0.5 is not paired) */
    window(&d, 1000, 0.10, 0.079); /* a first again */
    CHECK_EQ_INT(atomic_load(&d.limiter.gate_scale), s1);
}

/* A pod held at its share whose events understate its kernels 2x: after the first step it
 * runs at the share under the new scale, as expected, and the loop steps again the next
 * second. A pod below its share keeps its pace across a step. */
UNIT_CASE(scale_steps_chain)
{
    static struct vgpu_shm_dev d, e;
    atomic_store(&d.limiter.fb_last_ns, vgpu_now_ns() - VGPU_FEEDBACK_INTERVAL_NS);
    for (int w = 0; w < 5; w++) {
        uint32_t s = atomic_load(&d.limiter.gate_scale) ? atomic_load(&d.limiter.gate_scale) : 1024;
        double modelled = 0.10 * 1024.0 / s; /* charged x scale fills the 10% share */
        window(&d, 1000, modelled, 2.0 * modelled);
        if (w == 3) CHECK_EQ_INT(atomic_load(&d.limiter.gate_scale), 1536); /* x1.5 at most */
    }
    CHECK_EQ_INT(atomic_load(&d.limiter.gate_scale), 2048); /* the second step, one second later */
    atomic_store(&e.limiter.fb_last_ns, vgpu_now_ns() - VGPU_FEEDBACK_INTERVAL_NS);
    for (int w = 0; w < 5; w++)
        window(&e, 5000, 0.10, 0.20); /* at 10% under a 50% share: its pace does not change */
    CHECK_EQ_INT(atomic_load(&e.limiter.gate_scale), 2048);
}

UNIT_CASE(scale_moves_part_way_within_clamps)
{
    CHECK_EQ_INT(vgpu_feedback_next_scale(1024, 0.30, 0.30, 0), 1024);
    CHECK_EQ_INT(vgpu_feedback_next_scale(1024, 0.30, 0.24, 0), 922); /* -20%: half way */
    CHECK_EQ_INT(vgpu_feedback_next_scale(1024, 0.30, 0.285, 0),
                 1011); /* -5%: a quarter of the way */
    CHECK_EQ_INT(vgpu_feedback_next_scale(1024, 0.30, 0.303, 0), 1024); /* +1%: noise, stays */
    CHECK_EQ_INT(vgpu_feedback_next_scale(1024, 0.30, 0.45, 0), 1536);  /* +50%: all the way */
    CHECK_EQ_INT(vgpu_feedback_next_scale(1024, 0.30, 0.10, 0), 683);   /* clamped to /1.5 */
    CHECK_EQ_INT(vgpu_feedback_next_scale(1024, 0.30, 0.90, 0), 1536);  /* clamped to x1.5 */
    CHECK_EQ_INT(vgpu_feedback_next_scale(1024, 0.01, 0.50, 0), 1024);  /* too little work */
    CHECK_EQ_INT(vgpu_feedback_next_scale(1024, 0.30, -1, 0), 1024);    /* NVML unknown */
    CHECK_EQ_INT(vgpu_feedback_next_scale(0, 0.30, 0.30, 0), 1024);     /* unset means 1.0 */
}

UNIT_CASE(agreeing_windows_move_all_the_way)
{
    /* windows that agreed within 5%: all the way, but not within 2% and not past x1.5 */
    CHECK_EQ_INT(vgpu_feedback_next_scale(1024, 0.30, 0.285, 1), 973);
    CHECK_EQ_INT(vgpu_feedback_next_scale(1024, 0.30, 0.24, 1), 819);
    CHECK_EQ_INT(vgpu_feedback_next_scale(1024, 0.30, 0.303, 1), 1024);
    CHECK_EQ_INT(vgpu_feedback_next_scale(1024, 0.30, 0.10, 1), 683);
}

UNIT_CASE(overstated_events_converge_and_stay_bounded)
{
    uint32_t s = 1024; /* events overstating by 1.5x, a 30% limit binding: converges to 1/1.5 */
    for (int i = 0; i < 30; i++) {
        double modelled = 0.30 * 1024.0 / s; /* the gate holds modelled x scale at the limit */
        s = vgpu_feedback_next_scale(s, modelled, modelled / 1.5, 0);
    }
    CHECK(s > 660 && s < 705);
    s = 4096;
    CHECK(vgpu_feedback_next_scale(s, 0.05, 1.0, 0) <= 4096); /* never more than 4x */
    s = 256;
    CHECK(vgpu_feedback_next_scale(s, 1.0, 0.01, 0) >= 256);
}
