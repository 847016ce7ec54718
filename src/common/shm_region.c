/* shm_region.c - find, create, map and lock a pod's shared-memory region (see shm_region.h). */
#define _GNU_SOURCE
#include "shm_region.h"

#include <errno.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "shm_ledger.h"

uint64_t vgpu_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t vgpu_fnv1a64(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    return h;
}

int vgpu_shm_path(const char *dir, const char *pod_id, char *out, size_t outlen)
{
    char safe[65];
    size_t n = 0;
    for (const char *p = pod_id; *p && n < sizeof(safe) - 1; p++) {
        char c = *p;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '-' || c == '_' || c == '.';
        safe[n++] = ok ? c : '_';
    }
    safe[n] = 0;
    uint64_t h = vgpu_fnv1a64(pod_id, strlen(pod_id));
    int w = snprintf(out, outlen, "%s/pod-%s-%08x.shm", dir, safe, (unsigned)(h & 0xffffffffu));
    return (w > 0 && (size_t)w < outlen) ? 0 : -1;
}

static void init_region(struct vgpu_shm *s, const char *pod_id)
{
    memset(s, 0, sizeof(*s));
    s->version = VGPU_SHM_VERSION;
    s->size = (uint32_t)sizeof(*s);
    snprintf(s->pod_id, sizeof(s->pod_id), "%s", pod_id);
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(&s->lock.m, &a);
    pthread_mutexattr_destroy(&a);
    for (int d = 0; d < VGPU_MAX_DEVICES; d++) {
        atomic_store(&s->dev[d].mem_limit, VGPU_UNLIMITED);
    }
    /* magic last: a reader that sees it sees an initialised region */
    __atomic_store_n(&s->magic, VGPU_SHM_MAGIC, __ATOMIC_RELEASE);
}

static int make_dir(const char *path)
{
    if (mkdir(path, 01777) == 0) {
        chmod(path, 01777); /* mkdir is subject to umask; the directory is shared by pods */
        return 0;
    }
    return errno == EEXIST ? 0 : -1;
}

struct vgpu_shm *vgpu_shm_open_path(const char *path, int flags, const char *pod_id, char *err,
                                    size_t errlen)
{
    int oflags = O_RDWR | O_CLOEXEC | ((flags & VGPU_SHM_CREATE) ? O_CREAT : 0);
    int fd = open(path, oflags, 0660);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open shared memory %s: %s", path, strerror(errno));
        return NULL;
    }
    struct vgpu_shm *s = NULL;
    /* Only a creator takes the file lock (to initialise alone). Opening an existing region
     * needs none: the magic is stored last, so a region whose magic is in place is complete;
     * and the daemon, which never creates, cannot be stalled by a pod holding the lock. */
    if ((flags & VGPU_SHM_CREATE) && flock(fd, LOCK_EX) != 0) {
        snprintf(err, errlen, "cannot lock %s: %s", path, strerror(errno));
        goto out;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        snprintf(err, errlen, "cannot stat %s: %s", path, strerror(errno));
        goto out;
    }
    int fresh = 0;
    if (st.st_size == 0 && (flags & VGPU_SHM_CREATE)) {
        if (ftruncate(fd, (off_t)sizeof(struct vgpu_shm)) != 0) {
            snprintf(err, errlen, "cannot size %s: %s", path, strerror(errno));
            goto out;
        }
        fresh = 1;
    } else if (st.st_size != (off_t)sizeof(struct vgpu_shm)) {
        snprintf(err, errlen,
                 "shared memory %s has size %lld, this build expects %zu (a different vgpu "
                 "version is using it)",
                 path, (long long)st.st_size, sizeof(struct vgpu_shm));
        goto out;
    }
    void *m = mmap(NULL, sizeof(struct vgpu_shm), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) {
        snprintf(err, errlen, "cannot map %s: %s", path, strerror(errno));
        goto out;
    }
    s = m;
    uint64_t magic = __atomic_load_n(&s->magic, __ATOMIC_ACQUIRE);
    if (fresh || magic == 0) {
        /* new, or its creator died before finishing: we hold the flock, so nobody else is
         * initialising it now */
        if (!(flags & VGPU_SHM_CREATE)) {
            snprintf(err, errlen, "shared memory %s is not initialised", path);
            munmap(m, sizeof(struct vgpu_shm));
            s = NULL;
            goto out;
        }
        init_region(s, pod_id ? pod_id : "");
    } else if (magic != VGPU_SHM_MAGIC || s->version != VGPU_SHM_VERSION ||
               s->size != sizeof(struct vgpu_shm)) {
        snprintf(err, errlen,
                 "shared memory %s has magic %#llx version %u size %u; this build uses version %u "
                 "size %zu",
                 path, (unsigned long long)magic, s->version, s->size, VGPU_SHM_VERSION,
                 sizeof(struct vgpu_shm));
        munmap(m, sizeof(struct vgpu_shm));
        s = NULL;
    }
out:
    /* unlock explicitly: the mapping keeps the open file alive, and with it a flock */
    flock(fd, LOCK_UN);
    close(fd);
    return s;
}

struct vgpu_shm *vgpu_shm_open(const char *dir, const char *pod_id, int flags, char *err,
                               size_t errlen)
{
    char path[512];
    if (!dir || !*dir) dir = VGPU_SHM_DEFAULT_DIR;
    if (vgpu_shm_path(dir, pod_id, path, sizeof(path)) != 0) {
        snprintf(err, errlen, "shared memory path too long under %s", dir);
        return NULL;
    }
    if ((flags & VGPU_SHM_CREATE) && make_dir(dir) != 0) {
        snprintf(err, errlen, "cannot create directory %s: %s", dir, strerror(errno));
        return NULL;
    }
    return vgpu_shm_open_path(path, flags, pod_id, err, errlen);
}

void vgpu_shm_close(struct vgpu_shm *s)
{
    if (s) munmap(s, sizeof(*s));
}

/* 0: wait as long as it takes (limiters: the holder is a peer of the same pod, and a dead one
 * is detected by the robust mutex). The daemon sets a bound: a process of a pod that stops
 * while holding its pod's lock must not stall the node's scheduler and API with it. */
static _Atomic unsigned lock_timeout_ms;

void vgpu_shm_set_lock_timeout(unsigned ms)
{
    atomic_store(&lock_timeout_ms, ms);
}

int vgpu_shm_lock(struct vgpu_shm *s)
{
    unsigned ms = atomic_load_explicit(&lock_timeout_ms, memory_order_relaxed);
    int r;
    if (!ms) {
        r = pthread_mutex_lock(&s->lock.m);
    } else {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts); /* the clock pthread_mutex_timedlock measures */
        ts.tv_sec += ms / 1000;
        ts.tv_nsec += (long)(ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        r = pthread_mutex_timedlock(&s->lock.m, &ts);
    }
    if (r == EOWNERDEAD) {
        /* a holder died inside a critical section: rebuild what it may have left half done */
        vgpu_ledger_repair(s);
        pthread_mutex_consistent(&s->lock.m);
        r = 0;
    }
    return r;
}

void vgpu_shm_unlock(struct vgpu_shm *s)
{
    pthread_mutex_unlock(&s->lock.m);
}
