/* cgroup_path.c - a process's pod from its /proc/PID/cgroup (see cgroup_path.h). */
#define _GNU_SOURCE
#include "cgroup_path.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "shm_region.h" /* vgpu_fnv1a64 */

/* "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" with '-' or '_' (systemd) between the groups */
static int uuid_at(const char *s, size_t n, char *out)
{
    if (n < 36) return 0;
    for (int i = 0; i < 36; i++) {
        char c = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-' && c != '_') return 0;
            out[i] = '-';
        } else {
            if (!isxdigit((unsigned char)c)) return 0;
            out[i] = (char)tolower((unsigned char)c);
        }
    }
    out[36] = 0;
    return 1;
}

/* a path component naming a pod: "pod<uid>" (cgroupfs) or "...-pod<uid_>.slice" (systemd;
 * "kubepods-pod<uid_>.slice" for the guaranteed class, which has no QoS slice) */
static int component_pod(const char *c, size_t n, char *uid)
{
    for (size_t i = 0; i + 3 <= n; i++) {
        if (memcmp(c + i, "pod", 3) != 0 || (i > 0 && c[i - 1] != '-')) continue;
        const char *u = c + i + 3;
        size_t rest = n - i - 3;
        if (!uuid_at(u, rest, uid)) continue;
        if (rest == 36 || (rest == 42 && memcmp(u + 36, ".slice", 6) == 0)) return 1;
    }
    return 0;
}

/* a path component naming a container: "<64 hex>" (cgroupfs) or "<runtime>-<64 hex>[.scope]"
 * (systemd: "cri-containerd-", "crio-", "docker-", "libpod-", ...) */
static int component_container(const char *c, size_t n, char *id)
{
    if (n > 6 && memcmp(c + n - 6, ".scope", 6) == 0) n -= 6;
    if (n < 64) return 0;
    const char *h = c + n - 64;
    for (int i = 0; i < 64; i++)
        if (!isxdigit((unsigned char)h[i]) || isupper((unsigned char)h[i])) return 0;
    if (n > 64 && h[-1] != '-') return 0;
    memcpy(id, h, 64);
    id[64] = 0;
    return 1;
}

struct line {
    const char *ctl; /* controllers: "" for v2, "name=systemd", "cpu,cpuacct", ... */
    size_t ctl_len;
    const char *path;
    size_t path_len;
};

/* "ID:controllers:/path"; 0 or -1 */
static int split_line(const char *s, size_t n, struct line *l)
{
    size_t i = 0;
    while (i < n && isdigit((unsigned char)s[i]))
        i++;
    if (i == 0 || i >= n || s[i] != ':') return -1;
    const char *c = s + i + 1;
    const char *colon = memchr(c, ':', n - i - 1);
    if (!colon) return -1;
    l->ctl = c;
    l->ctl_len = (size_t)(colon - c);
    l->path = colon + 1;
    l->path_len = n - (size_t)(l->path - s);
    if (!l->path_len || l->path[0] != '/' || memchr(l->path, 0, l->path_len)) return -1;
    return 0;
}

/* is `name` one of the comma-separated controllers of l? */
static int has_controller(const struct line *l, const char *name)
{
    size_t k = strlen(name);
    const char *p = l->ctl, *end = l->ctl + l->ctl_len;
    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        size_t n = comma ? (size_t)(comma - p) : (size_t)(end - p);
        if (n == k && memcmp(p, name, k) == 0) return 1;
        p = comma ? comma + 1 : end;
    }
    return 0;
}

/* How well a line's path names the process's group (higher wins, 0 never): the v2 line holds
 * every process where it is not "/"; name=systemd is where systemd and the runtimes put every
 * unit and container on v1; pids, memory and cpu are the controllers a runtime always sets
 * up. A "/" line says nothing (hybrid mode's "0::/", a controller nobody configured). */
