/* http_api.c - routes, bodies, identities and JSON errors of the daemon's HTTP API.
 *
 * Why this exists: see http_api.h. Rules every route follows:
 *  - bodies are capped at HV_MAX_BODY (413), parsed with jansson, and every rejection is
 *    {"error": "..."} naming the offending field;
 *  - a worker's host PID comes from the kernel (peer_identity.c), never from the body, and
 *    /v1/workers/{id}/... is answered only for the process that registered {id};
 *  - operator routes answer 403 anywhere but on the operator socket.
 */
#define _GNU_SOURCE
#include "http_api.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "api_parse.h"
#include "command_channel.h"
#include "gpu_keys.h"
#include "hv_log.h"
#include "kube_pods.h"
#include "metrics.h"
#include "names.h"
#include "nvml_monitor.h"
#include "peer_identity.h"
#include "pod_regions.h"
#include "registry.h"
#include "shm_region.h"
#include "state_store.h"
#include "status.h"
#include "worker_identity.h"

struct req {
    char *body;
    size_t len;
    int too_big;
};

/* --- replies -------------------------------------------------------------------------------- */

static enum MHD_Result reply_text(struct MHD_Connection *c, unsigned status, const char *type,
                                  char *text /* freed */)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(text ? strlen(text) : 0, text, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(text);
        return MHD_NO;
    }
    if (type) MHD_add_response_header(r, "Content-Type", type);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result reply_json(struct MHD_Connection *c, unsigned status, json_t *j)
{
    char *text = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(j);
    if (!text) text = strdup("{\"error\": \"internal: cannot encode the reply\"}");
    size_t n = text ? strlen(text) : 0;
    char *t2 = text ? realloc(text, n + 2) : NULL;
    if (t2) {
        t2[n] = '\n';
        t2[n + 1] = 0;
        text = t2;
    }
    return reply_text(c, status, "application/json", text);
}

__attribute__((format(printf, 3, 4))) static enum MHD_Result
reply_error(struct MHD_Connection *c, unsigned status, const char *fmt, ...)
{
    char msg[1024]; /* room for a list of the node's GPUs (gpu_keys.h) */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    hv_utf8_clean(msg); /* it may quote the request (jansson's own errors too) */
    hv_logf(HV_DEBUG, "request rejected", "{s:i, s:s}", "status", (int)status, "error", msg);
    return reply_json(c, status, json_pack("{s:s}", "error", msg));
}

static enum MHD_Result reply_empty(struct MHD_Connection *c, unsigned status)
{
    return reply_text(c, status, NULL, NULL);
}

/* --- body and field parsing ----------------------------------------------------------------- */

/* Parse the body as a JSON object. NULL after replying with an error. `optional`: an empty
 * body is {}. */
static json_t *body_object(struct MHD_Connection *c, const struct req *r, int optional,
                           enum MHD_Result *ret)
{
    if (!r->len) {
        if (optional) return json_object();
        *ret = reply_error(c, 400, "body: a JSON object is required");
        return NULL;
    }
    json_error_t e;
    json_t *j = json_loadb(r->body, r->len, JSON_REJECT_DUPLICATES, &e);
    if (!j) {
        *ret = reply_error(c, 400, "body: invalid JSON at line %d column %d: %s", e.line, e.column,
                           e.text);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        *ret = reply_error(c, 400, "body: must be a JSON object");
        return NULL;
    }
    return j;
}

/* Digits only: strtoull alone would take " -1" (after=%20-1) as 2^64-1 and "+5" as 5. */
static int parse_u64(const char *s, uint64_t *out)
{
    if (!s || *s < '0' || *s > '9') return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || errno) return -1;
    *out = v;
    return 0;
}

/* --- identity ------------------------------------------------------------------------------- */

/* 0 when the requester is the process that registered worker `id`; else replies. */
static int worker_auth(const struct hv_listener *l, struct MHD_Connection *c, const char *id,
                       enum MHD_Result *ret)
{
    registry_lock();
    struct hv_worker *w = registry_worker_find(id);
    pid_t host = w ? w->host_pid : 0;
    registry_unlock();
    if (!w) {
        *ret = reply_error(c, 404, "worker_id: unknown worker '%s' (register again)", id);
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
        *ret = reply_error(c, 403, "worker_id: '%s' belongs to another process", id);
        return -1;
    }
    return 0;
}

/* --- workers -------------------------------------------------------------------------------- */

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

