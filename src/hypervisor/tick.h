/* tick.h - the daemon's periodic work (every --tick-ms).
 *
 * Why this exists: limits that depend on what pods do right now (soft shares), workers that
 * died without a word, regions that appeared after registration, and processes that bypass
 * the limiter are all found by looking regularly; one thread does it, in one place.
 */
#ifndef VGPU_HV_TICK_H
#define VGPU_HV_TICK_H

#include <stdint.h>

#include "scheduler.h"

/* shared_pct: --shared-correction, the part of contending pods' excess busy time charged */
int tick_start(const struct sched_policy *policy, int tick_ms, int heartbeat_ms, int shared_pct);
void tick_stop(void);
/* CPU time the tick thread spent so far in its NVML passes, and in the rest of its work */
void tick_cpu_ns(uint64_t *nvml, uint64_t *pods);

#endif
