/* http_api.h - the daemon's HTTP API (docs/hypervisor.md) on its three kinds of listener.
 *
 * Why this exists: one libmicrohttpd daemon per listening socket (operator Unix socket, worker
 * Unix socket, optional TCP), each in thread-per-connection mode so that long-polls and event
 * streams may block their own thread. The listener kind decides what a request may do.
 */
#ifndef VGPU_HV_HTTP_API_H
#define VGPU_HV_HTTP_API_H

enum hv_listener_kind { HV_LISTEN_OPERATOR, HV_LISTEN_WORKER, HV_LISTEN_TCP };

#define HV_MAX_BODY (64 * 1024)

struct MHD_Daemon;
struct hv_listener {
    enum hv_listener_kind kind;
    int fd;         /* listening socket, created by main.c */
    char path[256]; /* Unix socket path ("" for TCP) */
    struct MHD_Daemon *mhd;
};

/* Serve the listener's socket. 0, or -1 (logged). */
int http_listener_start(struct hv_listener *l);
void http_listener_stop(struct hv_listener *l);

#endif
