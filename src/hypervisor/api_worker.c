/* api_worker.c - the worker API: registration, heartbeats, commands, events, acks.
 *
 * Why this exists: see api_worker.h. A worker's host PID comes from the kernel
 * (peer_identity.c), never from the body, and /v1/workers/{id}/... is answered only for the
 * process that registered {id} (worker_auth).
 */
#define _GNU_SOURCE
#include "api_worker.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "api_parse.h"
#include "command_channel.h"
#include "hv_log.h"
#include "peer_identity.h"
#include "pod_regions.h"
#include "registry.h"
#include "shm_region.h"
#include "worker_identity.h"

/* 0 when the requester is the process that registered worker `id`; else replies. */
static int worker_auth(const struct hv_listener *l, struct MHD_Connection *c, const char *id,
                       enum MHD_Result *ret)
{
    registry_lock();
    struct hv_worker *w = registry_worker_find(id);
    pid_t host = w ? w->host_pid : 0;
    registry_unlock();
    if (!w) {
        *ret = api_reply_error(c, 404, "worker_id: unknown worker '%s' (register again)", id);
        return -1;
    }
    int ok;
    if (l->kind == HV_LISTEN_TCP) {
        ok = peer_tcp_owned_by(c, host);
    } else {
        pid_t pid;
        ok = !peer_unix_pid(c, &pid) && pid == host;
    }
    if (!ok) {
        *ret = api_reply_error(c, 403, "worker_id: '%s' belongs to another process", id);
        return -1;
    }
    return 0;
}

/* Most restrictive of two environments, field by field. */
static void env_merge(struct hv_limits *a, const struct hv_limits *b)
{
    if (b->has & HV_HAS_CORE)
        a->core = (a->has & HV_HAS_CORE) && a->core < b->core ? a->core : b->core;
    if (b->has & HV_HAS_MEM) {
        if (!(a->has & HV_HAS_MEM) || !a->mem)
            a->mem = b->mem;
        else if (b->mem && b->mem < a->mem)
            a->mem = b->mem;
    }
    if (b->has & HV_HAS_WEIGHT)
        a->weight = (a->has & HV_HAS_WEIGHT) && a->weight < b->weight ? a->weight : b->weight;
    if (b->has & HV_HAS_SOFT) a->soft = (a->has & HV_HAS_SOFT) ? a->soft && b->soft : b->soft;
    a->has |= b->has;
}

/* Development mode only: the pod the registration names ("namespace"/"pod", or "pod_id" as
 * "ns/name" or a name); 0, or -1 with a message. */
static int identity_from_body(const struct reg_req *q, struct hv_ident *who, char *err, size_t n)
{
    memset(who, 0, sizeof(*who));
    const char *slash = strchr(q->pod_id, '/');
    if (q->pod[0]) {
        snprintf(who->name, sizeof(who->name), "%s", q->pod);
        snprintf(who->ns, sizeof(who->ns), "%s", q->ns[0] ? q->ns : "default");
    } else if (slash && slash != q->pod_id && slash[1] && !strchr(slash + 1, '/') &&
               slash - q->pod_id < (long)sizeof(who->ns)) { /* the limiter's "ns/name" */
        snprintf(who->ns, sizeof(who->ns), "%.*s", (int)(slash - q->pod_id), q->pod_id);
        snprintf(who->name, sizeof(who->name), "%s", slash + 1);
    } else if (q->pod_id[0]) {
        snprintf(who->ns, sizeof(who->ns), "%s", q->ns[0] ? q->ns : "default");
        snprintf(who->name, sizeof(who->name), "%s", q->pod_id);
        for (char *s = who->name; *s; s++)
            if (*s == '/') *s = '_';
    } else {
        snprintf(err, n, "pod_id: required in development mode (--identity env)");
        return -1;
    }
    char key[HV_KEY_LEN];
    snprintf(key, sizeof(key), "%s/%s", who->ns, who->name);
    snprintf(who->dir, sizeof(who->dir), "env-%016llx",
             (unsigned long long)vgpu_fnv1a64(key, strlen(key)));
    return 0;
}

/* The registering process's host PID: over TCP the one the body names, when it holds the
 * connection; on a Unix socket the peer's. 0, or an HTTP status with a message in why. */
static int register_peer(const struct hv_listener *l, struct MHD_Connection *c, struct reg_req *q,
                         pid_t *host, char *why, size_t n)
{
    *host = 0;
    if (l->kind == HV_LISTEN_TCP) {
        if (!q->pid) return snprintf(why, n, "pid: required over TCP"), 400;
        if (peer_tcp_find(c, (pid_t)q->pid, host))
            return snprintf(why, n, "pid: process %ld does not hold this connection", (long)q->pid),
                   403;
    } else if (peer_unix_pid(c, host)) {
        return snprintf(why, n, "pid: the peer of this socket is unknown"), 403;
    }
    if (!q->pid) q->pid = *host;
    return 0;
}

