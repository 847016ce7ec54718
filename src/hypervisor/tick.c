/* tick.c - every --tick-ms: sample pod regions, schedule each GPU, reap workers, backstop.
 *
 * Why this exists: see tick.h. Per tick, under the registry lock:
 *  - workers whose host process is gone (or is a zombie, or a reused pid) are removed at once;
 *    those silent for 3 heartbeat intervals (and not waiting in a long-poll) too;
 *  - each pod's ledger is sampled (delta of gate_charged_ns = share used; gate_waited_ns grew =
 *    wants more), the policy allocates every GPU's limited pods, core_effective is written into
 *    their control regions, and a change of more than 1 percentage point since the last command
 *    goes out as `limits`; once a second, ledger records of processes that are gone are
 *    reported to their pods (ctl_layout.h dead[]);
 *  - once a second NVML is sampled (outside the lock) for the backstop: processes on a GPU that
 *    no worker registered ("unregistered") and pods whose processes exceed their cap ("over_cap"),
 *    each logged once when it appears.
 */
#define _GNU_SOURCE
#include "tick.h"

#include <poll.h>
#include <stdio.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "command_channel.h"
#include "contention.h"
#include "hv_log.h"
#include "node_publish.h"
#include "nvml_monitor.h"
#include "pod_regions.h"
#include "proc_alive.h"
#include "registry.h"
#include "share_balance.h"
#include "shm_region.h"

static pthread_t thr;
static atomic_int stop_flag;
static int started;
static const struct sched_policy *pol;
static uint64_t tick_ns, hb_ns;
static double shared_part;
/* the tick thread's CPU time in NVML passes and in the rest (tick_cpu_ns): what an operator
 * needs to tell the driver's cost from the daemon's own with many workers */
static _Atomic uint64_t cpu_nvml_ns, cpu_pods_ns;

static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)) return 0;
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void tick_cpu_ns(uint64_t *nvml, uint64_t *pods)
{
    *nvml = atomic_load(&cpu_nvml_ns);
    *pods = atomic_load(&cpu_pods_ns);
}

/* the tick's now when reap_workers last saw each worker running through its pidfd */
static uint64_t reap_now;

static void reap_workers(uint64_t now)
{
    /* every worker's pidfd in one poll(2): one system call a tick, not one a worker */
    static struct pollfd *q;
    static size_t qcap;
    size_t n = 0;
    for (struct hv_worker *w = hv_reg.workers; w; w = w->next)
        n++;
    if (n > qcap) {
        struct pollfd *nq = realloc(q, n * sizeof(*q));
        if (nq) {
            q = nq;
            qcap = n;
        }
    }
    size_t i = 0;
    for (struct hv_worker *w = hv_reg.workers; w && i < qcap; w = w->next)
        q[i++].fd = w->pidfd;
    proc_pidfds_poll(q, i);
    reap_now = now;
    size_t k = 0;
    for (struct hv_worker *w = hv_reg.workers, *next; w; w = next, k++) {
        next = w->next;
        int exited = k < i ? proc_pidfd_result(&q[k]) : -1; /* -1: no pidfd, ask /proc */
        if (exited == 0) w->alive_ns = now;
        if (exited == 1 || (exited < 0 && !proc_alive(w->host_pid, w->start_time))) {
            struct hv_pod *p = registry_pod_find(w->pod_key);
            if (p) region_report_dead(p, w->host_pid, w->start_time);
            registry_worker_remove(w, "process gone");
        } else if (!w->polling && now > w->last_seen_ns && now - w->last_seen_ns > 3 * hb_ns)
            registry_worker_remove(w, "silent for 3 heartbeats");
    }
}

/* A ledger record's process is a worker of the same pod that this tick's poll saw running:
 * no need to read /proc for it (region_reap_dead). Registry lock held. */
static int seen_running(const struct hv_pod *p, pid_t host, uint64_t start_time)
{
    for (const struct hv_worker *w = hv_reg.workers; w; w = w->next)
        if (w->host_pid == host && w->alive_ns == reap_now && reap_now &&
            w->start_time == start_time && !strcmp(w->pod_key, p->key))
            return 1;
    return 0;
}

struct slot {
    struct hv_pod *p;
    struct hv_pod_gpu *g;
};

/* NVML's busy percent x 100 of the GPU, -1 when unknown */
static int gpu_util_x100(const char *uuid)
{
    struct nvml_snapshot *ns = nvml_snapshot_get();
    int util = -1;
    for (int i = 0; ns && ns->ok && i < ns->ngpu; i++)
        if (!strcmp(ns->gpu[i].uuid, uuid)) util = (int)ns->gpu[i].util_x100;
    free(ns);
    return util;
}

