/* registry.c - pods, workers, settings by source, and the lock that guards them.
 *
 * Why this exists: see registry.h. This file also decides which source wins for each limit,
 * field by field (pick):
 *   operator (vgpu set, --state)
 *   > annotations of a pod in a trusted namespace ([kubernetes] trusted_namespaces): they
 *     replace [defaults], as an operator wrote them
 *   > the tightest of [defaults], the annotations of a pod in any other namespace, and the
 *     worker's environment.
 * A pod writes its own annotations and environment, so both are its tenant's word: they may
 * lower what the operator's defaults give, never raise it. "Absent" is no limit from that
 * source. Tighter: a smaller core limit, a smaller memory cap (0 = no cap, the loosest), a
 * smaller weight, and hard rather than soft (a soft limit also lends the GPU's idle time, so
 * the result is soft only when every present source says soft; [defaults] with a core_limit
 * and no soft key are a hard default). The reported source of a field is the one whose value
 * binds; on a tie the operator's side wins (defaults, then annotations, then environment), so
 * "kubernetes" or "env" there means the tenant really lowered the default.
 */
#define _GNU_SOURCE
#include "registry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hv_log.h"
#include "pod_identity.h"
#include "pod_regions.h"
#include "proc_alive.h"
#include "shm_ledger.h"
#include "shm_region.h"

struct hv_registry hv_reg = {.mu = PTHREAD_MUTEX_INITIALIZER};

void registry_init(const struct hv_config *cfg)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&hv_reg.cv, &ca);
    pthread_condattr_destroy(&ca);
    hv_reg.cfg = cfg;
}

void registry_lock(void)
{
    pthread_mutex_lock(&hv_reg.mu);
}
void registry_unlock(void)
{
    pthread_mutex_unlock(&hv_reg.mu);
}

void registry_shutdown(void)
{
    registry_lock();
    hv_reg.stopping = 1;
    pthread_cond_broadcast(&hv_reg.cv);
    registry_unlock();
}

struct hv_pod *registry_pod_find(const char *key)
{
    for (struct hv_pod *p = hv_reg.pods; p; p = p->next)
        if (!strcmp(p->key, key)) return p;
    return NULL;
}

struct hv_pod *registry_pod_find_dir(const char *ns, const char *base, const char *dir)
{
    for (struct hv_pod *p = hv_reg.pods; p; p = p->next)
        if (p->dir[0] && !strcmp(p->dir, dir) && !strcmp(p->ns, ns) && !strcmp(p->base, base))
            return p;
    return NULL;
}

struct hv_pod *registry_pod_get(const char *ns, const char *name)
{
    return registry_pod_get_of(ns, name, name);
}

struct hv_pod *registry_pod_get_of(const char *ns, const char *name, const char *base)
{
    char key[HV_KEY_LEN];
    snprintf(key, sizeof(key), "%s/%s", ns, name);
    struct hv_pod *p = registry_pod_find(key);
    if (p) return p;
    p = calloc(1, sizeof(*p));
    if (!p) return NULL;
    snprintf(p->key, sizeof(p->key), "%s", key);
    snprintf(p->ns, sizeof(p->ns), "%s", ns);
    snprintf(p->name, sizeof(p->name), "%s", name);
    snprintf(p->base, sizeof(p->base), "%s", base);
    /* a container's entry starts as its pod is: suspended or not */
    for (const struct hv_pod *o = hv_reg.pods; o && strcmp(name, base); o = o->next)
        if (!strcmp(o->ns, ns) && !strcmp(o->name, base)) p->suspended = o->suspended;
    for (const struct hv_kube_pod *k = hv_reg.kube; k; k = k->next)
        if (!strcmp(k->ns, ns) && !strcmp(k->name, base)) {
            p->has_kube = 1;
            p->kube = k->l;
        }
    p->files.ledger_fd = -1;
    p->next = hv_reg.pods;
    hv_reg.pods = p;
    return p;
}

