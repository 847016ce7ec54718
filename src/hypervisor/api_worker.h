/* api_worker.h - the routes a worker (a limiter in a pod) calls: /v1/workers[/{id}/...].
 *
 * Why this exists: the worker side of the API (docs/hypervisor.md), apart from the operator's
 * (api_operator.h) and from the routing (http_api.c). Each function answers one request and
 * returns what libmicrohttpd's handler returns.
 */
#ifndef VGPU_HV_API_WORKER_H
#define VGPU_HV_API_WORKER_H

#include <microhttpd.h>

#include "api_reply.h"
#include "hv_listener.h"

/* POST /v1/workers: 201 with the worker's id, region and limits. */
enum MHD_Result api_worker_register(const struct hv_listener *l, struct MHD_Connection *c,
                                    const struct api_req *r);
/* POST /v1/workers/{id}/heartbeat */
enum MHD_Result api_worker_heartbeat(const struct hv_listener *l, struct MHD_Connection *c,
                                     const char *id, const struct api_req *r);
/* GET /v1/workers/{id}/commands?after=&timeout= (long-poll) */
enum MHD_Result api_worker_commands(const struct hv_listener *l, struct MHD_Connection *c,
                                    const char *id);
/* GET /v1/workers/{id}/events (Server-Sent Events) */
enum MHD_Result api_worker_events(const struct hv_listener *l, struct MHD_Connection *c,
                                  const char *id);
/* POST /v1/workers/{id}/ack */
enum MHD_Result api_worker_ack(const struct hv_listener *l, struct MHD_Connection *c,
                               const char *id, const struct api_req *r);
/* DELETE /v1/workers/{id} */
enum MHD_Result api_worker_unregister(const struct hv_listener *l, struct MHD_Connection *c,
                                      const char *id);

#endif
