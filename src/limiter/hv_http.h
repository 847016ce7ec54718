/* hv_http.h - the smallest HTTP/1.1 client the limiter needs to talk to the node daemon.
 *
 * Why this exists: the injected library may depend on libc only (no libcurl), must never raise
 * SIGPIPE in the application (MSG_NOSIGNAL), and must never block longer than its caller
 * allows: every step takes an absolute CLOCK_MONOTONIC deadline and waits with poll(2). One
 * request per connection ("Connection: close"); a reply may be delimited by Content-Length,
 * chunked transfer encoding, or the end of the connection. The reply parser is separate so the
 * unit tests can feed it any byte sequence.
 */
#ifndef VGPU_HV_HTTP_H
#define VGPU_HV_HTTP_H

#include <stddef.h>
#include <stdint.h>

struct hv_endpoint {
    int is_unix;
    char path[108]; /* Unix socket; a leading '@' names an abstract socket */
    char ip[64];    /* TCP: IPv4 or IPv6 literal */
    int port;
};

/* Connect and send one request (body may be NULL; with a body, Content-Type is JSON). Returns
 * the connected socket, or a message in err and -2 when nothing listens at the endpoint (no
 * such socket, connection refused, no route, no permission), -1 on any other failure (a full
 * backlog, the deadline, a broken connection). */
int hv_http_send(const struct hv_endpoint *ep, const char *method, const char *path,
                 const char *body, uint64_t deadline_ns, char *err, size_t errlen);

/* Wait until the reply starts arriving: 1 readable (or closed), 0 deadline, -1 error. */
int hv_http_wait(int fd, uint64_t deadline_ns);

/* Read the reply into buf (cap bytes). On success returns 0 with *status and *body (inside buf,
 * NUL-terminated, de-chunked) set; -1 (message in err) on a broken, oversize or late reply. */
int hv_http_recv(int fd, uint64_t deadline_ns, char *buf, size_t cap, int *status, char **body,
                 char *err, size_t errlen);

/* hv_http_send + hv_http_recv + close: 0, or -1 / -2 as hv_http_send. */
int hv_http_request(const struct hv_endpoint *ep, const char *method, const char *path,
                    const char *body, uint64_t deadline_ns, char *buf, size_t cap, int *status,
                    char **body_out, char *err, size_t errlen);

/* Parse a reply held in buf[0..len) (buf has room for one more byte). eof: the peer closed.
 * Returns 1 when complete (the body is de-chunked in place and NUL-terminated), 0 when more
 * bytes are needed, -1 when malformed. */
int hv_http_parse(char *buf, size_t len, int eof, int *status, char **body, size_t *body_len);

#endif
