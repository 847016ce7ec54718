/* ctl_region.c - a pod's control region: create, map, search (see ctl_region.h). */
#define _GNU_SOURCE
#include "ctl_region.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int vgpu_ctl_init_fd(int fd, const char *pod, const char *token)
{
    struct vgpu_ctl *c = calloc(1, sizeof(*c));
    if (!c) return -1;
    c->magic = VGPU_CTL_MAGIC;
    c->version = VGPU_CTL_VERSION;
    c->size = (uint32_t)sizeof(*c);
    snprintf(c->pod, sizeof(c->pod), "%s", pod);
    snprintf(c->token, sizeof(c->token), "%s", token);
    for (int d = 0; d < VGPU_MAX_DEVICES; d++)
        atomic_store(&c->dev[d].lim.mem_limit, VGPU_UNLIMITED);
    const char *p = (const char *)c;
    size_t left = sizeof(*c);
    off_t off = 0;
    int r = 0;
    while (left) {
        ssize_t n = pwrite(fd, p + off, left, off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            r = -1;
            break;
        }
        off += n;
        left -= (size_t)n;
    }
    free(c);
    return r;
}

struct vgpu_ctl *vgpu_ctl_map_fd(int fd, int writable, char *err, size_t errlen)
{
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
        st.st_size != (off_t)sizeof(struct vgpu_ctl)) {
        snprintf(err, errlen, "not a control region of this version (a regular file of %zu bytes)",
                 sizeof(struct vgpu_ctl));
        return NULL;
    }
    void *m = mmap(NULL, sizeof(struct vgpu_ctl), PROT_READ | (writable ? PROT_WRITE : 0),
                   MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) {
        snprintf(err, errlen, "cannot map: %s", strerror(errno));
        return NULL;
    }
    struct vgpu_ctl *c = m;
    if (__atomic_load_n(&c->magic, __ATOMIC_ACQUIRE) != VGPU_CTL_MAGIC ||
        c->version != VGPU_CTL_VERSION || c->size != sizeof(*c) ||
        !memchr(c->pod, 0, sizeof(c->pod)) || !memchr(c->token, 0, sizeof(c->token))) {
        snprintf(err, errlen, "magic, version or size differ from this build's (version %u)",
                 VGPU_CTL_VERSION);
        munmap(m, sizeof(*c));
        return NULL;
    }
    return c;
}

const struct vgpu_ctl *vgpu_ctl_open(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open the pod's control region %s: %s", path, strerror(errno));
        return NULL;
    }
    char why[160];
    const struct vgpu_ctl *c = vgpu_ctl_map_fd(fd, 0, why, sizeof(why));
    close(fd);
    if (!c) snprintf(err, errlen, "control region %s: %s", path, why);
    return c;
}

void vgpu_ctl_unmap(const struct vgpu_ctl *c)
{
    if (c) munmap((void *)c, sizeof(*c));
}

int vgpu_ctl_dev_find(const struct vgpu_ctl *c, const char *uuid)
{
    for (int d = 0; d < VGPU_MAX_DEVICES; d++) {
        if (atomic_load_explicit(&c->dev[d].state, memory_order_acquire) != VGPU_DEV_READY)
            continue;
        if (strncmp(c->dev[d].uuid, uuid, VGPU_UUID_LEN) == 0) return d;
    }
    return -1;
}
