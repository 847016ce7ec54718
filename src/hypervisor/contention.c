/* contention.c - the factor by which pods sharing a GPU are charged more (see contention.h). */
#include "contention.h"

#define WORKING 0.01  /* a pod charged less than 1% of the GPU is not working */
#define MIN_SUM 0.05  /* below this the ratio is noise */
#define SLACK 0.05    /* NVML may show a pod this much more than it reports (its lag) ... */
#define NVML_OVER 1.5 /* ... plus this much of its report (per-process figures are rough) */

enum contention_state contention_state(const struct contention_pod *p, size_t n, double util,
                                       int foreign, size_t *who)
{
    size_t working = 0;
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        if (!(p[i].charged >= 0 && p[i].charged <= 1.0)) return CONTENTION_NO_FIGURE;
        if (p[i].charged >= WORKING) working++;
        sum += p[i].charged;
    }
    if (working < 2) return CONTENTION_FEW;
    if (foreign) return CONTENTION_FOREIGN;
    if (!(util >= 0) || util > 1.0 || sum < MIN_SUM) return CONTENTION_NO_FIGURE;
    for (size_t i = 0; i < n; i++)
        if (p[i].nvml > p[i].charged * NVML_OVER + SLACK) {
            if (who) *who = i;
            return CONTENTION_REPORT;
        }
    return CONTENTION_MOVES;
}

uint32_t contention_next(uint32_t cur, const struct contention_pod *p, size_t n, double util,
                         int foreign, double part)
{
    if (cur < CONTENTION_ONE || cur > CONTENTION_MAX) cur = CONTENTION_ONE;
    switch (contention_state(p, n, util, foreign, NULL)) {
    case CONTENTION_FEW:
    case CONTENTION_FOREIGN:
        return CONTENTION_ONE;
    case CONTENTION_NO_FIGURE:
    case CONTENTION_REPORT:
        return cur;
    case CONTENTION_MOVES:
        break;
    }
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += p[i].charged;
    double ratio = util / sum;
    double want = 1.0 + (ratio - 1.0) * (part < 0 ? 0 : part > 1 ? 1 : part);
    if (want < 1.0) want = 1.0;
    double f = cur / 1024.0;
    f += (want - f) / 2.0; /* half-way a second: one window's noise moves it half as far */
    uint32_t next = (uint32_t)(f * 1024.0 + 0.5);
    return next < CONTENTION_ONE ? CONTENTION_ONE : next > CONTENTION_MAX ? CONTENTION_MAX : next;
}
