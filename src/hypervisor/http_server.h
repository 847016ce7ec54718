/* http_server.h - who may hold a connection to the daemon, and for how long.
 *
 * Why this exists: pods are adversaries, and every open connection costs the daemon a thread
 * (libmicrohttpd runs thread-per-connection so that long-polls and event streams may block their
 * own thread). One pod must not be able to take the threads that the other pods' workers need
 * to register and heartbeat. So each listener accepts its connections itself and admits one only
 * within two caps:
 *  - per group of peers: on a Unix socket the pod of the connecting process (SO_PEERCRED pid ->
 *    its group by peer_group.h, by default a hash of /proc/PID/cgroup; a peer whose group
 *    cannot be told is a group of its own, keyed by its uid), over TCP its IP address. The
 *    operator socket (root only) has no per-group cap.
 *  - in total: the operator socket has its own total, the worker socket and TCP share one.
 * A connection over a cap is answered 503 {"error": "connections: ..."} at once and closed.
 * And a connection must deliver each request in full (headers and body) within
 * request_timeout_ms, counted from the connection's start for its first request, else it is cut:
 * half-sent requests cannot hold threads for long. Replies are not limited by the deadline
 * (long-polls, event streams); idle keep-alive connections close after an idle timeout.
 */
#ifndef VGPU_HV_HTTP_SERVER_H
#define VGPU_HV_HTTP_SERVER_H

#include <stddef.h>
#include <sys/types.h>

#include <microhttpd.h>

#include "hv_listener.h"

struct http_server_limits {
    unsigned max_connections;         /* open at once on the operator socket; on the worker
                                         socket and TCP together */
    unsigned max_connections_per_pod; /* per group of peers (worker socket, TCP) */
    unsigned request_timeout_ms;      /* to deliver one request, headers and body */
};

/* What answers the requests: libmicrohttpd's access handler and request-completed callback,
 * called with the struct hv_listener the request came in on as cls (http_api.c's). Handed in
 * at start, so that the server never calls the API by name (the API reads the server's
 * statistics for /metrics). */
struct http_server_routes {
    MHD_AccessHandlerCallback request;
    MHD_RequestCompletedCallback completed;
};

/* Serve the listener's socket (l->fd, which it then owns) with `routes`. 0, or -1 (logged). */
int http_listener_start(struct hv_listener *l, const struct http_server_limits *lim,
                        const struct http_server_routes *routes);
/* Stop accepting, close every connection (after their handlers return) and the listening
 * socket. Leaves l->fd's value as it was. */
void http_listener_stop(struct hv_listener *l);

struct http_server_stats {
    unsigned open[3];                   /* connections now, per enum hv_listener_kind */
    unsigned long long refused[3];      /* answered 503 over a cap, since start */
    unsigned long long deadline_cut[3]; /* cut for not delivering a request in time */
};
void http_server_stats(struct http_server_stats *out);

#endif
