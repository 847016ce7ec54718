/* test_cgroup_path.c - the limiter and the daemon put a process in the same pod, under the same
 * name, for /proc/self/cgroup as each runtime, cgroup driver and cgroup version writes it
 * (src/common/cgroup_path.c): all containers of one Kubernetes pod are that pod, a container
 * outside Kubernetes is its own pod, a process in the root cgroup is "host", anything else the
 * pod of its cgroup path. The fixtures are whole files as the kernel prints them (cgroup v1
 * lists every hierarchy, and in hybrid mode ends with "0::/"). The limiter's side is
 * vgpu_config_pod_from_cgroup (src/limiter/config.c); the daemon's is the file read back the
 * way it reads /proc/PID/cgroup and named as its registry names the pod's directory.
 */
#include <stdlib.h>
#include <unistd.h>

#include "../../src/common/cgroup_path.h"
#include "../../src/common/shm_region.h"
#include "../../src/hypervisor/pod_identity.h"
#include "../../src/limiter/config.h"

static int make_dir(void);
static int remove_dir(void);
#define UNIT_SETUP make_dir
#define UNIT_TEARDOWN remove_dir
#include "unit_case.h"

#define UID "6f1c2a4e-9b3d-4c1e-8a7f-2d5b6c7e8f90"
#define UID_ "6f1c2a4e_9b3d_4c1e_8a7f_2d5b6c7e8f90" /* as the systemd driver spells it */
#define UID2 "0a9b8c7d-6e5f-4a3b-9c2d-1e0f2a3b4c5d"
#define CID "3f1e5d2c4b6a79880a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6071"
#define CID2 "9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b1a0f9e8d"

/* Every hierarchy of a cgroup v1 node (Ubuntu 20.04, systemd hybrid mode) with the process in
 * `p` where a runtime puts it, and the unified hierarchy's line last. rdma and misc are at the
 * root: no runtime makes cgroups there. */
#define V1_HYBRID(p, v2)                                                                           \
    "13:misc:/\n"                                                                                  \
    "12:hugetlb:" p "\n"                                                                           \
    "11:memory:" p "\n"                                                                            \
    "10:cpuset:" p "\n"                                                                            \
    "9:net_cls,net_prio:" p "\n"                                                                   \
    "8:perf_event:" p "\n"                                                                         \
    "7:freezer:" p "\n"                                                                            \
    "6:devices:" p "\n"                                                                            \
    "5:blkio:" p "\n"                                                                              \
    "4:cpu,cpuacct:" p "\n"                                                                        \
    "3:rdma:/\n"                                                                                   \
    "2:pids:" p "\n"                                                                               \
    "1:name=systemd:" p "\n"                                                                       \
    "0::" v2 "\n"

/* A cgroup v1 node without the unified hierarchy (CentOS 7): no "0::" line at all. */
#define V1_LEGACY(p)                                                                               \
    "11:hugetlb:" p "\n"                                                                           \
    "10:pids:" p "\n"                                                                              \
    "9:memory:" p "\n"                                                                             \
    "8:cpuset:" p "\n"                                                                             \
    "7:net_prio,net_cls:" p "\n"                                                                   \
    "6:perf_event:" p "\n"                                                                         \
    "5:blkio:" p "\n"                                                                              \
    "4:devices:" p "\n"                                                                            \
    "3:cpuacct,cpu:" p "\n"                                                                        \
    "2:freezer:" p "\n"                                                                            \
    "1:name=systemd:" p "\n"

#define SD_BURSTABLE "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" UID_ ".slice"
#define SD_BESTEFFORT                                                                              \
    "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" UID_ ".slice"
#define SD_GUARANTEED "/kubepods.slice/kubepods-pod" UID_ ".slice"

struct fixture {
    const char *name; /* what the file is */
    const char *text; /* /proc/self/cgroup, as the kernel writes it */
    int kind;
    const char *id;     /* K8S: the pod UID; CONTAINER: the container ID */
    const char *cgroup; /* CGROUP, HOST: the path that names the pod */
};

