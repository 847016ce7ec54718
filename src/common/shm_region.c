/* shm_region.c - create, find and map a pod's ledger (see shm_region.h). */
#define _GNU_SOURCE
#include "shm_region.h"

#include <errno.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

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
        atomic_store(&s->dev[d].lim.mem_limit, VGPU_UNLIMITED);
    }
    /* magic last: a reader that sees it sees an initialised region */
    __atomic_store_n(&s->magic, VGPU_SHM_MAGIC, __ATOMIC_RELEASE);
}

void vgpu_shm_standalone_dir(char *out, size_t outlen)
{
    snprintf(out, outlen, "/dev/shm/vgpu-%u", (unsigned)geteuid());
}

/* The standalone directory: created 0700 when missing; used only if it is a directory (not a
 * symlink) that this user owns and nobody else may write, so that no other user can plant or
 * pre-create a region in it. Returns an O_DIRECTORY fd or -1 with a message. */
static int open_private_dir(const char *path, int create, char *err, size_t errlen)
{
    if (create && mkdir(path, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create directory %s: %s", path, strerror(errno));
        return -1;
    }
    int dfd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0) {
        snprintf(err, errlen, "cannot open directory %s: %s", path,
                 errno == ELOOP || errno == ENOTDIR ? "not a directory (a symlink?)"
                                                    : strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(dfd, &st) != 0 || st.st_uid != geteuid() || (st.st_mode & 022)) {
        snprintf(err, errlen,
                 "directory %s is owned by uid %u with mode %03o: only a directory of uid %u that "
                 "nobody else can write holds its regions",
                 path, (unsigned)st.st_uid, (unsigned)(st.st_mode & 0777), (unsigned)geteuid());
        close(dfd);
        return -1;
    }
    return dfd;
}

/* Map `fd` (sized already or empty) and check or initialise it. */
static struct vgpu_shm *map_fd(int fd, const char *path, int create, const char *pod_id, char *err,
                               size_t errlen)
{
    struct stat st;
    if (fstat(fd, &st) != 0) {
        snprintf(err, errlen, "cannot stat %s: %s", path, strerror(errno));
        return NULL;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s is not a regular file", path);
        return NULL;
    }
    int fresh = 0;
    if (st.st_size == 0 && create) {
        if (ftruncate(fd, (off_t)sizeof(struct vgpu_shm)) != 0) {
            snprintf(err, errlen, "cannot size %s: %s", path, strerror(errno));
            return NULL;
        }
        fresh = 1;
    } else if (st.st_size != (off_t)sizeof(struct vgpu_shm)) {
        snprintf(err, errlen,
                 "shared memory %s has size %lld, this build expects %zu (a different vgpu "
                 "version is using it)",
                 path, (long long)st.st_size, sizeof(struct vgpu_shm));
        return NULL;
    }
    void *m = mmap(NULL, sizeof(struct vgpu_shm), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) {
        snprintf(err, errlen, "cannot map %s: %s", path, strerror(errno));
        return NULL;
    }
    struct vgpu_shm *s = m;
    uint64_t magic = __atomic_load_n(&s->magic, __ATOMIC_ACQUIRE);
    if (fresh || magic == 0) {
        /* new, or its creator died before finishing: the caller holds the flock, so nobody
         * else is initialising it now */
        if (!create) {
            snprintf(err, errlen, "shared memory %s is not initialised", path);
            munmap(m, sizeof(struct vgpu_shm));
            return NULL;
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
        return NULL;
    }
    return s;
}

struct vgpu_shm *vgpu_shm_open(const char *dir, const char *pod_id, int flags, char *err,
                               size_t errlen)
{
    char path[512], def[64];
    if (!dir || !*dir) {
        vgpu_shm_standalone_dir(def, sizeof(def));
        dir = def;
    }
    if (vgpu_shm_path(dir, pod_id, path, sizeof(path)) != 0) {
        snprintf(err, errlen, "shared memory path too long under %s", dir);
        return NULL;
    }
    int create = (flags & VGPU_SHM_CREATE) != 0;
    int dfd = open_private_dir(dir, create, err, errlen);
    if (dfd < 0) return NULL;
    const char *name = strrchr(path, '/') + 1;
    int fd = openat(dfd, name, O_RDWR | O_NOFOLLOW | O_CLOEXEC | (create ? O_CREAT : 0), 0600);
    close(dfd);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open shared memory %s: %s", path, strerror(errno));
        return NULL;
    }
    struct vgpu_shm *s = NULL;
    struct stat st;
    /* Only a creator takes the file lock (to initialise alone). Opening an existing region
     * needs none: the magic is stored last, so a region whose magic is in place is complete. */
    if (fstat(fd, &st) != 0 || st.st_uid != geteuid()) {
        snprintf(err, errlen, "shared memory %s is not owned by uid %u", path, (unsigned)geteuid());
    } else if (create && flock(fd, LOCK_EX) != 0) {
        snprintf(err, errlen, "cannot lock %s: %s", path, strerror(errno));
    } else {
        s = map_fd(fd, path, create, pod_id, err, errlen);
        /* unlock explicitly: the mapping keeps the open file alive, and with it a flock */
        flock(fd, LOCK_UN);
    }
    close(fd);
    return s;
}

struct vgpu_shm *vgpu_shm_map_existing(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open the pod's ledger %s: %s", path, strerror(errno));
        return NULL;
    }
    struct vgpu_shm *s = map_fd(fd, path, 0, NULL, err, errlen);
    close(fd);
    return s;
}

struct vgpu_shm *vgpu_shm_private(const char *pod_id)
{
    void *m = mmap(NULL, sizeof(struct vgpu_shm), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return NULL;
    init_region(m, pod_id ? pod_id : "");
    return m;
}

int vgpu_shm_init_fd(int fd, const char *pod_id)
{
    struct vgpu_shm *s = calloc(1, sizeof(*s));
    if (!s) return -1;
    init_region(s, pod_id);
    const char *p = (const char *)s;
    size_t left = sizeof(*s);
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
    free(s);
    return r;
}

void vgpu_shm_close(struct vgpu_shm *s)
{
    if (s) munmap(s, sizeof(*s));
}
