/* sim_cuda.h - what the files of the simulated driver API share inside one process.
 *
 * Why this exists: the driver API is split by area (devices and contexts, memory, pools and
 * VMM, work, cuGetProcAddress); they share the process-local objects declared here and call
 * each other only through these hidden helpers, never through the exported API, so an
 * interposer preloaded in front of the simulator never sees the simulator's own calls.
 */
#ifndef VGPU_SIM_CUDA_H
#define VGPU_SIM_CUDA_H

#include <pthread.h>

#include "sim_api.h"
#include "sim_state.h"

/* --- handles: every object starts with a header naming its kind (0 once destroyed) --------- */
enum sim_kind {
    K_NONE,
    K_CTX,
    K_STREAM,
    K_EVENT,
    K_MODULE,
    K_FUNC,
    K_LIBRARY,
    K_ARRAY,
    K_POOL,
    K_VMM,
    K_GRAPH,
    K_NODE,
    K_EXEC,
    K_EXTMEM,
    K_NKINDS
};
struct sim_hdr { /* live objects stay listed (the driver owns them), destroyed ones wait for reuse
                  */
    uint32_t kind;
    uint32_t magic;
    struct sim_hdr *prev, *next;
};
void *sim_obj_new(int kind, size_t size); /* zeroed; recycles destroyed objects of the kind */
void sim_obj_free(void *obj);
void *sim_obj_get(const void *handle, int kind); /* NULL unless a live object of that kind */

/* --- process-wide settings and state (g_mu guards everything local that threads share) ---- */
struct sim_cfg {
    uint64_t ctx_overhead, pool_chunk, kernel_ns;
};
extern struct sim_cfg g_cfg;
extern int g_inited, g_slot;
extern pthread_mutex_t g_mu;
int sim_ndev(void);
int sim_dev_ok(CUdevice dev);

/* --- contexts -------------------------------------------------------------------------------- */
struct sim_ctx {
    struct sim_hdr h;
    int dev, primary, active, refs;
    unsigned flags;
    uint64_t tail;          /* end of all work submitted in the context */
    uint64_t blocking_tail; /* end of work on the legacy stream and blocking streams */
    struct sim_ctx *next;   /* list of created (non-primary) contexts */
};
CUresult sim_enter(void);                     /* CUDA_ERROR_NOT_INITIALIZED before cuInit */
CUresult sim_enter_ctx(struct sim_ctx **ctx); /* ... and CUDA_ERROR_INVALID_CONTEXT without one */
struct sim_ctx *sim_ctx_of(CUcontext c);      /* a live context or NULL */

/* --- address space and allocations (sim_cuda_memory.c; callers hold g_mu) --------------- */
enum sim_akind { A_DEV, A_MANAGED, A_ASYNC, A_HOST, A_RESERVE };
struct sim_pool;
struct sim_alloc {
    uint64_t base, size, span; /* span: address range taken (a multiple of 2 MiB) */
    uint64_t fp;               /* bytes charged as SIM_USE_MEM */
    int kind, dev;
    struct sim_ctx *ctx;
    struct sim_pool *pool;
};
/* Place a (span bytes, aligned) in the low (< 4 GiB) or high device range and insert it. */
int sim_addr_insert(const struct sim_alloc *a, int low, uint64_t align, CUdeviceptr *addr);
struct sim_alloc *sim_addr_find(uint64_t p); /* allocation containing p */
void sim_addr_remove(uint64_t base);
void sim_ctx_free_allocs(struct sim_ctx *ctx); /* a context went away: free what it owned */
CUresult sim_mem_free_locked(uint64_t ptr);    /* cuMemFree of device, managed or async memory */
void sim_mem_fork_reset(void);

/* --- pools and VMM (sim_cuda_pool_vmm.c; callers hold g_mu) ------------------------------ */
void sim_pool_give_back(struct sim_pool *pool, uint64_t bytes); /* an async allocation freed */
void sim_pools_release_at_sync(void); /* pools above their threshold shrink; takes g_mu */
/* [p, p+n) lies in one mapping (made accessible by cuMemSetAccess when need_access) */
int sim_vmm_mapped(uint64_t p, uint64_t n, int *dev, int need_access);
void sim_pool_fork_reset(void);

/* --- shared implementations behind several exported names (and the GPA aliases) ---------- */
CUresult sim_mem_alloc(CUdeviceptr *dptr, size_t bytesize);
CUresult sim_mem_get_info(size_t *free_b, size_t *total_b);
CUresult sim_launch(int ptds, CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                    unsigned by, unsigned bz, CUstream stream);
int sim_stream_ok(CUstream stream); /* a default stream or a live created one */
/* --- graph memory nodes (sim_cuda_graph_mem.c; callers hold g_mu) --------------------------- */
void sim_graph_mem_copy(const void *from_graph, const void *to_exec); /* at instantiation */
CUresult sim_graph_mem_run(const void *exec); /* at launch: allocations and frees, in order */
void sim_graph_mem_forget(const void *graph_or_exec);
void sim_graph_mem_fork_reset(void);
void sim_work_fork_reset(void);

#define SIM_MIN(a, b) ((a) < (b) ? (a) : (b))
#define SIM_MAX(a, b) ((a) > (b) ? (a) : (b))

#endif