void registry_pod_maybe_drop(struct hv_pod *p)
{
    if (p->nworkers > 0) return;
    /* a process of the pod still has a record in its ledger (it has not exited, or not yet
     * released it): the files stay, and the tick looks again */
    p->draining = p->files.ctl && region_reap_dead(p, 1, NULL) > 0;
    if (p->draining) return;
    region_close(p, 1);
    p->ngpu = 0;
    if (p->n_op || p->suspended) return;
    for (struct hv_pod **pp = &hv_reg.pods; *pp; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            free(p);
            return;
        }
}

int registry_dir_release(const char *dir)
{
    for (struct hv_pod *p = hv_reg.pods; p; p = p->next) {
        if (strcmp(p->dir, dir)) continue;
        if (p->nworkers > 0 || p->draining) {
            p->retired = 1;
            return 1;
        }
        region_close(p, 0);
        p->dir[0] = 0;
    }
    return 0;
}

struct hv_pod_gpu *registry_pod_gpu(struct hv_pod *p, const char *uuid, int index)
{
    for (int i = 0; i < p->ngpu; i++)
        if (!strcmp(p->gpu[i].uuid, uuid)) return &p->gpu[i];
    if (p->ngpu >= HV_MAX_GPUS) return NULL;
    struct hv_pod_gpu *g = &p->gpu[p->ngpu++];
    memset(g, 0, sizeof(*g));
    snprintf(g->uuid, sizeof(g->uuid), "%s", uuid);
    g->index = index;
    g->weight = 1;
    g->source = "none";
    return g;
}

struct hv_worker *registry_worker_find(const char *id)
{
    for (struct hv_worker *w = hv_reg.workers; w; w = w->next)
        if (!strcmp(w->id, id)) return w;
    return NULL;
}

struct hv_worker *registry_worker_add(struct hv_pod *p, pid_t host_pid, int pid)
{
    struct hv_worker *w = calloc(1, sizeof(*w));
    if (!w) return NULL;
    snprintf(w->id, sizeof(w->id), "w-%llu", (unsigned long long)++hv_reg.next_worker);
    w->host_pid = host_pid;
    w->pid = pid;
    w->pidfd = proc_pidfd_open(host_pid);
    w->start_time = proc_start_time(host_pid);
    snprintf(w->pod_key, sizeof(w->pod_key), "%s", p->key);
    w->registered_ns = w->last_seen_ns = vgpu_now_ns();
    w->reg_seq = w->last_cmd_seq = w->acked_seq = hv_reg.seq;
    w->next = hv_reg.workers;
    hv_reg.workers = w;
    hv_reg.nworkers++;
    p->nworkers++;
    return w;
}

/* A worker and its command queue (what command_channel.c queued for it). */
static void worker_free(struct hv_worker *w)
{
    if (w->pidfd >= 0) close(w->pidfd);
    for (int i = 0; i < w->qlen; i++)
        free(w->q[i].json);
    free(w);
}

void registry_worker_remove(struct hv_worker *w, const char *why)
{
    for (struct hv_worker **pp = &hv_reg.workers; *pp; pp = &(*pp)->next)
        if (*pp == w) {
            *pp = w->next;
            break;
        }
    hv_reg.nworkers--;
    hv_logf(HV_INFO, "worker removed", "{s:s, s:i, s:s, s:s}", "worker", w->id, "host_pid",
            (int)w->host_pid, "pod", w->pod_key, "reason", why);
    struct hv_pod *p = registry_pod_find(w->pod_key);
    worker_free(w);
    if (p) {
        p->nworkers--;
        registry_pod_maybe_drop(p);
    }
    pthread_cond_broadcast(&hv_reg.cv);
}

/* --- precedence ----------------------------------------------------------------------------- */

