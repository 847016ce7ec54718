/* peer_group.c - the group a connecting peer is counted in: its pod, its uid or its address.
 *
 * Why this exists: see peer_group.h.
 */
#define _GNU_SOURCE
#include "peer_group.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include "shm_region.h"

/* The process's cgroup membership, every line of /proc/PID/cgroup, hashed: the processes of one
 * pod share it, and a pod cannot change it without write access to the cgroup fs. The
 * first 16 KiB decide (the pod's cgroups are named in the first lines). */
static int peer_group_default(pid_t pid, char *key, size_t n)
{
    char path[64], buf[16384];
    snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    size_t len = 0;
    ssize_t r = 0;
    while (len < sizeof(buf) && (r = read(fd, buf + len, sizeof(buf) - len)) > 0)
        len += (size_t)r;
    close(fd);
    if (r < 0 || !len) return -1;
    snprintf(key, n, "cgroup-%016llx", (unsigned long long)vgpu_fnv1a64(buf, len));
    return 0;
}

typedef int (*hs_grouper)(pid_t, char *, size_t);

static _Atomic hs_grouper grouper = peer_group_default;

void peer_group_set_grouper(int (*fn)(pid_t pid, char *key, size_t n))
{
    atomic_store(&grouper, fn ? fn : peer_group_default);
}

void peer_group(enum hv_listener_kind kind, int fd, const struct sockaddr_storage *ss, char *key,
                size_t n)
{
    if (kind == HV_LISTEN_TCP) {
        char ip[INET6_ADDRSTRLEN] = "?";
        if (ss->ss_family == AF_INET)
            inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, ip, sizeof(ip));
        else if (ss->ss_family == AF_INET6)
            inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, ip, sizeof(ip));
        snprintf(key, n, "ip:%s", ip);
        return;
    }
    struct ucred cr;
    socklen_t len = sizeof(cr);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len)) {
        snprintf(key, n, "uid:unknown");
        return;
    }
    char g[PEER_GROUP_KEY_LEN - 8];
    hs_grouper fn = atomic_load(&grouper);
    if (cr.pid > 0 && !fn(cr.pid, g, sizeof(g)) && g[0])
        snprintf(key, n, "pod:%s", g);
    else
        snprintf(key, n, "uid:%u", (unsigned)cr.uid);
}
