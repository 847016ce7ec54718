/* test_regions.c - where a ledger comes from, and that nobody else can plant one: a user's own
 * standalone directory, the files the daemon makes (ledger and control region), private
 * ledgers, and records of dead processes released because the control region reports them. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../src/common/ctl_region.h"
#include "../../src/common/shm_ledger.h"
#include "../../src/common/shm_region.h"

static int make_top(void);
static int remove_top(void);
#define UNIT_SETUP make_top
#define UNIT_TEARDOWN remove_top
#include "unit_case.h"

#define MIB (1024ull * 1024ull)
#define NOBODY 65534

static char top[64];

static void path(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", top, name);
}

UNIT_CASE(standalone_ledgers_in_own_directory)
{
    char dir[128], err[512];
    struct vgpu_shm *s;
    /* a directory of ours that nobody else writes: used */
    path(dir, sizeof(dir), "mine");
    CHECK((s = vgpu_shm_open(dir, "ns/a", VGPU_SHM_CREATE, err, sizeof(err))) != NULL);
    struct stat st;
    CHECK(stat(dir, &st) == 0 && (st.st_mode & 0777) == 0700);
    vgpu_shm_close(s);
    /* writable by others (the old world-writable layout): refused, nothing created in it */
    path(dir, sizeof(dir), "open");
    CHECK(mkdir(dir, 0777) == 0 && chmod(dir, 01777) == 0);
    CHECK(vgpu_shm_open(dir, "ns/a", VGPU_SHM_CREATE, err, sizeof(err)) == NULL);
    CHECK(strstr(err, "nobody else can write") != NULL);
    /* another user's (as root the test can make one): refused */
    if (geteuid() == 0) {
        path(dir, sizeof(dir), "theirs");
        CHECK(mkdir(dir, 0700) == 0 && chown(dir, NOBODY, NOBODY) == 0);
        CHECK(vgpu_shm_open(dir, "ns/a", VGPU_SHM_CREATE, err, sizeof(err)) == NULL);
        CHECK(strstr(err, "owned by uid 65534") != NULL);
    }
    /* a symlink to our own directory: refused (a name someone else may have chosen) */
    char link[128], target[128];
    path(link, sizeof(link), "link");
    path(target, sizeof(target), "mine");
    CHECK(symlink(target, link) == 0);
    CHECK(vgpu_shm_open(link, "ns/a", VGPU_SHM_CREATE, err, sizeof(err)) == NULL);
    /* in our directory, a region that is a symlink, or another user's file: refused */
    char region[512], victim[128];
    path(dir, sizeof(dir), "mine");
    CHECK(vgpu_shm_path(dir, "ns/planted", region, sizeof(region)) == 0);
    path(victim, sizeof(victim), "victim-file");
    int fd = open(victim, O_CREAT | O_RDWR, 0600);
    CHECK(fd >= 0 && write(fd, "x", 1) == 1);
    close(fd);
    CHECK(symlink(victim, region) == 0);
    CHECK(vgpu_shm_open(dir, "ns/planted", VGPU_SHM_CREATE, err, sizeof(err)) == NULL);
    CHECK(stat(victim, &st) == 0 && st.st_size == 1); /* not written through */
    if (geteuid() == 0) {
        CHECK(vgpu_shm_path(dir, "ns/other", region, sizeof(region)) == 0);
        fd = open(region, O_CREAT | O_RDWR, 0666);
        CHECK(fd >= 0 && fchown(fd, NOBODY, NOBODY) == 0);
        close(fd);
        CHECK(vgpu_shm_open(dir, "ns/other", VGPU_SHM_CREATE, err, sizeof(err)) == NULL);
        CHECK(strstr(err, "not owned") != NULL);
    }
}

