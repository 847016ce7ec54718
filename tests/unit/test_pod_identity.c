/* test_pod_identity.c - the daemon tells a worker's pod from /proc/PID/cgroup as each runtime
 * and cgroup driver writes it (src/hypervisor/pod_identity.c, parsed by src/common/
 * cgroup_path.c; tests/unit/test_cgroup_path.c has whole recorded files), and refuses what is
 * not a cgroup file. */
#include <string.h>
#include <unistd.h>

#include "../../src/hypervisor/pod_identity.h"
#include "unit_case.h"

#define UID "1b2c3d4e-5f60-4a1b-8c9d-0e1f2a3b4c5d"
#define CID "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static struct pod_identity parse(const char *text, int want)
{
    struct pod_identity id;
    CHECK_EQ_INT(pod_identity_parse(text, strlen(text), &id), want);
    return id;
}

UNIT_CASE(k8s_pod_of_every_runtime_and_driver)
{
    struct pod_identity id;
    /* Kubernetes, systemd driver, cgroup v2, containerd: the pod UID with '_' */
    id = parse("0::/kubepods.slice/kubepods-burstable.slice/"
               "kubepods-burstable-pod1b2c3d4e_5f60_4a1b_8c9d_0e1f2a3b4c5d.slice/"
               "cri-containerd-" CID ".scope\n",
               0);
    CHECK_EQ_INT(id.kind, POD_KIND_K8S);
    CHECK_STR(id.uid, UID);
    CHECK_STR(id.container, CID);
    /* cgroupfs driver, cgroup v1 (several hierarchies), the v2 line at the root */
    id = parse("12:pids:/kubepods/besteffort/pod" UID "/" CID "\n"
               "11:memory:/kubepods/besteffort/pod" UID "/" CID "\n0::/\n",
               0);
    CHECK_EQ_INT(id.kind, POD_KIND_K8S);
    CHECK_STR(id.uid, UID);
    CHECK_STR(id.container, CID);
    /* CRI-O, a pod of the guaranteed class (no QoS slice); upper-case hex is the same pod */
    id = parse("0::/kubepods.slice/kubepods-pod1B2C3D4E_5F60_4A1B_8C9D_0E1F2A3B4C5D.slice/crio-" CID
               ".scope\n",
               0);
    CHECK_EQ_INT(id.kind, POD_KIND_K8S);
    CHECK_STR(id.uid, UID);
    /* a daemon in its own cgroup namespace sees paths above its root as "/.." */
    id = parse("0::/../../kubepods.slice/kubepods-pod1b2c3d4e_5f60_4a1b_8c9d_0e1f2a3b4c5d.slice\n",
               0);
    CHECK_EQ_INT(id.kind, POD_KIND_K8S);
    CHECK_STR(id.uid, UID);
}

UNIT_CASE(pod_lookalikes_are_no_pod)
{
    struct pod_identity id;
    /* "pod" inside a longer word, or a UID of the wrong shape, is no pod */
    id = parse("0::/system.slice/mypod" UID ".service\n", 0);
    CHECK_EQ_INT(id.kind, POD_KIND_CGROUP);
    id = parse("0::/kubepods/pod1b2c3d4e-5f60-4a1b-8c9d-0e1f2a3b4c5\n", 0);
    CHECK_EQ_INT(id.kind, POD_KIND_CGROUP);
}

UNIT_CASE(containers_outside_k8s_recognised)
{
    struct pod_identity id;
    /* containers outside Kubernetes: Docker (systemd, cgroupfs), Podman */
    id = parse("0::/system.slice/docker-" CID ".scope\n", 0);
    CHECK_EQ_INT(id.kind, POD_KIND_CONTAINER);
    CHECK_STR(id.container, CID);
    id = parse("4:memory:/docker/" CID "\n0::/\n", 0);
    CHECK_EQ_INT(id.kind, POD_KIND_CONTAINER);
    id = parse("0::/machine.slice/libpod-" CID ".scope/container\n", 0);
    CHECK_EQ_INT(id.kind, POD_KIND_CONTAINER);
    CHECK_STR(id.container, CID);
}

UNIT_CASE(other_cgroups_named_by_path)
{
    struct pod_identity id;
    /* anything else: the v2 path first, then name=systemd, then another v1 path */
    id = parse("0::/user.slice/user-1000.slice/session-3.scope\n", 0);
    CHECK_EQ_INT(id.kind, POD_KIND_CGROUP);
    CHECK_STR(id.cgroup, "/user.slice/user-1000.slice/session-3.scope");
    id = parse("9:name=systemd:/user.slice/x.scope\n8:pids:/a\n0::/\n", 0);
    CHECK_STR(id.cgroup, "/user.slice/x.scope");
    id = parse("9:name=systemd:/\n8:pids:/vgpu-test/podA\n4:memory:/other\n0::/\n", 0);
    CHECK_STR(id.cgroup, "/vgpu-test/podA");
    id = parse("0::/\n", 0);
    CHECK_EQ_INT(id.kind, POD_KIND_HOST);
    CHECK_STR(id.cgroup, "/");
    struct pod_identity a = parse("0::/a/b\n", 0), b = parse("0::/a/c\n", 0);
    CHECK(a.cgroup_hash != b.cgroup_hash);
}

UNIT_CASE(live_process_key_is_pod_name)
{
    struct pod_identity id;
    /* a live process: its key is its pod's name */
    char key[160], name[160];
    CHECK_EQ_INT(pod_identity_key(getpid(), key, sizeof(key)), 0);
    CHECK_EQ_INT(pod_identity_of_pid(getpid(), &id), 0);
    CHECK_EQ_INT(pod_identity_name(&id, name, sizeof(name)), 0);
    CHECK_STR(key, name);
    CHECK_EQ_INT(pod_identity_key(-5, key, sizeof(key)), -1);
}

UNIT_CASE(non_cgroup_file_refused)
{
    /* not a cgroup file: refused, never guessed at */
    parse("", -1);
    parse("garbage\n", -1);
    parse("0:/x\n", -1);
    parse("x::/a\n", -1);
    parse("0::relative\n", -1);
}