static const struct hv_limits *op_for(const struct hv_pod *p, const struct hv_pod_gpu *g,
                                      unsigned bit)
{
    char idx[16];
    snprintf(idx, sizeof(idx), "%d", g->index);
    const char *keys[3] = {g->uuid, idx, "all"};
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < p->n_op; i++)
            if ((p->op[i].l.has & bit) && !strcmp(p->op[i].key, keys[k])) return &p->op[i].l;
    return NULL;
}

enum { SRC_NONE, SRC_ENV, SRC_DEFAULTS, SRC_GRANT, SRC_KUBE, SRC_OPERATOR };
static const char *const src_names[] = {"none",       "env",        "defaults",
                                        "allocation", "kubernetes", "operator"};

/* 1 when field `bit` of a gives the pod strictly less than that of b (both present): a smaller
 * core limit or weight, a memory cap under b's (0 = no cap, the loosest), hard against soft. */
static int tighter(unsigned bit, const struct hv_limits *a, const struct hv_limits *b)
{
    switch (bit) {
    case HV_HAS_CORE:
        return a->core < b->core;
    case HV_HAS_MEM:
        return a->mem && (!b->mem || a->mem < b->mem);
    case HV_HAS_WEIGHT:
        return a->weight < b->weight;
    default: /* HV_HAS_SOFT */
        return !a->soft && b->soft;
    }
}

/* Field `bit` of one GPU: the winning source's value in *out, the source's rank returned. */
static int pick(const struct hv_pod *p, const struct hv_pod_gpu *g, unsigned bit,
                struct hv_limits *out)
{
    const struct hv_limits *o = op_for(p, g, bit);
    if (o) {
        *out = *o;
        return SRC_OPERATOR;
    }
    int trusted = p->has_kube && hv_config_ns_trusted(hv_reg.cfg, p->ns);
    if (trusted && (p->kube.has & bit)) {
        *out = p->kube;
        return SRC_KUBE;
    }
    /* A core limit the operator (or a trusted namespace) set without saying soft is hard: the
     * tenant's words below may not make it soft (soft lends idle time: more than hard) */
    if (bit == HV_HAS_SOFT &&
        (op_for(p, g, HV_HAS_CORE) || (trusted && (p->kube.has & HV_HAS_CORE)))) {
        memset(out, 0, sizeof(*out));
        out->has = HV_HAS_SOFT;
        return op_for(p, g, HV_HAS_CORE) ? SRC_OPERATOR : SRC_KUBE;
    }
    /* The tenant's words against the operator's defaults: the tightest present source binds.
     * In order of precedence, so that on a tie the strict `tighter` keeps the earlier one. */
    struct hv_limits d = hv_reg.cfg->defaults;
    int base = SRC_DEFAULTS;
    /* what the kubelet granted the pod on this GPU (the device plugin): the operator's
     * policy for it, in place of the defaults; the tenant's words below may only lower it */
    struct hv_limits gl = {0};
    for (int i = 0; i < p->ngrant; i++)
        if (!strcmp(p->grant[i].uuid, g->uuid)) {
            if (p->grant[i].mem_bytes) gl.has |= HV_HAS_MEM, gl.mem = p->grant[i].mem_bytes;
            if (p->grant[i].cores) gl.has |= HV_HAS_CORE, gl.core = p->grant[i].cores;
        }
    if (gl.has & (bit == HV_HAS_SOFT ? HV_HAS_CORE : bit)) {
        d = gl;
        base = SRC_GRANT;
    }
    if (bit == HV_HAS_SOFT && (d.has & HV_HAS_CORE) && !(d.has & HV_HAS_SOFT)) {
        d.has |= HV_HAS_SOFT; /* a default core limit is hard unless it says soft */
        d.soft = 0;
    }
    const struct hv_limits *c[3] = {&d, p->has_kube && !trusted ? &p->kube : NULL, &g->env};
    const int rank[3] = {base, SRC_KUBE, SRC_ENV};
    int best = -1;
    for (int i = 0; i < 3; i++)
        if (c[i] && (c[i]->has & bit) && (best < 0 || tighter(bit, c[i], c[best]))) best = i;
    if (best < 0) return SRC_NONE;
    *out = *c[best];
    return rank[best];
}