UNIT_CASE(daemon_files_cannot_be_planted)
{
    char p[128], err[512];
    /* the daemon's ledger: made whole, mapped by a limiter without O_CREAT */
    path(p, sizeof(p), "ledger.shm");
    int fd = open(p, O_CREAT | O_EXCL | O_RDWR, 0600);
    CHECK(fd >= 0 && vgpu_shm_init_fd(fd, "team/a") == 0);
    close(fd);
    struct vgpu_shm *s = vgpu_shm_map_existing(p, err, sizeof(err));
    CHECK(s != NULL && s->magic == VGPU_SHM_MAGIC && !strcmp(s->pod_id, "team/a"));
    vgpu_shm_close(s);
    char link[128];
    path(link, sizeof(link), "ledger-link");
    CHECK(symlink(p, link) == 0);
    CHECK(vgpu_shm_map_existing(link, err, sizeof(err)) == NULL); /* never through a link */
    CHECK(truncate(p, 4096) == 0);
    CHECK(vgpu_shm_map_existing(p, err, sizeof(err)) == NULL); /* a pod truncated it */
    CHECK(strstr(err, "size") != NULL);
    path(p, sizeof(p), "missing.shm");
    CHECK(vgpu_shm_map_existing(p, err, sizeof(err)) == NULL); /* never created here */
    CHECK(access(p, F_OK) != 0);

    /* the control region: the daemon's, mapped read-only by limiters */
    path(p, sizeof(p), "control.shm");
    fd = open(p, O_CREAT | O_EXCL | O_RDWR, 0644);
    CHECK(fd >= 0 && vgpu_ctl_init_fd(fd, "team/a", "0123456789abcdef0123456789abcdef") == 0);
    struct vgpu_ctl *w = vgpu_ctl_map_fd(fd, 1, err, sizeof(err));
    close(fd);
    CHECK(w != NULL);
    snprintf(w->dev[3].uuid, sizeof(w->dev[3].uuid), "gpu-abc");
    atomic_store(&w->dev[3].state, VGPU_DEV_READY);
    atomic_store(&w->dev[3].lim.mem_limit, 5 * MIB);
    const struct vgpu_ctl *c = vgpu_ctl_open(p, err, sizeof(err));
    CHECK(c != NULL && !strcmp(c->pod, "team/a") &&
          !strcmp(c->token, "0123456789abcdef0123456789abcdef"));
    CHECK_EQ_INT(vgpu_ctl_dev_find(c, "gpu-abc"), 3);
    CHECK_EQ_INT(vgpu_ctl_dev_find(c, "gpu-abd"), -1);
    CHECK_EQ_U64(atomic_load(&c->dev[3].lim.mem_limit), 5 * MIB); /* the daemon's writes show */
    /* the limiter's mapping is read-only */
    FILE *maps = fopen("/proc/self/maps", "r");
    CHECK(maps != NULL);
    char ln[1024];
    int ro = 0, rw = 0;
    while (maps && fgets(ln, sizeof(ln), maps))
        if (strstr(ln, "control.shm")) {
            ro += strstr(ln, " r--s ") != NULL;
            rw += strstr(ln, " rw-s ") != NULL;
        }
    if (maps) fclose(maps);
    CHECK_EQ_INT(ro, 1); /* the limiter's */
    CHECK_EQ_INT(rw, 1); /* the daemon's (this test's) */
    vgpu_ctl_unmap(c);
    vgpu_ctl_unmap(w);
    path(link, sizeof(link), "control-link");
    CHECK(symlink(p, link) == 0);
    CHECK(vgpu_ctl_open(link, err, sizeof(err)) == NULL);
    CHECK(truncate(p, 100) == 0);
    CHECK(vgpu_ctl_open(p, err, sizeof(err)) == NULL);
}

/* a record of another PID namespace (another container of the pod) is released when, and only
 * when, the control region reports its host PID and start time dead */
UNIT_CASE(dead_processes_reported_through_control_region)
{
    struct vgpu_shm *s = vgpu_shm_private("team/a");
    CHECK(s != NULL);
    struct vgpu_dev_init init = {.mem_limit = 100 * MIB};
    int created;
    int d = vgpu_ledger_dev_attach(s, "gpu-abc", &init, &created);
    CHECK(d >= 0 && created);
    struct vgpu_proc_id other = {.pid = 7, .start_time = 42, .pidns = 12345};
    int slot = vgpu_ledger_proc_claim(s, &other);
    CHECK(slot >= 0);
    atomic_store(&s->proc[slot].host_pid, 999999);
    CHECK_EQ_INT(vgpu_ledger_reserve(s, slot, d, 60 * MIB, &s->dev[d].lim, NULL), VGPU_LEDGER_OK);
    struct vgpu_ctl *ctl =
        mmap(NULL, sizeof(*ctl), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(ctl != MAP_FAILED);
    uint64_t me_ns = 1; /* not the record's namespace: this process cannot check it itself */
    CHECK_EQ_INT(vgpu_ledger_reap(s, me_ns, NULL), 0);
    CHECK_EQ_INT(vgpu_ledger_reap(s, me_ns, ctl), 0); /* nothing reported */
    atomic_store(&ctl->dead[0].host_pid, 999999);
    atomic_store(&ctl->dead[0].start_time, 43); /* a reused PID: another process */
    atomic_store(&ctl->dead_seq, 1);
    CHECK_EQ_INT(vgpu_ledger_reap(s, me_ns, ctl), 0);
    CHECK_EQ_U64(atomic_load(&s->dev[d].mem_used), 60 * MIB);
    atomic_store(&ctl->dead[1].start_time, 42);
    atomic_store(&ctl->dead[1].host_pid, 999999);
    atomic_store(&ctl->dead_seq, 2);
    CHECK_EQ_INT(vgpu_ledger_reap(s, me_ns, ctl), 1);
    CHECK_EQ_U64(atomic_load(&s->dev[d].mem_used), 0);
    CHECK_EQ_INT(atomic_load(&s->proc[slot].pid), 0);
    /* a private ledger holds its own cap */
    struct vgpu_proc_id me;
    vgpu_proc_self(&me);
    slot = vgpu_ledger_proc_claim(s, &me);
    CHECK_EQ_INT(vgpu_ledger_reserve(s, slot, d, 101 * MIB, &s->dev[d].lim, ctl),
                 VGPU_LEDGER_OVER_CAP);
    munmap(ctl, sizeof(*ctl));
    vgpu_shm_close(s);
}

/* one scratch directory for all cases, removed after them */
static int make_top(void)
{
    snprintf(top, sizeof(top), "/tmp/vgpu-regions-XXXXXX");
    return mkdtemp(top) != NULL ? 0 : -1;
}

static int remove_top(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", top);
    return system(cmd) == 0 ? 0 : -1;
}
