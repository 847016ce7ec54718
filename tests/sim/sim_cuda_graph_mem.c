/* sim_cuda_graph_mem.c - simulated graph memory nodes: allocations a graph makes when it runs.
 *
 * Why this exists: like the real driver, a graph's allocation nodes take memory only when the
 * graph is launched, from a per-GPU graph pool of the process; memory a free node (or a later
 * graph's free node) gives back stays reserved in that pool until cuDeviceGraphMemTrim. What
 * the GPU holds is the pool's reservation, so the limiter is tested against exactly that.
 * Simplifications: nodes run in the order they were added, an allocation is freed only by a
 * free node, and addresses come from a range of their own (nothing here dereferences them).
 */
#include <stdlib.h>
#include <string.h>

#include "sim_cuda.h"

#define GRAPH_VA_BASE 0x7e0000000000ull
#define SIM_2MIB (2ull << 20)

struct gm_node {
    const void *owner; /* the graph or executable graph it belongs to */
    int is_free, dev, live;
    uint64_t dptr, size;
    struct gm_node *next;
};

struct gm_pool {
    uint64_t used, reserved, used_high, reserved_high;
};

static struct gm_node *g_nodes; /* g_mu guards all of this */
static struct gm_pool g_gpool[SIM_MAX_DEV];
static uint64_t g_next_va = GRAPH_VA_BASE;

static CUresult add_node(CUgraphNode *ph, CUgraph hg, const CUgraphNode *deps, size_t ndeps,
                         int is_free, int dev, uint64_t dptr, uint64_t size)
{
    struct gm_node *n = calloc(1, sizeof *n);
    if (!n) return CUDA_ERROR_OUT_OF_MEMORY;
    *n = (struct gm_node){hg, is_free, dev, 0, dptr, size, NULL};
    /* appended: nodes run in the order they were added */
    struct gm_node **tail = &g_nodes;
    while (*tail)
        tail = &(*tail)->next;
    *tail = n;
    *ph = (CUgraphNode)n;
    (void)deps;
    (void)ndeps;
    return CUDA_SUCCESS;
}

SIM_API CUresult cuGraphAddMemAllocNode(CUgraphNode *phGraphNode, CUgraph hGraph,
                                        const CUgraphNode *dependencies, size_t numDependencies,
                                        CUDA_MEM_ALLOC_NODE_PARAMS *p)
{
    CUresult rc = sim_enter();
    if (rc != CUDA_SUCCESS) return rc;
    if (!phGraphNode || !p || !p->bytesize || (numDependencies && !dependencies) ||
        p->poolProps.location.type != CU_MEM_LOCATION_TYPE_DEVICE ||
        !sim_dev_ok(p->poolProps.location.id))
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&g_mu);
    if (!sim_obj_get(hGraph, K_GRAPH)) {
        pthread_mutex_unlock(&g_mu);
        return CUDA_ERROR_INVALID_VALUE;
    }
    uint64_t size = sim_round_up(p->bytesize, SIM_2MIB);
    uint64_t va = g_next_va;
    g_next_va += size;
    rc = add_node(phGraphNode, hGraph, dependencies, numDependencies, 0, p->poolProps.location.id,
                  va, size);
    if (rc == CUDA_SUCCESS) p->dptr = va;
    pthread_mutex_unlock(&g_mu);
    return rc;
}

SIM_API CUresult cuGraphAddMemFreeNode(CUgraphNode *phGraphNode, CUgraph hGraph,
                                       const CUgraphNode *dependencies, size_t numDependencies,
                                       CUdeviceptr dptr)
{
    CUresult rc = sim_enter();
    if (rc != CUDA_SUCCESS) return rc;
    if (!phGraphNode || !dptr || dptr < GRAPH_VA_BASE || (numDependencies && !dependencies))
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&g_mu);
    rc = sim_obj_get(hGraph, K_GRAPH)
             ? add_node(phGraphNode, hGraph, dependencies, numDependencies, 1, 0, dptr, 0)
             : CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_unlock(&g_mu);
    return rc;
}

void sim_graph_mem_copy(const void *from_graph, const void *to_exec)
{
    struct gm_node *end = NULL;
    for (struct gm_node *n = g_nodes; n; n = n->next)
        end = n;
    for (struct gm_node *n = g_nodes; n; n = n->next) {
        if (n->owner == from_graph) {
            CUgraphNode ignored;
            add_node(&ignored, (CUgraph)to_exec, NULL, 0, n->is_free, n->dev, n->dptr, n->size);
        }
        if (n == end) break; /* not the copies just appended */
    }
}

