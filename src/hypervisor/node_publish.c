/* node_publish.c - the daemon's writer of the node region (see node_publish.h). */
#include "node_publish.h"

#include <stdatomic.h>
#include <string.h>

#include "hv_log.h"
#include "node_region.h"
#include "shm_region.h"

static struct vgpu_node_shm *node;

int node_publish_open(const char *shm_dir)
{
    char err[600];
    node = vgpu_node_create(shm_dir, err, sizeof(err));
    if (!node) {
        hv_logf(HV_WARN, "node region not available: limiters query NVML themselves", "{s:s}",
                "error", err);
        return -1;
    }
    return 0;
}

void node_publish(const struct nvml_snapshot *snap)
{
    if (!node || !snap || !snap->ok) return;
    vgpu_node_write_begin(node);
    unsigned np = 0, ng = 0;
    for (int g = 0; g < snap->ngpu && g < VGPU_MAX_DEVICES; g++, ng++) {
        const struct nvml_gpu *s = &snap->gpu[g];
        struct vgpu_node_gpu *d = &node->gpu[g];
        for (int k = 0; k < VGPU_UUID_LEN; k++) /* readers copy byte by byte too */
            __atomic_store_n(&d->uuid[k], k < VGPU_UUID_LEN - 1 ? s->uuid[k] : 0, __ATOMIC_RELAXED);
        atomic_store_explicit(&d->util, s->util_x100, memory_order_relaxed);
        atomic_store_explicit(&d->mem_used, s->mem_used, memory_order_relaxed);
        atomic_store_explicit(&d->mem_total, s->mem_total, memory_order_relaxed);
        for (int i = 0; i < s->nproc && np < VGPU_NODE_MAX_PROCS; i++, np++) {
            struct vgpu_node_proc *p = &node->proc[np];
            atomic_store_explicit(&p->host_pid, s->proc[i].pid, memory_order_relaxed);
            atomic_store_explicit(&p->gpu, (uint32_t)g, memory_order_relaxed);
            atomic_store_explicit(&p->sm_util, s->proc[i].sm * 100u, memory_order_relaxed);
            atomic_store_explicit(&p->mem, s->proc[i].mem, memory_order_relaxed);
        }
    }
    atomic_store_explicit(&node->ngpu, ng, memory_order_relaxed);
    atomic_store_explicit(&node->nproc, np, memory_order_relaxed);
    vgpu_node_write_end(node, vgpu_now_ns());
}

void node_publish_close(void)
{
    if (!node) return;
    vgpu_node_write_begin(node);
    atomic_store(&node->updated_ns, 0); /* stale at once: a stopped daemon's figures age */
    vgpu_node_write_end(node, 0);
    vgpu_node_unmap(node);
    node = NULL;
}