/* The pod: what the kernel says of the process (its cgroup), or in development mode what the
 * registration says. Registry lock held (released while waiting). 0, or an HTTP status. */
static int register_identify(const struct reg_req *q, pid_t host, struct hv_ident *who, char *why,
                             size_t n)
{
    if (hv_reg.cfg->identity_env) return identity_from_body(q, who, why, n) ? 400 : 0;
    uint64_t deadline = vgpu_now_ns() + 2000000000ull;
    int known;
    /* a pod that has just started may not be in the watch's list yet: wait a little */
    while ((known = worker_identify(host, who)) == 1 && !hv_reg.stopping &&
           vgpu_now_ns() < deadline) {
        struct timespec ts = {(time_t)(deadline / 1000000000ull), (long)(deadline % 1000000000ull)};
        pthread_cond_timedwait(&hv_reg.cv, &hv_reg.mu, &ts);
    }
    if (known == 1)
        return snprintf(why, n,
                        "pod: the Kubernetes pod %s of this process is not known to the daemon "
                        "yet (register again)",
                        who->id.uid),
               503;
    if (known < 0)
        return snprintf(why, n, "pid: the cgroup of process %d cannot be read", (int)host), 403;
    return 0;
}

/* A pod whose containers each got an allocation of their own (Kubernetes resources are a
 * container's): a second container's processes have another directory than the first's, and
 * get an entry of their own, "<pod>:<dir>", with that allocation's region and limits, rather
 * than being refused and left to hold themselves to their limits one process at a time. The
 * pod's annotations apply to it as well (hv_pod.base). Registry lock held. */
static struct hv_pod *container_entry(const struct hv_ident *who, int *status, char *why, size_t n)
{
    char name[sizeof(((struct hv_pod *)0)->name)];
    int len = snprintf(name, sizeof(name), "%s:%s", who->name, who->dir);
    if (len < 0 || (size_t)len >= sizeof(name) || strlen(who->ns) + 1 + (size_t)len >= HV_KEY_LEN) {
        snprintf(why, n,
                 "pod: %s/%s has a container with another allocation (pods/%s) and a name "
                 "too long for an entry of its own",
                 who->ns, who->name, who->dir);
        return *status = 409, NULL;
    }
    struct hv_pod *p = registry_pod_get_of(who->ns, name, who->name);
    if (!p) return *status = 500, snprintf(why, n, "internal: out of memory"), NULL;
    return p;
}

/* The pod `who` names, its directory and grants taken over, and its GPUs merged with the
 * registration's environment; its region opened for the process's user. Registry lock held.
 * The pod, or NULL with an HTTP status in *status and a message in why. */
static struct hv_pod *register_pod(const struct reg_req *q, pid_t host, const struct hv_ident *who,
                                   int *status, char *why, size_t n)
{
    /* the entry that already has this directory (the pod's, or one of its containers'), or
     * the pod's own */
    struct hv_pod *p = registry_pod_find_dir(who->ns, who->name, who->dir);
    if (!p) p = registry_pod_get(who->ns, who->name);
    if (!p) return *status = 500, snprintf(why, n, "internal: out of memory"), NULL;
    if (p->dir[0] && strcmp(p->dir, who->dir) && p->nworkers && who->ngrant)
        p = container_entry(who, status, why, n);
    if (!p) return NULL;
    if (p->dir[0] && strcmp(p->dir, who->dir)) {
        if (p->nworkers) { /* e.g. an earlier pod of the same name, still running */
            snprintf(why, n, "pod: %s already has processes in pods/%s, not pods/%s", p->key,
                     p->dir, who->dir);
            return *status = 409, NULL;
        }
        region_close(p, 1);
    }
    if (strcmp(p->dir, who->dir)) p->retired = 0; /* that mark was the old directory's */
    snprintf(p->dir, sizeof(p->dir), "%s", who->dir);
    p->ngrant = who->ngrant;
    memcpy(p->grant, who->grant, sizeof(p->grant));
    if (p->nworkers >= HV_MAX_WORKERS_PER_POD) {
        snprintf(why, n, "pod: %s already has %d workers, the most one pod may have", p->key,
                 p->nworkers);
        return *status = 429, NULL;
    }
    for (int i = 0; i < q->ngpu; i++) {
        struct hv_pod_gpu *g = registry_pod_gpu(p, q->gpu[i].uuid, q->gpu[i].index);
        if (g) env_merge(&g->env, &q->gpu[i].env);
    }
    registry_resolve(p);
    /* the ledger belongs to the process's user (a pod's processes share one) */
    struct stat pst;
    char procdir[32], e[800] = "";
    snprintf(procdir, sizeof(procdir), "/proc/%d", (int)host);
    int rr = stat(procdir, &pst) == 0 ? region_open(p, pst.st_uid, pst.st_gid, e, sizeof(e))
                                      : (snprintf(e, sizeof(e), "the process is gone"), -1);
    if (rr != 0) {
        registry_pod_maybe_drop(p);
        snprintf(why, n, "region: %s", e);
        return *status = rr == -2 ? 409 : 503, NULL;
    }
    return p;
}

