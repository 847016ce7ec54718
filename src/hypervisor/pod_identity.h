/* pod_identity.h - which pod a process belongs to, as the kernel says (its cgroup).
 *
 * Why this exists: a pod's limits must never be chosen by what a pod says about itself (its
 * environment, the body of its requests). The kernel files a process under cgroups its pod
 * cannot change (unless privileged): a Kubernetes pod's processes under a path with the pod's
 * UID, a container's under a path with the container's ID, anything else under its own path.
 * /proc/PID/cgroup is read from the daemon's side, so the paths are as the daemon sees them.
 */
#ifndef VGPU_HV_POD_IDENTITY_H
#define VGPU_HV_POD_IDENTITY_H

#include <stddef.h>
#include <sys/types.h>

enum pod_kind {
    POD_KIND_K8S = 1,   /* a Kubernetes pod: uid */
    POD_KIND_CONTAINER, /* a container outside Kubernetes: container */
    POD_KIND_CGROUP,    /* anything else: cgroup (the path that decided; "/" for the root) */
};

struct pod_identity {
    int kind;
    char uid[40];       /* K8S: the pod's UID, lower case with dashes */
    char container[72]; /* the container's ID (64 hex digits) when the path has one, else "" */
    char cgroup[256];   /* the path that decided, truncated to fit */
    unsigned long long cgroup_hash; /* FNV-1a 64 of the whole path (names a long one) */
    int cgroup_truncated;
};

/* Parse the text of /proc/PID/cgroup (cgroup v1 and v2; cgroupfs and systemd drivers; Docker,
 * containerd, CRI-O and Podman names). The first pod UID on any line makes it K8S; else the
 * deepest 64-hex container ID makes it CONTAINER; else the cgroup v2 path, or the v1
 * name=systemd path, or the first other v1 path that is not "/". 0, or -1 when the text is not
 * a cgroup file (a line not "ID:controllers:/path"). */
int pod_identity_parse(const char *text, size_t len, struct pod_identity *out);

/* The identity of a live process (reads /proc/PID/cgroup). 0 or -1. */
int pod_identity_of_pid(pid_t pid, struct pod_identity *out);

/* A short key that is the same for every process of one pod ("k8s:<uid>", "ctr:<id>",
 * "cg:<hash>"): the daemon's connection limits count per key (http_server.h). 0 or -1. */
int pod_identity_key(pid_t pid, char *key, size_t n);

#endif
