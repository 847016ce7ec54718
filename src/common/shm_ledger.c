/* shm_ledger.c - the memory-ledger protocol (see shm_ledger.h for the rules). */
#define _GNU_SOURCE
#include "shm_ledger.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl_layout.h"
#include "shm_region.h"

#define RELAXED memory_order_relaxed

int vgpu_ledger_lock(struct vgpu_shm *s)
{
    int r = pthread_mutex_lock(&s->lock.m);
    if (r == EOWNERDEAD) {
        /* a holder died inside a critical section: rebuild what it may have left half done */
        vgpu_ledger_repair(s);
        pthread_mutex_consistent(&s->lock.m);
        r = 0;
    }
    return r;
}

void vgpu_ledger_unlock(struct vgpu_shm *s)
{
    pthread_mutex_unlock(&s->lock.m);
}

int vgpu_proc_stat(pid_t pid, char *state, uint64_t *start_time)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0) return -1;
    buf[n] = 0;
    char *p = strrchr(buf, ')'); /* the command name may hold spaces and parentheses */
    if (!p || p[1] != ' ') return -1;
    /* fields after ')': 3 state ... 22 starttime; no strtok: the limiter runs in threads of
     * programs that may be using it */
    char *f = p + 2;
    *state = *f;
    for (int field = 3; field < 22 && f; field++) {
        f = strchr(f, ' ');
        if (f) f++;
    }
    if (!f) return -1;
    *start_time = strtoull(f, NULL, 10);
    return 0;
}

void vgpu_proc_self(struct vgpu_proc_id *id)
{
    memset(id, 0, sizeof(*id));
    id->pid = getpid();
    char state;
    uint64_t st = 0;
    if (vgpu_proc_stat(id->pid, &state, &st) == 0) id->start_time = st;
    struct stat sb;
    if (stat("/proc/self/ns/pid", &sb) == 0) id->pidns = (uint64_t)sb.st_ino;
}

int vgpu_proc_alive(pid_t pid, uint64_t start_time)
{
    if (pid <= 0) return 0;
    if (kill(pid, 0) != 0 && errno == ESRCH) return 0;
    char state;
    uint64_t st;
    if (vgpu_proc_stat(pid, &state, &st) != 0) return 1; /* cannot tell (hidepid): keep it */
    if (state == 'Z' || state == 'X') return 0;          /* exited; GPU memory already freed */
    if (start_time && st != start_time) return 0;        /* the pid now names another process */
    return 1;
}

int vgpu_ledger_has_pid(const struct vgpu_shm *s, uint64_t pidns, unsigned pid)
{
    for (int i = 0; i < VGPU_MAX_PROCS; i++) {
        const struct vgpu_shm_proc *p = &s->proc[i];
        int32_t owner = atomic_load_explicit(&p->pid, RELAXED);
        if (owner <= 0) continue;
        if ((p->pidns == pidns && (unsigned)owner == pid) ||
            (unsigned)atomic_load_explicit(&p->host_pid, RELAXED) == pid)
            return 1;
    }
    return 0;
}

int vgpu_ledger_dev_find(const struct vgpu_shm *s, const char *uuid)
{
    for (int d = 0; d < VGPU_MAX_DEVICES; d++) {
        if (atomic_load_explicit(&s->dev[d].state, memory_order_acquire) != VGPU_DEV_READY)
            continue;
        if (strncmp(s->dev[d].uuid, uuid, VGPU_UUID_LEN) == 0) return d;
    }
    return -1;
}

int vgpu_ledger_dev_attach(struct vgpu_shm *s, const char *uuid, const struct vgpu_dev_init *init,
                           int *created)
{
    *created = 0;
    int d = vgpu_ledger_dev_find(s, uuid);
    if (d >= 0) return d;
    if (vgpu_ledger_lock(s) != 0) return -1;
    d = vgpu_ledger_dev_find(s, uuid);
    if (d < 0) {
        for (int i = 0; i < VGPU_MAX_DEVICES; i++) {
            struct vgpu_shm_dev *v = &s->dev[i];
            if (atomic_load_explicit(&v->state, RELAXED) != VGPU_DEV_EMPTY) continue;
            memset(v->uuid, 0, sizeof(v->uuid));
            snprintf(v->uuid, sizeof(v->uuid), "%s", uuid);
            atomic_store_explicit(&v->lim.mem_limit, init->mem_limit, RELAXED);
            atomic_store_explicit(&v->lim.oversold_limit, init->oversold_limit, RELAXED);
            atomic_store_explicit(&v->lim.flags, init->flags, RELAXED);
            atomic_store_explicit(&v->total_real, init->total_real, RELAXED);
            atomic_store_explicit(&v->lim.core_limit, init->core_limit, RELAXED);
            atomic_store_explicit(&v->lim.core_soft, init->core_soft, RELAXED);
            /* a soft limit starts at its floor until idle time is seen */
            uint32_t eff = init->core_soft ? init->core_soft : init->core_limit;
            atomic_store_explicit(&v->lim.core_effective, eff, RELAXED);
            atomic_store_explicit(&v->limiter.gate_share, eff, RELAXED);
            atomic_store_explicit(&v->limiter.gate_vclock, 0, RELAXED);
            atomic_store_explicit(&v->limiter.gate_scale, 1024, RELAXED);
            atomic_store_explicit(&v->gate_dvfs, 0, RELAXED); /* not known until measured */
            atomic_store_explicit(&v->state, VGPU_DEV_READY, memory_order_release);
            *created = 1;
            d = i;
            break;
        }
    }
    vgpu_ledger_unlock(s);
    return d;
}

