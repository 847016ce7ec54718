/* share_balance.h - weights decide what pods on a saturated GPU actually get, not only what
 * they are allowed.
 *
 * Why this exists: contexts that time-slice one GPU lose time at every switch, and the loss
 * falls on the pod whose running work is preempted: the smaller pod gets exactly its allowed
 * share of charged time but more than its part of the throughput, the larger one what is left
 * (bench/results/hypervisor-runs.md: 27.7 : 72.3 at weights 1:3).
 * This stage, run after the policy, trims the share of each pod that gets more than its part
 * of what the contending pods used (its part of what the policy gave them: weights and limits
 * both), a little every tick, until the parts match; without contention the trims relax back
 * to none. State between ticks: one trim per pod.
 */
#ifndef VGPU_SHARE_BALANCE_H
#define VGPU_SHARE_BALANCE_H

#include <stddef.h>
#include <stdint.h>

#define BALANCE_NONE 10000u /* a trim of 10000/10000: the policy's share as it is */
#define BALANCE_MIN 5000u   /* never less than half the policy's share */
#define BALANCE_WARM 10     /* ticks of contention before a pod's 1 s average of use counts */

struct balance_pod {
    uint32_t target; /* the share the policy gave it this tick, hundredths of a percent */
    uint32_t used;   /* share it used over about the last second, hundredths of a percent */
    int contending;  /* ticks in a row it has been soft and wanted more than it got */
    uint32_t trim;   /* in: last tick's, out: this tick's (BALANCE_MIN..BALANCE_NONE) */
};

/* Update the trims of the n pods of one GPU. `saturated`: the GPU is fully used. */
void share_balance(struct balance_pod *p, size_t n, int saturated);

/* `share` after `trim` */
uint32_t share_trimmed(uint32_t share, uint32_t trim);

#endif
