/* scheduler.h - the pod-level compute policy of one GPU, behind a small interface.
 *
 * Why this exists: the daemon decides every tick what share of a GPU each pod may use
 * (core_effective). Keeping that decision a pure function of the measured inputs lets it be
 * unit-tested without a GPU and lets another policy be dropped in (docs/hypervisor.md).
 */
#ifndef VGPU_SCHEDULER_H
#define VGPU_SCHEDULER_H

#include <stddef.h>
#include <stdint.h>

/* Shares are in hundredths of a percent: 10000 = the whole GPU. */
struct sched_pod {
    uint32_t limit;  /* the pod's limit on this GPU (1..10000) */
    uint32_t weight; /* >= 1 */
    int soft;        /* 1: may use idle time above the limit */
    uint32_t used;   /* share it used over the last tick (measured) */
    int wants_more;  /* 1: its gate made it wait during the last tick */
    uint32_t prev;   /* the effective share it had during the last tick (0 = new pod) */
};

struct sched_policy {
    const char *name;
    /* Fill out[i] (1..10000) for each of the n pods of one GPU. */
    void (*allocate)(const struct sched_pod *pods, size_t n, uint32_t *out);
};

/* The policy named `name` ("weighted"), or NULL. */
const struct sched_policy *sched_policy_find(const char *name);

#endif
