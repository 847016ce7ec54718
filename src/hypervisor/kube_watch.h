/* kube_watch.h - the pods of this node, as the Kubernetes API server tells them.
 *
 * Why this exists: operators set a pod's GPU share where they set everything else, in its
 * annotations (vgpu.io/core-limit, vgpu.io/mem-limit, vgpu.io/weight, vgpu.io/soft), and the
 * daemon must know which pod a worker process belongs to (its UID appears in the process's
 * cgroup). A background thread lists and then watches the node's pods and reports each change.
 */
#ifndef VGPU_KUBE_WATCH_H
#define VGPU_KUBE_WATCH_H

#include <stddef.h>
#include <stdint.h>

#include "kube_parse.h" /* struct kube_pod */

typedef void (*kube_pod_cb)(const struct kube_pod *pod, void *arg);

struct kube_watch_opts {
    const char *api_url;    /* NULL: in-cluster (KUBERNETES_SERVICE_HOST/PORT, https) */
    const char *node_name;  /* only pods with spec.nodeName = this; NULL: NODE_NAME env */
    const char *token_file; /* NULL: /var/run/secrets/kubernetes.io/serviceaccount/token */
    const char *ca_file;    /* NULL: .../serviceaccount/ca.crt (https only) */
};

struct kube_watch;

/* Start the watch thread: a list, then a watch from its resourceVersion; on an error or a
 * closed stream it lists again after a backoff (1 s .. 30 s). cb runs on that thread. NULL
 * with a message in err when the options cannot work (e.g. no API address). */
struct kube_watch *kube_watch_start(const struct kube_watch_opts *opts, kube_pod_cb cb, void *arg,
                                    char *err, size_t errlen);
/* Stop the thread (within about a second) and free. */
void kube_watch_stop(struct kube_watch *w);

#endif