/* The new worker of p written to its region, told to its pod's other workers, and the reply.
 * Registry lock held. NULL when out of memory. */
static json_t *register_worker(struct hv_pod *p, const struct reg_req *q, pid_t host,
                               const struct hv_ident *who)
{
    struct hv_worker *w = registry_worker_add(p, host, (int)q->pid);
    if (!w) {
        registry_pod_maybe_drop(p);
        return NULL;
    }
    snprintf(w->container, sizeof(w->container), "%s",
             hv_reg.cfg->identity_env ? q->container : who->container);
    /* a process that registers again (it lost the daemon, e.g. a request timed out under load)
     * is the same process (kernel pid and start time): its earlier worker goes now rather than
     * counting twice until it falls silent. Removed after the add, so the pod stays. */
    for (struct hv_worker *o = hv_reg.workers; o; o = o->next)
        if (o != w && o->host_pid == host && o->start_time == w->start_time &&
            !strcmp(o->pod_key, p->key)) {
            registry_worker_remove(o, "registered again");
            break;
        }
    region_apply(p);
    if (p->nworkers > 1) cmd_push_pod(p, "limits");
    for (int i = 0; i < p->ngpu; i++)
        p->gpu[i].pushed = p->gpu[i].effective;
    w->reg_seq = w->last_cmd_seq = w->acked_seq = hv_reg.seq;
    char dir[POD_FILES_NAME_LEN + 8];
    snprintf(dir, sizeof(dir), "pods/%s", p->dir);
    hv_logf(HV_INFO, "worker registered", "{s:s, s:i, s:i, s:s, s:s}", "worker", w->id, "host_pid",
            (int)host, "pid", (int)q->pid, "pod", p->key, "dir", p->dir);
    return json_pack("{s:s, s:i, s:s, s:{s:s, s:s}, s:I, s:b, s:i, s:o}", "worker_id", w->id,
                     "host_pid", (int)host, "pod", p->key, "region", "dir", dir, "token",
                     p->files.ctl->token, "seq", (json_int_t)hv_reg.seq, "suspended", p->suspended,
                     "heartbeat_ms", hv_reg.cfg->heartbeat_ms, "limits", registry_limits_json(p));
}

enum MHD_Result api_worker_register(const struct hv_listener *l, struct MHD_Connection *c,
                                    const struct api_req *r)
{
    enum MHD_Result ret;
    json_t *o = api_body_object(c, r, 0, &ret);
    if (!o) return ret;
    struct reg_req *q = malloc(sizeof(*q));
    char why[1024];
    if (!q) {
        json_decref(o);
        return api_reply_error(c, 500, "internal: out of memory");
    }
    int status = parse_registration(o, q, why, sizeof(why)) ? 400 : 0;
    json_decref(o);
    pid_t host = 0;
    if (!status) status = register_peer(l, c, q, &host, why, sizeof(why));
    json_t *reply = NULL;
    if (!status) {
        struct hv_ident who;
        registry_lock();
        status = register_identify(q, host, &who, why, sizeof(why));
        struct hv_pod *p = status ? NULL : register_pod(q, host, &who, &status, why, sizeof(why));
        if (p && !(reply = register_worker(p, q, host, &who))) {
            status = 500;
            snprintf(why, sizeof(why), "internal: out of memory");
        }
        registry_unlock();
    }
    free(q);
    if (status) return api_reply_error(c, (unsigned)status, "%s", why);
    return api_reply_json(c, 201, reply);
}

enum MHD_Result api_worker_heartbeat(const struct hv_listener *l, struct MHD_Connection *c,
                                     const char *id, const struct api_req *r)
{
    enum MHD_Result ret;
    if (worker_auth(l, c, id, &ret)) return ret;
    json_t *o = api_body_object(c, r, 1, &ret);
    if (!o) return ret;
    json_decref(o);
    registry_lock();
    struct hv_worker *w = registry_worker_find(id);
    uint64_t seq = 0;
    if (w) {
        w->last_seen_ns = vgpu_now_ns();
        seq = w->last_cmd_seq;
    }
    registry_unlock();
    if (!w) return api_reply_error(c, 404, "worker_id: unknown worker '%s' (register again)", id);
    return api_reply_json(c, 200, json_pack("{s:I}", "seq", (json_int_t)seq));
}

