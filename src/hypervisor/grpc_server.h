/* grpc_server.h - a small gRPC server and client on Unix sockets, over gRPC's C core.
 *
 * Why this exists: the kubelet's device-plugin API is gRPC (HTTP/2 framing, flow control,
 * cancellation), which we do not write by hand: gRPC's own C core (libgrpc, Debian's
 * libgrpc-dev) does it. Its completion-queue API is low level, so this wrapper gives the plugin
 * what it needs in plain bytes (messages are packed and unpacked by the caller):
 *
 *   - a server on "unix:PATH" with registered methods: unary ones (bytes in, bytes or a status
 *     out) and server-streaming ones (one request; the handler pushes messages until it returns
 *     or the stream ends);
 *   - a unary client call with a deadline (the plugin's Register to the kubelet).
 *
 * Threads: one thread per server takes new calls; each call is handled on a thread of its own
 * (at most GS_MAX_ACTIVE per server: beyond that a call is refused with RESOURCE_EXHAUSTED), so
 * a slow peer holds only its own call. Handlers run on those threads and must be thread-safe.
 * Every wait has a deadline; gs_server_stop cancels what is open and returns when every handler
 * has returned.
 */
#ifndef VGPU_HV_GRPC_SERVER_H
#define VGPU_HV_GRPC_SERVER_H

#include <stddef.h>
#include <stdint.h>

/* gRPC status codes used here (the values of grpc_status_code: the wire's numbers) */
enum {
    GS_OK = 0,
    GS_INVALID_ARGUMENT = 3,
    GS_RESOURCE_EXHAUSTED = 8,
    GS_FAILED_PRECONDITION = 9,
    GS_UNIMPLEMENTED = 12,
    GS_INTERNAL = 13,
    GS_UNAVAILABLE = 14,
};

#define GS_MAX_METHODS 8
#define GS_MAX_ACTIVE 32          /* calls handled at once per server */
#define GS_MAX_MESSAGE (4u << 20) /* largest request accepted (gRPC's usual default) */
#define GS_STATUS_MSG_LEN 512

/* What a unary handler answers: status GS_OK with `data` (malloc'ed, `len` bytes; the wrapper
 * frees it; NULL/0 is an empty message), or another status with a message for the peer. */
struct gs_reply {
    int status;
    uint8_t *data;
    size_t len;
    char msg[GS_STATUS_MSG_LEN];
};

struct gs_stream;

typedef void (*gs_unary_fn)(void *arg, const uint8_t *req, size_t len, struct gs_reply *out);
/* Runs for as long as it wants to stream; return to end the stream with status OK. */
typedef void (*gs_stream_fn)(void *arg, struct gs_stream *s, const uint8_t *req, size_t len);

struct gs_method {
    const char *path;  /* "/package.Service/Method"; must outlive the server */
    gs_unary_fn unary; /* exactly one of unary / stream */
    gs_stream_fn stream;
    void *arg;
};

/* Once per process before anything else here (ref-counted by gRPC), and its end. */
void gs_global_init(void);
void gs_global_shutdown(void);

struct gs_server;
/* Serve `methods` (copied; at most GS_MAX_METHODS) on the Unix socket `path` (a stale socket
 * there is replaced; gRPC makes the file). NULL with a message in err. Unknown methods are
 * answered UNIMPLEMENTED. */
struct gs_server *gs_server_start(const char *path, const struct gs_method *methods, int n,
                                  char *err, size_t errlen);
/* Stop accepting, cancel open calls, wait for every handler, free. gRPC removes the socket
 * file. NULL is fine. */
void gs_server_stop(struct gs_server *s);

/* Streaming handlers: send one message (0), or -1 when the stream has ended (the peer went
 * away, the server is stopping, or the peer did not take the message within 10 s). */
int gs_stream_send(struct gs_stream *st, const uint8_t *data, size_t len);
/* Wait up to `ms` for the stream to end: 0 when it is still open after that, -1 when it ended. */
int gs_stream_wait(struct gs_stream *st, int ms);

/* A unary call of `method` on the server at Unix socket `path`, within `timeout_ms`. 0 with the
 * reply in *resp (malloc'ed, *resp_len bytes; may be NULL when empty), or the gRPC status
 * (> 0; -1 when the call could not be made) with a message in err. */
int gs_call_unary(const char *path, const char *method, const uint8_t *req, size_t len,
                  int timeout_ms, uint8_t **resp, size_t *resp_len, char *err, size_t errlen);

#endif
