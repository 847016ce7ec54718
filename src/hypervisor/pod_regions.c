/* pod_regions.c - map pod regions, write their control fields, read their usage.
 *
 * Why this exists: see pod_regions.h. Control fields are single atomic words the limiter reads
 * on every decision, so they are stored without the region's ledger lock; a missing device slot
 * is created through the ledger protocol (vgpu_ledger_dev_attach) with the daemon's limits, so
 * the limiter that binds the GPU later finds them in place.
 */
#define _GNU_SOURCE
#include "pod_regions.h"

#include <stdatomic.h>
#include <stdio.h>

#include "hv_log.h"
#include "nvml_monitor.h"
#include "shm_ledger.h"
#include "shm_region.h"

void region_try_open(struct hv_pod *p, uint64_t now)
{
    if (p->region || !p->pod_id[0] || now < p->region_retry_ns) return;
    char err[256] = "";
    p->region = vgpu_shm_open(hv_reg.cfg->shm_dir, p->pod_id, 0, err, sizeof(err));
    if (!p->region) {
        if (!p->region_retry_ns)
            hv_logf(HV_DEBUG, "pod region not available yet", "{s:s, s:s, s:s}", "pod", p->key,
                    "pod_id", p->pod_id, "error", err);
        p->region_retry_ns = now + 1000000000ull;
        return;
    }
    p->region_retry_ns = 0;
    hv_logf(HV_INFO, "pod region opened", "{s:s, s:s}", "pod", p->key, "pod_id", p->pod_id);
    region_apply(p);
}

static struct vgpu_shm_dev *dev_of(struct hv_pod *p, const struct hv_pod_gpu *g)
{
    struct vgpu_shm *s = p->region;
    int d = vgpu_ledger_dev_find(s, g->uuid);
    if (d < 0) {
        uint32_t lim = (uint32_t)(g->core * 100.0 + 0.5);
        struct vgpu_dev_init init = {
            .mem_limit = g->mem ? g->mem : VGPU_UNLIMITED,
            .total_real = nvml_mem_total(g->uuid),
            .core_limit = g->soft && lim ? 10000 : lim,
            .core_soft = g->soft ? lim : 0,
        };
        int created;
        d = vgpu_ledger_dev_attach(s, g->uuid, &init, &created);
        if (d < 0) {
            hv_logf(HV_WARN, "pod region has no room for another GPU", "{s:s, s:s}", "pod", p->key,
                    "gpu", g->uuid);
            return NULL;
        }
    }
    return &s->dev[d];
}

void region_write_effective(struct hv_pod *p, const struct hv_pod_gpu *g)
{
    if (!p->region) return;
    struct vgpu_shm_dev *v = dev_of(p, g);
    if (v) atomic_store(&v->core_effective, g->effective);
}

void region_apply(struct hv_pod *p)
{
    struct vgpu_shm *s = p->region;
    if (!s) return;
    for (int i = 0; i < p->ngpu; i++) {
        const struct hv_pod_gpu *g = &p->gpu[i];
        struct vgpu_shm_dev *v = dev_of(p, g);
        if (!v) continue;
        uint32_t lim = (uint32_t)(g->core * 100.0 + 0.5);
        atomic_store(&v->mem_limit, g->mem ? g->mem : VGPU_UNLIMITED);
        /* hard: a ceiling; soft: a floor, the ceiling being the whole GPU */
        atomic_store(&v->core_soft, g->soft ? lim : 0);
        atomic_store(&v->core_limit, g->soft && lim ? 10000 : lim);
        atomic_store(&v->weight, g->weight);
        atomic_store(&v->core_effective, g->effective);
    }
    atomic_store(&s->suspended, (uint32_t)(p->suspended != 0));
    atomic_store(&s->managed, 1u);
    atomic_store(&s->managed_ns, vgpu_now_ns());
}

void region_set_seq(struct hv_pod *p, uint64_t seq)
{
    if (p->region) atomic_store(&p->region->control_seq, seq);
}

