/* hv_listener.h - the daemon's listening sockets and their kinds.
 *
 * Why this exists: the kind of the socket a request came in on (operator Unix socket, worker
 * Unix socket, TCP) decides what it may do; the server (http_server.h), the peer groups
 * (peer_group.h) and the routes (http_api.h, api_worker.h) all read it, so it is a header of
 * its own that depends on nothing of theirs.
 */
#ifndef VGPU_HV_LISTENER_H
#define VGPU_HV_LISTENER_H

enum hv_listener_kind { HV_LISTEN_OPERATOR, HV_LISTEN_WORKER, HV_LISTEN_TCP };

#define HV_MAX_BODY (64 * 1024)

struct http_server;
struct hv_listener {
    enum hv_listener_kind kind;
    int fd;                     /* listening socket, created by main.c */
    char path[256];             /* Unix socket path ("" for TCP) */
    struct http_server *server; /* while it is served (http_server.h) */
};

#endif