/* The pod of a registered host PID, NULL if none */
static struct hv_pod *pod_of_pid(pid_t pid)
{
    for (struct hv_worker *w = hv_reg.workers; w; w = w->next)
        if (w->host_pid == pid) return registry_pod_find(w->pod_key);
    return NULL;
}

/* The daemon's log says when what decides a GPU's shared factor changes (not every second):
 * whether it follows the GPU's busy time, is 1 (and why), or holds (and on whose report). A pod
 * whose reports flip the state gets at most one line a second per GPU (contend runs once a
 * second), from figures the tick has already read. */
static void log_contention(const char *uuid, enum contention_state st, const struct hv_pod *who,
                           const struct contention_pod *cp)
{
    static struct {
        char uuid[VGPU_UUID_LEN];
        int st;
    } seen[64];
    size_t i = 0;
    while (i < 64 && seen[i].uuid[0] && strcmp(seen[i].uuid, uuid))
        i++;
    if (i == 64) return;
    if (seen[i].uuid[0] && seen[i].st == (int)st) return;
    snprintf(seen[i].uuid, sizeof(seen[i].uuid), "%s", uuid);
    seen[i].st = (int)st;
    static const char *const what[] = {
        [CONTENTION_MOVES] = "shared factor follows the GPU's busy time",
        [CONTENTION_FEW] = "shared factor 1: fewer than two pods work on the GPU",
        [CONTENTION_FOREIGN] = "shared factor 1: a process of no limited pod holds a context",
        [CONTENTION_NO_FIGURE] = "shared factor holds: no figures for the second",
        [CONTENTION_REPORT] = "shared factor holds: a pod reports less than NVML shows of it",
    };
    if (st == CONTENTION_REPORT && who && cp)
        hv_logf(HV_INFO, what[st], "{s:s, s:s, s:f, s:f}", "gpu", uuid, "pod", who->key, "charged",
                cp->charged, "nvml", cp->nvml);
    else
        hv_logf(HV_INFO, what[st], "{s:s}", "gpu", uuid);
}

/* Once a second, with NVML's figures of the same second: the contention factor of one GPU's
 * limited pods (contention.h), idx[0..k) into slots. */
static void contend(const struct slot *slots, const size_t *idx, size_t k,
                    const struct nvml_snapshot *snap, uint64_t now)
{
    const struct nvml_gpu *ng = NULL;
    for (int i = 0; snap->ok && i < snap->ngpu; i++)
        if (!strcmp(snap->gpu[i].uuid, slots[idx[0]].g->uuid)) ng = &snap->gpu[i];
    static struct contention_pod cp[4096];
    for (size_t j = 0; j < k; j++) {
        struct hv_pod_gpu *g = slots[idx[j]].g;
        uint64_t dc = g->last_charged >= g->win_charged ? g->last_charged - g->win_charged : 0;
        uint64_t dt = g->win_ns && now > g->win_ns ? now - g->win_ns : 0;
        /* a first window, or one over 3 s (the tick fell behind), tells nothing */
        cp[j].charged = dt && dt < 3000000000ull && g->have_sample
                            ? (double)dc / (double)dt * g->scale / 1024.0
                            : -1;
        if (cp[j].charged > 1.0) cp[j].charged = 1.0;
        cp[j].nvml = ng ? 0 : -1;
        g->win_charged = g->last_charged;
        g->win_ns = now;
    }
    int foreign = !ng;
    for (int i = 0; ng && i < ng->nproc; i++) {
        struct hv_pod *owner = pod_of_pid((pid_t)ng->proc[i].pid);
        size_t j = 0;
        while (j < k && slots[idx[j]].p != owner)
            j++;
        if (j == k) {
            foreign = 1; /* a process of no limited pod here: its busy time is nobody's charge */
            continue;
        }
        cp[j].nvml += ng->proc[i].sm / 100.0;
    }
    uint32_t cur = 0; /* a pod that joined has none yet */
    for (size_t j = 0; j < k; j++)
        if (slots[idx[j]].g->shared > cur) cur = slots[idx[j]].g->shared;
    double util = ng ? ng->util_x100 / 10000.0 : -1;
    size_t who = k;
    enum contention_state st = contention_state(cp, k, util, foreign, &who);
    log_contention(slots[idx[0]].g->uuid, st, who < k ? slots[idx[who]].p : NULL,
                   who < k ? &cp[who] : NULL);
    uint32_t next = contention_next(cur, cp, k, util, foreign, shared_part);
    for (size_t j = 0; j < k; j++) {
        struct slot const *s = &slots[idx[j]];
        if (s->g->shared == next) continue;
        s->g->shared = next;
        region_write_shared(s->p, s->g);
    }
}

