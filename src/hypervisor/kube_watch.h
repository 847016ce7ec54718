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

struct kube_pod {
    char ns[64];
    char name[254];
    char uid[64];
    int deleted; /* 1: the pod is gone (DELETED event) */
    /* annotations; has_* = 0 when absent. A malformed annotation is logged (naming the pod
     * and the annotation) and reported as absent. */
    int has_core, has_mem, has_weight, has_soft;
    double core_limit;  /* percent, (0, 100] */
    uint64_t mem_limit; /* bytes */
    uint32_t weight;    /* >= 1 */
    int soft;
};

typedef void (*kube_pod_cb)(const struct kube_pod *pod, void *arg);

struct kube_watch_opts {
    const char *api_url;    /* NULL: in-cluster (KUBERNETES_SERVICE_HOST/PORT, https) */
    const char *node_name;  /* only pods with spec.nodeName = this; NULL: NODE_NAME env */
    const char *token_file; /* NULL: /var/run/secrets/kubernetes.io/serviceaccount/token */
    const char *ca_file;    /* NULL: .../serviceaccount/ca.crt (https only) */
};

/* ---- parsing: pure functions (no I/O, no state), used by the watch thread and fuzzed by
 * tests/fuzz/fuzz_kube_event.c ---- */

struct json_t; /* jansson */

/* Fill p from one Pod object. Returns 0, with one line per malformed annotation in msg (naming
 * the pod and the annotation; msg is "" when there are none), or -1 when the pod cannot be
 * identified: metadata.namespace, .name or .uid is missing, not a string, empty, or longer than
 * struct kube_pod holds (63, 253, 63 bytes). Then msg is one line naming the pod and the field;
 * a name is never truncated. */
int kube_pod_parse(struct json_t *obj, struct kube_pod *p, char *msg, size_t msglen);

enum kube_event_type {
    KUBE_EV_ADDED,
    KUBE_EV_MODIFIED,
    KUBE_EV_DELETED,
    KUBE_EV_BOOKMARK,
    KUBE_EV_ERROR,
    KUBE_EV_OTHER /* a type this daemon does not act on */
};

struct kube_event {
    enum kube_event_type type;
    int pod_ok;          /* ADDED, MODIFIED, DELETED: kube_pod_parse accepted the object */
    struct kube_pod pod; /* when pod_ok; deleted = 1 for DELETED */
    char rv[256];        /* object's metadata.resourceVersion; "" when absent or too long */
    long long code;      /* ERROR: the Status object's code (0 when absent) */
    char msg[2048];      /* lines worth logging ("" when none): why the event or its pod was
                          * ignored, malformed annotations, the ERROR's message */
};

/* One line of a watch stream (a JSON object {"type": ..., "object": {...}}). Returns 0, or -1
 * when it is not a watch event (ev->msg says why). */
int kube_event_parse(const char *line, size_t len, struct kube_event *ev);

/* Called for each item of a pod list: ok as kube_pod_parse returned 0, msg its lines. */
typedef void (*kube_item_fn)(void *arg, int ok, const struct kube_pod *pod, const char *msg);

/* A pod list body ({"metadata": {"resourceVersion": ...}, "items": [...]}): fn for every item,
 * in order, and the list's resourceVersion into rv ("" when absent or too long). Returns 0, or
 * -1 when it is not a pod list (msg says why; fn was not called). */
int kube_list_parse(const char *body, size_t len, kube_item_fn fn, void *arg, char *rv,
                    size_t rvlen, char *msg, size_t msglen);

struct kube_watch;

/* Start the watch thread: a list, then a watch from its resourceVersion; on an error or a
 * closed stream it lists again after a backoff (1 s .. 30 s). cb runs on that thread. NULL
 * with a message in err when the options cannot work (e.g. no API address). */
struct kube_watch *kube_watch_start(const struct kube_watch_opts *opts, kube_pod_cb cb, void *arg,
                                    char *err, size_t errlen);
/* Stop the thread (within about a second) and free. */
void kube_watch_stop(struct kube_watch *w);

#endif
