/* pod_regions.c - write a pod's control region, read its ledger (see pod_regions.h). */
#define _GNU_SOURCE
#include "pod_regions.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ctl_region.h"
#include "hv_log.h"
#include "ledger_reader.h"
#include "nvml_monitor.h"
#include "pod_files.h"
#include "proc_alive.h"
#include "shm_region.h"

static void mark_broken(struct hv_pod *p, const char *why)
{
    if (!p->broken[0])
        hv_logf(HV_WARN, "pod's ledger unusable: its GPU work is refused", "{s:s, s:s}", "pod",
                p->key, "error", why);
    snprintf(p->broken, sizeof(p->broken), "%s", why);
    if (p->files.ctl) {
        atomic_store(&p->files.ctl->state, (uint32_t)VGPU_CTL_BROKEN);
        atomic_store(&p->files.ctl->suspended, 1u);
    }
}

int region_open(struct hv_pod *p, uid_t uid, gid_t gid, char *err, size_t errlen)
{
    if (p->files.ctl) return 0;
    /* an allocation's directory was made for the allocation (allocations.c), before its pod
     * was known: its control region records the allocation */
    char key[HV_KEY_LEN];
    if (!strncmp(p->dir, "a-", 2))
        snprintf(key, sizeof(key), "alloc/%s", p->dir + 2);
    else
        snprintf(key, sizeof(key), "%s", p->key);
    int r = pod_files_open(p->dir, key, uid, gid, &p->files, err, errlen);
    if (r != 0) return r;
    p->broken[0] = 0;
    atomic_store(&p->files.ctl->state, (uint32_t)VGPU_CTL_OK);
    for (int i = 0; i < p->ngpu; i++)
        p->gpu[i].have_sample = 0;
    hv_logf(HV_INFO, "pod region opened", "{s:s, s:s}", "pod", p->key, "dir", p->dir);
    region_apply(p);
    return 0;
}

/* the control region's entry for a GPU, added when missing (uuid first, then READY) */
static struct vgpu_ctl_dev *ctl_dev(struct hv_pod *p, const struct hv_pod_gpu *g)
{
    struct vgpu_ctl *c = p->files.ctl;
    int d = vgpu_ctl_dev_find(c, g->uuid);
    if (d >= 0) return &c->dev[d];
    for (int k = 0; k < VGPU_MAX_DEVICES; k++) {
        struct vgpu_ctl_dev *v = &c->dev[k];
        if (atomic_load(&v->state) != VGPU_DEV_EMPTY) continue;
        memset(v->uuid, 0, sizeof(v->uuid));
        snprintf(v->uuid, sizeof(v->uuid), "%s", g->uuid);
        atomic_store(&v->lim.mem_limit, VGPU_UNLIMITED);
        atomic_store_explicit(&v->state, VGPU_DEV_READY, memory_order_release);
        return v;
    }
    return NULL;
}

void region_write_effective(struct hv_pod *p, const struct hv_pod_gpu *g)
{
    if (!p->files.ctl) return;
    struct vgpu_ctl_dev *v = ctl_dev(p, g);
    if (v) atomic_store(&v->lim.core_effective, g->effective);
}

void region_write_shared(struct hv_pod *p, const struct hv_pod_gpu *g)
{
    if (!p->files.ctl) return;
    struct vgpu_ctl_dev *v = ctl_dev(p, g);
    if (v) atomic_store(&v->lim.core_shared, g->shared);
}

void region_apply(struct hv_pod *p)
{
    struct vgpu_ctl *c = p->files.ctl;
    if (!c) return;
    for (int i = 0; i < p->ngpu; i++) {
        const struct hv_pod_gpu *g = &p->gpu[i];
        struct vgpu_ctl_dev *v = ctl_dev(p, g);
        if (!v) continue;
        uint32_t lim = hv_percent_x100(g->core);
        /* the limit first, the share it bounds last: a reader never sees a share above a new,
         * lower limit together with the old limit */
        atomic_store(&v->lim.mem_limit, g->mem ? g->mem : VGPU_UNLIMITED);
        /* hard: a ceiling; soft: a floor, the ceiling being the whole GPU */
        atomic_store(&v->lim.core_soft, g->soft ? lim : 0);
        atomic_store(&v->lim.core_limit, g->soft && lim ? 10000 : lim);
        atomic_store(&v->lim.weight, g->weight);
        atomic_store(&v->lim.core_shared, g->shared);
        atomic_store(&v->lim.core_effective, g->effective);
    }
    atomic_store(&c->suspended, (uint32_t)(p->suspended != 0 || p->broken[0]));
    atomic_store(&c->state, (uint32_t)(p->broken[0] ? VGPU_CTL_BROKEN : VGPU_CTL_OK));
    atomic_store(&c->managed_ns, vgpu_now_ns());
}

void region_set_seq(struct hv_pod *p, uint64_t seq)
{
    if (p->files.ctl) atomic_store(&p->files.ctl->control_seq, seq);
}

