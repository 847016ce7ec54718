/* fuzz_kube_event.c - libFuzzer harness for the daemon's reading of Kubernetes pods
 * (src/hypervisor/kube_parse.c): one watch event line (kube_event_parse) and one pod list body
 * (kube_list_parse), from an API server or whatever answers in its place.
 *
 * Invariants: an accepted pod has a namespace, name and uid that are exactly the object's
 * (never truncated; a value too long for struct kube_pod refuses the pod with a message naming
 * the field); annotations are within range (core in (0, 100], weight 1..10000, soft 0/1); a
 * DELETED event yields a deleted pod; resourceVersions are the object's or ""; a list calls
 * back once per item; every refusal says why.
 */
#include <jansson.h>
#include <math.h>

#include "fuzz_util.h"
#include "kube_watch.h"

static const char *md_string(json_t *obj, const char *key)
{
    return json_string_value(json_object_get(json_object_get(obj, "metadata"), key));
}

/* the pod as kube_pod_parse reported it against the object it came from */
static void check_pod(json_t *obj, int ok, const struct kube_pod *p, const char *msg, size_t msgcap)
{
    FUZZ_CHECK(fuzz_terminated(msg, msgcap), "message not terminated");
    static const struct {
        const char *key;
        size_t cap;
    } fields[] = {{"namespace", sizeof(p->ns)}, {"name", sizeof(p->name)}, {"uid", sizeof(p->uid)}};
    const char *vals[3] = {p->ns, p->name, p->uid};
    int fits = json_is_object(json_object_get(obj, "metadata"));
    for (int i = 0; i < 3; i++) {
        const char *s = md_string(obj, fields[i].key);
        if (!s || !*s || strlen(s) >= fields[i].cap) {
            fits = 0;
            if (s && strlen(s) >= fields[i].cap && !ok)
                FUZZ_CHECK(strstr(msg, fields[i].key), "refusal of a long %s does not name it",
                           fields[i].key);
        } else if (ok) {
            FUZZ_CHECK(!strcmp(vals[i], s), "%s '%s' reported as '%s'", fields[i].key, s, vals[i]);
        }
    }
    FUZZ_CHECK(ok == fits, "pod %s with ns/name/uid %s", ok ? "accepted" : "refused",
               fits ? "usable" : "unusable");
    if (!ok) {
        FUZZ_CHECK(msg[0], "a pod refused without a message");
        return;
    }
    if (p->has_core)
        FUZZ_CHECK(isfinite(p->core_limit) && p->core_limit > 0 && p->core_limit <= 100, "core %g",
                   p->core_limit);
    if (p->has_weight) FUZZ_CHECK(p->weight >= 1 && p->weight <= 10000, "weight %u", p->weight);
    if (p->has_soft) FUZZ_CHECK(p->soft == 0 || p->soft == 1, "soft %d", p->soft);
    FUZZ_CHECK(p->has_core || p->core_limit == 0, "core without has_core");
    FUZZ_CHECK(p->has_weight || p->weight == 0, "weight without has_weight");
}

static void check_rv(json_t *obj, const char *rv, size_t cap)
{
    FUZZ_CHECK(fuzz_terminated(rv, cap), "resourceVersion not terminated");
    const char *s = md_string(obj, "resourceVersion");
    if (s && strlen(s) < cap)
        FUZZ_CHECK(!strcmp(rv, s), "resourceVersion '%s' reported as '%s'", s, rv);
    else
        FUZZ_CHECK(rv[0] == 0, "resourceVersion '%s' from nowhere", rv);
}

struct list_ctx {
    json_t *items;
    size_t n;
};

static void on_item(void *arg, int ok, const struct kube_pod *pod, const char *msg)
{
    struct list_ctx *x = arg;
    json_t *item = json_array_get(x->items, x->n++);
    FUZZ_CHECK(item, "more callbacks than items");
    FUZZ_CHECK(!pod->deleted, "a listed pod is deleted");
    check_pod(item, ok, pod, msg, 2048);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct kube_event ev;
    json_t *doc = json_loadb((const char *)data, size, 0, NULL);

    int r = kube_event_parse((const char *)data, size, &ev);
    FUZZ_CHECK(fuzz_terminated(ev.msg, sizeof(ev.msg)), "event message not terminated");
    if (r != 0) {
        FUZZ_CHECK(r == -1 && ev.msg[0], "a malformed event (r=%d) without a message", r);
    } else {
        json_t *obj = json_object_get(doc, "object");
        const char *type = json_string_value(json_object_get(doc, "type"));
        FUZZ_CHECK(doc && obj && type, "an event accepted without type or object");
        check_rv(obj, ev.rv, sizeof(ev.rv));
        if (ev.type == KUBE_EV_ADDED || ev.type == KUBE_EV_MODIFIED || ev.type == KUBE_EV_DELETED) {
            check_pod(obj, ev.pod_ok, &ev.pod, ev.msg, sizeof(ev.msg));
            if (ev.pod_ok)
                FUZZ_CHECK(ev.pod.deleted == (ev.type == KUBE_EV_DELETED), "deleted %d for %s",
                           ev.pod.deleted, type);
        } else {
            FUZZ_CHECK(ev.type == KUBE_EV_BOOKMARK || ev.type == KUBE_EV_ERROR ||
                           ev.type == KUBE_EV_OTHER,
                       "event type %d", (int)ev.type);
            FUZZ_CHECK(!ev.pod_ok, "a pod from a %s event", type);
        }
        if (ev.type == KUBE_EV_ERROR) FUZZ_CHECK(ev.msg[0], "an ERROR event without a message");
    }

    char rv[256], msg[300];
    struct list_ctx x = {json_object_get(doc, "items"), 0};
    r = kube_list_parse((const char *)data, size, on_item, &x, rv, sizeof(rv), msg, sizeof(msg));
    FUZZ_CHECK(fuzz_terminated(msg, sizeof(msg)), "list message not terminated");
    if (r == 0) {
        FUZZ_CHECK(json_is_array(x.items) && x.n == json_array_size(x.items),
                   "%zu callbacks for a list", x.n);
        check_rv(doc, rv, sizeof(rv));
    } else {
        FUZZ_CHECK(r == -1 && msg[0] && x.n == 0, "a refused list (r=%d)", r);
    }
    json_decref(doc);
    return 0;
}