static const struct fixture fixtures[] = {
    /* Kubernetes, cgroup v2 */
    {"v2 systemd containerd burstable", "0::" SD_BURSTABLE "/cri-containerd-" CID ".scope\n",
     POD_KIND_K8S, UID, NULL},
    {"v2 systemd containerd guaranteed", "0::" SD_GUARANTEED "/cri-containerd-" CID ".scope\n",
     POD_KIND_K8S, UID, NULL},
    {"v2 systemd crio besteffort", "0::" SD_BESTEFFORT "/crio-" CID ".scope\n", POD_KIND_K8S, UID,
     NULL},
    {"v2 systemd cri-dockerd burstable", "0::" SD_BURSTABLE "/docker-" CID ".scope\n", POD_KIND_K8S,
     UID, NULL},
    {"v2 cgroupfs containerd burstable", "0::/kubepods/burstable/pod" UID "/" CID "\n",
     POD_KIND_K8S, UID, NULL},
    {"v2 cgroupfs containerd guaranteed", "0::/kubepods/pod" UID "/" CID "\n", POD_KIND_K8S, UID,
     NULL},
    {"v2 cgroupfs crio besteffort", "0::/kubepods/besteffort/pod" UID "/crio-" CID "\n",
     POD_KIND_K8S, UID, NULL},
    {"v2 systemd containerd burstable, read from a daemon in its own cgroup namespace",
     "0::/../../.." SD_BURSTABLE "/cri-containerd-" CID ".scope\n", POD_KIND_K8S, UID, NULL},
    /* Kubernetes, cgroup v1 */
    {"v1 systemd containerd burstable",
     V1_HYBRID(SD_BURSTABLE "/cri-containerd-" CID ".scope", "/"), POD_KIND_K8S, UID, NULL},
    {"v1 systemd containerd guaranteed",
     V1_HYBRID(SD_GUARANTEED "/cri-containerd-" CID ".scope", "/"), POD_KIND_K8S, UID, NULL},
    {"v1 systemd crio besteffort", V1_HYBRID(SD_BESTEFFORT "/crio-" CID ".scope", "/"),
     POD_KIND_K8S, UID, NULL},
    {"v1 cgroupfs containerd burstable", V1_HYBRID("/kubepods/burstable/pod" UID "/" CID, "/"),
     POD_KIND_K8S, UID, NULL},
    {"v1 cgroupfs containerd besteffort", V1_HYBRID("/kubepods/besteffort/pod" UID "/" CID, "/"),
     POD_KIND_K8S, UID, NULL},
    {"v1 cgroupfs docker guaranteed", V1_HYBRID("/kubepods/pod" UID "/" CID, "/"), POD_KIND_K8S,
     UID, NULL},
    {"v1 legacy systemd docker burstable", V1_LEGACY(SD_BURSTABLE "/docker-" CID ".scope"),
     POD_KIND_K8S, UID, NULL},
    /* containers outside Kubernetes */
    {"v2 systemd docker", "0::/system.slice/docker-" CID ".scope\n", POD_KIND_CONTAINER, CID, NULL},
    {"v2 cgroupfs docker", "0::/docker/" CID "\n", POD_KIND_CONTAINER, CID, NULL},
    {"v2 cgroupfs containerd (nerdctl, namespace default)", "0::/default/" CID "\n",
     POD_KIND_CONTAINER, CID, NULL},
    {"v2 systemd containerd (nerdctl)", "0::/system.slice/nerdctl-" CID ".scope\n",
     POD_KIND_CONTAINER, CID, NULL},
    {"v2 systemd podman", "0::/machine.slice/libpod-" CID ".scope/container\n", POD_KIND_CONTAINER,
     CID, NULL},
    {"v2 systemd podman rootless",
     "0::/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" CID ".scope/container\n",
     POD_KIND_CONTAINER, CID, NULL},
    /* a container inside a container is its outer container's pod: the outer ID is the one a
     * runtime on the node made, an inner one is whatever the outer container wrote */
    {"v2 cgroupfs docker in docker", "0::/docker/" CID2 "/docker/" CID "\n", POD_KIND_CONTAINER,
     CID2, NULL},
    /* a root process that writes its own cgroups cannot name another pod or container */
    {"hostile v2 pod<uid> nested under its own pod",
     "0::/kubepods/burstable/pod" UID "/" CID "/pod" UID2 "\n", POD_KIND_K8S, UID, NULL},
    {"hostile v2 docker scope nested under its own",
     "0::/system.slice/docker-" CID ".scope/docker-" CID2 ".scope\n", POD_KIND_CONTAINER, CID,
     NULL},
    /* hybrid mode: the unified line is where the runtime's service was, not the container's */
    {"v1 cgroupfs docker", V1_HYBRID("/docker/" CID, "/system.slice/containerd.service"),
     POD_KIND_CONTAINER, CID, NULL},
    {"v1 systemd docker", V1_HYBRID("/system.slice/docker-" CID ".scope", "/"), POD_KIND_CONTAINER,
     CID, NULL},
    {"v1 systemd crio", V1_HYBRID("/machine.slice/crio-" CID ".scope", "/"), POD_KIND_CONTAINER,
     CID, NULL},
    {"v1 legacy cgroupfs docker", V1_LEGACY("/docker/" CID), POD_KIND_CONTAINER, CID, NULL},
    /* host processes */
    {"v2 host session", "0::/user.slice/user-1000.slice/session-3.scope\n", POD_KIND_CGROUP, NULL,
     "/user.slice/user-1000.slice/session-3.scope"},
    {"v2 host service", "0::/system.slice/ollama.service\n", POD_KIND_CGROUP, NULL,
     "/system.slice/ollama.service"},
    {"v1 host session",
     "13:misc:/\n12:hugetlb:/\n11:memory:/user.slice/user-1000.slice/session-3.scope\n"
     "10:cpuset:/\n9:net_cls,net_prio:/\n8:perf_event:/\n7:freezer:/\n"
     "6:devices:/user.slice\n5:blkio:/user.slice\n4:cpu,cpuacct:/user.slice\n3:rdma:/\n"
     "2:pids:/user.slice/user-1000.slice/session-3.scope\n"
     "1:name=systemd:/user.slice/user-1000.slice/session-3.scope\n"
     "0::/user.slice/user-1000.slice/session-3.scope\n",
     POD_KIND_CGROUP, NULL, "/user.slice/user-1000.slice/session-3.scope"},
    {"v1 legacy host service", V1_LEGACY("/system.slice/sshd.service"), POD_KIND_CGROUP, NULL,
     "/system.slice/sshd.service"},
    {"v2 root cgroup", "0::/\n", POD_KIND_HOST, NULL, "/"},
    {"v2 container in its own cgroup namespace", "0::/\n", POD_KIND_HOST, NULL, "/"},
    {"v1 host without a cgroup manager", V1_HYBRID("/", "/"), POD_KIND_HOST, NULL, "/"},
    {"v1 legacy host without a cgroup manager", V1_LEGACY("/"), POD_KIND_HOST, NULL, "/"},
    /* cgroups made by hand (a batch system, tests/security): the v2 line, else name=systemd,
     * else pids, memory, cpu, else any other v1 line that is not "/" */
    {"v1 memory cgroup only",
     "9:name=systemd:/\n8:pids:/\n7:blkio:/\n6:freezer:/\n5:devices:/\n"
     "4:memory:/process_api/e136ce8d\n3:cpuset:/\n2:cpuacct:/\n1:cpu:/\n0::/\n",
     POD_KIND_CGROUP, NULL, "/process_api/e136ce8d"},
    {"v1 pids before memory and cpu", "5:cpu:/c\n4:memory:/b\n3:blkio:/d\n2:pids:/a\n0::/\n",
     POD_KIND_CGROUP, NULL, "/a"},
    {"v1 memory before cpu", "5:cpu,cpuacct:/c\n4:memory:/b\n3:blkio:/d\n0::/\n", POD_KIND_CGROUP,
     NULL, "/b"},
    {"v1 other controller", "5:cpu:/\n3:blkio:/d\n0::/\n", POD_KIND_CGROUP, NULL, "/d"},
    {"hybrid v2 cgroup made by hand",
     "9:name=systemd:/\n8:pids:/\n4:memory:/process_api/e1\n0::/t1\n", POD_KIND_CGROUP, NULL,
     "/t1"},
};

