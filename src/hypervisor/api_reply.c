/* api_reply.c - JSON replies, error replies and request bodies of the HTTP API.
 *
 * Why this exists: see api_reply.h.
 */
#define _GNU_SOURCE
#include "api_reply.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hv_log.h"
#include "names.h"

enum MHD_Result api_reply_text(struct MHD_Connection *c, unsigned status, const char *type,
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

enum MHD_Result api_reply_json(struct MHD_Connection *c, unsigned status, json_t *j)
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
    return api_reply_text(c, status, "application/json", text);
}

enum MHD_Result api_reply_error(struct MHD_Connection *c, unsigned status, const char *fmt, ...)
{
    char msg[1024]; /* room for a list of the node's GPUs (gpu_keys.h) */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    hv_utf8_clean(msg); /* it may quote the request (jansson's own errors too) */
    hv_logf(HV_DEBUG, "request rejected", "{s:i, s:s}", "status", (int)status, "error", msg);
    return api_reply_json(c, status, json_pack("{s:s}", "error", msg));
}

enum MHD_Result api_reply_empty(struct MHD_Connection *c, unsigned status)
{
    return api_reply_text(c, status, NULL, NULL);
}

/* Parse the body as a JSON object. NULL after replying with an error. `optional`: an empty
 * body is {}. */
json_t *api_body_object(struct MHD_Connection *c, const struct api_req *r, int optional,
                        enum MHD_Result *ret)
{
    if (!r->len) {
        if (optional) return json_object();
        *ret = api_reply_error(c, 400, "body: a JSON object is required");
        return NULL;
    }
    json_error_t e;
    json_t *j = json_loadb(r->body, r->len, JSON_REJECT_DUPLICATES, &e);
    if (!j) {
        *ret = api_reply_error(c, 400, "body: invalid JSON at line %d column %d: %s", e.line,
                               e.column, e.text);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        *ret = api_reply_error(c, 400, "body: must be a JSON object");
        return NULL;
    }
    return j;
}

/* Digits only: strtoull alone would take " -1" (after=%20-1) as 2^64-1 and "+5" as 5. */
int api_parse_u64(const char *s, uint64_t *out)
{
    if (!s || *s < '0' || *s > '9') return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || errno) return -1;
    *out = v;
    return 0;
}

enum MHD_Result api_method_not_allowed(struct MHD_Connection *c, const char *allow,
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
