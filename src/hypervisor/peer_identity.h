/* peer_identity.h - who is on the other end of a request, as the kernel says.
 *
 * Why this exists: a worker's host PID decides which worker (and pod) a request may act for, so
 * it is never taken from the request. On a Unix socket the kernel tells it (SO_PEERCRED, already
 * translated into our PID namespace); over TCP a claimed PID is accepted only if that process
 * holds the connecting socket (/proc/PID/net/tcp{,6} gives the socket's inode,
 * /proc/PID/fd shows who holds it).
 */
#ifndef VGPU_HV_PEER_IDENTITY_H
#define VGPU_HV_PEER_IDENTITY_H

#include <microhttpd.h>
#include <sys/types.h>

/* Unix socket: the peer's pid (our namespace). 0, or -1. */
int peer_unix_pid(struct MHD_Connection *c, pid_t *pid);
/* TCP: does process `host_pid` hold the client end of this connection? 1 / 0. */
int peer_tcp_owned_by(struct MHD_Connection *c, pid_t host_pid);
/* TCP: find the host pid of a process that calls itself `claimed` (its pid in its own
 * namespace, or its host pid) and holds the client end of this connection. 0, or -1. */
int peer_tcp_find(struct MHD_Connection *c, pid_t claimed, pid_t *host_pid);

#endif
