/* sim_state.c - creation, locking and bookkeeping of the simulated GPU's shared state.
 *
 * Why this exists: both simulated libraries (driver API and NVML) read and change the same
 * machine-wide state; this is the one implementation of mapping it, locking it robustly (tests
 * kill processes with -9 while they may hold the lock), forgetting dead processes the way a GPU
 * frees their memory, and accounting busy time.
 */
#define _GNU_SOURCE
#include "sim_state.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SIM_LAYOUT ((uint32_t)sizeof(struct sim_state) ^ 0x5e100000u)

struct sim_state *sim_st;
static pthread_mutex_t open_lock = PTHREAD_MUTEX_INITIALIZER;

uint64_t sim_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void sim_sleep_until(uint64_t t)
{
    struct timespec ts = {(time_t)(t / 1000000000ull), (long)(t % 1000000000ull)};
    while (sim_now_ns() < t && clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

uint64_t sim_parse_size(const char *s, uint64_t def)
{
    if (!s || !*s) return def;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || errno) return def;
    int shift = 0;
    switch (toupper((unsigned char)*end)) {
    case 'K':
        shift = 10;
        break;
    case 'M':
        shift = 20;
        break;
    case 'G':
        shift = 30;
        break;
    case 'T':
        shift = 40;
        break;
    case 0:
        return v;
    default:
        return def;
    }
    end++;
    if (!strcasecmp(end, "iB") || !strcasecmp(end, "B")) end += strlen(end);
    if (*end || (v >> (64 - shift))) return def;
    return (uint64_t)v << shift;
}

uint64_t sim_env_size(const char *name, uint64_t def)
{
    return sim_parse_size(getenv(name), def);
}

void sim_uuid(int dev, unsigned char out[16])
{
    memset(out, 0, 16);
    out[0] = 0x5e;
    out[1] = 0x1a;
    out[15] = (unsigned char)(dev + 1);
}

/* --- locking and processes -------------------------------------------------------------- */

void sim_lock(void)
{
    if (pthread_mutex_lock(&sim_st->lock) == EOWNERDEAD)
        pthread_mutex_consistent(&sim_st->lock); /* a holder was killed: its update is partial */
}

void sim_unlock(void)
{
    pthread_mutex_unlock(&sim_st->lock);
}

/* state (field 3) and start time (field 22) of /proc/<pid>/stat; -1 when there is none */
static int proc_stat(int pid, char *state, uint64_t *start)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return -1;
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    if (!p || !p[1] || !p[2]) return -1;
    p += 2;
    *state = *p;
    for (int i = 0; i < 19 && p; i++)
        if ((p = strchr(p, ' '))) p++;
    if (!p) return -1;
    *start = strtoull(p, NULL, 10);
    return 0;
}

static int proc_alive(const struct sim_proc *p)
{
    char st;
    uint64_t start;
    if (kill(p->pid, 0) < 0 && errno == ESRCH) return 0;
    if (proc_stat(p->pid, &st, &start) < 0) return 0;
    return st != 'Z' && st != 'X' && start == p->start_time;
}

void sim_reap_locked(void)
{
    int me = getpid();
    for (int i = 0; i < SIM_MAX_PROC; i++) {
        struct sim_proc *p = &sim_st->proc[i];
        if (p->in_use && p->pid != me && !proc_alive(p)) memset(p, 0, sizeof *p);
    }
}

int sim_register_locked(void)
{
    char st;
    uint64_t start = 0;
    int me = getpid(), slot = -1;
    proc_stat(me, &st, &start);
    sim_reap_locked();
    for (int i = 0; i < SIM_MAX_PROC && slot < 0; i++)
        if (sim_st->proc[i].in_use && sim_st->proc[i].pid == me)
            slot = i; /* an earlier copy of the library in this process: start afresh */
    for (int i = 0; i < SIM_MAX_PROC && slot < 0; i++)
        if (!sim_st->proc[i].in_use) slot = i;
    if (slot < 0) return -1;
    struct sim_proc *p = &sim_st->proc[slot];
    memset(p, 0, sizeof *p);
    p->pid = me;
    p->start_time = start;
    p->in_use = 1;
    return slot;
}