static void release_slot_locked(struct vgpu_shm *s, struct vgpu_shm_proc *p)
{
    for (int d = 0; d < VGPU_MAX_DEVICES; d++) {
        uint64_t m =
            atomic_load_explicit(&p->mem[d], RELAXED) + atomic_load_explicit(&p->ovh[d], RELAXED);
        uint64_t o = atomic_load_explicit(&p->oversold[d], RELAXED);
        if (m) {
            uint64_t used = atomic_load_explicit(&s->dev[d].mem_used, RELAXED);
            atomic_store_explicit(&s->dev[d].mem_used, used >= m ? used - m : 0, RELAXED);
        }
        if (o) {
            uint64_t used = atomic_load_explicit(&s->dev[d].oversold_used, RELAXED);
            atomic_store_explicit(&s->dev[d].oversold_used, used >= o ? used - o : 0, RELAXED);
        }
        atomic_store_explicit(&p->mem[d], 0, RELAXED);
        atomic_store_explicit(&p->ovh[d], 0, RELAXED);
        atomic_store_explicit(&p->oversold[d], 0, RELAXED);
    }
    atomic_store_explicit(&p->host_pid, 0, RELAXED);
    atomic_store_explicit(&p->pid, 0, memory_order_release);
}

/* Did the daemon report the process of record p gone? (its host PID and start time) */
static int reported_dead(const struct vgpu_ctl *ctl, const struct vgpu_shm_proc *p)
{
    int32_t host = atomic_load_explicit(&p->host_pid, RELAXED);
    if (!ctl || host <= 0) return 0;
    uint64_t n = atomic_load_explicit(&ctl->dead_seq, memory_order_acquire);
    for (uint64_t k = 0; k < VGPU_CTL_DEAD && k < n; k++) {
        const struct vgpu_ctl_dead *e = &ctl->dead[k];
        if (atomic_load_explicit(&e->host_pid, RELAXED) == host &&
            atomic_load_explicit(&e->start_time, RELAXED) == p->start_time)
            return 1;
    }
    return 0;
}

int vgpu_ledger_reap(struct vgpu_shm *s, uint64_t self_pidns, const struct vgpu_ctl *ctl)
{
    int freed = 0;
    if (vgpu_ledger_lock(s) != 0) return 0;
    for (int i = 0; i < VGPU_MAX_PROCS; i++) {
        struct vgpu_shm_proc *p = &s->proc[i];
        pid_t pid = atomic_load_explicit(&p->pid, RELAXED);
        if (pid <= 0) continue;
        if (p->pidns == self_pidns ? vgpu_proc_alive(pid, p->start_time) : !reported_dead(ctl, p))
            continue;
        release_slot_locked(s, p);
        freed++;
    }
    if (freed) atomic_fetch_add_explicit(&s->reaped_procs, (uint64_t)freed, RELAXED);
    atomic_store_explicit(&s->last_reap_ns, vgpu_now_ns(), RELAXED);
    vgpu_ledger_unlock(s);
    return freed;
}

int vgpu_ledger_reap_if_due(struct vgpu_shm *s, uint64_t self_pidns, const struct vgpu_ctl *ctl,
                            uint64_t interval_ns)
{
    uint64_t now = vgpu_now_ns();
    uint64_t last = atomic_load_explicit(&s->last_reap_ns, RELAXED);
    if (now - last < interval_ns) return 0;
    /* one process per interval does the scan */
    if (!atomic_compare_exchange_strong(&s->last_reap_ns, &last, now)) return 0;
    return vgpu_ledger_reap(s, self_pidns, ctl);
}

