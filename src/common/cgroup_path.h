/* cgroup_path.h - which pod a process belongs to, from the text of its /proc/PID/cgroup.
 *
 * Why this exists: the limiter (its pod when no pod is named in the environment) and the daemon
 * (a worker's pod, as the kernel files it) must group processes into pods the same way, or a
 * pod's processes would share one ledger under one side and several under the other. One
 * parser decides for both. It depends on libc only, so the injected limiter can embed it.
 *
 * Grouping: every container of one Kubernetes pod is that pod (its UID, from the cgroupfs
 * driver's "pod<uid>" or the systemd driver's "...-pod<uid_with_underscores>.slice"); a
 * container outside Kubernetes (Docker, containerd, CRI-O, Podman: a 64-hex container ID) is
 * its own pod; any other process is the pod of its cgroup path, and one in the root cgroup
 * ("/": a host without a cgroup manager, or the root of the reader's cgroup namespace) is the
 * pod "host". The path is chosen from the lines of the file: the cgroup v2 line when it is not
 * "/", else the cgroup v1 name=systemd line, else a v1 line of pids, memory or cpu (in that
 * order), else any other v1 line that is not "/". On a cgroup v1 node in hybrid mode the v2
 * line is "0::/" (systemd's unified hierarchy holds nothing there), so v1 lines decide.
 */
#ifndef VGPU_CGROUP_PATH_H
#define VGPU_CGROUP_PATH_H

#include <stddef.h>
#include <sys/types.h>

enum pod_kind {
    POD_KIND_K8S = 1,   /* a Kubernetes pod: uid */
    POD_KIND_CONTAINER, /* a container outside Kubernetes: container */
    POD_KIND_CGROUP,    /* anything else: cgroup (the path that decided, never "/") */
    POD_KIND_HOST,      /* no pod, no container, the root cgroup: cgroup is "/" */
};

struct pod_identity {
    int kind;
    char uid[40];       /* K8S: the pod's UID, lower case with dashes; else "" */
    char container[72]; /* the container's ID (64 hex digits) when the path has one, else "" */
    char cgroup[256];   /* the path that decided, truncated to fit */
    unsigned long long cgroup_hash; /* FNV-1a 64 of the whole path (names a long one) */
    int cgroup_truncated;
};

/* The largest /proc/PID/cgroup read; a longer one is refused, never guessed at. */
#define POD_IDENTITY_FILE_MAX 8192

/* Parse the text of /proc/PID/cgroup (cgroup v1, hybrid and v2; cgroupfs and systemd drivers;
 * Docker, containerd, CRI-O and Podman names). The pod UID and container ID are the outermost
 * in a path, which the kubelet and the runtime made. 0, or -1 when the text is not a cgroup
 * file (empty, or a line not "ID:controllers:/path") or when two hierarchies name different
 * pods or containers. */
int pod_identity_parse(const char *text, size_t len, struct pod_identity *out);

/* The pod's name, the same on both sides: "k8s-<uid>", "ctr-<container id>", "cg-<16 hex of
 * cgroup_hash>" or "host". Only [a-z0-9-]. 0, or -1 when it does not fit in n. */
int pod_identity_name(const struct pod_identity *id, char *out, size_t n);

/* Read a cgroup file (path: "/proc/self/cgroup", "/proc/PID/cgroup") into buf. Its length, or
 * -1 when it cannot be read or does not fit in cap bytes. */
ssize_t pod_identity_read_file(const char *path, char *buf, size_t cap);

#endif
