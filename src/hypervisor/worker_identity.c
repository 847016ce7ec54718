/* worker_identity.c - a registering process's pod, as the kernel and its mounts say.
 *
 * Why this exists: see worker_identity.h.
 */
#define _GNU_SOURCE
#include "worker_identity.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "allocations.h"
#include "mount_identity.h"
#include "registry.h"

/* a cgroup path as a pod name: "/a/b.scope" -> "a:b.scope"; other characters than
 * [A-Za-z0-9._-] -> '_', and then, or when too long, "~<hash>" keeps names apart */
static void cgroup_name(const struct pod_identity *id, char *out, size_t n)
{
    const char *p = id->cgroup;
    while (*p == '/')
        p++;
    if (!*p) {
        snprintf(out, n, "root");
        return;
    }
    size_t k = 0;
    int changed = id->cgroup_truncated;
    for (; *p && k + 1 < n && k < 180; p++) {
        char c = *p;
        int ok = isalnum((unsigned char)c) || c == '.' || c == '-' || c == '_';
        out[k++] = c == '/' ? ':' : ok ? c : '_';
        changed |= !ok && c != '/';
    }
    out[k] = 0;
    if (*p || changed)
        snprintf(out + k, n - k, "~%08llx", (unsigned long long)(id->cgroup_hash & 0xffffffffull));
}

int worker_identify(pid_t host_pid, struct hv_ident *out)
{
    memset(out, 0, sizeof(*out));
    struct pod_identity *id = &out->id;
    if (pod_identity_of_pid(host_pid, id) != 0) return -1;
    snprintf(out->container, sizeof(out->container), "%s", id->container);
    switch (id->kind) {
    case POD_KIND_K8S:
        for (const struct hv_kube_pod *kp = hv_reg.kube; kp; kp = kp->next)
            if (!strcasecmp(kp->uid, id->uid)) {
                snprintf(out->ns, sizeof(out->ns), "%s", kp->ns);
                snprintf(out->name, sizeof(out->name), "%s", kp->name);
            }
        if (!out->ns[0]) {
            if (hv_reg.kube_on) return 1; /* the watch has not reported it yet */
            snprintf(out->ns, sizeof(out->ns), "k8s");
            snprintf(out->name, sizeof(out->name), "%s", id->uid);
        }
        break;
    case POD_KIND_CONTAINER:
        snprintf(out->ns, sizeof(out->ns), "container");
        snprintf(out->name, sizeof(out->name), "%s", id->container);
        break;
    default:
        snprintf(out->ns, sizeof(out->ns), "cgroup");
        cgroup_name(id, out->name, sizeof(out->name));
        break;
    }
    /* the pod's name as the limiter names it too (cgroup_path.h) */
    if (pod_identity_name(id, out->dir, sizeof(out->dir)) != 0) return -1;
    /* an allocation of the device plugin mounted into the container: its directory is the
     * pod's region, what the kubelet granted it the pod's limits on that GPU (memory first) */
    unsigned major, minor;
    char names[MOUNT_IDENTITY_MAX][HV_DIR_NAME_LEN];
    int n = pod_files_dev(&major, &minor) == 0
                ? mount_identity_of_pid(host_pid, major, minor, names, MOUNT_IDENTITY_MAX)
                : 0;
    int have_mem = 0;
    for (int i = 0; i < n && out->ngrant < 2; i++) {
        struct alloc_grant g;
        if (alloc_grant_read(names[i], &g) != 0) continue;
        out->grant[out->ngrant++] = g;
        if (out->ngrant == 1 || (g.mem_bytes && !have_mem))
            snprintf(out->dir, sizeof(out->dir), "%.*s", HV_DIR_NAME_LEN - 1, names[i]);
        have_mem |= g.mem_bytes != 0;
    }
    return 0;
}