static enum MHD_Result do_register(const struct hv_listener *l, struct MHD_Connection *c,
                                   const struct req *r)
{
    enum MHD_Result ret;
    json_t *o = body_object(c, r, 0, &ret);
    if (!o) return ret;
    struct reg_req *q = malloc(sizeof(*q));
    char err[1024];
    if (!q) {
        json_decref(o);
        return reply_error(c, 500, "internal: out of memory");
    }
    int bad = parse_registration(o, q, err, sizeof(err));
    json_decref(o);
    if (bad) {
        free(q);
        return reply_error(c, 400, "%s", err);
    }
    pid_t host = 0;
    if (l->kind == HV_LISTEN_TCP) {
        if (!q->pid) {
            free(q);
            return reply_error(c, 400, "pid: required over TCP");
        }
        if (peer_tcp_find(c, (pid_t)q->pid, &host)) {
            long claimed = q->pid;
            free(q);
            return reply_error(c, 403, "pid: process %ld does not hold this connection", claimed);
        }
    } else if (peer_unix_pid(c, &host)) {
        free(q);
        return reply_error(c, 403, "pid: the peer of this socket is unknown");
    }
    if (!q->pid) q->pid = host;

    /* the pod: what the kernel says of the process (its cgroup), or in development mode what
     * the registration says */
    struct hv_ident who;
    char why[800] = "";
    int status = 0;
    registry_lock();
    if (hv_reg.cfg->identity_env) {
        if (identity_from_body(q, &who, why, sizeof(why))) status = 400;
    } else {
        uint64_t deadline = vgpu_now_ns() + 2000000000ull;
        int known;
        /* a pod that has just started may not be in the watch's list yet: wait a little */
        while ((known = worker_identify(host, &who)) == 1 && !hv_reg.stopping &&
               vgpu_now_ns() < deadline) {
            struct timespec ts = {(time_t)(deadline / 1000000000ull),
                                  (long)(deadline % 1000000000ull)};
            pthread_cond_timedwait(&hv_reg.cv, &hv_reg.mu, &ts);
        }
        if (known == 1) {
            status = 503;
            snprintf(why, sizeof(why),
                     "pod: the Kubernetes pod %s of this process is not known to the daemon yet "
                     "(register again)",
                     who.id.uid);
        } else if (known < 0) {
            status = 403;
            snprintf(why, sizeof(why), "pid: the cgroup of process %d cannot be read", (int)host);
        }
    }
    if (status) {
        registry_unlock();
        free(q);
        return reply_error(c, (unsigned)status, "%s", why);
    }
    struct hv_pod *p = registry_pod_get(who.ns, who.name);
    if (!p) {
        registry_unlock();
        free(q);
        return reply_error(c, 500, "internal: out of memory");
    }
    if (p->dir[0] && strcmp(p->dir, who.dir)) {
        if (p->nworkers) { /* e.g. an earlier pod of the same name, still running */
            snprintf(why, sizeof(why), "pod: %s already has processes in pods/%s, not pods/%s",
                     p->key, p->dir, who.dir);
            registry_unlock();
            free(q);
            return reply_error(c, 409, "%s", why);
        }
        region_close(p, 1);
    }
    if (strcmp(p->dir, who.dir)) p->retired = 0; /* that mark was the old directory's */
    snprintf(p->dir, sizeof(p->dir), "%s", who.dir);
    p->ngrant = who.ngrant;
    memcpy(p->grant, who.grant, sizeof(p->grant));
    if (p->nworkers >= HV_MAX_WORKERS_PER_POD) {
        snprintf(why, sizeof(why), "pod: %s already has %d workers, the most one pod may have",
                 p->key, p->nworkers);
        registry_unlock();
        free(q);
        return reply_error(c, 429, "%s", why);
    }
    for (int i = 0; i < q->ngpu; i++) {
        struct hv_pod_gpu *g = registry_pod_gpu(p, q->gpu[i].uuid, q->gpu[i].index);
        if (g) env_merge(&g->env, &q->gpu[i].env);
    }
    registry_resolve(p);
    /* the ledger belongs to the process's user (a pod's processes share one) */
    struct stat pst;
    char procdir[32];
    snprintf(procdir, sizeof(procdir), "/proc/%d", (int)host);
    int rr = stat(procdir, &pst) == 0 ? region_open(p, pst.st_uid, pst.st_gid, why, sizeof(why))
                                      : (snprintf(why, sizeof(why), "the process is gone"), -1);
    if (rr != 0) {
        registry_pod_maybe_drop(p);
        registry_unlock();
        free(q);
        return reply_error(c, rr == -2 ? 409 : 503, "region: %s", why);
    }
    struct hv_worker *w = registry_worker_add(p, host, (int)q->pid);
    if (!w) {
        registry_pod_maybe_drop(p);
        registry_unlock();
        free(q);
        return reply_error(c, 500, "internal: out of memory");
    }
    snprintf(w->container, sizeof(w->container), "%s",
             hv_reg.cfg->identity_env ? q->container : who.container);
    region_apply(p);
    if (p->nworkers > 1) cmd_push_pod(p, "limits");
    for (int i = 0; i < p->ngpu; i++)
        p->gpu[i].pushed = p->gpu[i].effective;
    w->reg_seq = w->last_cmd_seq = w->acked_seq = hv_reg.seq;
    char dir[POD_FILES_NAME_LEN + 8];
    snprintf(dir, sizeof(dir), "pods/%s", p->dir);
    json_t *reply =
        json_pack("{s:s, s:i, s:s, s:{s:s, s:s}, s:I, s:b, s:i, s:o}", "worker_id", w->id,
                  "host_pid", (int)host, "pod", p->key, "region", "dir", dir, "token",
                  p->files.ctl->token, "seq", (json_int_t)hv_reg.seq, "suspended", p->suspended,
                  "heartbeat_ms", hv_reg.cfg->heartbeat_ms, "limits", registry_limits_json(p));
    hv_logf(HV_INFO, "worker registered", "{s:s, s:i, s:i, s:s, s:s}", "worker", w->id, "host_pid",
            (int)host, "pid", (int)q->pid, "pod", p->key, "dir", p->dir);
    registry_unlock();
    free(q);
    return reply_json(c, 201, reply);
}

