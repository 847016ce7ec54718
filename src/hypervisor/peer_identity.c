/* peer_identity.c - the kernel's word on who sent a request.
 *
 * Why this exists: see peer_identity.h. For TCP the connection is looked up from the client's
 * side: in the network namespace of the candidate process (/proc/PID/net/tcp{,6}, which is that
 * process's view), the socket whose local address is the client address we accepted and whose
 * remote address is our listening address; then /proc/PID/fd must hold that socket's inode.
 */
#define _GNU_SOURCE
#include "peer_identity.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

static int conn_fd(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    return ci ? ci->connect_fd : -1;
}

int peer_unix_pid(struct MHD_Connection *c, pid_t *pid)
{
    int fd = conn_fd(c);
    struct ucred cr;
    socklen_t len = sizeof(cr);
    if (fd < 0 || getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) || cr.pid <= 0) return -1;
    *pid = cr.pid;
    return 0;
}

/* "%08X:%04X" of an address as /proc/net/tcp prints it (the raw 32-bit words, host order). */
static int fmt_addr(const struct sockaddr_storage *ss, char *out, size_t n, int *v6)
{
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        snprintf(out, n, "%08X:%04X", a->sin_addr.s_addr, ntohs(a->sin_port));
        *v6 = 0;
        return 0;
    }
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        uint32_t w[4];
        memcpy(w, &a->sin6_addr, 16);
        snprintf(out, n, "%08X%08X%08X%08X:%04X", w[0], w[1], w[2], w[3], ntohs(a->sin6_port));
        *v6 = 1;
        return 0;
    }
    return -1;
}

/* The connection as the client sees it: (client local, server) address strings. */
static int conn_addrs(struct MHD_Connection *c, char *local, char *remote, size_t n, int *v6)
{
    int fd = conn_fd(c);
    struct sockaddr_storage srv, cli;
    socklen_t l1 = sizeof(srv), l2 = sizeof(cli);
    if (fd < 0 || getsockname(fd, (struct sockaddr *)&srv, &l1) ||
        getpeername(fd, (struct sockaddr *)&cli, &l2))
        return -1;
    int a, b;
    if (fmt_addr(&cli, local, n, &a) || fmt_addr(&srv, remote, n, &b)) return -1;
    *v6 = a;
    return 0;
}

/* Inode of the socket (local, remote) in /proc/PID/net/tcp[6]; 0 when none. */
static unsigned long socket_inode(pid_t pid, const char *local, const char *remote, int v6)
{
    char path[64], line[512];
    snprintf(path, sizeof(path), "/proc/%d/net/tcp%s", (int)pid, v6 ? "6" : "");
    FILE *f = fopen(path, "re");
    if (!f) return 0;
    unsigned long inode = 0;
    while (!inode && fgets(line, sizeof(line), f)) {
        char l[64], r[64];
        unsigned long ino;
        if (sscanf(line, " %*d: %63s %63s %*x %*s %*s %*s %*d %*d %lu", l, r, &ino) != 3) continue;
        if (!strcasecmp(l, local) && !strcasecmp(r, remote)) inode = ino;
    }
    fclose(f);
    return inode;
}

static int holds_inode(pid_t pid, unsigned long inode)
{
    char path[64], want[64], link[64];
    snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    snprintf(want, sizeof(want), "socket:[%lu]", inode);
    DIR *d = opendir(path);
    if (!d) return 0;
    int found = 0;
    struct dirent *e;
    while (!found && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char fp[340];
        snprintf(fp, sizeof(fp), "%s/%s", path, e->d_name);
        ssize_t n = readlink(fp, link, sizeof(link) - 1);
        if (n <= 0) continue;
        link[n] = 0;
        found = !strcmp(link, want);
    }
    closedir(d);
    return found;
}

int peer_tcp_owned_by(struct MHD_Connection *c, pid_t host_pid)
{
    char local[64], remote[64];
    int v6;
    if (host_pid <= 0 || conn_addrs(c, local, remote, sizeof(local), &v6)) return 0;
    unsigned long ino = socket_inode(host_pid, local, remote, v6);
    return ino && holds_inode(host_pid, ino);
}

/* Last entry of NSpid in /proc/PID/status: the pid in the process's own namespace. */
static long ns_pid(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f) return -1;
    long v = -1;
    while (fgets(line, sizeof(line), f))
        if (!strncmp(line, "NSpid:", 6)) {
            char *s = line + 6, *end;
            for (long x; (x = strtol(s, &end, 10)), end != s; s = end)
                v = x;
            break;
        }
    fclose(f);
    return v;
}

int peer_tcp_find(struct MHD_Connection *c, pid_t claimed, pid_t *host_pid)
{
    if (claimed <= 0) return -1;
    if (peer_tcp_owned_by(c, claimed)) { /* same pid namespace as the daemon */
        *host_pid = claimed;
        return 0;
    }
    DIR *d = opendir("/proc");
    if (!d) return -1;
    int ret = -1;
    struct dirent *e;
    while (ret && (e = readdir(d))) {
        if (!isdigit((unsigned char)e->d_name[0])) continue;
        pid_t p = (pid_t)atoi(e->d_name);
        if (p == claimed || ns_pid(p) != claimed) continue;
        if (peer_tcp_owned_by(c, p)) {
            *host_pid = p;
            ret = 0;
        }
    }
    closedir(d);
    return ret;
}
