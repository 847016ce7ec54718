/* test_shm_ledger.c - the pod's memory ledger holds the cap across threads and processes, gives
 * back the bytes of processes killed with -9 (also zombies, also while holding the lock), and
 * refuses a region of another layout. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../src/common/shm_ledger.h"
#include "../../src/common/shm_region.h"

static int make_dir(void);
static int remove_dir(void);
#define UNIT_SETUP make_dir
#define UNIT_TEARDOWN remove_dir
#include "unit_case.h"

#define MIB (1024ull * 1024ull)
#define UUID "gpu-5e1a0000-0000-0000-0000-000000000001"

static char dir[256];

static struct vgpu_shm *open_pod(const char *pod)
{
    char err[512] = "";
    struct vgpu_shm *s = vgpu_shm_open(dir, pod, VGPU_SHM_CREATE, err, sizeof(err));
    if (!s) fprintf(stderr, "open failed: %s\n", err);
    return s;
}

static uint64_t used(struct vgpu_shm *s, int d)
{
    return atomic_load(&s->dev[d].mem_used);
}

/* child: claim a record, reserve `bytes`, optionally take the lock and die holding it */
static pid_t spawn_holder(const char *pod, uint64_t bytes, int die_in_lock, int pipefd[2])
{
    pid_t pid = fork();
    if (pid == 0) {
        struct vgpu_shm *s = open_pod(pod);
        struct vgpu_proc_id id;
        vgpu_proc_self(&id);
        int slot = vgpu_ledger_proc_claim(s, &id);
        int d = vgpu_ledger_dev_find(s, UUID);
        int ok = vgpu_ledger_reserve(s, slot, d, bytes, &s->dev[d].lim, NULL) == VGPU_LEDGER_OK;
        if (die_in_lock) {
            vgpu_ledger_lock(s);
            /* a half-done update: the record moved, the total did not */
            atomic_fetch_add(&s->proc[slot].mem[d], 7 * MIB);
        }
        char c = ok ? 'y' : 'n';
        if (write(pipefd[1], &c, 1) != 1) _exit(3);
        pause();
        _exit(0);
    }
    char c = 0;
    if (read(pipefd[0], &c, 1) != 1 || c != 'y') CHECK(!"child could not reserve");
    return pid;
}

struct hammer {
    struct vgpu_shm *s;
    int slot, dev;
    uint64_t limit;
    _Atomic int violations;
};

static void *hammer_thread(void *arg)
{
    struct hammer *h = arg;
    unsigned seed = (unsigned)(uintptr_t)pthread_self();
    for (int i = 0; i < 20000; i++) {
        uint64_t n = (uint64_t)(rand_r(&seed) % 64 + 1) * MIB;
        if (vgpu_ledger_reserve(h->s, h->slot, h->dev, n, &h->s->dev[h->dev].lim, NULL) ==
            VGPU_LEDGER_OK) {
            if (used(h->s, h->dev) > h->limit) atomic_fetch_add(&h->violations, 1);
            vgpu_ledger_unreserve(h->s, h->slot, h->dev, n);
        }
    }
    return NULL;
}

/* one scratch directory for all cases, removed after them */
static int make_dir(void)
{
    snprintf(dir, sizeof(dir), "/tmp/vgpu-test-ledger-XXXXXX");
    return mkdtemp(dir) != NULL ? 0 : -1;
}

