/* api_reply.h - one request's body, and the replies of the daemon's HTTP API.
 *
 * Why this exists: every route (api_worker.c, api_operator.c, http_api.c) answers the same
 * way: JSON bodies capped at HV_MAX_BODY, JSON replies, and every rejection as
 * {"error": "..."} naming the offending field (logged at debug). Kept apart from the routes
 * so that each group of routes needs only this, not the others.
 */
#ifndef VGPU_HV_API_REPLY_H
#define VGPU_HV_API_REPLY_H

#include <jansson.h>
#include <microhttpd.h>
#include <stddef.h>
#include <stdint.h>

/* The body of one request as it arrives (http_api.c collects it). */
struct api_req {
    char *body;
    size_t len;
    int too_big;
};

/* Queue `text` (freed; NULL: empty) with Content-Type `type` (NULL: none). */
enum MHD_Result api_reply_text(struct MHD_Connection *c, unsigned status, const char *type,
                               char *text);
/* Queue j (its reference taken) as one line of JSON. */
enum MHD_Result api_reply_json(struct MHD_Connection *c, unsigned status, json_t *j);
/* Queue {"error": "<message>"}; the message is made valid UTF-8 (it may quote the request). */
__attribute__((format(printf, 3, 4))) enum MHD_Result
api_reply_error(struct MHD_Connection *c, unsigned status, const char *fmt, ...);
enum MHD_Result api_reply_empty(struct MHD_Connection *c, unsigned status);
/* 405 with the Allow header. */
enum MHD_Result api_method_not_allowed(struct MHD_Connection *c, const char *allow,
                                       const char *method, const char *url);
/* Parse the body as a JSON object. NULL after replying with an error (*ret). `optional`: an
 * empty body is {}. */
json_t *api_body_object(struct MHD_Connection *c, const struct api_req *r, int optional,
                        enum MHD_Result *ret);
/* Digits only: strtoull alone would take " -1" (after=%20-1) as 2^64-1 and "+5" as 5. 0/-1. */
int api_parse_u64(const char *s, uint64_t *out);

#endif