uint64_t sim_proc_used(const struct sim_proc *p, int dev)
{
    uint64_t u = 0;
    for (int k = 0; k < SIM_NUSE; k++)
        u += p->dev[dev].use[k];
    return u;
}

uint64_t sim_used_locked(int dev)
{
    uint64_t u = 0;
    for (int i = 0; i < SIM_MAX_PROC; i++)
        if (sim_st->proc[i].in_use) u += sim_proc_used(&sim_st->proc[i], dev);
    return u;
}

int sim_charge(int slot, int dev, int kind, int64_t delta)
{
    int rc = 0;
    sim_lock();
    sim_reap_locked();
    struct sim_proc *p = &sim_st->proc[slot];
    uint64_t *f = &p->dev[dev].use[kind];
    if (delta > 0 && sim_used_locked(dev) + (uint64_t)delta > sim_st->total)
        rc = -1;
    else if (delta < 0 && (uint64_t)-delta > *f)
        *f = 0;
    else
        *f += (uint64_t)delta;
    sim_unlock();
    return rc;
}

/* --- busy time ------------------------------------------------------------------------------ */

static void ring_add(struct sim_ring *r, uint64_t s, uint64_t e)
{
    while (s < e) {
        uint64_t b = s / SIM_BUCKET_NS, x = (b + 1) * SIM_BUCKET_NS;
        uint32_t i = (uint32_t)(b % SIM_RING), tag = (uint32_t)b;
        if (x > e) x = e;
        if (r->tag[i] != tag) {
            if ((int32_t)(r->tag[i] - tag) > 0) { /* holds a newer bucket: never overwrite */
                s = x;
                continue;
            }
            r->tag[i] = tag;
            r->busy_us[i] = 0;
        }
        r->busy_us[i] += (uint32_t)((x - s) / 1000);
        s = x;
    }
}

uint64_t sim_ring_busy_ns(const struct sim_ring *r, uint64_t from, uint64_t to, uint64_t now)
{
    uint64_t sum = 0;
    if (to > now) to = now; /* only the past counts */
    if (from + SIM_RING * SIM_BUCKET_NS < to) from = to - SIM_RING * SIM_BUCKET_NS;
    for (uint64_t b = from / SIM_BUCKET_NS; from < to && b <= (to - 1) / SIM_BUCKET_NS; b++) {
        uint32_t i = (uint32_t)(b % SIM_RING);
        if (r->tag[i] != (uint32_t)b) continue;
        uint64_t bs = b * SIM_BUCKET_NS, be = bs + SIM_BUCKET_NS;
        uint64_t lo = bs > from ? bs : from, hi = be < to ? be : to;
        /* a bucket only partly in the range: its busy time pro rata (taking all of it
         * counted the edges twice when a second is read as ten 100 ms readings) */
        uint64_t busy = (uint64_t)r->busy_us[i] * 1000 * (hi - lo) / SIM_BUCKET_NS;
        sum += busy < hi - lo ? busy : hi - lo;
    }
    return sum;
}

/* Time up to now + 1 s is written into the rings at once; later parts of long kernels wait
 * in the device's defer list, so a ring slot is never reused for a bucket still readable. */
#define SIM_HORIZON_NS (1000 * SIM_MS)

static void busy_add(int slot, int pid, int dev, uint64_t s, uint64_t e)
{
    ring_add(&sim_st->dev[dev].ring, s, e);
    struct sim_proc *p = slot >= 0 ? &sim_st->proc[slot] : NULL;
    if (p && p->in_use && p->pid == pid) ring_add(&p->dev[dev].ring, s, e);
}

