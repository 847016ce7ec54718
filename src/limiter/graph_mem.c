/* graph_mem.c - charging graph memory nodes by the graph pools' real reservation (see
 * graph_mem.h), and the hooks of the graph calls that allocate, map or give back that memory.
 */
#include "graph_mem.h"

#include <pthread.h>
#include <string.h>

#include "../common/shm_ledger.h"
#include "real_driver.h"
#include "hooks.h"
#include "limiter.h"
#include "log.h"
#include "mem_charge.h"
#include "fork_hooks.h"

#define MAX_RECORDS 512
#define INSTANTIATE_FLAG_UPLOAD 2 /* CUDA_GRAPH_INSTANTIATE_FLAG_UPLOAD */

/* bytes the allocation nodes of a graph (or executable graph) take on one GPU */
struct record {
    const void *owner;
    int dev;
    uint64_t bytes;
};

struct gpool {
    int ledger;       /* -1: not charged (uncapped GPU, or none seen yet) */
    uint64_t charged; /* the reservation this process is charged for */
};

static pthread_mutex_t gm_lock = PTHREAD_MUTEX_INITIALIZER;
static struct record records[MAX_RECORDS];
static int nrecords;
static struct gpool gpools[VGPU_MAX_DEVICES] = {[0 ... VGPU_MAX_DEVICES - 1] = {-1, 0}};
static _Atomic int any_nodes; /* set once a graph of this process has an allocation node */

static void vgpu_graph_mem_lock(void)
{
    pthread_mutex_lock(&gm_lock);
}
static void vgpu_graph_mem_unlock(void)
{
    pthread_mutex_unlock(&gm_lock);
}
static void vgpu_graph_mem_reset_in_child(void)
{
    pthread_mutex_init(&gm_lock, NULL);
    nrecords = 0;
    for (int d = 0; d < VGPU_MAX_DEVICES; d++)
        gpools[d] = (struct gpool){-1, 0};
    atomic_store(&any_nodes, 0);
}

static uint64_t graph_attr(CUdevice dev, CUgraphMem_attribute attr)
{
    cuuint64_t v = 0;
    vgpu_helper_fn_cuDeviceGetGraphMemAttribute f = VGPU_HELPER(cuDeviceGetGraphMemAttribute);
    if (f) f(dev, attr, &v);
    return v;
}

/* locked */
static struct record *find(const void *owner, int dev)
{
    for (int i = 0; i < nrecords; i++)
        if (records[i].owner == owner && records[i].dev == dev) return &records[i];
    return NULL;
}

/* locked: 0, or -1 when the table is full */
static int add(const void *owner, int dev, uint64_t bytes)
{
    struct record *r = find(owner, dev);
    if (!r) {
        if (nrecords >= MAX_RECORDS) return -1;
        r = &records[nrecords++];
        *r = (struct record){owner, dev, 0};
    }
    r->bytes += bytes;
    return 0;
}

/* locked */
static void forget(const void *owner)
{
    for (int i = 0; i < nrecords;)
        if (records[i].owner == owner)
            records[i] = records[--nrecords];
        else
            i++;
}

/* locked: charge GPU dev's graph pool its reservation now */
static void true_up_locked(int dev)
{
    struct gpool *p = &gpools[dev];
    struct vgpu_shm *s = atomic_load(&vgpu_g.shm);
    int slot = atomic_load(&vgpu_g.slot);
    if (p->ledger < 0 || !s || slot < 0) return;
    uint64_t now = graph_attr(dev, CU_GRAPH_MEM_ATTR_RESERVED_MEM_CURRENT);
    int64_t delta = (int64_t)now - (int64_t)p->charged;
    if (delta) vgpu_ledger_adjust(s, slot, p->ledger, delta);
    p->charged = now;
}

static void true_up_all(void)
{
    pthread_mutex_lock(&gm_lock);
    for (int d = 0; d < VGPU_MAX_DEVICES; d++)
        true_up_locked(d);
    pthread_mutex_unlock(&gm_lock);
}

/* what the graph pool of dev must grow by for `bytes` more in use */
static uint64_t growth(CUdevice dev, uint64_t bytes)
{
    uint64_t reserved = graph_attr(dev, CU_GRAPH_MEM_ATTR_RESERVED_MEM_CURRENT);
    uint64_t used = graph_attr(dev, CU_GRAPH_MEM_ATTR_USED_MEM_CURRENT);
    uint64_t spare = reserved > used ? reserved - used : 0;
    return bytes > spare ? bytes - spare : 0;
}