static int remove_dir(void)
{
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* A fresh pod region per case (its own name): one GPU with a 100 MiB cap plus 50 MiB lent from
 * host memory, and this process's record in it. */
static struct vgpu_shm *pod_setup(const char *pod, struct vgpu_proc_id *me, int *d, int *slot)
{
    struct vgpu_shm *s = open_pod(pod);
    CHECK(s != NULL);
    if (!s) return NULL;
    int created = 0;
    struct vgpu_dev_init init = {.mem_limit = 100 * MIB,
                                 .oversold_limit = 50 * MIB,
                                 .flags = VGPU_DEV_OVERSOLD,
                                 .total_real = 80ull << 30,
                                 .core_limit = 5000,
                                 .core_soft = 2000};
    *d = vgpu_ledger_dev_attach(s, UUID, &init, &created);
    vgpu_proc_self(me);
    *slot = vgpu_ledger_proc_claim(s, me);
    CHECK(*d >= 0 && *slot >= 0);
    return *d >= 0 && *slot >= 0 ? s : NULL;
}

#define POD_FIXTURE(name)                                                                          \
    const char *pod = name;                                                                        \
    struct vgpu_proc_id me;                                                                        \
    int d = -1, slot = -1;                                                                         \
    struct vgpu_shm *s = pod_setup(pod, &me, &d, &slot);                                           \
    (void)me;                                                                                      \
    if (!s) return

UNIT_CASE(mappings_of_one_pod_share_one_region)
{
    /* creation, a second mapping sees the same memory */
    struct vgpu_shm *s = open_pod("ns/pod-a");
    struct vgpu_shm *s2 = open_pod("ns/pod-a");
    CHECK(s && s2 && s != s2);
    CHECK_EQ_U64(s->magic, VGPU_SHM_MAGIC);
    CHECK_EQ_INT(s->version, VGPU_SHM_VERSION);
    CHECK_STR(s->pod_id, "ns/pod-a");
    int created = 0;
    struct vgpu_dev_init init = {.mem_limit = 100 * MIB,
                                 .oversold_limit = 50 * MIB,
                                 .flags = VGPU_DEV_OVERSOLD,
                                 .total_real = 80ull << 30,
                                 .core_limit = 5000,
                                 .core_soft = 2000};
    int d = vgpu_ledger_dev_attach(s, UUID, &init, &created);
    CHECK(d == 0 && created == 1);
    CHECK_EQ_INT(atomic_load(&s->dev[d].lim.core_limit), 5000);
    CHECK_EQ_INT(atomic_load(&s->dev[d].lim.core_effective), 2000); /* soft: starts at its floor */
    struct vgpu_dev_init other_init = {.mem_limit = 999 * MIB};
    int d2 = vgpu_ledger_dev_attach(s2, UUID, &other_init, &created);
    CHECK(d2 == d && created == 0);
    CHECK_EQ_U64(atomic_load(&s2->dev[d].lim.mem_limit), 100 * MIB); /* the pod's value stays */
    CHECK_EQ_INT(vgpu_ledger_dev_find(s2, "gpu-other"), -1);

    /* a different pod is a different region */
    struct vgpu_shm *other = open_pod("ns/pod-b");
    CHECK(other && vgpu_ledger_dev_find(other, UUID) == -1);

    struct vgpu_proc_id me;
    vgpu_proc_self(&me);
    CHECK(me.pid == getpid() && me.start_time > 0 && me.pidns > 0);
    int slot = vgpu_ledger_proc_claim(s, &me);
    CHECK(slot >= 0);
    CHECK_EQ_INT(vgpu_ledger_proc_claim(s2, &me), slot); /* same process, same record */
}

UNIT_CASE(reservations_held_to_the_cap)
{
    POD_FIXTURE("ns/cap");
    /* the cap */
    CHECK_EQ_INT(vgpu_ledger_reserve(s, slot, d, 60 * MIB, &s->dev[d].lim, NULL), VGPU_LEDGER_OK);
    CHECK_EQ_INT(vgpu_ledger_reserve(s, slot, d, 50 * MIB, &s->dev[d].lim, NULL),
                 VGPU_LEDGER_OVER_CAP);
    CHECK_EQ_U64(atomic_load(&s->dev[d].oom_events), 1);
    CHECK_EQ_INT(vgpu_ledger_reserve(s, slot, d, 40 * MIB, &s->dev[d].lim, NULL), VGPU_LEDGER_OK);
    CHECK_EQ_U64(used(open_pod(pod), d), 100 * MIB); /* another mapping sees it */
    CHECK_EQ_INT(vgpu_ledger_reserve(s, slot, d, 1, &s->dev[d].lim, NULL), VGPU_LEDGER_OVER_CAP);
    CHECK_EQ_INT(vgpu_ledger_reserve(s, slot, d, UINT64_MAX, &s->dev[d].lim, NULL),
                 VGPU_LEDGER_OVER_CAP);
    vgpu_ledger_unreserve(s, slot, d, 40 * MIB);
    CHECK_EQ_U64(used(s, d), 60 * MIB);
    CHECK_EQ_U64(atomic_load(&s->dev[d].mem_peak), 100 * MIB);
    /* giving back more than held is clamped to what the record holds */
    vgpu_ledger_unreserve(s, slot, d, 1000 * MIB);
    CHECK_EQ_U64(used(s, d), 0);
    CHECK_EQ_U64(atomic_load(&s->proc[slot].mem[d]), 0);
}

UNIT_CASE(overhead_and_adjustments_count_toward_cap)
{
    POD_FIXTURE("ns/overhead");
    /* overhead and adjustments count toward the cap */
    vgpu_ledger_set_overhead(s, slot, d, 30 * MIB);
    CHECK_EQ_U64(used(s, d), 30 * MIB);
    CHECK_EQ_INT(vgpu_ledger_reserve(s, slot, d, 80 * MIB, &s->dev[d].lim, NULL),
                 VGPU_LEDGER_OVER_CAP);
    vgpu_ledger_set_overhead(s, slot, d, 10 * MIB);
    CHECK_EQ_U64(used(s, d), 10 * MIB);
    vgpu_ledger_adjust(s, slot, d, 20 * MIB);
    CHECK_EQ_U64(used(s, d), 30 * MIB);
    vgpu_ledger_adjust(s, slot, d, -20 * (int64_t)MIB);
    vgpu_ledger_set_overhead(s, slot, d, 0);
    CHECK_EQ_U64(used(s, d), 0);
}

UNIT_CASE(oversold_host_part_has_its_own_limit)
{
    POD_FIXTURE("ns/oversold");
    /* the host-memory part of an oversubscribed GPU has its own limit */
    CHECK_EQ_INT(vgpu_ledger_reserve_oversold(s, slot, d, 50 * MIB, &s->dev[d].lim, NULL),
                 VGPU_LEDGER_OK);
    CHECK_EQ_INT(vgpu_ledger_reserve_oversold(s, slot, d, 1, &s->dev[d].lim, NULL),
                 VGPU_LEDGER_OVER_CAP);
    CHECK_EQ_U64(used(s, d), 0);
    vgpu_ledger_unreserve_oversold(s, slot, d, 50 * MIB);
    CHECK_EQ_U64(atomic_load(&s->dev[d].oversold_used), 0);
}

UNIT_CASE(killed_process_bytes_come_back)
{
    POD_FIXTURE("ns/kill9");
    /* kill -9: the bytes come back at the next reservation that needs them */
    int pfd[2];
    CHECK(pipe(pfd) == 0);
    pid_t child = spawn_holder(pod, 70 * MIB, 0, pfd);
    CHECK_EQ_U64(used(s, d), 70 * MIB);
    CHECK_EQ_INT(vgpu_ledger_reserve(s, slot, d, 31 * MIB, &s->dev[d].lim, NULL),
                 VGPU_LEDGER_OVER_CAP); /* child alive */
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    CHECK_EQ_INT(vgpu_ledger_reserve(s, slot, d, 31 * MIB, &s->dev[d].lim, NULL), VGPU_LEDGER_OK);
    CHECK_EQ_U64(used(s, d), 31 * MIB);
    CHECK_EQ_U64(atomic_load(&s->reaped_procs), 1);
    vgpu_ledger_unreserve(s, slot, d, 31 * MIB);
}

UNIT_CASE(zombie_holds_no_memory)
{
    POD_FIXTURE("ns/zombie");
    int pfd[2];
    CHECK(pipe(pfd) == 0);
    /* a zombie (killed, not yet waited for) holds no GPU memory either */
    pid_t child = spawn_holder(pod, 70 * MIB, 0, pfd);
    kill(child, SIGKILL);
    for (int i = 0; i < 200; i++) { /* until it is a zombie */
        char path[64], st[256] = "";
        snprintf(path, sizeof(path), "/proc/%d/stat", child);
        int fd = open(path, O_RDONLY);
        ssize_t n = fd >= 0 ? read(fd, st, sizeof(st) - 1) : 0;
        if (fd >= 0) close(fd);
        if (n > 0 && strstr(st, ") Z")) break;
        usleep(5000);
    }
    CHECK_EQ_INT(vgpu_ledger_reap(s, me.pidns, NULL), 1);
    CHECK_EQ_U64(used(s, d), 0);
    waitpid(child, NULL, 0);
}

UNIT_CASE(killed_in_lock_totals_repaired)
{
    POD_FIXTURE("ns/inlock");
    int pfd[2];
    CHECK(pipe(pfd) == 0);
    /* killed while holding the lock, mid-update: the next locker repairs the totals */
    pid_t child = spawn_holder(pod, 20 * MIB, 1, pfd);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    CHECK_EQ_INT(vgpu_ledger_lock(s), 0); /* would hang forever with a plain mutex */
    vgpu_ledger_unlock(s);
    CHECK_EQ_U64(used(s, d), 27 * MIB); /* rebuilt from the records: 20 + the 7 half-done */
    CHECK_EQ_INT(vgpu_ledger_reap(s, me.pidns, NULL), 1);
    CHECK_EQ_U64(used(s, d), 0);
}

UNIT_CASE(dead_reaped_at_most_once_per_interval)
{
    POD_FIXTURE("ns/interval");
    int pfd[2];
    CHECK(pipe(pfd) == 0);
    CHECK_EQ_INT(vgpu_ledger_reap(s, me.pidns, NULL), 0); /* a scan just now */
    pid_t child = spawn_holder(pod, 20 * MIB, 0, pfd);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    /* the dead are reaped at most once per interval by vgpu_ledger_reap_if_due */
    CHECK_EQ_INT(vgpu_ledger_reap_if_due(s, me.pidns, NULL, 60ull * 1000000000ull), 0);
    CHECK_EQ_U64(used(s, d), 20 * MIB); /* the dead one waits for the next interval */
    CHECK_EQ_INT(vgpu_ledger_reap(s, me.pidns, NULL), 1);
}

UNIT_CASE(threads_never_exceed_cap)
{
    POD_FIXTURE("ns/threads");
    /* many threads: the cap is never exceeded and nothing leaks */
    struct hammer h = {.s = s, .slot = slot, .dev = d, .limit = 100 * MIB};
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, hammer_thread, &h);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    CHECK_EQ_INT(atomic_load(&h.violations), 0);
    CHECK_EQ_U64(used(s, d), 0);
}

