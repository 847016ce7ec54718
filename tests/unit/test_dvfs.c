/* test_dvfs.c - the clock factor from power (src/limiter/dvfs_model.h): 1 while a full GPU would
 * stay under its cap, the H200's measured speed-ups where it would not, nothing from too little
 * work, half-way steps in the pod region. */
#include <math.h>

#include "../../src/limiter/dvfs_model.h"
#include "unit_case.h"

static int near(double a, double b, double tol)
{
    return fabs(a - b) <= tol;
}

UNIT_CASE(factor_is_one_far_under_or_at_the_cap)
{
    /* far under the cap (tiny launch-bound kernels: little power per busy second): 1 */
    CHECK(vgpu_dvfs_factor(150.0, 0.26, 700.0) == 1.0);
    /* a full GPU at its cap: 1 */
    CHECK(near(vgpu_dvfs_factor(691.0, 0.99, 700.0), 1.0, 0.01));
}

UNIT_CASE(factor_matches_measured_speedups)
{
    /* the H200's figures (bench/clock_probe.py): power, busy -> the work per busy second
     * measured against the full GPU's */
    struct {
        double w, busy, speedup, tol;
    } h200[] = {
        {359.1, 0.277, 1.188, 0.03}, /* bf16 8192 matmul, 30% duty */
        /* at 10% the busy reading's own noise is in the measured figure: 6% here is 0.6 pp */
        {200.6, 0.089, 1.236, 0.07}, /* bf16, 10% */
        {691.0, 0.861, 1.063, 0.03}, /* bf16, 90% (clock 1565 MHz against 1452 full) */
        {533.4, 0.477, 1.156, 0.03}, /* fp32 2048 matmul, 50% */
        {694.1, 0.870, 1.056, 0.03}, /* fp32, 90% */
        {679.1, 0.676, 1.121, 0.03}, /* graph of 50 matmuls, 70% */
    };
    for (unsigned i = 0; i < sizeof(h200) / sizeof(h200[0]); i++) {
        double f = vgpu_dvfs_factor(h200[i].w, h200[i].busy, 700.0);
        if (!near(f / h200[i].speedup, 1.0, h200[i].tol)) {
            fprintf(stderr, "case %u: factor %.3f, measured speed-up %.3f\n", i, f,
                    h200[i].speedup);
            CHECK(0);
        }
    }
}

UNIT_CASE(exponent_computed_without_libm)
{
    /* the exponent is computed without libm: 2^0.37 */
    double ps = 700.0 * VGPU_DVFS_STATIC_FRACTION, room = 700.0 * VGPU_DVFS_CAP_MARGIN - ps;
    CHECK(near(vgpu_dvfs_factor(ps + 2.0 * room * 0.5, 0.5, 700.0), pow(2.0, VGPU_DVFS_EXPONENT),
               1e-9));
}

UNIT_CASE(factor_never_above_max)
{
    /* never more than VGPU_DVFS_MAX */
    CHECK(vgpu_dvfs_factor(700.0, 0.06, 700.0) <= VGPU_DVFS_MAX);
}

UNIT_CASE(meaningless_figures_give_zero)
{
    /* figures that say nothing: 0 */
    CHECK(vgpu_dvfs_factor(300.0, 0.02, 700.0) == 0);
    CHECK(vgpu_dvfs_factor(300.0, 0.5, 0) == 0);
    CHECK(vgpu_dvfs_factor(0, 0.5, 700.0) == 0);
    CHECK(vgpu_dvfs_factor(300.0, NAN, 700.0) == 0);
}

UNIT_CASE(pod_region_steps_up_at_once_down_half_way)
{
    /* in the pod region: up at once (the caller is told from where), down half-way, unknown
     * figures keep what is there */
    static struct vgpu_shm_dev d;
    atomic_store(&d.gate_dvfs, 1024);
    double want = vgpu_dvfs_factor(359.1, 0.277, 700.0);
    CHECK(want > 1.1);
    CHECK_EQ_INT(vgpu_dvfs_tick(&d, 359.1, 0.277, 700.0), 1024);
    CHECK(near(atomic_load(&d.gate_dvfs) / 1024.0, want, 0.002));
    CHECK_EQ_INT(vgpu_dvfs_tick(&d, 359.1, 0.277, 700.0), 0); /* unchanged */
    uint32_t before = atomic_load(&d.gate_dvfs);
    CHECK_EQ_INT(vgpu_dvfs_tick(&d, 300.0, 0.01, 700.0), 0);
    CHECK_EQ_INT(atomic_load(&d.gate_dvfs), before);
    /* a figure of 1.0 (under the cap at full speed): half-way down, and not a raise */
    CHECK_EQ_INT(vgpu_dvfs_tick(&d, 126.0 + 0.5 * (0.985 * 700 - 126), 0.5, 700.0), 0);
    CHECK(near(atomic_load(&d.gate_dvfs) / 1024.0, 1.0 + (want - 1.0) / 2, 0.002));
}

UNIT_CASE(first_informative_second_sets_the_factor)
{
    /* a new pod's ledger entry (0: not known): nothing informative keeps it unknown, the first
     * informative second sets the factor, reported as a raise from 1.0 */
    static struct vgpu_shm_dev d;
    CHECK_EQ_INT(vgpu_dvfs_tick(&d, 300.0, 0.01, 700.0), 0);
    CHECK_EQ_INT(atomic_load(&d.gate_dvfs), 0);
    double want = vgpu_dvfs_factor(359.1, 0.277, 700.0);
    CHECK_EQ_INT(vgpu_dvfs_tick(&d, 359.1, 0.277, 700.0), 1024);
    CHECK(near(atomic_load(&d.gate_dvfs) / 1024.0, want, 0.002));
}