static void schedule(const struct nvml_snapshot *snap)
{
    static struct slot slots[4096];
    static struct sched_pod in[4096];
    static uint32_t out[4096];
    static char done[4096];
    size_t n = 0;
    for (struct hv_pod *p = hv_reg.pods; p; p = p->next)
        for (int i = 0; p->files.ctl && i < p->ngpu && n < 4096; i++)
            if (p->gpu[i].core > 0) slots[n++] = (struct slot){p, &p->gpu[i]};
    memset(done, 0, n);
    for (size_t a = 0; a < n; a++) {
        if (done[a]) continue;
        /* every limited pod on the same GPU as slot a */
        size_t k = 0;
        static size_t idx[4096];
        for (size_t b = a; b < n; b++)
            if (!done[b] && !strcmp(slots[b].g->uuid, slots[a].g->uuid)) {
                done[b] = 1;
                idx[k] = b;
                const struct hv_pod_gpu *g = slots[b].g;
                in[k++] = (struct sched_pod){.limit = hv_percent_x100(g->core),
                                             .weight = g->weight ? g->weight : 1,
                                             .soft = g->soft,
                                             .used = g->used,
                                             .wants_more = g->wants_more,
                                             .prev = g->effective};
            }
        /* On a saturated GPU the pods slow each other down (contexts time-slice), so a pod
         * that is not waiting at its gate may still be held back by the others: every pod
         * doing real work then counts as wanting more, and the weights decide. */
        uint32_t sum = 0;
        for (size_t j = 0; j < k; j++)
            sum += in[j].used;
        int util = gpu_util_x100(slots[a].g->uuid);
        int saturated = sum >= 9000 || util >= 9000;
        /* The use each pod reports is its own word. Balancing takes from one pod by what the
         * others report, so it acts only while the reports account for most of what NVML
         * measured: a pod that hides its use cannot have its neighbours trimmed for it. */
        int reports_hold = util < 0 || (uint64_t)sum * 10 >= (uint64_t)util * 7;
        if (saturated)
            for (size_t j = 0; j < k; j++)
                if (in[j].used >= 200) in[j].wants_more = 1;
        pol->allocate(in, k, out);
        /* then what the soft pods really got is brought to their weights (share_balance.h) */
        static struct balance_pod bal[4096];
        for (size_t j = 0; j < k; j++) {
            struct hv_pod_gpu *g = slots[idx[j]].g;
            g->contend_ticks = in[j].soft && in[j].wants_more ? g->contend_ticks + 1 : 0;
            if (g->contend_ticks > 1000000) g->contend_ticks = 1000000;
            bal[j] = (struct balance_pod){.target = out[j],
                                          .used = g->used_avg,
                                          .contending = g->contend_ticks,
                                          .trim = g->trim};
        }
        share_balance(bal, k, saturated && reports_hold);
        if (snap) contend(slots, idx, k, snap, vgpu_now_ns());
        for (size_t j = 0; j < k; j++) {
            struct slot *s = &slots[idx[j]];
            s->g->trim = bal[j].trim;
            if (in[j].soft) out[j] = share_trimmed(out[j], bal[j].trim);
            uint32_t e = out[j] < 1 ? 1 : out[j] > 10000 ? 10000 : out[j];
            if (e != s->g->effective) {
                s->g->effective = e;
                region_write_effective(s->p, s->g);
            }
        }
    }
    /* one limits command per pod whose share moved by more than 1 pp since the last one */
    for (struct hv_pod *p = hv_reg.pods; p; p = p->next) {
        int push = 0;
        for (int i = 0; i < p->ngpu; i++) {
            int d = (int)p->gpu[i].effective - (int)p->gpu[i].pushed;
            if (d > 100 || d < -100) push = 1;
        }
        if (push && p->nworkers) cmd_push_pod(p, "limits");
    }
}

static int was_unreg(const struct hv_unreg *old, int nold, pid_t pid, int gpu)
{
    for (int i = 0; i < nold; i++)
        if (old[i].host_pid == pid && old[i].gpu == gpu) return 1;
    return 0;
}

