/* mem_pools.h - accounting of stream-ordered memory pools (cuMemAllocAsync & co).
 *
 * Why this exists: a pool keeps freed memory for reuse, so what a process really holds is the
 * pool's reservation (CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT), not the sum of live allocations.
 * Each pool of the process is charged exactly its reservation: provisionally before an
 * allocation that may grow it, trued up from the driver's figure right after, and again on
 * trims, destruction, views, and whenever the cap would refuse.
 */
#ifndef VGPU_MEM_POOLS_H
#define VGPU_MEM_POOLS_H

#include <stdint.h>

#include "cuda_abi.h"

/* Allocate from `pool` (NULL: the current pool of the current GPU) through `call`. */
typedef CUresult (*vgpu_pool_alloc_fn)(void *real, CUdeviceptr *dptr, size_t size,
                                       CUmemoryPool pool, CUstream stream);
CUresult vgpu_pool_alloc(void *real, vgpu_pool_alloc_fn call, CUdeviceptr *dptr, size_t size,
                         CUmemoryPool pool, CUstream stream);

void vgpu_pool_created(CUmemoryPool pool, const CUmemPoolProps *props);
void vgpu_pool_destroyed(CUmemoryPool pool);
/* Re-read one pool's reservation and charge the difference. */
void vgpu_pool_true_up(CUmemoryPool pool);
/* All pools; returns the total change in bytes (negative: memory went back to the driver). */
int64_t vgpu_pools_true_up_all(void);

#endif
