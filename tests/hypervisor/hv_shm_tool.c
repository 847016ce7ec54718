/* hv_shm_tool.c - read a pod's control region and feed its ledger, for the daemon's tests.
 *
 * Why this exists: the daemon's tests must see what it writes into a pod's control region
 * (limits, suspension, the share the gate enforces, dead processes) and give it usage to
 * schedule, without a GPU or a preloaded limiter. This uses the same src/common code the
 * limiter uses. POD_DIR is a pod's directory under the daemon's --shm-dir ("<shm>/pods/<dir>",
 * the "dir" of its status entry).
 *
 *   hv_shm_tool create SHM NAME KEY               a pod's directory SHM/pods/NAME as the daemon
 *                                                 makes it (for a stand-in daemon); prints its
 *                                                 token
 *   hv_shm_tool set POD_DIR UUID MEM CORE SOFT EFFECTIVE WEIGHT
 *                                                 a GPU's limits in the control region (MEM in
 *                                                 bytes, 0 no cap; shares in hundredths)
 *   hv_shm_tool suspend POD_DIR 0|1 [SEQ]         the pod's suspension (and control_seq)
 *   hv_shm_tool show POD_DIR                      the control region as one JSON object
 *   hv_shm_tool attach POD_DIR UUID...            ledger device slots, as a limiter makes them
 *   hv_shm_tool charge POD_DIR UUID NS WAITED     add to gate_charged_ns / gate_waited_ns
 *   hv_shm_tool record POD_DIR PID HOST_PID START a process record, as a limiter makes it
 *   hv_shm_tool record-at POD_DIR SLOT PID HOST_PID START
 *                                                 the same in record SLOT, as one left high in
 *                                                 the array after processes came and went
 *   hv_shm_tool hold-lock POD_DIR SECONDS         take the ledger's lock, print LOCKED, keep it
 *                                                 SECONDS (a stuck process of the pod)
 * A hostile pod's moves on its own ledger (tests/security):
 *   hv_shm_tool forge POD_DIR                     every GPU's limits in the ledger: none
 *   hv_shm_tool scribble POD_DIR mutex|devs|all SEED
 *                                                 a crafted lock (mutex), random bytes over the
 *                                                 GPU entries (devs) or the whole ledger (all)
 *   hv_shm_tool records POD_DIR N                 N fake process records (other PID namespaces,
 *                                                 host PIDs of no process)
 *   hv_shm_tool scale POD_DIR SCALE SECONDS       keep every GPU's gate_scale (the cost model's
 *                                                 correction the daemon reads) at SCALE for
 *                                                 SECONDS: a pod understating its use
 */
#include <fcntl.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl_region.h"
#include "shm_ledger.h"
#include "shm_region.h"

static struct vgpu_shm *ledger(const char *dir)
{
    char path[600], err[512];
    snprintf(path, sizeof(path), "%s/%s", dir, VGPU_LEDGER_PATH);
    struct vgpu_shm *s = vgpu_shm_map_existing(path, err, sizeof(err));
    if (!s) fprintf(stderr, "hv_shm_tool: %s\n", err);
    return s;
}

static int show(const char *dir)
{
    char path[600], err[512];
    snprintf(path, sizeof(path), "%s/%s", dir, VGPU_CTL_PATH);
    const struct vgpu_ctl *c = vgpu_ctl_open(path, err, sizeof(err));
    if (!c) {
        fprintf(stderr, "hv_shm_tool: %s\n", err);
        return 1;
    }
    printf("{\"pod\": \"%s\", \"token\": \"%s\", \"suspended\": %u, \"state\": %u, \"managed_ns\": "
           "%llu, "
           "\"control_seq\": %llu, \"dead\": [",
           c->pod, c->token, atomic_load(&c->suspended), atomic_load(&c->state),
           (unsigned long long)atomic_load(&c->managed_ns),
           (unsigned long long)atomic_load(&c->control_seq));
    uint64_t n = atomic_load(&c->dead_seq);
    for (uint64_t k = 0; k < n && k < VGPU_CTL_DEAD; k++)
        printf("%s[%d, %llu]", k ? ", " : "", atomic_load(&c->dead[k].host_pid),
               (unsigned long long)atomic_load(&c->dead[k].start_time));
    printf("], \"devs\": {");
    const char *sep = "";
    for (int d = 0; d < VGPU_MAX_DEVICES; d++) {
        const struct vgpu_ctl_dev *v = &c->dev[d];
        if (atomic_load(&v->state) != VGPU_DEV_READY) continue;
        printf("%s\"%s\": {\"mem_limit\": %llu, \"core_limit\": %u, \"core_soft\": %u, "
               "\"core_effective\": %u, \"weight\": %u}",
               sep, v->uuid, (unsigned long long)atomic_load(&v->lim.mem_limit),
               atomic_load(&v->lim.core_limit), atomic_load(&v->lim.core_soft),
               atomic_load(&v->lim.core_effective), atomic_load(&v->lim.weight));
        sep = ", ";
    }
    printf("}}\n");
    vgpu_ctl_unmap(c);
    return 0;
}