void region_sample(struct hv_pod *p, uint64_t now)
{
    if (!p->files.ctl) return;
    atomic_store(&p->files.ctl->managed_ns, now);
    /* only its header and dev[] are read (a few KiB); callers hold the registry lock */
    static struct vgpu_shm copy;
    char why[160];
    if (ledger_read_head(p->files.ledger_fd, &copy, why, sizeof(why)) != 0) {
        mark_broken(p, why);
        return;
    }
    for (int i = 0; i < p->ngpu; i++) {
        struct hv_pod_gpu *g = &p->gpu[i];
        const struct vgpu_shm_dev *v = ledger_dev(&copy, g->uuid);
        if (!v) continue;
        uint64_t charged = atomic_load_explicit(&v->gate_charged_ns, memory_order_relaxed);
        uint64_t waited = atomic_load_explicit(&v->gate_waited_ns, memory_order_relaxed);
        uint64_t used = atomic_load_explicit(&v->mem_used, memory_order_relaxed);
        uint32_t dvfs = atomic_load_explicit(&v->gate_dvfs, memory_order_relaxed);
        /* the pod's own figures: bounded so that no value breaks a reply or a sum */
        g->mem_used = used > (uint64_t)INT64_MAX ? (uint64_t)INT64_MAX : used;
        g->dvfs = dvfs >= 256 && dvfs <= 8192 ? dvfs : 0;
        uint32_t scale = atomic_load_explicit(&v->limiter.gate_scale, memory_order_relaxed);
        g->scale = scale >= 256 && scale <= 4096 ? scale : 1024; /* the limiter's own bounds */
        if (g->have_sample && now > g->sample_ns) {
            uint64_t dc = charged >= g->last_charged ? charged - g->last_charged : 0;
            uint64_t dt = now - g->sample_ns;
            uint64_t share = dc / dt >= 1 ? 10000 : dc * 10000ull / dt;
            g->used = (uint32_t)(share > 10000 ? 10000 : share);
            /* what an operator reads: one tick's figure swings with the gate's bursts; weight
             * each tick by its length over a second */
            uint64_t w = dt > 1000000000ull ? 1000000000ull : dt;
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

static int reported(const struct vgpu_ctl *c, pid_t host, uint64_t start)
{
    uint64_t n = atomic_load(&c->dead_seq);
    for (uint64_t k = 0; k < VGPU_CTL_DEAD && k < n; k++)
        if (atomic_load(&c->dead[k].host_pid) == host &&
            atomic_load(&c->dead[k].start_time) == start)
            return 1;
    return 0;
}

void region_report_dead(struct hv_pod *p, pid_t host_pid, uint64_t start_time)
{
    struct vgpu_ctl *c = p->files.ctl;
    if (!c || host_pid <= 0 || reported(c, host_pid, start_time)) return;
    uint64_t n = atomic_load(&c->dead_seq);
    struct vgpu_ctl_dead *e = &c->dead[n % VGPU_CTL_DEAD];
    atomic_store(&e->host_pid, 0); /* no reader matches a half-written entry */
    atomic_store(&e->start_time, start_time);
    atomic_store(&e->host_pid, host_pid);
    atomic_store_explicit(&c->dead_seq, n + 1, memory_order_release);
    hv_logf(HV_INFO, "reported a dead process to its pod", "{s:s, s:i}", "pod", p->key, "host_pid",
            (int)host_pid);
}

int region_reap_dead(struct hv_pod *p, int full, region_alive_fn known_alive)
{
    if (!p->files.ctl || p->files.ledger_fd < 0) return 0;
    static struct vgpu_shm_proc procs[VGPU_MAX_PROCS]; /* callers hold the registry lock */
    full = full || ++p->reap_calls % REGION_REAP_FULL_EVERY == 0;
    int n = full ? VGPU_MAX_PROCS : p->reap_hw + REGION_REAP_AHEAD;
    if (n > VGPU_MAX_PROCS) n = VGPU_MAX_PROCS;
    if (ledger_read_procs_n(p->files.ledger_fd, procs, n) != 0) {
        mark_broken(p, "the ledger file is shorter than a ledger");
        return 0;
    }
    int live = 0, top = 0;
    for (int i = 0; i < n; i++) {
        int32_t pid = atomic_load_explicit(&procs[i].pid, memory_order_relaxed);
        int32_t host = atomic_load_explicit(&procs[i].host_pid, memory_order_relaxed);
        if (pid <= 0) continue;
        top = i + 1;
        uint64_t start = procs[i].start_time;
        if (host <= 0 || (known_alive && known_alive(p, host, start)) || proc_alive(host, start)) {
            live++; /* alive, or not known to the host yet: kept */
            continue;
        }
        region_report_dead(p, host, procs[i].start_time);
    }
    /* the short reading grows with the pod; only a full one may shrink it */
    if (full || top > p->reap_hw) p->reap_hw = top;
    return live;
}

void region_close(struct hv_pod *p, int remove)
{
    if (!p->files.ctl) return;
    pod_files_close(&p->files);
    for (int i = 0; i < p->ngpu; i++)
        p->gpu[i].have_sample = 0;
    /* an allocation's directory stays: the kubelet mounts it into the container's next start
     * too; it goes once the kubelet has given its units again (allocations.c) */
    if (remove && (strncmp(p->dir, "a-", 2) != 0 || p->retired)) {
        pod_files_remove(p->dir);
        hv_logf(HV_INFO, "pod region removed", "{s:s, s:s}", "pod", p->key, "dir", p->dir);
    } else if (remove) {
        hv_logf(HV_INFO, "pod region closed; the allocation keeps it", "{s:s, s:s}", "pod", p->key,
                "dir", p->dir);
    }
}