static int query_after(struct MHD_Connection *c, uint64_t *after, enum MHD_Result *ret)
{
    const char *a = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "after");
    const char *last = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Last-Event-ID");
    *after = 0;
    if (last && *last && !api_parse_u64(last, after)) return 0;
    if (a && api_parse_u64(a, after)) {
        *ret = api_reply_error(c, 400, "after: must be a sequence number (an integer >= 0)");
        return -1;
    }
    return 0;
}

enum MHD_Result api_worker_commands(const struct hv_listener *l, struct MHD_Connection *c,
                                    const char *id)
{
    enum MHD_Result ret;
    if (worker_auth(l, c, id, &ret)) return ret;
    uint64_t after, timeout = 25;
    if (query_after(c, &after, &ret)) return ret;
    const char *t = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "timeout");
    if (t && (api_parse_u64(t, &timeout) || timeout > 60))
        return api_reply_error(c, 400, "timeout: must be an integer from 0 to 60 (seconds)");
    json_t *cmds;
    if (cmd_wait(id, after, (int)timeout, &cmds))
        return api_reply_error(c, 404, "worker_id: unknown worker '%s' (register again)", id);
    return api_reply_json(c, 200, json_pack("{s:o}", "commands", cmds));
}

enum MHD_Result api_worker_events(const struct hv_listener *l, struct MHD_Connection *c,
                                  const char *id)
{
    enum MHD_Result ret;
    if (worker_auth(l, c, id, &ret)) return ret;
    uint64_t after;
    if (query_after(c, &after, &ret)) return ret;
    struct MHD_Response *resp = cmd_event_stream(id, after);
    if (!resp)
        return api_reply_error(c, 404, "worker_id: unknown worker '%s' (register again)", id);
    ret = MHD_queue_response(c, 200, resp);
    MHD_destroy_response(resp);
    return ret;
}

enum MHD_Result api_worker_ack(const struct hv_listener *l, struct MHD_Connection *c,
                               const char *id, const struct api_req *r)
{
    enum MHD_Result ret;
    if (worker_auth(l, c, id, &ret)) return ret;
    json_t *o = api_body_object(c, r, 0, &ret);
    if (!o) return ret;
    json_t *seq = json_object_get(o, "seq"), *ok = json_object_get(o, "ok"),
           *e = json_object_get(o, "error");
    const char *bad = !json_is_integer(seq) || json_integer_value(seq) < 0
                          ? "seq: required, an integer >= 0"
                      : ok && !json_is_boolean(ok)                  ? "ok: must be true or false"
                      : e && !json_is_null(e) && !json_is_string(e) ? "error: must be a string"
                                                                    : NULL;
    if (bad) {
        json_decref(o);
        return api_reply_error(c, 400, "%s", bad);
    }
    uint64_t s = (uint64_t)json_integer_value(seq);
    int failed = ok && json_is_false(ok);
    char msg[256];
    snprintf(msg, sizeof(msg), "%s", json_is_string(e) ? json_string_value(e) : "");
    json_decref(o);
    registry_lock();
    struct hv_worker *w = registry_worker_find(id);
    if (!w) {
        registry_unlock();
        return api_reply_error(c, 404, "worker_id: unknown worker '%s' (register again)", id);
    }
    if (s > w->last_cmd_seq) {
        uint64_t last = w->last_cmd_seq;
        registry_unlock();
        return api_reply_error(
            c, 400, "seq: %" PRIu64 " was never sent to this worker (last %" PRIu64 ")", s, last);
    }
    if (s > w->acked_seq) w->acked_seq = s;
    w->acks++;
    w->last_seen_ns = vgpu_now_ns();
    uint64_t acked = w->acked_seq;
    if (failed)
        hv_logf(HV_WARN, "worker could not apply a command", "{s:s, s:I, s:s}", "worker", id, "seq",
                (json_int_t)s, "error", msg);
    pthread_cond_broadcast(&hv_reg.cv);
    registry_unlock();
    return api_reply_json(c, 200, json_pack("{s:I}", "acked_seq", (json_int_t)acked));
}

enum MHD_Result api_worker_unregister(const struct hv_listener *l, struct MHD_Connection *c,
                                      const char *id)
{
    enum MHD_Result ret;
    if (worker_auth(l, c, id, &ret)) return ret;
    registry_lock();
    struct hv_worker *w = registry_worker_find(id);
    if (w) registry_worker_remove(w, "unregistered");
    registry_unlock();
    return api_reply_empty(c, 204);
}