static void backstop(const struct nvml_snapshot *s)
{
    static struct hv_unreg old[HV_MAX_UNREG];
    int nold = hv_reg.nunreg;
    memcpy(old, hv_reg.unreg, (size_t)nold * sizeof(old[0]));
    hv_reg.nunreg = 0;
    for (struct hv_pod *p = hv_reg.pods; p; p = p->next)
        for (int i = 0; i < p->ngpu; i++)
            p->gpu[i].nvml_mem = 0;
    for (int gi = 0; gi < s->ngpu; gi++) {
        const struct nvml_gpu *g = &s->gpu[gi];
        for (int k = 0; k < g->nproc; k++) {
            const struct nvml_proc *np = &g->proc[k];
            struct hv_pod *p = pod_of_pid((pid_t)np->pid);
            if (p) {
                for (int i = 0; i < p->ngpu; i++)
                    if (!strcmp(p->gpu[i].uuid, g->uuid)) p->gpu[i].nvml_mem += np->mem;
                continue;
            }
            if (hv_reg.nunreg >= HV_MAX_UNREG) continue;
            hv_reg.unreg[hv_reg.nunreg++] = (struct hv_unreg){(pid_t)np->pid, g->index, np->mem};
            if (!was_unreg(old, nold, (pid_t)np->pid, g->index))
                hv_logf(HV_WARN, "unregistered process on a GPU", "{s:i, s:i, s:s, s:I}",
                        "host_pid", (int)np->pid, "gpu", g->index, "uuid", g->uuid, "mem_used",
                        (json_int_t)np->mem);
        }
    }
    for (struct hv_pod *p = hv_reg.pods; p; p = p->next) {
        int over = 0;
        for (int i = 0; i < p->ngpu; i++)
            if (p->gpu[i].mem && p->gpu[i].nvml_mem > p->gpu[i].mem) over = 1;
        if (over && !p->over_cap)
            hv_logf(HV_WARN, "pod above its memory cap (NVML)", "{s:s}", "pod", p->key);
        else if (!over && p->over_cap)
            hv_logf(HV_INFO, "pod back under its memory cap (NVML)", "{s:s}", "pod", p->key);
        p->over_cap = over;
    }
}

static void *run(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "vgpu-tick"); /* for per-thread CPU in top and tests */
    uint64_t next = vgpu_now_ns(), nvml_next = 0;
    while (!atomic_load(&stop_flag)) {
        uint64_t now = vgpu_now_ns();
        struct nvml_snapshot *snap = NULL;
        uint64_t cpu = thread_cpu_ns();
        if (now >= nvml_next) {
            nvml_monitor_sample();
            snap = nvml_snapshot_get();
            node_publish(snap); /* for the limiters: src/common/node_layout.h */
            nvml_next = now + 1000000000ull;
            uint64_t c = thread_cpu_ns();
            atomic_fetch_add(&cpu_nvml_ns, c - cpu);
            cpu = c;
        }
        registry_lock();
        now = vgpu_now_ns();
        reap_workers(now);
        for (struct hv_pod *p = hv_reg.pods, *pnext; p; p = pnext) {
            pnext = p->next; /* p may be dropped below */
            region_sample(p, now);
            if (!snap) continue; /* the rest once a second */
            if (p->draining)
                registry_pod_maybe_drop(p);
            else
                region_reap_dead(p, 0, seen_running);
        }
        schedule(snap);
        if (snap && snap->ok) backstop(snap);
        registry_unlock();
        free(snap);
        atomic_fetch_add(&cpu_pods_ns, thread_cpu_ns() - cpu);
        next += tick_ns;
        now = vgpu_now_ns();
        if (next < now) next = now; /* fell behind: do not burst */
        struct timespec ts = {(time_t)(next / 1000000000ull), (long)(next % 1000000000ull)};
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
    }
    return NULL;
}

int tick_start(const struct sched_policy *policy, int tick_ms, int heartbeat_ms, int shared_pct)
{
    shared_part = shared_pct / 100.0;
    pol = policy;
    tick_ns = (uint64_t)tick_ms * 1000000ull;
    hb_ns = (uint64_t)heartbeat_ms * 1000000ull;
    if (pthread_create(&thr, NULL, run, NULL)) return -1;
    started = 1;
    return 0;
}

void tick_stop(void)
{
    if (!started) return;
    atomic_store(&stop_flag, 1);
    pthread_join(thr, NULL);
    started = 0;
}
