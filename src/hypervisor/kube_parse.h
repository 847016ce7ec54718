/* kube_parse.h - Kubernetes pod objects, watch events and pod lists into struct kube_pod.
 *
 * Why this exists: what the API server sends is parsed by pure functions (no I/O, no state),
 * apart from the watch thread that fetches it (kube_watch.c), so that the parsing can be
 * tested and fuzzed alone (tests/unit/test_kube_pod.c, tests/fuzz/fuzz_kube_event.c). Every
 * field is checked: a name too long or an annotation that does not parse is refused and
 * said, never cut or guessed.
 */
#ifndef VGPU_KUBE_PARSE_H
#define VGPU_KUBE_PARSE_H

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

#endif