void sim_defer_flush_locked(int dev, uint64_t now)
{
    struct sim_dev *d = &sim_st->dev[dev];
    uint32_t keep = 0;
    for (uint32_t i = 0; i < d->ndefer && i < SIM_NDEFER; i++) {
        struct sim_defer f = d->defer[i];
        uint64_t cut = f.to < now + SIM_HORIZON_NS ? f.to : now + SIM_HORIZON_NS;
        if (cut > f.from) {
            busy_add(f.slot, f.pid, dev, f.from, cut);
            f.from = cut;
        }
        if (f.from < f.to) d->defer[keep++] = f;
    }
    d->ndefer = keep;
}

void sim_busy_add_locked(int slot, int dev, uint64_t s, uint64_t e, uint64_t now)
{
    struct sim_dev *d = &sim_st->dev[dev];
    int pid = slot >= 0 ? sim_st->proc[slot].pid : 0;
    sim_defer_flush_locked(dev, now);
    uint64_t cut = e < now + SIM_HORIZON_NS ? e : now + SIM_HORIZON_NS;
    if (cut > s) busy_add(slot, pid, dev, s, cut);
    if (e <= cut) return;
    uint64_t from = cut > s ? cut : s;
    struct sim_defer *last = d->ndefer ? &d->defer[d->ndefer - 1] : NULL;
    /* a deep queue of one process is one stretch of back-to-back work: kept as one entry */
    if (last && last->slot == slot && last->pid == pid && from <= last->to && from >= last->from) {
        if (e > last->to) last->to = e;
    } else if (d->ndefer < SIM_NDEFER) {
        d->defer[d->ndefer++] = (struct sim_defer){slot, pid, from, e};
    }
}

/* --- mapping -------------------------------------------------------------------------------- */

static void apply_env_locked(void)
{
    uint64_t n = sim_env_size("VGPU_SIM_DEVICES", 1);
    sim_st->ndev = (uint32_t)(n > SIM_MAX_DEV ? SIM_MAX_DEV : n);
    sim_st->total = sim_env_size("VGPU_SIM_MEM", 16ull << 30);
}

static struct sim_state *map_state(void)
{
    char def[64];
    const char *path = getenv("VGPU_SIM_STATE");
    if (!path || !*path) {
        snprintf(def, sizeof def, "/dev/shm/vgpu-sim-%u.state", (unsigned)getuid());
        path = def;
    }
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) return NULL;
    struct sim_state *s = MAP_FAILED;
    struct stat sb;
    if (flock(fd, LOCK_EX) == 0 && fstat(fd, &sb) == 0 &&
        (sb.st_size >= (off_t)sizeof *s || ftruncate(fd, sizeof *s) == 0))
        s = mmap(NULL, sizeof *s, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (s != MAP_FAILED &&
        (__atomic_load_n(&s->magic, __ATOMIC_ACQUIRE) != SIM_MAGIC || s->layout != SIM_LAYOUT)) {
        memset(s, 0, sizeof *s);
        pthread_mutexattr_t a;
        pthread_mutexattr_init(&a);
        pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
        pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
        pthread_mutex_init(&s->lock, &a);
        pthread_mutexattr_destroy(&a);
        s->layout = SIM_LAYOUT;
        __atomic_store_n(&s->magic, SIM_MAGIC, __ATOMIC_RELEASE);
        sim_st = s;
        apply_env_locked();
    }
    flock(fd, LOCK_UN);
    close(fd);
    return s == MAP_FAILED ? NULL : s;
}

struct sim_state *sim_state_open(void)
{
    pthread_mutex_lock(&open_lock);
    if (!sim_st) sim_st = map_state();
    pthread_mutex_unlock(&open_lock);
    if (!sim_st) return NULL;
    sim_lock();
    sim_reap_locked();
    int live = 0;
    for (int i = 0; i < SIM_MAX_PROC; i++)
        live += sim_st->proc[i].in_use != 0;
    if (!live) /* nobody uses the GPU: the environment may reconfigure it */
        apply_env_locked();
    sim_unlock();
    return sim_st;
}