/* the name both sides must give the fixture */
static void want_name(const struct fixture *f, char *out, size_t n)
{
    switch (f->kind) {
    case POD_KIND_K8S:
        snprintf(out, n, "k8s-%s", f->id);
        break;
    case POD_KIND_CONTAINER:
        snprintf(out, n, "ctr-%s", f->id);
        break;
    case POD_KIND_HOST:
        snprintf(out, n, "host");
        break;
    default:
        snprintf(out, n, "cg-%016llx",
                 (unsigned long long)vgpu_fnv1a64(f->cgroup, strlen(f->cgroup)));
    }
}

/* the daemon's side: the file read back as it reads /proc/PID/cgroup, then its pod's name */
static int daemon_name(const char *file, struct pod_identity *id, char *out, size_t n)
{
    char buf[POD_IDENTITY_FILE_MAX];
    ssize_t len = pod_identity_read_file(file, buf, sizeof(buf));
    if (len < 0 || pod_identity_parse(buf, (size_t)len, id) != 0) return -1;
    return pod_identity_name(id, out, n);
}

static void write_file(const char *path, const char *text, size_t len)
{
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f) return;
    CHECK_EQ_U64(fwrite(text, 1, len, f), len);
    fclose(f);
}

/* the limiter's pod for a fixture */
static const char *limiter_name(struct vgpu_config *cfg, const char *text)
{
    memset(cfg, 0, sizeof(*cfg));
    CHECK_EQ_INT(vgpu_config_pod_from_cgroup(cfg, text, strlen(text)), 0);
    CHECK_STR(cfg->pod_source, "cgroup");
    return cfg->pod_id;
}

