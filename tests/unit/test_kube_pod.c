/* test_kube_pod.c - the daemon's reading of Kubernetes pod objects, watch events and pod lists
 * (kube_pod_parse, kube_event_parse, kube_list_parse in src/hypervisor/kube_parse.c).
 *
 * Why this exists: a pod's namespace, name and uid identify it to the daemon (the uid is
 * matched against process cgroups). One that does not fit struct kube_pod (namespace 63 bytes,
 * name 253, uid 63) must be refused with a message naming the pod and the field, never cut:
 * a cut uid or name could match another pod. Also the event types and resourceVersions.
 */
#include <jansson.h>

#include "../../src/hypervisor/kube_watch.h"
#include "unit_case.h"

static char *rep(char c, size_t n)
{
    char *s = malloc(n + 1);
    memset(s, c, n);
    s[n] = 0;
    return s;
}

/* a watch event line for a pod with these names */
static char *event(const char *type, const char *ns, const char *name, const char *uid)
{
    json_t *ann = json_pack("{s:s, s:s}", "vgpu.io/core-limit", "30", "vgpu.io/weight", "x");
    json_t *ev = json_pack("{s:s, s:{s:{s:s, s:s, s:s, s:s, s:o}}}", "type", type, "object",
                           "metadata", "namespace", ns, "name", name, "uid", uid, "resourceVersion",
                           "42", "annotations", ann);
    char *line = json_dumps(ev, JSON_COMPACT);
    json_decref(ev);
    return line;
}

/* 1 when the event is accepted with exactly these names */
static int accepted(const char *ns, const char *name, const char *uid)
{
    struct kube_event ev;
    char *line = event("ADDED", ns, name, uid);
    int ok = kube_event_parse(line, strlen(line), &ev) == 0 && ev.pod_ok &&
             !strcmp(ev.pod.ns, ns) && !strcmp(ev.pod.name, name) && !strcmp(ev.pod.uid, uid);
    free(line);
    return ok;
}

/* the refusal message of such an event ("" when it was accepted) */
static const char *refusal(const char *ns, const char *name, const char *uid)
{
    static struct kube_event ev;
    char *line = event("MODIFIED", ns, name, uid);
    int r = kube_event_parse(line, strlen(line), &ev);
    free(line);
    CHECK_EQ_INT(r, 0); /* the event itself is well formed */
    return ev.pod_ok ? "" : ev.msg;
}

UNIT_CASE(names_fit_or_are_refused)
{
    char *ns63 = rep('s', 63), *ns64 = rep('s', 64), *name253 = rep('n', 253),
         *name254 = rep('n', 254), *uid63 = rep('u', 63), *uid64 = rep('u', 64);
    CHECK(accepted(ns63, name253, uid63));

    const char *m = refusal(ns64, "web", "uid-1");
    CHECK(strstr(m, "metadata.namespace") && strstr(m, "64 bytes") && strstr(m, "/web") &&
          strstr(m, "uid-1"));
    m = refusal("prod", name254, "uid-2");
    CHECK(strstr(m, "metadata.name ") && strstr(m, "254 bytes") && strstr(m, "prod/nnnn") &&
          strstr(m, "uid-2"));
    m = refusal("prod", "web", uid64);
    CHECK(strstr(m, "metadata.uid") && strstr(m, "64 bytes") && strstr(m, "prod/web"));
    m = refusal("prod", "", "uid-3");
    CHECK(strstr(m, "metadata.name is empty") != NULL);

    /* missing and non-string fields */
    struct kube_event ev;
    const char *no_uid = "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"namespace\":\"a\","
                         "\"name\":\"b\"}}}";
    CHECK_EQ_INT(kube_event_parse(no_uid, strlen(no_uid), &ev), 0);
    CHECK(!ev.pod_ok && strstr(ev.msg, "metadata.uid is missing") && strstr(ev.msg, "a/b"));
    const char *num_name = "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"namespace\":\"a\","
                           "\"name\":7,\"uid\":\"u\"}}}";
    CHECK_EQ_INT(kube_event_parse(num_name, strlen(num_name), &ev), 0);
    CHECK(!ev.pod_ok && strstr(ev.msg, "metadata.name is not a string"));
    free(ns63), free(ns64), free(name253), free(name254), free(uid63), free(uid64);
}