CUresult vgpu_graph_mem_before(CUgraphExec exec, struct vgpu_graph_charge *gc)
{
    memset(gc, 0, sizeof(*gc));
    if (!atomic_load_explicit(&any_nodes, memory_order_relaxed)) return CUDA_SUCCESS;
    gc->active = 1;
    vgpu_mem_op_begin();
    uint64_t bytes[VGPU_MAX_DEVICES] = {0};
    pthread_mutex_lock(&gm_lock);
    for (int i = 0; i < nrecords; i++)
        if (records[i].owner == (const void *)exec) bytes[records[i].dev] += records[i].bytes;
    pthread_mutex_unlock(&gm_lock);
    for (int d = 0; d < VGPU_MAX_DEVICES; d++) {
        if (!bytes[d]) continue;
        struct vgpu_charge c;
        CUresult err = CUDA_SUCCESS;
        int st = vgpu_charge_begin(d, &c, &err);
        if (st == VGPU_CHARGE_PASS) continue;
        uint64_t need = st == VGPU_CHARGE_YES ? growth(d, bytes[d]) : 0;
        if (st == VGPU_CHARGE_YES && need) err = vgpu_charge_reserve(&c, need, bytes[d]);
        if (st == VGPU_CHARGE_REFUSE || err != CUDA_SUCCESS) {
            vgpu_graph_mem_after(gc); /* gives back what earlier GPUs reserved */
            return err != CUDA_SUCCESS ? err : CUDA_ERROR_OUT_OF_MEMORY;
        }
        gc->bytes[d] = need;
        pthread_mutex_lock(&gm_lock);
        gpools[d].ledger = c.b->ledger;
        pthread_mutex_unlock(&gm_lock);
    }
    return CUDA_SUCCESS;
}

void vgpu_graph_mem_after(struct vgpu_graph_charge *gc)
{
    if (!gc->active) return;
    struct vgpu_shm *s = atomic_load(&vgpu_g.shm);
    int slot = atomic_load(&vgpu_g.slot);
    pthread_mutex_lock(&gm_lock);
    for (int d = 0; d < VGPU_MAX_DEVICES; d++) {
        true_up_locked(d);
        if (gc->bytes[d] && s && slot >= 0 && gpools[d].ledger >= 0)
            vgpu_ledger_adjust(s, slot, gpools[d].ledger, -(int64_t)gc->bytes[d]);
        gc->bytes[d] = 0;
    }
    pthread_mutex_unlock(&gm_lock);
    gc->active = 0;
    vgpu_mem_op_end();
}

void vgpu_graph_mem_instantiated(CUgraph graph, CUgraphExec exec)
{
    if (!atomic_load_explicit(&any_nodes, memory_order_relaxed)) return;
    pthread_mutex_lock(&gm_lock);
    forget(exec); /* a handle the driver reuses */
    int n = nrecords;
    for (int i = 0; i < n; i++)
        if (records[i].owner == (const void *)graph &&
            add(exec, records[i].dev, records[i].bytes) != 0)
            VLOG_WARN("too many graphs with memory nodes: a launch of one may exceed the cap");
    pthread_mutex_unlock(&gm_lock);
}

/* ---- hooks ------------------------------------------------------------------------------------
 */

CUresult hook_graph_add_mem_alloc_node(void *real, CUgraphNode *phGraphNode, CUgraph hGraph,
                                       const CUgraphNode *dependencies, size_t numDependencies,
                                       CUDA_MEM_ALLOC_NODE_PARAMS *nodeParams)
{
    vgpu_fn_cuGraphAddMemAllocNode fn = (vgpu_fn_cuGraphAddMemAllocNode)real;
    if (vgpu_check_config()) return CUDA_ERROR_INVALID_VALUE;
    if (!nodeParams || !nodeParams->bytesize ||
        nodeParams->poolProps.location.type != CU_MEM_LOCATION_TYPE_DEVICE)
        return fn(phGraphNode, hGraph, dependencies, numDependencies, nodeParams);
    CUdevice dev = nodeParams->poolProps.location.id;
    struct vgpu_charge c;
    CUresult r = CUDA_SUCCESS;
    int st = vgpu_charge_begin(dev, &c, &r);
    if (st == VGPU_CHARGE_REFUSE) return r;
    if (st == VGPU_CHARGE_PASS || dev < 0 || dev >= VGPU_MAX_DEVICES)
        return fn(phGraphNode, hGraph, dependencies, numDependencies, nodeParams);
    /* a graph that could never run under the cap is refused now, like any allocation */
    uint64_t fp = vgpu_footprint(nodeParams->bytesize);
    pthread_mutex_lock(&gm_lock);
    struct record *rec = find(hGraph, dev);
    uint64_t graph_bytes = (rec ? rec->bytes : 0) + fp;
    pthread_mutex_unlock(&gm_lock);
    uint64_t need = growth(dev, graph_bytes);
    if (need) {
        if ((r = vgpu_charge_reserve(&c, need, nodeParams->bytesize)) != CUDA_SUCCESS) return r;
        vgpu_charge_release(&c, need);
    }
    r = fn(phGraphNode, hGraph, dependencies, numDependencies, nodeParams);
    if (r != CUDA_SUCCESS) return r;
    pthread_mutex_lock(&gm_lock);
    gpools[dev].ledger = c.b->ledger;
    int full = add(hGraph, dev, fp);
    pthread_mutex_unlock(&gm_lock);
    atomic_store(&any_nodes, 1);
    if (full) VLOG_WARN("too many graphs with memory nodes: a launch of one may exceed the cap");
    return r;
}