static int make(const char *shm, const char *name, const char *key)
{
    char path[700];
    const char *sub[] = {"", "/pods", "/pods/%s", "/pods/%s/control", "/pods/%s/ledger"};
    for (int i = 0; i < 5; i++) {
        char fmt[64];
        snprintf(fmt, sizeof(fmt), "%%s%s", sub[i]);
        snprintf(path, sizeof(path), fmt, shm, name);
        mkdir(path, 0755);
    }
    char token[VGPU_CTL_TOKEN_LEN];
    snprintf(token, sizeof(token), "%016llx%016llx", (unsigned long long)getpid(),
             (unsigned long long)vgpu_now_ns());
    snprintf(path, sizeof(path), "%s/pods/%s/%s", shm, name, VGPU_CTL_PATH);
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0644);
    if (fd < 0 || vgpu_ctl_init_fd(fd, key, token) != 0) return 1;
    close(fd);
    snprintf(path, sizeof(path), "%s/pods/%s/%s", shm, name, VGPU_LEDGER_PATH);
    fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0666);
    if (fd < 0 || vgpu_shm_init_fd(fd, key) != 0) return 1;
    close(fd);
    printf("%s\n", token);
    return 0;
}

static struct vgpu_ctl *ctl_rw(const char *dir)
{
    char path[600], err[300];
    snprintf(path, sizeof(path), "%s/%s", dir, VGPU_CTL_PATH);
    int fd = open(path, O_RDWR);
    struct vgpu_ctl *c = fd >= 0 ? vgpu_ctl_map_fd(fd, 1, err, sizeof(err)) : NULL;
    if (fd >= 0) close(fd);
    if (!c) fprintf(stderr, "hv_shm_tool: %s: cannot map the control region\n", path);
    return c;
}