/* one scratch directory for all cases: the daemon's side reads the fixture from a file */
static char dir[] = "/tmp/vgpu-cgroup-XXXXXX";
static char file[64];

static int make_dir(void)
{
    if (!mkdtemp(dir)) return -1;
    snprintf(file, sizeof(file), "%s/cgroup", dir);
    return 0;
}

static int remove_dir(void)
{
    unlink(file);
    return rmdir(dir);
}

UNIT_CASE(recorded_files_named_alike_by_both_sides)
{
    static struct vgpu_config cfg;
    size_t n_fixtures = sizeof(fixtures) / sizeof(fixtures[0]);
    for (size_t i = 0; i < n_fixtures; i++) {
        const struct fixture *f = &fixtures[i];
        int before = vgpu_test_failures;
        char want[160], got[160];
        want_name(f, want, sizeof(want));

        write_file(file, f->text, strlen(f->text));
        struct pod_identity id;
        CHECK_EQ_INT(daemon_name(file, &id, got, sizeof(got)), 0);
        CHECK_EQ_INT(id.kind, f->kind);
        CHECK_STR(got, want);
        if (f->kind == POD_KIND_K8S) CHECK_STR(id.uid, f->id);
        if (f->kind == POD_KIND_CONTAINER) CHECK_STR(id.container, f->id);
        if (f->cgroup) CHECK_STR(id.cgroup, f->cgroup);
        if (f->kind != POD_KIND_K8S) CHECK_STR(id.uid, "");

        /* the limiter agrees, and without a trailing newline too */
        CHECK_STR(limiter_name(&cfg, f->text), got);
        char cut[4096];
        snprintf(cut, sizeof(cut), "%.*s", (int)strlen(f->text) - 1, f->text);
        CHECK_STR(limiter_name(&cfg, cut), got);
        if (vgpu_test_failures != before) fprintf(stderr, "  in fixture \"%s\"\n", f->name);
    }
    printf("%zu fixtures\n", n_fixtures);
}

UNIT_CASE(containers_of_one_pod_grouped_others_apart)
{
    static struct vgpu_config cfg;
    /* grouping: two containers of one pod are one pod; two pods, or two containers outside
     * Kubernetes, are two */
    char a[160], b[160];
    snprintf(a, sizeof(a), "%s",
             limiter_name(&cfg, "0::" SD_BURSTABLE "/cri-containerd-" CID ".scope\n"));
    CHECK_STR(limiter_name(&cfg, "0::" SD_BURSTABLE "/cri-containerd-" CID2 ".scope\n"), a);
    CHECK_STR(limiter_name(&cfg, V1_HYBRID("/kubepods/burstable/pod" UID "/" CID2, "/")), a);
    snprintf(
        b, sizeof(b), "%s",
        limiter_name(&cfg, "0::/kubepods.slice/kubepods-pod" UID2 ".slice/crio-" CID ".scope\n"));
    CHECK(strcmp(a, b) != 0);
    snprintf(a, sizeof(a), "%s", limiter_name(&cfg, "0::/docker/" CID "\n"));
    snprintf(b, sizeof(b), "%s", limiter_name(&cfg, "0::/docker/" CID2 "\n"));
    CHECK(strcmp(a, b) != 0);
    /* the bug this replaced: two v1 containers of different pods were both "host" */
    snprintf(a, sizeof(a), "%s", limiter_name(&cfg, V1_HYBRID("/kubepods/pod" UID "/" CID, "/")));
    snprintf(b, sizeof(b), "%s", limiter_name(&cfg, V1_HYBRID("/kubepods/pod" UID2 "/" CID2, "/")));
    CHECK(strcmp(a, b) != 0 && strcmp(a, "host") != 0 && strcmp(b, "host") != 0);
}

