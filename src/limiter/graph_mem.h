/* graph_mem.h - accounting of CUDA graph memory nodes.
 *
 * Why this exists: a graph's allocation nodes (cuGraphAddMemAllocNode) take GPU memory when the
 * graph is launched or uploaded, from a per-GPU graph pool of the process that keeps it
 * reserved after free nodes ran, until cuDeviceGraphMemTrim. What the process holds is that
 * reservation (CU_GRAPH_MEM_ATTR_RESERVED_MEM_CURRENT): each GPU's graph pool is charged exactly
 * it, provisionally before a launch that may grow it (refused past the cap), trued up from the
 * driver's figure right after, and on trims and destroyed executable graphs.
 */
#ifndef VGPU_GRAPH_MEM_H
#define VGPU_GRAPH_MEM_H

#include "cuda_abi.h"
#include "../common/shm_layout.h"

/* The provisional charge of one launch or upload, released by vgpu_graph_mem_after. */
struct vgpu_graph_charge {
    uint64_t bytes[VGPU_MAX_DEVICES];
    int active;
};

/* Before the graph exec runs (launch, upload): reserve what the graph pool may grow by.
 * CUDA_SUCCESS, or the error to return instead of running it. */
CUresult vgpu_graph_mem_before(CUgraphExec exec, struct vgpu_graph_charge *gc);
/* After it: charge the pools' real reservation and drop the provisional charge. */
void vgpu_graph_mem_after(struct vgpu_graph_charge *gc);
/* A new executable graph: it allocates what its graph's nodes do. */
void vgpu_graph_mem_instantiated(CUgraph graph, CUgraphExec exec);

#endif
