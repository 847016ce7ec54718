/* ledger_reader.c - read a pod's ledger with checks (see ledger_reader.h). */
#define _GNU_SOURCE
#include "ledger_reader.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* exact read of `n` bytes at `off`; 0 or -1 (short: the pod truncated its file) */
static int read_at(int fd, void *buf, size_t n, off_t off)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, (char *)buf + got, n - got, off + (off_t)got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        got += (size_t)r;
    }
    return 0;
}

int ledger_read_head(int fd, struct vgpu_shm *copy, char *why, size_t whylen)
{
    if (read_at(fd, copy, LEDGER_HEAD_BYTES, 0) != 0) {
        snprintf(why, whylen, "the ledger file is shorter than a ledger");
        return -1;
    }
    if (copy->magic != VGPU_SHM_MAGIC || copy->version != VGPU_SHM_VERSION ||
        copy->size != sizeof(struct vgpu_shm)) {
        snprintf(why, whylen, "the ledger's magic, version or size were overwritten");
        return -1;
    }
    /* what the pod's limiters write into a device entry under their lock: a state of two
     * values, a NUL-terminated "gpu-..." name once READY */
    for (int d = 0; d < VGPU_MAX_DEVICES; d++) {
        const struct vgpu_shm_dev *v = &copy->dev[d];
        uint32_t st = atomic_load_explicit(&v->state, memory_order_relaxed);
        if (st == VGPU_DEV_EMPTY) continue;
        if (st != VGPU_DEV_READY || !memchr(v->uuid, 0, sizeof(v->uuid)) ||
            strncmp(v->uuid, "gpu-", 4) != 0) {
            snprintf(why, whylen, "the ledger's GPU entries were overwritten");
            return -1;
        }
    }
    return 0;
}

const struct vgpu_shm_dev *ledger_dev(const struct vgpu_shm *copy, const char *uuid)
{
    for (int d = 0; d < VGPU_MAX_DEVICES; d++) {
        const struct vgpu_shm_dev *v = &copy->dev[d];
        if (atomic_load_explicit(&v->state, memory_order_relaxed) == VGPU_DEV_READY &&
            !strcmp(v->uuid, uuid))
            return v;
    }
    return NULL;
}

int ledger_read_procs_n(int fd, struct vgpu_shm_proc *procs, int n)
{
    if (n < 0 || n > VGPU_MAX_PROCS) n = VGPU_MAX_PROCS;
    return read_at(fd, procs, sizeof(struct vgpu_shm_proc) * (size_t)n,
                   (off_t)offsetof(struct vgpu_shm, proc));
}

int ledger_read_procs(int fd, struct vgpu_shm_proc *procs)
{
    return ledger_read_procs_n(fd, procs, VGPU_MAX_PROCS);
}
