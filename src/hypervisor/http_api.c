/* http_api.c - the routing of the daemon's HTTP API, and who may call what.
 *
 * Why this exists: see http_api.h. Rules every route follows:
 *  - bodies are capped at HV_MAX_BODY (413), collected here, parsed with jansson, and every
 *    rejection is {"error": "..."} naming the offending field (api_reply.h);
 *  - a worker's host PID comes from the kernel (peer_identity.c), never from the body, and
 *    /v1/workers/{id}/... is answered only for the process that registered {id}
 *    (api_worker.c);
 *  - operator routes (api_operator.c, /metrics, every pod's /v1/status) answer 403 anywhere but
 *    on the operator socket: that is decided here, before they are called.
 */
#define _GNU_SOURCE
#include "http_api.h"

#include <jansson.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_operator.h"
#include "api_reply.h"
#include "api_worker.h"
#include "metrics.h"
#include "names.h"
#include "peer_identity.h"
#include "status.h"

#define IS(m) (!strcmp(method, m))

/* /v1/workers/{id}[/{op}]: seg holds {id} and {op} (n of them) */
static enum MHD_Result route_worker(const struct hv_listener *l, struct MHD_Connection *c,
                                    const char *url, const char *method, const struct api_req *r,
                                    const char *const *seg, int n)
{
    const char *id = seg[0];
    if (!hv_name_ok(id, strlen(id), 24))
        return api_reply_error(c, 404, "worker_id: unknown worker");
    if (n == 1) {
        if (!IS("DELETE")) return api_method_not_allowed(c, "DELETE", method, url);
        return api_worker_unregister(l, c, id);
    }
    const char *op = seg[1];
    if (!strcmp(op, "heartbeat")) {
        if (!IS("POST")) return api_method_not_allowed(c, "POST", method, url);
        return api_worker_heartbeat(l, c, id, r);
    }
    if (!strcmp(op, "commands")) {
        if (!IS("GET")) return api_method_not_allowed(c, "GET", method, url);
        return api_worker_commands(l, c, id);
    }
    if (!strcmp(op, "events")) {
        if (!IS("GET")) return api_method_not_allowed(c, "GET", method, url);
        return api_worker_events(l, c, id);
    }
    if (!strcmp(op, "ack")) {
        if (!IS("POST")) return api_method_not_allowed(c, "POST", method, url);
        return api_worker_ack(l, c, id, r);
    }
    return api_reply_error(c, 404, "path: no such endpoint: %.200s", url);
}

/* /v1/pods/{ns}/{name}/{op}: seg holds the three; the operator's, on its socket only */
static enum MHD_Result route_pod(const struct hv_listener *l, struct MHD_Connection *c,
                                 const char *url, const char *method, const struct api_req *r,
                                 const char *const *seg)
{
    const char *ns = seg[0], *name = seg[1], *op = seg[2];
    int limits = !strcmp(op, "limits"), susp = !strcmp(op, "suspend"), res = !strcmp(op, "resume");
    if (limits || susp || res) {
        if (l->kind != HV_LISTEN_OPERATOR)
            return api_reply_error(
                c, 403, "path: operator endpoints are served on the operator socket only");
        if (!hv_name_ok(ns, strlen(ns), 64))
            return api_reply_error(c, 400, "namespace: invalid in the path");
        if (!hv_name_ok(name, strlen(name), 254))
            return api_reply_error(c, 400, "pod: invalid name in the path");
        if (limits) {
            if (IS("PUT")) return api_op_put_limits(c, ns, name, r);
            if (IS("DELETE")) return api_op_delete_limits(c, ns, name);
            return api_method_not_allowed(c, "PUT, DELETE", method, url);
        }
        if (!IS("POST")) return api_method_not_allowed(c, "POST", method, url);
        return api_op_suspend(c, ns, name, susp);
    }
    return api_reply_error(c, 404, "path: no such endpoint: %.200s", url);
}

static enum MHD_Result route(const struct hv_listener *l, struct MHD_Connection *c, const char *url,
                             const char *method, const struct api_req *r)
{
    if (!strcmp(url, "/healthz")) {
        if (!IS("GET") && !IS("HEAD")) return api_method_not_allowed(c, "GET, HEAD", method, url);
        return api_reply_text(c, 200, "text/plain", strdup("ok\n"));
    }
    if (!strcmp(url, "/metrics")) {
        if (!IS("GET") && !IS("HEAD")) return api_method_not_allowed(c, "GET, HEAD", method, url);
        /* every pod's figures: for the node's operator, not for the pods */
        if (l->kind != HV_LISTEN_OPERATOR)
            return api_reply_error(c, 403, "path: /metrics is served on the operator socket only");
        return api_reply_text(c, 200, "text/plain; version=0.0.4; charset=utf-8", metrics_render());
    }
    if (!strcmp(url, "/v1/status")) {
        if (!IS("GET") && !IS("HEAD")) return api_method_not_allowed(c, "GET, HEAD", method, url);
        if (l->kind == HV_LISTEN_OPERATOR) return api_reply_json(c, 200, status_json());
        /* a worker sees its own pod only: the pod of the process on the other end */
        pid_t peer;
        if (l->kind == HV_LISTEN_TCP || peer_unix_pid(c, &peer))
            return api_reply_error(c, 403,
                                   "path: over TCP /v1/status is served on the operator "
                                   "socket only");
        return api_reply_json(c, 200, status_peer_json(peer));
    }
    if (!strcmp(url, "/v1/workers")) {
        if (!IS("POST")) return api_method_not_allowed(c, "POST", method, url);
        return api_worker_register(l, c, r);
    }
    /* split the rest: /v1/workers/{id}[/{op}], /v1/pods/{ns}/{name}/{op}; a segment that names
     * a worker, namespace or pod (unescaped by libmicrohttpd) must be a name (names.h) */
    char path[1024], *seg[8];
    int n = 0;
    if (strlen(url) >= sizeof(path)) return api_reply_error(c, 404, "path: too long");
    snprintf(path, sizeof(path), "%s", url);
    for (char *save = NULL, *t = strtok_r(path, "/", &save); t && n < 8;
         t = strtok_r(NULL, "/", &save))
        seg[n++] = t;
    if (n >= 3 && n <= 4 && !strcmp(seg[0], "v1") && !strcmp(seg[1], "workers"))
        return route_worker(l, c, url, method, r, (const char *const *)seg + 2, n - 2);
    if (n == 5 && !strcmp(seg[0], "v1") && !strcmp(seg[1], "pods"))
        return route_pod(l, c, url, method, r, (const char *const *)seg + 2);
    return api_reply_error(c, 404, "path: no such endpoint: %.200s", url);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **ctx)
{
    (void)version;
    const struct hv_listener *l = cls;
    struct api_req *r = *ctx;
    if (!r) {
        if (!(r = calloc(1, sizeof(*r)))) return MHD_NO;
        *ctx = r;
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        uint64_t n;
        if (cl && !api_parse_u64(cl, &n) && n > HV_MAX_BODY) {
            r->too_big = 1;
            return api_reply_error(c, 413, "body: larger than %d bytes", HV_MAX_BODY);
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
    if (r->too_big) return api_reply_error(c, 413, "body: larger than %d bytes", HV_MAX_BODY);
    return route(l, c, url, method, r);
}

static void completed(void *cls, struct MHD_Connection *c, void **ctx,
                      enum MHD_RequestTerminationCode code)
{
    (void)cls, (void)c, (void)code;
    struct api_req *r = *ctx;
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