static int line_rank(const struct line *l)
{
    if (l->path_len == 1) return 0;
    if (l->ctl_len == 0) return 6;
    if (l->ctl_len == 12 && memcmp(l->ctl, "name=systemd", 12) == 0) return 5;
    if (has_controller(l, "pids")) return 4;
    if (has_controller(l, "memory")) return 3;
    if (has_controller(l, "cpu") || has_controller(l, "cpuacct")) return 2;
    return 1;
}

/* scan one path's components for the outermost pod UID and container ID: those are the ones
 * the kubelet and the runtime made; a process that can write its own cgroups can only add
 * components below them (a nested "pod<uid>" or "docker-<id>.scope" names nobody) */
static void scan_path(const struct line *l, char *uid, char *ctr)
{
    const char *p = l->path, *end = l->path + l->path_len;
    while (p < end) {
        while (p < end && *p == '/')
            p++;
        const char *c = p;
        while (p < end && *p != '/')
            p++;
        size_t n = (size_t)(p - c);
        char tmp[72];
        if (n && !uid[0] && component_pod(c, n, tmp)) memcpy(uid, tmp, 37);
        if (n && !ctr[0] && component_container(c, n, tmp)) memcpy(ctr, tmp, 65);
    }
}

int pod_identity_parse(const char *text, size_t len, struct pod_identity *out)
{
    memset(out, 0, sizeof(*out));
    struct line chosen = {.path = "/", .path_len = 1};
    int rank = 0; /* of chosen */
    size_t lines = 0;
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (n) {
            struct line l;
            if (split_line(p, n, &l) != 0) return -1;
            lines++;
            char uid[40] = "", ctr[72] = "";
            scan_path(&l, uid, ctr);
            /* hierarchies that name different pods or containers: the process is not where
             * its runtime put it (a hierarchy it could write), so it is nobody's */
            if ((uid[0] && out->uid[0] && strcmp(uid, out->uid)) ||
                (ctr[0] && out->container[0] && strcmp(ctr, out->container)))
                return -1;
            if (uid[0] && !out->uid[0]) memcpy(out->uid, uid, sizeof(uid));
            if (ctr[0] && !out->container[0]) memcpy(out->container, ctr, sizeof(ctr));
            int r = line_rank(&l);
            if (r > rank) {
                rank = r;
                chosen = l;
            }
        }
        p = nl ? nl + 1 : end;
    }
    if (!lines) return -1;
    if (out->uid[0])
        out->kind = POD_KIND_K8S;
    else if (out->container[0])
        out->kind = POD_KIND_CONTAINER;
    else
        out->kind = rank ? POD_KIND_CGROUP : POD_KIND_HOST;
    snprintf(out->cgroup, sizeof(out->cgroup), "%.*s", (int)chosen.path_len, chosen.path);
    out->cgroup_truncated = chosen.path_len >= sizeof(out->cgroup);
    out->cgroup_hash = vgpu_fnv1a64(chosen.path, chosen.path_len);
    return 0;
}

int pod_identity_name(const struct pod_identity *id, char *out, size_t n)
{
    int w;
    switch (id->kind) {
    case POD_KIND_K8S:
        w = snprintf(out, n, "k8s-%s", id->uid);
        break;
    case POD_KIND_CONTAINER:
        w = snprintf(out, n, "ctr-%s", id->container);
        break;
    case POD_KIND_CGROUP:
        w = snprintf(out, n, "cg-%016llx", id->cgroup_hash);
        break;
    case POD_KIND_HOST:
        w = snprintf(out, n, "host");
        break;
    default:
        w = -1;
        break;
    }
    return w > 0 && (size_t)w < n ? 0 : -1;
}

ssize_t pod_identity_read_file(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    size_t n = 0;
    int bad = 0;
    for (;;) {
        ssize_t r = read(fd, buf + n, cap - n);
        if (r == 0) break;
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 || (n += (size_t)r) == cap) {
            bad = 1; /* an error, or longer than any real one: not guessed at */
            break;
        }
    }
    close(fd);
    return bad ? -1 : (ssize_t)n;
}
