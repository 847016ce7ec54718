/* node_region.c - map, write and read the node region (see node_region.h, node_layout.h). */
#define _GNU_SOURCE
#include "node_region.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define RELAXED memory_order_relaxed

/* The node file in the daemon's directory `dfd`, opened for writing: reused when it is a
 * regular file of ours with one link, otherwise (a symlink, a hard link, anything planted)
 * removed and created anew with O_EXCL, so the daemon never writes through a name someone
 * else chose. -1 with errno. */
static int open_node_file(int dfd)
{
    int fd = openat(dfd, VGPU_NODE_FILE, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd >= 0) {
        struct stat st;
        if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid() &&
            st.st_nlink == 1)
            return fd;
        close(fd);
    }
    if (unlinkat(dfd, VGPU_NODE_FILE, 0) != 0 && errno != ENOENT) return -1;
    return openat(dfd, VGPU_NODE_FILE, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
}

struct vgpu_node_shm *vgpu_node_create(const char *dir, char *err, size_t errlen)
{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    struct stat ds;
    if (dfd < 0 || fstat(dfd, &ds) != 0 || ds.st_uid != geteuid() || (ds.st_mode & 022)) {
        snprintf(err, errlen, "%s: not a directory of uid %u that nobody else can write", dir,
                 (unsigned)geteuid());
        if (dfd >= 0) close(dfd);
        return NULL;
    }
    int fd = open_node_file(dfd);
    close(dfd);
    if (fd < 0) {
        snprintf(err, errlen, "%s/%s: %s", dir, VGPU_NODE_FILE, strerror(errno));
        return NULL;
    }
    fchmod(fd, 0644); /* readable by limiters of every user, whatever the umask */
    struct stat st;
    int fresh = fstat(fd, &st) == 0 && st.st_size != (off_t)sizeof(struct vgpu_node_shm);
    if (fresh && ftruncate(fd, sizeof(struct vgpu_node_shm)) != 0) {
        snprintf(err, errlen, "%s/%s: %s", dir, VGPU_NODE_FILE, strerror(errno));
        close(fd);
        return NULL;
    }
    struct vgpu_node_shm *n = mmap(NULL, sizeof(*n), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (n == MAP_FAILED) {
        snprintf(err, errlen, "%s/%s: %s", dir, VGPU_NODE_FILE, strerror(errno));
        return NULL;
    }
    if (fresh || n->magic != VGPU_NODE_MAGIC || n->version != VGPU_NODE_VERSION ||
        n->size != sizeof(*n)) {
        /* a new file, or one of another layout: readers reject it until the magic is back */
        __atomic_store_n(&n->magic, 0, __ATOMIC_RELEASE);
        memset((char *)n + sizeof(n->magic), 0, sizeof(*n) - sizeof(n->magic));
        n->version = VGPU_NODE_VERSION;
        n->size = sizeof(*n);
        __atomic_store_n(&n->magic, VGPU_NODE_MAGIC, __ATOMIC_RELEASE);
    }
    atomic_store(&n->daemon_pid, (int32_t)getpid());
    struct stat ns;
    atomic_store(&n->daemon_pidns, stat("/proc/self/ns/pid", &ns) == 0 ? (uint64_t)ns.st_ino : 0);
    return n;
}

const struct vgpu_node_shm *vgpu_node_open(const char *dir)
{
    char path[512];
    if (snprintf(path, sizeof(path), "%s/%s", dir, VGPU_NODE_FILE) >= (int)sizeof(path))
        return NULL;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return NULL;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
        st.st_size != (off_t)sizeof(struct vgpu_node_shm)) {
        close(fd);
        return NULL;
    }
    const struct vgpu_node_shm *n = mmap(NULL, sizeof(*n), PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (n == MAP_FAILED) return NULL;
    if (__atomic_load_n(&n->magic, __ATOMIC_ACQUIRE) != VGPU_NODE_MAGIC ||
        n->version != VGPU_NODE_VERSION || n->size != sizeof(*n)) {
        munmap((void *)n, sizeof(*n));
        return NULL;
    }
    return n;
}

void vgpu_node_unmap(const struct vgpu_node_shm *n)
{
    if (n) munmap((void *)n, sizeof(*n));
}

void vgpu_node_write_begin(struct vgpu_node_shm *n)
{
    atomic_fetch_add_explicit(&n->seq, 1, memory_order_acq_rel); /* odd: being written */
    atomic_thread_fence(memory_order_release);
}

void vgpu_node_write_end(struct vgpu_node_shm *n, uint64_t now_ns)
{
    atomic_store_explicit(&n->updated_ns, now_ns, RELAXED);
    atomic_fetch_add_explicit(&n->seq, 1, memory_order_release); /* even: consistent */
}

int vgpu_node_read(const struct vgpu_node_shm *n, struct vgpu_node_view *v, uint64_t now_ns)
{
    struct vgpu_node_shm *w = (struct vgpu_node_shm *)n; /* atomics are read, never written */
    for (int attempt = 0; attempt < 100; attempt++) {
        uint64_t s0 = atomic_load_explicit(&w->seq, memory_order_acquire);
        if (s0 & 1) {
            usleep(100);
            continue;
        }
        v->updated_ns = atomic_load_explicit(&w->updated_ns, RELAXED);
        v->pidns = atomic_load_explicit(&w->daemon_pidns, RELAXED);
        v->ngpu = atomic_load_explicit(&w->ngpu, RELAXED);
        v->nproc = atomic_load_explicit(&w->nproc, RELAXED);
        if (v->ngpu > VGPU_MAX_DEVICES) v->ngpu = VGPU_MAX_DEVICES;
        if (v->nproc > VGPU_NODE_MAX_PROCS) v->nproc = VGPU_NODE_MAX_PROCS;
        for (unsigned i = 0; i < v->ngpu; i++) {
            for (int k = 0; k < VGPU_UUID_LEN; k++) /* byte by byte: the writer may be at work */
                v->gpu[i].uuid[k] = __atomic_load_n(&n->gpu[i].uuid[k], __ATOMIC_RELAXED);
            v->gpu[i].uuid[VGPU_UUID_LEN - 1] = 0;
            v->gpu[i].util = atomic_load_explicit(&w->gpu[i].util, RELAXED);
            v->gpu[i].mem_used = atomic_load_explicit(&w->gpu[i].mem_used, RELAXED);
            v->gpu[i].mem_total = atomic_load_explicit(&w->gpu[i].mem_total, RELAXED);
        }
        for (unsigned i = 0; i < v->nproc; i++) {
            v->proc[i].host_pid = atomic_load_explicit(&w->proc[i].host_pid, RELAXED);
            v->proc[i].gpu = atomic_load_explicit(&w->proc[i].gpu, RELAXED);
            v->proc[i].sm_util = atomic_load_explicit(&w->proc[i].sm_util, RELAXED);
            v->proc[i].mem = atomic_load_explicit(&w->proc[i].mem, RELAXED);
        }
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&w->seq, RELAXED) != s0) continue;
        if (!v->updated_ns || now_ns < v->updated_ns || now_ns - v->updated_ns > VGPU_NODE_FRESH_NS)
            return -1;
        return 0;
    }
    return -1;
}

int vgpu_node_gpu_find(const struct vgpu_node_view *v, const char *uuid)
{
    for (unsigned i = 0; i < v->ngpu; i++)
        if (!strncmp(v->gpu[i].uuid, uuid, VGPU_UUID_LEN)) return (int)i;
    return -1;
}