UNIT_CASE(watch_events_read_into_pods)
{
    struct kube_event ev;
    char *line = event("DELETED", "prod", "web", "uid-9");
    CHECK_EQ_INT(kube_event_parse(line, strlen(line), &ev), 0);
    CHECK_EQ_INT(ev.type, KUBE_EV_DELETED);
    CHECK(ev.pod_ok && ev.pod.deleted);
    CHECK_STR(ev.rv, "42");
    free(line);

    line = event("ADDED", "prod", "web", "uid-9");
    CHECK_EQ_INT(kube_event_parse(line, strlen(line), &ev), 0);
    CHECK(ev.pod_ok && !ev.pod.deleted && ev.pod.has_core && ev.pod.core_limit == 30.0);
    CHECK(!ev.pod.has_weight && strstr(ev.msg, "vgpu.io/weight ignored")); /* "x" */
    free(line);

    const char *gone = "{\"type\":\"ERROR\",\"object\":{\"code\":410,\"message\":\"too old\"}}";
    CHECK_EQ_INT(kube_event_parse(gone, strlen(gone), &ev), 0);
    CHECK(ev.type == KUBE_EV_ERROR && ev.code == 410 && strstr(ev.msg, "too old"));
    const char *bookmark = "{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":"
                           "{\"resourceVersion\":\"77\"}}}";
    CHECK_EQ_INT(kube_event_parse(bookmark, strlen(bookmark), &ev), 0);
    CHECK(ev.type == KUBE_EV_BOOKMARK && !ev.pod_ok && !strcmp(ev.rv, "77"));
    CHECK_EQ_INT(kube_event_parse("{\"type\":1}", 10, &ev), -1);
    CHECK(strstr(ev.msg, "malformed watch event") != NULL);
    CHECK_EQ_INT(kube_event_parse("{\"type\"", 7, &ev), -1);
}

struct seen {
    int n, ok[4];
    char names[4][1024];
};

static void on_item(void *arg, int ok, const struct kube_pod *pod, const char *msg)
{
    struct seen *s = arg;
    if (s->n < 4) {
        s->ok[s->n] = ok;
        snprintf(s->names[s->n], sizeof(s->names[0]), "%s", ok ? pod->name : msg);
    }
    s->n++;
}

UNIT_CASE(pod_list_items_read_one_by_one)
{
    char *name254 = rep('n', 254);
    json_t *items = json_pack("[{s:{s:s,s:s,s:s}}, {s:{s:s,s:s,s:s}}, i]", "metadata", "namespace",
                              "a", "name", "first", "uid", "u1", "metadata", "namespace", "a",
                              "name", name254, "uid", "u2", 7);
    json_t *list =
        json_pack("{s:{s:s}, s:o}", "metadata", "resourceVersion", "100", "items", items);
    char *body = json_dumps(list, 0), rv[256], msg[300];
    struct seen s = {0};
    CHECK_EQ_INT(kube_list_parse(body, strlen(body), on_item, &s, rv, sizeof(rv), msg, sizeof(msg)),
                 0);
    CHECK_EQ_INT(s.n, 3);
    CHECK(s.ok[0] && !strcmp(s.names[0], "first"));
    CHECK(!s.ok[1] && strstr(s.names[1], "metadata.name") && strstr(s.names[1], "254 bytes"));
    CHECK(!s.ok[2] && strstr(s.names[2], "without metadata"));
    CHECK_STR(rv, "100");
    struct seen none = {0};
    CHECK_EQ_INT(kube_list_parse("{\"kind\":\"Status\"}", 17, on_item, &none, rv, sizeof(rv), msg,
                                 sizeof(msg)),
                 -1);
    CHECK(none.n == 0 && strstr(msg, "not a pod list"));
    free(body);
    json_decref(list);
    free(name254);
}