static int set_reserved(int dev, uint64_t r) /* -1: the GPU has not that much memory */
{
    struct gm_pool *p = &g_gpool[dev];
    if (r > p->reserved && sim_charge(g_slot, dev, SIM_USE_POOL, (int64_t)(r - p->reserved)) < 0)
        return -1;
    if (r < p->reserved) sim_charge(g_slot, dev, SIM_USE_POOL, -(int64_t)(p->reserved - r));
    p->reserved = r;
    p->reserved_high = SIM_MAX(p->reserved_high, r);
    return 0;
}

static struct gm_node *live_alloc(uint64_t dptr)
{
    for (struct gm_node *n = g_nodes; n; n = n->next)
        if (!n->is_free && n->live && n->dptr == dptr) return n;
    return NULL;
}

CUresult sim_graph_mem_run(const void *exec)
{
    /* check first: an allocation still live from an earlier launch, or a pool that cannot
     * grow, fails the launch before anything changed */
    uint64_t need[SIM_MAX_DEV] = {0};
    for (struct gm_node *n = g_nodes; n; n = n->next) {
        if (n->owner != exec || n->is_free) continue;
        if (n->live) return CUDA_ERROR_INVALID_VALUE;
        need[n->dev] += n->size;
    }
    for (int d = 0; d < SIM_MAX_DEV; d++) {
        struct gm_pool *p = &g_gpool[d];
        if (p->used + need[d] > p->reserved && set_reserved(d, p->used + need[d]) < 0)
            return CUDA_ERROR_OUT_OF_MEMORY;
    }
    for (struct gm_node *n = g_nodes; n; n = n->next) {
        if (n->owner != exec) continue;
        if (!n->is_free) {
            n->live = 1;
            g_gpool[n->dev].used += n->size;
            g_gpool[n->dev].used_high = SIM_MAX(g_gpool[n->dev].used_high, g_gpool[n->dev].used);
        } else {
            struct gm_node *a = live_alloc(n->dptr);
            if (a) {
                a->live = 0;
                g_gpool[a->dev].used -= a->size;
            }
        }
    }
    return CUDA_SUCCESS;
}

void sim_graph_mem_forget(const void *graph_or_exec)
{
    /* an allocation still live stays in use (the application frees it later) */
    for (struct gm_node **pn = &g_nodes; *pn;) {
        struct gm_node *n = *pn;
        if (n->owner == graph_or_exec && !n->live) {
            *pn = n->next;
            free(n);
        } else {
            pn = &n->next;
        }
    }
}

SIM_API CUresult cuDeviceGraphMemTrim(CUdevice device)
{
    CUresult rc = sim_enter();
    if (rc != CUDA_SUCCESS) return rc;
    if (!sim_dev_ok(device)) return CUDA_ERROR_INVALID_DEVICE;
    pthread_mutex_lock(&g_mu);
    set_reserved(device, g_gpool[device].used);
    pthread_mutex_unlock(&g_mu);
    return CUDA_SUCCESS;
}

SIM_API CUresult cuDeviceGetGraphMemAttribute(CUdevice device, CUgraphMem_attribute attr,
                                              void *value)
{
    CUresult rc = sim_enter();
    if (rc != CUDA_SUCCESS) return rc;
    if (!sim_dev_ok(device)) return CUDA_ERROR_INVALID_DEVICE;
    if (!value) return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&g_mu);
    const struct gm_pool *p = &g_gpool[device];
    uint64_t v = 0;
    switch (attr) {
    case CU_GRAPH_MEM_ATTR_USED_MEM_CURRENT:
        v = p->used;
        break;
    case CU_GRAPH_MEM_ATTR_USED_MEM_HIGH:
        v = p->used_high;
        break;
    case CU_GRAPH_MEM_ATTR_RESERVED_MEM_CURRENT:
        v = p->reserved;
        break;
    case CU_GRAPH_MEM_ATTR_RESERVED_MEM_HIGH:
        v = p->reserved_high;
        break;
    default:
        rc = CUDA_ERROR_INVALID_VALUE;
    }
    pthread_mutex_unlock(&g_mu);
    if (rc == CUDA_SUCCESS) *(cuuint64_t *)value = v;
    return rc;
}

void sim_graph_mem_fork_reset(void)
{
    /* the child has no graph pool of its own yet; the parent's nodes are not its memory */
    while (g_nodes) {
        struct gm_node *n = g_nodes;
        g_nodes = n->next;
        free(n);
    }
    memset(g_gpool, 0, sizeof g_gpool);
}
