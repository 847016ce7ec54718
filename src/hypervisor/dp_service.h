/* dp_service.h - the kubelet's calls to the device plugin but Allocate (dp_allocate.h).
 *
 * Why this exists: the gRPC methods of v1beta1.DevicePlugin, one handler each, as
 * grpc_server.h calls them; arg is the resource (DP_MEM, DP_CORES) as a pointer.
 */
#ifndef VGPU_HV_DP_SERVICE_H
#define VGPU_HV_DP_SERVICE_H

#include "dp_state.h"

/* A failed reply: gRPC status and message. */
void dp_fail(struct gs_reply *out, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Pack a message into the reply. */
void dp_reply_pack(struct gs_reply *out, const ProtobufCMessage *m);
/* The resource a handler serves, from its arg. */
int dp_res_of(void *arg);

void dp_on_options(void *arg, const uint8_t *req, size_t len, struct gs_reply *out);
/* ListAndWatch: the whole list at once and again whenever it changes, until the kubelet or
 * the daemon ends the stream. */
void dp_on_list_and_watch(void *arg, struct gs_stream *s, const uint8_t *req, size_t len);
void dp_on_prestart(void *arg, const uint8_t *req, size_t len, struct gs_reply *out);
/* GetPreferredAllocation: each container's devices on one GPU (prefer_one). */
void dp_on_preferred(void *arg, const uint8_t *req, size_t len, struct gs_reply *out);

#endif