static enum MHD_Result do_heartbeat(const struct hv_listener *l, struct MHD_Connection *c,
                                    const char *id, const struct req *r)
{
    enum MHD_Result ret;
    if (worker_auth(l, c, id, &ret)) return ret;
    json_t *o = body_object(c, r, 1, &ret);
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
    if (!w) return reply_error(c, 404, "worker_id: unknown worker '%s' (register again)", id);
    return reply_json(c, 200, json_pack("{s:I}", "seq", (json_int_t)seq));
}

static int query_after(struct MHD_Connection *c, uint64_t *after, enum MHD_Result *ret)
{
    const char *a = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "after");
    const char *last = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Last-Event-ID");
    *after = 0;
    if (last && *last && !parse_u64(last, after)) return 0;
    if (a && parse_u64(a, after)) {
        *ret = reply_error(c, 400, "after: must be a sequence number (an integer >= 0)");
        return -1;
    }
    return 0;
}

static enum MHD_Result do_commands(const struct hv_listener *l, struct MHD_Connection *c,
                                   const char *id)
{
    enum MHD_Result ret;
    if (worker_auth(l, c, id, &ret)) return ret;
    uint64_t after, timeout = 25;
    if (query_after(c, &after, &ret)) return ret;
    const char *t = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "timeout");
    if (t && (parse_u64(t, &timeout) || timeout > 60))
        return reply_error(c, 400, "timeout: must be an integer from 0 to 60 (seconds)");
    json_t *cmds;
    if (cmd_wait(id, after, (int)timeout, &cmds))
        return reply_error(c, 404, "worker_id: unknown worker '%s' (register again)", id);
    return reply_json(c, 200, json_pack("{s:o}", "commands", cmds));
}