UNIT_CASE(unreadable_file_limiter_shares_host_daemon_refuses)
{
    static struct vgpu_config cfg;
    /* not a cgroup file, or none: the limiter shares "host" (limits still hold), the daemon
     * refuses */
    memset(&cfg, 0, sizeof(cfg));
    CHECK_EQ_INT(vgpu_config_pod_from_cgroup(&cfg, "garbage\n", 8), -1);
    CHECK_STR(cfg.pod_id, "host");
    CHECK(strstr(cfg.pod_source, "/proc/self/cgroup") != NULL);
    CHECK_EQ_INT(vgpu_config_pod_from_cgroup(&cfg, "", 0), -1);
    CHECK_STR(cfg.pod_id, "host");
    struct pod_identity id;
    char got[160];
    write_file(file, "0:/x\n", 5);
    CHECK_EQ_INT(daemon_name(file, &id, got, sizeof(got)), -1);
    /* a file longer than any real one is refused, never cut and guessed at */
    static char big[POD_IDENTITY_FILE_MAX + 100];
    memset(big, '/', sizeof(big));
    memcpy(big, "0::", 3);
    write_file(file, big, sizeof(big));
    CHECK_EQ_INT(daemon_name(file, &id, got, sizeof(got)), -1);
    unlink(file);
    CHECK_EQ_INT(daemon_name(file, &id, got, sizeof(got)), -1);
}

UNIT_CASE(hierarchies_naming_two_pods_refused)
{
    /* a root process moved, in one v1 hierarchy it can write, into another pod's path: it is
     * nobody's (the daemon refuses it), not that pod's */
    static const char text[] = "11:memory:/kubepods/pod" UID2 "/" CID2 "\n"
                               "2:pids:/kubepods/pod" UID "/" CID "\n"
                               "1:name=systemd:/kubepods/pod" UID "/" CID "\n0::/\n";
    struct pod_identity id;
    char got[160];
    CHECK_EQ_INT(pod_identity_parse(text, strlen(text), &id), -1);
    write_file(file, text, strlen(text));
    CHECK_EQ_INT(daemon_name(file, &id, got, sizeof(got)), -1);
    static const char ctr[] = "11:memory:/docker/" CID2 "\n2:pids:/docker/" CID "\n0::/\n";
    CHECK_EQ_INT(pod_identity_parse(ctr, strlen(ctr), &id), -1);
    unlink(file);
}

UNIT_CASE(pod_name_that_does_not_fit_refused)
{
    struct pod_identity id;
    char got[160];
    /* a name that does not fit is refused */
    CHECK_EQ_INT(pod_identity_parse("0::/docker/" CID "\n", strlen("0::/docker/" CID "\n"), &id),
                 0);
    CHECK_EQ_INT(pod_identity_name(&id, got, 68), -1);
    CHECK_EQ_INT(pod_identity_name(&id, got, 69), 0);
}

UNIT_CASE(live_process_named_alike_by_both_sides)
{
    static struct vgpu_config cfg;
    /* this process, live: the limiter's reading of /proc/self and the daemon's of /proc/PID */
    char *none[] = {"PATH=/bin", NULL};
    vgpu_config_load(&cfg, none);
    CHECK_STR(cfg.pod_source, "cgroup");
    char key[160];
    CHECK_EQ_INT(pod_identity_key(getpid(), key, sizeof(key)), 0);
    CHECK_STR(cfg.pod_id, key);
    printf("this process is pod %s\n", key);
}