int vgpu_ledger_proc_claim(struct vgpu_shm *s, const struct vgpu_proc_id *id)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        if (vgpu_ledger_lock(s) != 0) return -1;
        int found = -1, empty = -1;
        for (int i = 0; i < VGPU_MAX_PROCS; i++) {
            struct vgpu_shm_proc *p = &s->proc[i];
            pid_t pid = atomic_load_explicit(&p->pid, RELAXED);
            if (pid == id->pid && p->start_time == id->start_time && p->pidns == id->pidns) {
                found = i;
                break;
            }
            if (pid == 0 && empty < 0) empty = i;
        }
        if (found < 0 && empty >= 0) {
            struct vgpu_shm_proc *p = &s->proc[empty];
            release_slot_locked(s, p); /* zero any leftovers */
            p->start_time = id->start_time;
            p->pidns = id->pidns;
            atomic_store_explicit(&p->heartbeat_ns, vgpu_now_ns(), RELAXED);
            atomic_store_explicit(&p->pid, id->pid, memory_order_release);
            found = empty;
        }
        vgpu_ledger_unlock(s);
        if (found >= 0) return found;
        vgpu_ledger_reap(s, id->pidns, NULL);
    }
    return -1;
}

void vgpu_ledger_proc_release(struct vgpu_shm *s, int slot, pid_t pid)
{
    if (slot < 0 || slot >= VGPU_MAX_PROCS) return;
    if (vgpu_ledger_lock(s) != 0) return;
    if (atomic_load_explicit(&s->proc[slot].pid, RELAXED) == pid)
        release_slot_locked(s, &s->proc[slot]);
    vgpu_ledger_unlock(s);
}

static void bump_peak(struct vgpu_shm_dev *v, uint64_t used)
{
    if (used > atomic_load_explicit(&v->mem_peak, RELAXED))
        atomic_store_explicit(&v->mem_peak, used, RELAXED);
}

/* one attempt, lock held; `over` selects the device or the oversold bucket */
/* a record that was freed (process reaped or exited) takes no more charges */
static int claimed(const struct vgpu_shm *s, int slot)
{
    return atomic_load_explicit(&s->proc[slot].pid, RELAXED) > 0;
}

static int try_reserve_locked(struct vgpu_shm *s, int slot, int dev, uint64_t bytes, int over,
                              uint64_t limit)
{
    struct vgpu_shm_dev *v = &s->dev[dev];
    struct vgpu_shm_proc *p = &s->proc[slot];
    if (!claimed(s, slot)) return VGPU_LEDGER_ERROR;
    _Atomic uint64_t *used_p = over ? &v->oversold_used : &v->mem_used;
    uint64_t used = atomic_load_explicit(used_p, RELAXED);
    if (bytes > limit || used > limit - bytes) return VGPU_LEDGER_OVER_CAP;
    atomic_store_explicit(used_p, used + bytes, RELAXED);
    _Atomic uint64_t *mine = over ? &p->oversold[dev] : &p->mem[dev];
    atomic_store_explicit(mine, atomic_load_explicit(mine, RELAXED) + bytes, RELAXED);
    if (!over) bump_peak(v, used + bytes);
    return VGPU_LEDGER_OK;
}

static int reserve_common(struct vgpu_shm *s, int slot, int dev, uint64_t bytes, int over,
                          const struct vgpu_dev_limits *lim, const struct vgpu_ctl *ctl)
{
    if (slot < 0 || slot >= VGPU_MAX_PROCS || dev < 0 || dev >= VGPU_MAX_DEVICES)
        return VGPU_LEDGER_ERROR;
    int r = VGPU_LEDGER_OVER_CAP;
    for (int attempt = 0; attempt < 2 && r == VGPU_LEDGER_OVER_CAP; attempt++) {
        /* before refusing, give back the bytes of processes that died, then try once more */
        if (attempt == 1 && vgpu_ledger_reap(s, s->proc[slot].pidns, ctl) == 0) break;
        if (vgpu_ledger_lock(s) != 0) return VGPU_LEDGER_ERROR;
        uint64_t limit =
            atomic_load_explicit(over ? &lim->oversold_limit : &lim->mem_limit, RELAXED);
        r = try_reserve_locked(s, slot, dev, bytes, over, limit);
        vgpu_ledger_unlock(s);
    }
    if (r == VGPU_LEDGER_OVER_CAP) atomic_fetch_add_explicit(&s->dev[dev].oom_events, 1, RELAXED);
    return r;
}