static enum MHD_Result do_events(const struct hv_listener *l, struct MHD_Connection *c,
                                 const char *id)
{
    enum MHD_Result ret;
    if (worker_auth(l, c, id, &ret)) return ret;
    uint64_t after;
    if (query_after(c, &after, &ret)) return ret;
    struct MHD_Response *resp = cmd_event_stream(id, after);
    if (!resp) return reply_error(c, 404, "worker_id: unknown worker '%s' (register again)", id);
    ret = MHD_queue_response(c, 200, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result do_ack(const struct hv_listener *l, struct MHD_Connection *c, const char *id,
                              const struct req *r)
{
    enum MHD_Result ret;
    if (worker_auth(l, c, id, &ret)) return ret;
    json_t *o = body_object(c, r, 0, &ret);
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
        return reply_error(c, 400, "%s", bad);
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
        return reply_error(c, 404, "worker_id: unknown worker '%s' (register again)", id);
    }
    if (s > w->last_cmd_seq) {
        uint64_t last = w->last_cmd_seq;
        registry_unlock();
        return reply_error(
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
    return reply_json(c, 200, json_pack("{s:I}", "acked_seq", (json_int_t)acked));
}

static enum MHD_Result do_unregister(const struct hv_listener *l, struct MHD_Connection *c,
                                     const char *id)
{
    enum MHD_Result ret;
    if (worker_auth(l, c, id, &ret)) return ret;
    registry_lock();
    struct hv_worker *w = registry_worker_find(id);
    if (w) registry_worker_remove(w, "unregistered");
    registry_unlock();
    return reply_empty(c, 204);
}

/* --- operator ------------------------------------------------------------------------------- */

static enum MHD_Result do_put_limits(struct MHD_Connection *c, const char *ns, const char *name,
                                     const struct req *r)
{
    enum MHD_Result ret;
    json_t *o = body_object(c, r, 0, &ret);
    if (!o) return ret;
    struct hv_limits l;
    char key[VGPU_UUID_LEN], err[256];
    int bad = parse_put_limits(o, &l, key, sizeof(key), err, sizeof(err));
    json_decref(o);
    if (bad) return reply_error(c, 400, "%s", err);
    struct nvml_snapshot *gpus = nvml_snapshot_get(); /* NVML's lock, before the registry's */
    char why[1024];
    registry_lock();
    if (gpu_key_check(gpus, key, why, sizeof(why))) {
        registry_unlock();
        free(gpus);
        return reply_error(c, 400, "%s", why);
    }
    free(gpus);
    /* a pod that has not started yet is remembered: its settings apply when it registers */
    struct hv_pod *p = registry_pod_get(ns, name);
    if (!p || registry_op_set(p, key, &l)) {
        registry_unlock();
        return reply_error(c, 409, "gpu: too many per-GPU settings for pod %s/%s", ns, name);
    }
    registry_resolve(p);
    region_apply(p);
    if (p->nworkers) cmd_push_pod(p, "limits");
    json_t *snap = state_snapshot();
    hv_logf(HV_INFO, "operator set pod limits", "{s:s, s:s}", "pod", p->key, "gpu", key);
    json_t *entry = status_pod_json(p);
    registry_unlock();
    state_write(hv_reg.cfg->state, snap); /* the disk, with the registry free */
    return reply_json(c, 200, entry);
}

static enum MHD_Result do_delete_limits(struct MHD_Connection *c, const char *ns, const char *name)
{
    char key[HV_KEY_LEN];
    snprintf(key, sizeof(key), "%s/%s", ns, name);
    registry_lock();
    struct hv_pod *p = registry_pod_find(key);
    if (!p) {
        registry_unlock();
        return reply_error(c, 404, "pod: unknown pod '%s'", key);
    }
    registry_op_clear(p);
    registry_resolve(p);
    region_apply(p);
    if (p->nworkers) cmd_push_pod(p, "limits");
    json_t *snap = state_snapshot();
    hv_logf(HV_INFO, "operator cleared pod limits", "{s:s}", "pod", p->key);
    json_t *entry = status_pod_json(p);
    registry_pod_maybe_drop(p);
    registry_unlock();
    state_write(hv_reg.cfg->state, snap);
    return reply_json(c, 200, entry);
}

static enum MHD_Result do_suspend(struct MHD_Connection *c, const char *ns, const char *name,
                                  int suspend)
{
    char key[HV_KEY_LEN];
    snprintf(key, sizeof(key), "%s/%s", ns, name);
    registry_lock();
    /* only a pod the daemon knows: one with processes or operator settings, or one the
     * Kubernetes watch reports; a typo must not be remembered as a suspension of nothing */
    if (!registry_pod_find(key) && !kube_pods_known(ns, name)) {
        registry_unlock();
        return reply_error(c, 404,
                           "pod: unknown pod '%s': no process of it has registered, it has no "
                           "operator settings and Kubernetes does not report it on this node",
                           key);
    }
    struct hv_pod *p = registry_pod_get(ns, name);
    if (!p) {
        registry_unlock();
        return reply_error(c, 500, "internal: out of memory");
    }
    p->suspended = suspend;
    region_apply(p);
    uint64_t seq = cmd_push_pod(p, suspend ? "suspend" : "resume");
    json_t *snap = state_snapshot();
    hv_logf(HV_INFO, suspend ? "pod suspended" : "pod resumed", "{s:s, s:I}", "pod", key, "seq",
            (json_int_t)seq);
    registry_unlock(); /* the disk, with the registry free; p is looked up again below */
    state_write(hv_reg.cfg->state, snap);
    registry_lock();
    /* wait up to 1 s for the acks of the pod's workers */
    uint64_t deadline = vgpu_now_ns() + 1000000000ull;
    int workers, acked;
    for (;;) {
        workers = acked = 0;
        for (const struct hv_worker *w = hv_reg.workers; w; w = w->next)
            if (!strcmp(w->pod_key, key)) {
                workers++;
                acked += w->acked_seq >= seq;
            }
        if (acked == workers || hv_reg.stopping || vgpu_now_ns() >= deadline) break;
        struct timespec ts = {(time_t)(deadline / 1000000000ull), (long)(deadline % 1000000000ull)};
        pthread_cond_timedwait(&hv_reg.cv, &hv_reg.mu, &ts);
    }
    if (!suspend && (p = registry_pod_find(key))) registry_pod_maybe_drop(p);
    registry_unlock();
    return reply_json(
        c, 200,
        json_pack("{s:I, s:i, s:i}", "seq", (json_int_t)seq, "acked", acked, "workers", workers));
}

/* --- routing -------------------------------------------------------------------------------- */

static enum MHD_Result method_not_allowed(struct MHD_Connection *c, const char *allow,
                                          const char *method, const char *url)
{
    char msg[300];
    snprintf(msg, sizeof(msg), "method: %.16s is not allowed on %.200s (allowed: %s)", method, url,
             allow);
    json_t *j = json_pack("{s:s}", "error", msg);
    char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    struct MHD_Response *r =
        MHD_create_response_from_buffer(text ? strlen(text) : 0, text, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", "application/json");
    MHD_add_response_header(r, "Allow", allow);
    enum MHD_Result ret = MHD_queue_response(c, 405, r);
    MHD_destroy_response(r);
    return ret;
}

#define IS(m) (!strcmp(method, m))

static enum MHD_Result route(const struct hv_listener *l, struct MHD_Connection *c, const char *url,
                             const char *method, const struct req *r)
{
    if (!strcmp(url, "/healthz")) {
        if (!IS("GET") && !IS("HEAD")) return method_not_allowed(c, "GET, HEAD", method, url);
        return reply_text(c, 200, "text/plain", strdup("ok\n"));
    }
    if (!strcmp(url, "/metrics")) {
        if (!IS("GET") && !IS("HEAD")) return method_not_allowed(c, "GET, HEAD", method, url);
        /* every pod's figures: for the node's operator, not for the pods */
        if (l->kind != HV_LISTEN_OPERATOR)
            return reply_error(c, 403, "path: /metrics is served on the operator socket only");
        return reply_text(c, 200, "text/plain; version=0.0.4; charset=utf-8", metrics_render());
    }
    if (!strcmp(url, "/v1/status")) {
        if (!IS("GET") && !IS("HEAD")) return method_not_allowed(c, "GET, HEAD", method, url);
        if (l->kind == HV_LISTEN_OPERATOR) return reply_json(c, 200, status_json());
        /* a worker sees its own pod only: the pod of the process on the other end */
        pid_t peer;
        if (l->kind == HV_LISTEN_TCP || peer_unix_pid(c, &peer))
            return reply_error(c, 403,
                               "path: over TCP /v1/status is served on the operator "
                               "socket only");
        return reply_json(c, 200, status_peer_json(peer));
    }
    if (!strcmp(url, "/v1/workers")) {
        if (!IS("POST")) return method_not_allowed(c, "POST", method, url);
        return do_register(l, c, r);
    }
    /* split the rest: /v1/workers/{id}[/{op}], /v1/pods/{ns}/{name}/{op}; a segment that names
     * a worker, namespace or pod (unescaped by libmicrohttpd) must be a name (names.h) */
    char path[1024], *seg[8];
    int n = 0;
    if (strlen(url) >= sizeof(path)) return reply_error(c, 404, "path: too long");
    snprintf(path, sizeof(path), "%s", url);
    for (char *save = NULL, *t = strtok_r(path, "/", &save); t && n < 8;
         t = strtok_r(NULL, "/", &save))
        seg[n++] = t;
    if (n >= 3 && n <= 4 && !strcmp(seg[0], "v1") && !strcmp(seg[1], "workers")) {
        const char *id = seg[2];
        if (!hv_name_ok(id, strlen(id), 24))
            return reply_error(c, 404, "worker_id: unknown worker");
        if (n == 3) {
            if (!IS("DELETE")) return method_not_allowed(c, "DELETE", method, url);
            return do_unregister(l, c, id);
        }
        const char *op = seg[3];
        if (!strcmp(op, "heartbeat")) {
            if (!IS("POST")) return method_not_allowed(c, "POST", method, url);
            return do_heartbeat(l, c, id, r);
        }
        if (!strcmp(op, "commands")) {
            if (!IS("GET")) return method_not_allowed(c, "GET", method, url);
            return do_commands(l, c, id);
        }
        if (!strcmp(op, "events")) {
            if (!IS("GET")) return method_not_allowed(c, "GET", method, url);
            return do_events(l, c, id);
        }
        if (!strcmp(op, "ack")) {
            if (!IS("POST")) return method_not_allowed(c, "POST", method, url);
            return do_ack(l, c, id, r);
        }
    }
    if (n == 5 && !strcmp(seg[0], "v1") && !strcmp(seg[1], "pods")) {
        const char *ns = seg[2], *name = seg[3], *op = seg[4];
        int limits = !strcmp(op, "limits"), susp = !strcmp(op, "suspend"),
            res = !strcmp(op, "resume");
        if (limits || susp || res) {
            if (l->kind != HV_LISTEN_OPERATOR)
                return reply_error(
                    c, 403, "path: operator endpoints are served on the operator socket only");
            if (!hv_name_ok(ns, strlen(ns), 64))
                return reply_error(c, 400, "namespace: invalid in the path");
            if (!hv_name_ok(name, strlen(name), 254))
                return reply_error(c, 400, "pod: invalid name in the path");
            if (limits) {
                if (IS("PUT")) return do_put_limits(c, ns, name, r);
                if (IS("DELETE")) return do_delete_limits(c, ns, name);
                return method_not_allowed(c, "PUT, DELETE", method, url);
            }
            if (!IS("POST")) return method_not_allowed(c, "POST", method, url);
            return do_suspend(c, ns, name, susp);
        }
    }
    return reply_error(c, 404, "path: no such endpoint: %.200s", url);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **ctx)
{
    (void)version;
    const struct hv_listener *l = cls;
    struct req *r = *ctx;
    if (!r) {
        if (!(r = calloc(1, sizeof(*r)))) return MHD_NO;
        *ctx = r;
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        uint64_t n;
        if (cl && !parse_u64(cl, &n) && n > HV_MAX_BODY) {
            r->too_big = 1;
            return reply_error(c, 413, "body: larger than %d bytes", HV_MAX_BODY);
        }
        return MHD_YES;
    }
    if (*upload_size) {
        if (!r->too_big && r->len + *upload_size > HV_MAX_BODY) {
            r->too_big = 1;
            free(r->body);
            r->body = NULL;
            r->len = 0;
        }
        if (!r->too_big) {
            char *b = realloc(r->body, r->len + *upload_size + 1);
            if (!b) return MHD_NO;
            memcpy(b + r->len, upload, *upload_size);
            r->len += *upload_size;
            b[r->len] = 0;
            r->body = b;
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (r->too_big) return reply_error(c, 413, "body: larger than %d bytes", HV_MAX_BODY);
    return route(l, c, url, method, r);
}

static void completed(void *cls, struct MHD_Connection *c, void **ctx,
                      enum MHD_RequestTerminationCode code)
{
    (void)cls, (void)c, (void)code;
    struct req *r = *ctx;
    if (r) {
        free(r->body);
        free(r);
        *ctx = NULL;
    }
}

/* The entry points http_server.c gives libmicrohttpd; cls is the request's struct hv_listener. */
enum MHD_Result http_api_request(void *cls, struct MHD_Connection *c, const char *url,
                                 const char *method, const char *version, const char *upload,
                                 size_t *upload_size, void **ctx)
{
    return handle(cls, c, url, method, version, upload, upload_size, ctx);
}

void http_api_completed(void *cls, struct MHD_Connection *c, void **ctx,
                        enum MHD_RequestTerminationCode code)
{
    completed(cls, c, ctx, code);
}