UNIT_CASE(processes_never_exceed_cap)
{
    POD_FIXTURE("ns/procs");
    /* many processes at once */
    pid_t kids[3];
    for (int k = 0; k < 3; k++) {
        kids[k] = fork();
        if (kids[k] == 0) {
            struct vgpu_shm *cs = open_pod(pod);
            struct vgpu_proc_id id;
            vgpu_proc_self(&id);
            struct hammer ch = {
                .s = cs, .slot = vgpu_ledger_proc_claim(cs, &id), .dev = d, .limit = 100 * MIB};
            hammer_thread(&ch);
            _exit(atomic_load(&ch.violations) ? 1 : 0);
        }
    }
    for (int k = 0; k < 3; k++) {
        int st = 0;
        waitpid(kids[k], &st, 0);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    CHECK_EQ_U64(used(s, d), 0);
}

UNIT_CASE(release_on_exit_returns_the_rest)
{
    POD_FIXTURE("ns/release");
    /* release on exit returns what is left */
    CHECK_EQ_INT(vgpu_ledger_reserve(s, slot, d, 10 * MIB, &s->dev[d].lim, NULL), VGPU_LEDGER_OK);
    vgpu_ledger_proc_release(s, slot, me.pid);
    CHECK_EQ_U64(used(s, d), 0);
    CHECK_EQ_INT(atomic_load(&s->proc[slot].pid), 0);
}

UNIT_CASE(other_layout_refused_with_reason)
{
    /* a region of another layout is refused, with a reason */
    char path[512], err[512] = "";
    CHECK(vgpu_shm_path(dir, "ns/bad", path, sizeof(path)) == 0);
    int fd = open(path, O_CREAT | O_RDWR, 0600);
    CHECK(fd >= 0 && ftruncate(fd, 4096) == 0);
    close(fd);
    CHECK(vgpu_shm_open(dir, "ns/bad", VGPU_SHM_CREATE, err, sizeof(err)) == NULL);
    CHECK(strstr(err, "size") != NULL);
    fd = open(path, O_RDWR);
    CHECK(fd >= 0 && ftruncate(fd, (off_t)sizeof(struct vgpu_shm)) == 0);
    uint64_t bogus = 0x1234;
    CHECK(pwrite(fd, &bogus, sizeof(bogus), 0) == sizeof(bogus));
    close(fd);
    CHECK(vgpu_shm_open(dir, "ns/bad", VGPU_SHM_CREATE, err, sizeof(err)) == NULL);
    CHECK(strstr(err, "magic") != NULL);
    CHECK(vgpu_shm_open(dir, "ns/missing", 0, err, sizeof(err)) == NULL);
}

UNIT_CASE(pod_names_made_safe_and_distinct)
{
    /* names: unsafe characters are replaced, distinct pods stay distinct */
    char p1[512], p2[512];
    vgpu_shm_path("/x", "a/b", p1, sizeof(p1));
    vgpu_shm_path("/x", "a_b", p2, sizeof(p2));
    CHECK(strncmp(p1, "/x/pod-a_b-", 11) == 0);
    CHECK(strcmp(p1, p2) != 0);
}