static void unreserve_common(struct vgpu_shm *s, int slot, int dev, uint64_t bytes, int over)
{
    if (slot < 0 || slot >= VGPU_MAX_PROCS || dev < 0 || dev >= VGPU_MAX_DEVICES || !bytes) return;
    if (vgpu_ledger_lock(s) != 0) return;
    struct vgpu_shm_dev *v = &s->dev[dev];
    struct vgpu_shm_proc *p = &s->proc[slot];
    _Atomic uint64_t *mine = over ? &p->oversold[dev] : &p->mem[dev];
    _Atomic uint64_t *used_p = over ? &v->oversold_used : &v->mem_used;
    uint64_t m = atomic_load_explicit(mine, RELAXED);
    if (bytes > m) bytes = m; /* never give back more than this process holds */
    atomic_store_explicit(mine, m - bytes, RELAXED);
    uint64_t used = atomic_load_explicit(used_p, RELAXED);
    atomic_store_explicit(used_p, used >= bytes ? used - bytes : 0, RELAXED);
    vgpu_ledger_unlock(s);
}

int vgpu_ledger_reserve(struct vgpu_shm *s, int slot, int dev, uint64_t bytes,
                        const struct vgpu_dev_limits *lim, const struct vgpu_ctl *ctl)
{
    return reserve_common(s, slot, dev, bytes, 0, lim, ctl);
}

void vgpu_ledger_unreserve(struct vgpu_shm *s, int slot, int dev, uint64_t bytes)
{
    unreserve_common(s, slot, dev, bytes, 0);
}

int vgpu_ledger_reserve_oversold(struct vgpu_shm *s, int slot, int dev, uint64_t bytes,
                                 const struct vgpu_dev_limits *lim, const struct vgpu_ctl *ctl)
{
    return reserve_common(s, slot, dev, bytes, 1, lim, ctl);
}

void vgpu_ledger_unreserve_oversold(struct vgpu_shm *s, int slot, int dev, uint64_t bytes)
{
    unreserve_common(s, slot, dev, bytes, 1);
}

void vgpu_ledger_adjust(struct vgpu_shm *s, int slot, int dev, int64_t delta)
{
    if (delta < 0) {
        unreserve_common(s, slot, dev, (uint64_t)(-delta), 0);
        return;
    }
    if (!delta || slot < 0 || slot >= VGPU_MAX_PROCS || dev < 0 || dev >= VGPU_MAX_DEVICES) return;
    if (vgpu_ledger_lock(s) != 0) return;
    if (!claimed(s, slot)) {
        vgpu_ledger_unlock(s);
        return;
    }
    struct vgpu_shm_dev *v = &s->dev[dev];
    uint64_t used = atomic_load_explicit(&v->mem_used, RELAXED) + (uint64_t)delta;
    atomic_store_explicit(&v->mem_used, used, RELAXED);
    _Atomic uint64_t *mine = &s->proc[slot].mem[dev];
    atomic_store_explicit(mine, atomic_load_explicit(mine, RELAXED) + (uint64_t)delta, RELAXED);
    bump_peak(v, used);
    vgpu_ledger_unlock(s);
}

void vgpu_ledger_set_overhead(struct vgpu_shm *s, int slot, int dev, uint64_t bytes)
{
    if (slot < 0 || slot >= VGPU_MAX_PROCS || dev < 0 || dev >= VGPU_MAX_DEVICES) return;
    if (vgpu_ledger_lock(s) != 0) return;
    if (!claimed(s, slot)) {
        vgpu_ledger_unlock(s);
        return;
    }
    struct vgpu_shm_dev *v = &s->dev[dev];
    _Atomic uint64_t *mine = &s->proc[slot].ovh[dev];
    uint64_t old = atomic_load_explicit(mine, RELAXED);
    uint64_t used = atomic_load_explicit(&v->mem_used, RELAXED);
    used = used - (used >= old ? old : used) + bytes;
    atomic_store_explicit(&v->mem_used, used, RELAXED);
    atomic_store_explicit(mine, bytes, RELAXED);
    bump_peak(v, used);
    vgpu_ledger_unlock(s);
}

void vgpu_ledger_repair(struct vgpu_shm *s)
{
    for (int d = 0; d < VGPU_MAX_DEVICES; d++) {
        uint64_t mem = 0, over = 0;
        for (int i = 0; i < VGPU_MAX_PROCS; i++) {
            struct vgpu_shm_proc *p = &s->proc[i];
            if (atomic_load_explicit(&p->pid, RELAXED) <= 0) continue;
            mem += atomic_load_explicit(&p->mem[d], RELAXED) +
                   atomic_load_explicit(&p->ovh[d], RELAXED);
            over += atomic_load_explicit(&p->oversold[d], RELAXED);
        }
        atomic_store_explicit(&s->dev[d].mem_used, mem, RELAXED);
        atomic_store_explicit(&s->dev[d].oversold_used, over, RELAXED);
    }
}
