/* hv_limits.h - the daemon's per-GPU limits (JSON) written into a private ledger.
 *
 * Why this exists: a process the daemon cannot hold through the pod's control region (the
 * region not mounted, or a process that started on a private ledger) holds itself to the
 * limits of the registration reply and of later commands. The JSON comes from the daemon, but
 * is checked as untrusted all the same: a malformed entry is refused whole, with its index.
 */
#ifndef VGPU_HV_LIMITS_H
#define VGPU_HV_LIMITS_H

#include <stddef.h>
#include <stdint.h>

#include "../common/shm_layout.h"

/* Apply a JSON array of per-GPU limits (docs/hypervisor.md) to a private ledger's own limits:
 * returns the number of GPUs written, -1 on a malformed entry (err says which). */
int vgpu_hv_apply_limits(struct vgpu_shm *s, const char *limits, char *err, size_t errlen);

/* Percent as the daemon writes it (float) -> hundredths, clamped to [0, 10000]. */
uint32_t vgpu_hv_percent(double pct);

#endif
