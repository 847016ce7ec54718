/* http_api.h - the daemon's HTTP API (docs/hypervisor.md) on its three kinds of listener.
 *
 * Why this exists: the routes of every listening socket (operator Unix socket, worker Unix
 * socket, optional TCP); the listener kind decides what a request may do. Its connections
 * (thread per connection, so that long-polls and event streams may block their own thread,
 * admission and deadlines) are http_server.h's.
 */
#ifndef VGPU_HV_HTTP_API_H
#define VGPU_HV_HTTP_API_H

#include <microhttpd.h>
#include <stddef.h>

#include "hv_listener.h"

/* libmicrohttpd's access handler and request-completed callback for the API; cls is the
 * struct hv_listener the request came in on. */
enum MHD_Result http_api_request(void *cls, struct MHD_Connection *c, const char *url,
                                 const char *method, const char *version, const char *upload,
                                 size_t *upload_size, void **ctx);
void http_api_completed(void *cls, struct MHD_Connection *c, void **ctx,
                        enum MHD_RequestTerminationCode code);

#endif