int registry_resolve(struct hv_pod *p)
{
    int changed = 0;
    for (int i = 0; i < p->ngpu; i++) {
        struct hv_pod_gpu *g = &p->gpu[i];
        struct hv_limits v;
        int best = SRC_NONE, r;
        double core = 0;
        uint64_t mem = 0;
        uint32_t weight = 1;
        int soft = 0;
        if ((r = pick(p, g, HV_HAS_CORE, &v))) core = v.core;
        best = r > best ? r : best;
        if ((r = pick(p, g, HV_HAS_MEM, &v))) mem = v.mem;
        best = r > best ? r : best;
        if ((r = pick(p, g, HV_HAS_WEIGHT, &v))) weight = v.weight ? v.weight : 1;
        best = r > best ? r : best;
        if ((r = pick(p, g, HV_HAS_SOFT, &v))) soft = v.soft;
        best = r > best ? r : best;
        if (core != g->core || mem != g->mem || weight != g->weight || soft != g->soft) changed = 1;
        g->core = core;
        g->mem = mem;
        g->weight = weight;
        g->soft = soft;
        g->source = src_names[best];
        uint32_t lim = hv_percent_x100(core);
        if (!lim)
            g->effective = 0;
        else if (!soft || !g->effective)
            g->effective = lim;
    }
    return changed;
}

int registry_op_set(struct hv_pod *p, const char *gpu_key, const struct hv_limits *l)
{
    struct hv_op_entry *e = NULL;
    for (int i = 0; i < p->n_op; i++)
        if (!strcmp(p->op[i].key, gpu_key)) e = &p->op[i];
    if (!e) {
        if (p->n_op >= HV_MAX_GPUS + 1) return -1;
        e = &p->op[p->n_op++];
        memset(e, 0, sizeof(*e));
        snprintf(e->key, sizeof(e->key), "%s", gpu_key);
    }
    if (l->has & HV_HAS_CORE) e->l.core = l->core;
    if (l->has & HV_HAS_MEM) e->l.mem = l->mem;
    if (l->has & HV_HAS_WEIGHT) e->l.weight = l->weight;
    if (l->has & HV_HAS_SOFT) e->l.soft = l->soft;
    e->l.has |= l->has;
    return 0;
}

void registry_op_clear(struct hv_pod *p)
{
    p->n_op = 0;
}

json_t *registry_limits_json(const struct hv_pod *p)
{
    json_t *a = json_array();
    for (int i = 0; i < p->ngpu; i++) {
        const struct hv_pod_gpu *g = &p->gpu[i];
        json_array_append_new(
            a, json_pack("{s:s, s:i, s:I, s:f, s:f, s:b, s:i}", "uuid", g->uuid, "index", g->index,
                         "mem_limit", (json_int_t)g->mem, "core_limit", g->core, "core_effective",
                         g->effective / 100.0, "soft", g->soft, "weight", (int)g->weight));
    }
    return a;
}

void registry_free_all(void)
{
    registry_lock();
    while (hv_reg.workers) {
        struct hv_worker *w = hv_reg.workers;
        hv_reg.workers = w->next;
        worker_free(w);
    }
    hv_reg.nworkers = 0;
    while (hv_reg.pods) {
        struct hv_pod *p = hv_reg.pods;
        hv_reg.pods = p->next;
        region_close(p, 0); /* limits stay in force until a daemon comes back */
        free(p);
    }
    while (hv_reg.kube) {
        struct hv_kube_pod *k = hv_reg.kube;
        hv_reg.kube = k->next;
        free(k);
    }
    registry_unlock();
}
