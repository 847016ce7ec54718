/* share_balance.c - trims the shares of pods that get more than their part of a saturated
 * GPU, their part being their part of what the policy gave (see share_balance.h). */
#include "share_balance.h"

/* per tick, the trim moves by this fraction of the pod's error (its part of what the
 * contending pods used minus its part of what the policy gave them). Use is a 1 s average read 10
 * times a second, so the loop sees its own moves late: a small gain settles slowly, a large one
 * overshoots; 0.3 settles within a few seconds without swinging on the model of a saturated GPU
 * in tests/unit/test_share_balance.c */
#define GAIN 0.3
/* without contention, this fraction of the way back to no trim each tick (about 1 s) */
#define RELAX 0.1
/* and never more than 1% of the share a tick: a pod that has just started shows little use
 * in its 1 s average, and the others must not be cut for that (see BALANCE_WARM too) */
#define MAX_STEP 100.0

void share_balance(struct balance_pod *p, size_t n, int saturated)
{
    uint64_t total = 0, targets = 0;
    size_t active = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i].trim < BALANCE_MIN || p[i].trim > BALANCE_NONE) p[i].trim = BALANCE_NONE;
        if (p[i].contending < BALANCE_WARM) continue;
        active++;
        total += p[i].used;
        targets += p[i].target ? p[i].target : 1;
    }
    for (size_t i = 0; i < n; i++) {
        double t = p[i].trim;
        if (!saturated || active < 2 || p[i].contending < BALANCE_WARM || total == 0) {
            t += (BALANCE_NONE - t) * RELAX;
        } else {
            double part = (double)p[i].used / (double)total;
            double due = (double)(p[i].target ? p[i].target : 1) / (double)targets;
            /* over its part: less; under it: back towards none (a trim only ever takes away) */
            double step = (part - due) * GAIN * BALANCE_NONE;
            t -= step > MAX_STEP ? MAX_STEP : step < -MAX_STEP ? -MAX_STEP : step;
        }
        if (t < BALANCE_MIN) t = BALANCE_MIN;
        if (t > BALANCE_NONE) t = BALANCE_NONE;
        p[i].trim = (uint32_t)(t + 0.5);
    }
}

uint32_t share_trimmed(uint32_t share, uint32_t trim)
{
    uint32_t s = (uint32_t)((uint64_t)share * trim / BALANCE_NONE);
    return s ? s : 1;
}