static int set(const char *dir, char **a)
{
    struct vgpu_ctl *c = ctl_rw(dir);
    if (!c) return 1;
    int d = vgpu_ctl_dev_find(c, a[0]);
    for (int k = 0; d < 0 && k < VGPU_MAX_DEVICES; k++)
        if (atomic_load(&c->dev[k].state) == VGPU_DEV_EMPTY) {
            snprintf(c->dev[k].uuid, sizeof(c->dev[k].uuid), "%s", a[0]);
            atomic_store(&c->dev[k].state, VGPU_DEV_READY);
            d = k;
        }
    if (d < 0) return 1;
    struct vgpu_dev_limits *l = &c->dev[d].lim;
    uint64_t mem = strtoull(a[1], NULL, 10);
    atomic_store(&l->mem_limit, mem ? mem : VGPU_UNLIMITED);
    atomic_store(&l->core_limit, (uint32_t)atoi(a[2]));
    atomic_store(&l->core_soft, (uint32_t)atoi(a[3]));
    atomic_store(&l->core_effective, (uint32_t)atoi(a[4]));
    atomic_store(&l->weight, (uint32_t)atoi(a[5]));
    vgpu_ctl_unmap(c);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 5 && !strcmp(argv[1], "create")) return make(argv[2], argv[3], argv[4]);
    if (argc == 9 && !strcmp(argv[1], "set")) return set(argv[2], argv + 3);
    if ((argc == 4 || argc == 5) && !strcmp(argv[1], "suspend")) {
        struct vgpu_ctl *c = ctl_rw(argv[2]);
        if (!c) return 1;
        atomic_store(&c->suspended, (uint32_t)atoi(argv[3]));
        if (argc == 5) atomic_store(&c->control_seq, strtoull(argv[4], NULL, 10));
        vgpu_ctl_unmap(c);
        return 0;
    }
    if (argc < 3) {
        fprintf(stderr, "usage: hv_shm_tool show|attach|charge|record|hold-lock POD_DIR ...\n");
        return 2;
    }
    if (!strcmp(argv[1], "show")) return show(argv[2]);
    struct vgpu_shm *s = ledger(argv[2]);
    if (!s) return 1;
    int rc = 0;
    if (!strcmp(argv[1], "attach")) {
        for (int i = 3; i < argc; i++) {
            struct vgpu_dev_init init = {.mem_limit = VGPU_UNLIMITED};
            int created;
            if (vgpu_ledger_dev_attach(s, argv[i], &init, &created) < 0) rc = 1;
        }
    } else if (!strcmp(argv[1], "charge") && argc == 6) {
        int d = vgpu_ledger_dev_find(s, argv[3]);
        if (d < 0) {
            struct vgpu_dev_init init = {.mem_limit = VGPU_UNLIMITED};
            int created;
            d = vgpu_ledger_dev_attach(s, argv[3], &init, &created);
        }
        if (d < 0) return 1;
        atomic_fetch_add(&s->dev[d].gate_charged_ns, strtoull(argv[4], NULL, 10));
        atomic_fetch_add(&s->dev[d].gate_waited_ns, strtoull(argv[5], NULL, 10));
    } else if (!strcmp(argv[1], "record") && argc == 6) {
        struct vgpu_proc_id id = {.pid = atoi(argv[3]),
                                  .start_time = strtoull(argv[5], NULL, 10),
                                  .pidns = 1}; /* another namespace than ours: not reaped here */
        int slot = vgpu_ledger_proc_claim(s, &id);
        if (slot < 0) return 1;
        atomic_store(&s->proc[slot].host_pid, atoi(argv[4]));
        printf("%d\n", slot);
    } else if (!strcmp(argv[1], "record-at") && argc == 7) {
        int slot = atoi(argv[3]);
        if (slot < 0 || slot >= VGPU_MAX_PROCS || atomic_load(&s->proc[slot].pid) != 0) return 1;
        s->proc[slot].start_time = strtoull(argv[6], NULL, 10);
        s->proc[slot].pidns = 1;
        atomic_store(&s->proc[slot].host_pid, atoi(argv[5]));
        atomic_store(&s->proc[slot].pid, atoi(argv[4]));
    } else if (!strcmp(argv[1], "forge") && argc == 3) {
        for (int d = 0; d < VGPU_MAX_DEVICES; d++) {
            atomic_store(&s->dev[d].lim.mem_limit, VGPU_UNLIMITED);
            atomic_store(&s->dev[d].lim.core_limit, 0);
            atomic_store(&s->dev[d].lim.core_soft, 0);
            atomic_store(&s->dev[d].lim.core_effective, 0);
            atomic_store(&s->dev[d].limiter.gate_share, 0);
        }
    } else if (!strcmp(argv[1], "scribble") && argc == 5) {
        srand((unsigned)atoi(argv[4]));
        if (!strcmp(argv[3], "mutex")) {
            /* glibc's kind word with priority protection and robustness, a held owner, a
             * ceiling no priority has: the daemon's lock call used to assert on such bytes */
            unsigned char *m = (unsigned char *)&s->lock;
            for (size_t i = 0; i < sizeof(s->lock); i++)
                m[i] = (unsigned char)rand();
            int words[4] = {0x7ffffff0, 1, 0x40000000 | 1234, 0x10 | 0x40 | 0x20};
            memcpy(m, words, sizeof(words));
        } else if (!strcmp(argv[3], "devs")) {
            unsigned char *m = (unsigned char *)s->dev;
            for (size_t i = 0; i < sizeof(s->dev); i++)
                m[i] = (unsigned char)rand();
        } else {
            unsigned char *m = (unsigned char *)s;
            for (size_t i = 0; i < sizeof(*s); i++)
                m[i] = (unsigned char)rand();
        }
    } else if (!strcmp(argv[1], "scale") && argc == 5) {
        uint32_t v = (uint32_t)strtoul(argv[3], NULL, 10);
        for (int t = 0; t < atoi(argv[4]) * 100; t++, usleep(10000))
            for (int d = 0; d < VGPU_MAX_DEVICES; d++)
                atomic_store(&s->dev[d].limiter.gate_scale, v);
    } else if (!strcmp(argv[1], "records") && argc == 4) {
        int n = atoi(argv[3]);
        for (int i = 0; i < n; i++) {
            struct vgpu_proc_id id = {.pid = 4000000 + i, .start_time = (uint64_t)i, .pidns = 7};
            int slot = vgpu_ledger_proc_claim(s, &id);
            if (slot < 0) break;
            atomic_store(&s->proc[slot].host_pid, 4000000 + i);
            for (int d = 0; d < VGPU_MAX_DEVICES; d++)
                atomic_store(&s->proc[slot].mem[d], 1ull << 20);
        }
    } else if (!strcmp(argv[1], "hold-lock") && argc == 4) {
        if (vgpu_ledger_lock(s) != 0) return 1;
        printf("LOCKED\n");
        fflush(stdout);
        sleep((unsigned)atoi(argv[3]));
        vgpu_ledger_unlock(s);
    } else {
        fprintf(stderr, "hv_shm_tool: unknown command %s\n", argv[1]);
        rc = 2;
    }
    vgpu_shm_close(s);
    return rc;
}
