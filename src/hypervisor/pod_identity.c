/* pod_identity.c - a process's pod from its cgroup (see pod_identity.h). */
#define _GNU_SOURCE
#include "pod_identity.h"

#include <ctype.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "shm_region.h"

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

/* a path component naming a pod: "pod<uid>" (cgroupfs) or "...-pod<uid_>.slice" (systemd) */
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

/* a path component naming a container: "<64 hex>" or "<runtime>-<64 hex>[.scope]" */
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
    const char *ctl; /* controllers ("" for v2, "name=systemd", "pids,..." ) */
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

/* scan one path's components for a pod UID and the deepest container ID */
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
        if (n && component_container(c, n, tmp)) memcpy(ctr, tmp, 65);
    }
}

int pod_identity_parse(const char *text, size_t len, struct pod_identity *out)
{
    memset(out, 0, sizeof(*out));
    struct line chosen = {0};
    int rank = 0; /* of chosen: 3 v2, 2 name=systemd, 1 other v1 */
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
            if (uid[0] && !out->uid[0]) snprintf(out->uid, sizeof(out->uid), "%s", uid);
            if (ctr[0] && !out->container[0])
                snprintf(out->container, sizeof(out->container), "%s", ctr);
            int root = l.path_len == 1;
            int r = l.ctl_len == 0                                              ? 3
                    : l.ctl_len == 12 && memcmp(l.ctl, "name=systemd", 12) == 0 ? 2
                                                                                : 1;
            if (!root && r > rank) {
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
        out->kind = POD_KIND_CGROUP;
    if (!rank) chosen = (struct line){.path = "/", .path_len = 1};
    snprintf(out->cgroup, sizeof(out->cgroup), "%.*s", (int)chosen.path_len, chosen.path);
    out->cgroup_truncated = chosen.path_len >= sizeof(out->cgroup);
    out->cgroup_hash = vgpu_fnv1a64(chosen.path, chosen.path_len);
    return 0;
}

int pod_identity_of_pid(pid_t pid, struct pod_identity *out)
{
    char path[64], buf[8192];
    snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fd, buf + n, sizeof(buf) - n);
        if (r <= 0) break;
        n += (size_t)r;
        if (n == sizeof(buf)) break;
    }
    close(fd);
    if (n == sizeof(buf)) return -1; /* longer than any real one: not guessed at */
    return pod_identity_parse(buf, n, out);
}

int pod_identity_key(pid_t pid, char *key, size_t n)
{
    struct pod_identity id;
    if (pod_identity_of_pid(pid, &id) != 0) return -1;
    int w = id.kind == POD_KIND_K8S         ? snprintf(key, n, "k8s:%s", id.uid)
            : id.kind == POD_KIND_CONTAINER ? snprintf(key, n, "ctr:%s", id.container)
                                            : snprintf(key, n, "cg:%016llx", id.cgroup_hash);
    return w > 0 && (size_t)w < n ? 0 : -1;
}
