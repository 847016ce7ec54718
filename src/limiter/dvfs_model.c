/* dvfs_model.c - the clock factor of a limited pod's GPU time (see dvfs_model.h). */
#include "dvfs_model.h"

#include <stdatomic.h>

#include "log.h"

/* x^e for 1 <= x <= 4: the limiter links libc only, so no pow() from libm. ln by the atanh
 * series (|z| <= 0.6: 30 terms reach 1e-12), exp by Taylor's (|y| < 1) */
static double power_of(double x, double e)
{
    double z = (x - 1.0) / (x + 1.0), z2 = z * z, term = z, ln = 0;
    for (int k = 1; k < 60; k += 2, term *= z2)
        ln += term / k;
    double y = 2.0 * ln * e, ex = 1.0, t = 1.0;
    for (int k = 1; k < 30; k++) {
        t *= y / k;
        ex += t;
    }
    return ex;
}

double vgpu_dvfs_factor(double power_w, double busy, double cap_w)
{
    /* below 5% busy a watt of noise is 20 W of extrapolated draw */
    if (!(cap_w > 0) || !(power_w > 0) || !(busy >= 0.05) || busy > 1.0) return 0;
    double ps = cap_w * VGPU_DVFS_STATIC_FRACTION;
    double room = cap_w * VGPU_DVFS_CAP_MARGIN - ps;
    double need = (power_w - ps) / busy / room;
    if (need <= 1.0) return 1.0;
    if (need > 4.0) need = 4.0;
    double f = power_of(need, VGPU_DVFS_EXPONENT);
    return f > VGPU_DVFS_MAX ? VGPU_DVFS_MAX : f;
}

uint32_t vgpu_dvfs_tick(struct vgpu_shm_dev *d, double power_w, double busy, double cap_w)
{
    double want = vgpu_dvfs_factor(power_w, busy, cap_w);
    if (want <= 0) return 0; /* keep what the last informative second said */
    uint32_t cur = atomic_load(&d->gate_dvfs);
    double now = cur ? cur / 1024.0 : 1.0;
    /* up at once, down half-way: the power figure lags the busy one while a pod's work starts
     * (its first seconds read 1.0, then rise over seconds), and a factor that follows it up
     * half-way a second let a new pod at half the GPU run its first seconds several percent
     * over (bench/results/README.md, from process start); down it smooths the noise */
    double next = want > now ? want : now + (want - now) / 2.0;
    uint32_t v = (uint32_t)(next * 1024.0 + 0.5);
    if (v == cur) return 0;
    /* one process of the pod moves it (and charges the difference, see the caller) */
    if (!atomic_compare_exchange_strong(&d->gate_dvfs, &cur, v)) return 0;
    VLOG_DEBUG("clock factor: GPU at %.0f W of %.0f, busy %.3f: full-GPU speed x%.3f, factor "
               "%.3f -> %.3f",
               power_w, cap_w, busy, want, now, next);
    uint32_t from = cur ? cur : 1024u; /* unknown charged as 1.0 */
    return v > from ? from : 0;
}