static CUresult instantiated(CUresult r, CUgraph graph, CUgraphExec *exec)
{
    if (r == CUDA_SUCCESS && exec) vgpu_graph_mem_instantiated(graph, *exec);
    return r;
}

CUresult hook_graph_instantiate_log(void *real, CUgraphExec *phGraphExec, CUgraph hGraph,
                                    CUgraphNode *phErrorNode, char *logBuffer, size_t bufferSize)
{
    CUresult r = ((vgpu_fn_cuGraphInstantiate_v2)real)(phGraphExec, hGraph, phErrorNode, logBuffer,
                                                       bufferSize);
    return instantiated(r, hGraph, phGraphExec);
}

CUresult hook_graph_instantiate_flags(void *real, CUgraphExec *phGraphExec, CUgraph hGraph,
                                      unsigned long long flags)
{
    CUresult r = ((vgpu_fn_cuGraphInstantiateWithFlags)real)(phGraphExec, hGraph, flags);
    return instantiated(r, hGraph, phGraphExec);
}

CUresult hook_graph_instantiate_params(void *real, CUgraphExec *phGraphExec, CUgraph hGraph,
                                       CUDA_GRAPH_INSTANTIATE_PARAMS *params)
{
    vgpu_fn_cuGraphInstantiateWithParams fn = (vgpu_fn_cuGraphInstantiateWithParams)real;
    if (!params || !(params->flags & INSTANTIATE_FLAG_UPLOAD) ||
        !atomic_load_explicit(&any_nodes, memory_order_relaxed))
        return instantiated(fn(phGraphExec, hGraph, params), hGraph, phGraphExec);
    /* instantiate and upload: the upload maps the graph's memory, so charge it as a launch of
     * the graph's own record */
    struct vgpu_graph_charge gc;
    CUresult r = vgpu_graph_mem_before((CUgraphExec)(void *)hGraph, &gc);
    if (r != CUDA_SUCCESS) return r;
    r = instantiated(fn(phGraphExec, hGraph, params), hGraph, phGraphExec);
    vgpu_graph_mem_after(&gc);
    return r;
}

CUresult hook_graph_upload(void *real, CUgraphExec exec, CUstream hStream)
{
    struct vgpu_graph_charge gc;
    CUresult r = vgpu_graph_mem_before(exec, &gc);
    if (r != CUDA_SUCCESS) return r;
    r = ((vgpu_fn_cuGraphUpload)real)(exec, hStream);
    vgpu_graph_mem_after(&gc);
    return r;
}

CUresult hook_graph_exec_destroy(void *real, CUgraphExec exec)
{
    CUresult r = ((vgpu_fn_cuGraphExecDestroy)real)(exec);
    if (r != CUDA_SUCCESS || !atomic_load_explicit(&any_nodes, memory_order_relaxed)) return r;
    pthread_mutex_lock(&gm_lock);
    forget(exec);
    pthread_mutex_unlock(&gm_lock);
    true_up_all(); /* the driver may give back what the graph held */
    return r;
}

CUresult hook_graph_destroy(void *real, CUgraph graph)
{
    CUresult r = ((vgpu_fn_cuGraphDestroy)real)(graph);
    if (r != CUDA_SUCCESS || !atomic_load_explicit(&any_nodes, memory_order_relaxed)) return r;
    pthread_mutex_lock(&gm_lock);
    forget(graph);
    pthread_mutex_unlock(&gm_lock);
    return r;
}

CUresult hook_device_graph_mem_trim(void *real, CUdevice device)
{
    CUresult r = ((vgpu_fn_cuDeviceGraphMemTrim)real)(device);
    if (r == CUDA_SUCCESS && device >= 0 && device < VGPU_MAX_DEVICES) {
        pthread_mutex_lock(&gm_lock);
        true_up_locked(device);
        pthread_mutex_unlock(&gm_lock);
    }
    return r;
}

__attribute__((constructor)) static void register_fork(void)
{
    vgpu_fork_register(VGPU_FORK_GRAPH_MEM, vgpu_graph_mem_lock, vgpu_graph_mem_unlock,
                       vgpu_graph_mem_reset_in_child);
}