void region_sample(struct hv_pod *p, uint64_t now)
{
    struct vgpu_shm *s = p->region;
    if (!s) return;
    atomic_store(&s->managed_ns, now);
    for (int i = 0; i < p->ngpu; i++) {
        struct hv_pod_gpu *g = &p->gpu[i];
        int d = vgpu_ledger_dev_find(s, g->uuid);
        if (d < 0) continue;
        struct vgpu_shm_dev *v = &s->dev[d];
        uint64_t charged = atomic_load(&v->gate_charged_ns);
        uint64_t waited = atomic_load(&v->gate_waited_ns);
        g->mem_used = atomic_load(&v->mem_used);
        g->dvfs = atomic_load(&v->gate_dvfs);
        if (g->have_sample && now > g->sample_ns) {
            uint64_t dc = charged >= g->last_charged ? charged - g->last_charged : 0;
            uint64_t share = dc * 10000ull / (now - g->sample_ns);
            g->used = (uint32_t)(share > 10000 ? 10000 : share);
            /* what an operator reads: one tick's figure swings with the gate's bursts (a pod
             * at 65% over the run read 50% in one status on the H200); weight each tick by
             * its length over a second */
            uint64_t dt = now - g->sample_ns, w = dt > 1000000000ull ? 1000000000ull : dt;
            g->used_avg =
                (uint32_t)(((uint64_t)g->used_avg * (1000000000ull - w) + (uint64_t)g->used * w) /
                           1000000000ull);
            g->wants_more = waited > g->last_waited;
        }
        g->last_charged = charged;
        g->last_waited = waited;
        g->sample_ns = now;
        g->have_sample = 1;
    }
}

void region_close(struct hv_pod *p, int unmanage)
{
    if (!p->region) return;
    if (unmanage) atomic_store(&p->region->managed, 0u);
    vgpu_shm_close(p->region);
    p->region = NULL;
    for (int i = 0; i < p->ngpu; i++)
        p->gpu[i].have_sample = 0;
}

int region_release_dead(struct hv_pod *p, pid_t host_pid, int ns_pid)
{
    struct vgpu_shm *s = p->region;
    if (!s || host_pid <= 0 || ns_pid <= 0) return 0;
    for (int i = 0; i < VGPU_MAX_PROCS; i++) {
        if (atomic_load(&s->proc[i].pid) != ns_pid || atomic_load(&s->proc[i].host_pid) != host_pid)
            continue;
        vgpu_ledger_proc_release(s, i, ns_pid);
        if (atomic_load(&s->proc[i].pid) == ns_pid) { /* the pod's lock was not free in time */
            hv_logf(HV_WARN,
                    "pod's ledger lock busy: a dead worker's memory is returned once it is free",
                    "{s:s, s:i}", "pod", p->key, "host_pid", (int)host_pid);
            p->reap_pending = 1;
            return 0;
        }
        hv_logf(HV_INFO, "released a dead worker's memory", "{s:s, s:i, s:i}", "pod", p->key,
                "host_pid", (int)host_pid, "slot", i);
        return 1;
    }
    return 0;
}

int region_reap_dead(struct hv_pod *p)
{
    struct vgpu_shm *s = p->region;
    if (!s) return 0;
    int left = 0;
    for (int i = 0; i < VGPU_MAX_PROCS; i++) {
        int32_t pid = atomic_load(&s->proc[i].pid), host = atomic_load(&s->proc[i].host_pid);
        if (pid <= 0 || host <= 0 || vgpu_proc_alive(host, s->proc[i].start_time)) continue;
        vgpu_ledger_proc_release(s, i, pid);
        if (atomic_load(&s->proc[i].pid) == pid) {
            left++; /* lock busy: next second */
            continue;
        }
        hv_logf(HV_INFO, "released a dead process's memory", "{s:s, s:i, s:i}", "pod", p->key,
                "host_pid", (int)host, "slot", i);
    }
    return left;
}
