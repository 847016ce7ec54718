/* mem_charge.h - the steps every allocation hook shares: decide whether a GPU is capped,
 * reserve in the pod's ledger before the driver allocates, give back on failure or free, and
 * say why when the cap refuses.
 *
 * Why this exists: a dozen allocation families differ only in how the real call is made and
 * how its size is known; the accounting around them is the same and lives here once.
 */
#ifndef VGPU_MEM_CHARGE_H
#define VGPU_MEM_CHARGE_H

#include <stdint.h>

#include "cuda_abi.h"
#include "alloc_map.h"
#include "devices.h"

#define VGPU_MIB (1024ull * 1024ull)

/* What the driver takes for an allocation of `size` bytes (docs/accounting.md). */
uint64_t vgpu_footprint(uint64_t size);

struct vgpu_charge {
    const struct vgpu_binding *b;
    struct vgpu_shm *s;
    int slot;
};

enum { VGPU_CHARGE_PASS = 0, VGPU_CHARGE_YES = 1, VGPU_CHARGE_REFUSE = 2, VGPU_CHARGE_OVER = 3 };

/* Is GPU `dev` capped? Fills c and returns VGPU_CHARGE_YES; VGPU_CHARGE_PASS when the call must
 * go to the driver untouched; VGPU_CHARGE_REFUSE with *err when it must fail (fail closed). */
int vgpu_charge_begin(CUdevice dev, struct vgpu_charge *c, CUresult *err);
/* Same for the GPU of the current context (no context: pass, the driver reports it). */
int vgpu_charge_begin_current(struct vgpu_charge *c, CUresult *err, CUdevice *dev_out);

/* Reserve bytes in the ledger; on refusal tries the process's pools' true-ups first, then logs
 * and returns CUDA_ERROR_OUT_OF_MEMORY. */
CUresult vgpu_charge_reserve(const struct vgpu_charge *c, uint64_t bytes, uint64_t request);
/* Same without the log: VGPU_LEDGER_OK or VGPU_LEDGER_OVER_CAP. */
int vgpu_charge_try(const struct vgpu_charge *c, uint64_t bytes);
/* vgpu_charge_begin_current + vgpu_charge_try of `bytes` for a request of `request` bytes:
 * VGPU_CHARGE_PASS, VGPU_CHARGE_YES (reserved), VGPU_CHARGE_REFUSE (*err set, logged), or
 * VGPU_CHARGE_OVER (the cap refused and the GPU is oversubscribed: the caller may use host
 * memory). `dev` (may be NULL) receives the GPU ordinal. */
int vgpu_charge_current(struct vgpu_charge *c, uint64_t bytes, uint64_t request, CUresult *err,
                        CUdevice *dev);
/* Same for an explicit GPU. */
int vgpu_charge_device(CUdevice dev, struct vgpu_charge *c, uint64_t bytes, uint64_t request,
                       CUresult *err);
void vgpu_charge_release(const struct vgpu_charge *c, uint64_t bytes);
/* Give back what a record says (after the driver freed it). */
void vgpu_charge_give_back(const struct vgpu_alloc *a);
/* Is the pod now above its cap on this GPU? */
int vgpu_charge_over_cap(const struct vgpu_charge *c);
/* Memory operations in flight. The driver's count of our memory (NVML) and the ledger agree
 * only when no other thread is between touching the driver and settling the ledger; the
 * overhead true-up reads both inside vgpu_mem_quiet_begin/end and retries otherwise. */
void vgpu_mem_op_begin(void);
void vgpu_mem_op_end(void);
/* 1 if no other thread has a memory operation in flight; *epoch marks the snapshot. */
int vgpu_mem_quiet_begin(uint64_t *epoch);
/* 1 if none started or is in flight since vgpu_mem_quiet_begin. */
int vgpu_mem_quiet_end(uint64_t epoch);

/* What may give memory back to the driver when the cap refuses (the process's pools' true-up,
 * mem_pools.h, registered at load): returns the change in bytes, negative when memory went
 * back, and the reservation is tried once more then. */
void vgpu_charge_on_refusal(int64_t (*reclaim)(void));

/* Log (rate-limited) that the cap refused `request` bytes. */
void vgpu_charge_log_refusal(const struct vgpu_charge *c, uint64_t request, int oversold);

#endif
