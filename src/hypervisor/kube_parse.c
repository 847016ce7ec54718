/* kube_parse.c - pod objects, watch events and pod lists from the Kubernetes API server.
 *
 * Why this exists: see kube_parse.h.
 */
#define _GNU_SOURCE
#include "kube_parse.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "size_parse.h"

/* metadata.<key> of a pod into dst[cap]: 0, or -1 with why it cannot be used in why */
static int pod_field(json_t *md, const char *key, char *dst, size_t cap, char *why, size_t whylen)
{
    json_t *v = json_object_get(md, key);
    const char *s = json_string_value(v);
    size_t n = s ? strlen(s) : 0;
    if (!v)
        snprintf(why, whylen, "metadata.%s is missing", key);
    else if (!s)
        snprintf(why, whylen, "metadata.%s is not a string", key);
    else if (!n)
        snprintf(why, whylen, "metadata.%s is empty", key);
    else if (n >= cap)
        snprintf(why, whylen, "metadata.%s is %zu bytes, longer than the %zu this daemon holds",
                 key, n, cap - 1);
    else {
        memcpy(dst, s, n + 1);
        return 0;
    }
    return -1;
}

/* Annotation text, or NULL when absent; a non-string value is malformed. */
static const char *annotation(json_t *ann, const char *key, int *malformed)
{
    json_t *v = json_object_get(ann, key);
    *malformed = 0;
    if (!v) return NULL;
    if (!json_is_string(v)) {
        *malformed = 1;
        return NULL;
    }
    return json_string_value(v);
}

int kube_pod_parse(json_t *obj, struct kube_pod *p, char *msg, size_t msglen)
{
    memset(p, 0, sizeof(*p));
    msg[0] = 0;
    json_t *md = json_object_get(obj, "metadata");
    if (!json_is_object(md)) {
        snprintf(msg, msglen, "ignoring a pod object without metadata");
        return -1;
    }
    char why[160];
    if (pod_field(md, "namespace", p->ns, sizeof(p->ns), why, sizeof(why)) ||
        pod_field(md, "name", p->name, sizeof(p->name), why, sizeof(why)) ||
        pod_field(md, "uid", p->uid, sizeof(p->uid), why, sizeof(why))) {
        const char *ns = json_string_value(json_object_get(md, "namespace"));
        const char *name = json_string_value(json_object_get(md, "name"));
        const char *uid = json_string_value(json_object_get(md, "uid"));
        snprintf(msg, msglen, "ignoring pod %.300s/%.300s (uid %.100s): %s", ns ? ns : "?",
                 name ? name : "?", uid ? uid : "?", why);
        memset(p, 0, sizeof(*p));
        return -1;
    }
    json_t *ann = json_object_get(md, "annotations");
    if (!json_is_object(ann)) return 0;

    static const char *keys[] = {"vgpu.io/core-limit", "vgpu.io/mem-limit", "vgpu.io/weight",
                                 "vgpu.io/soft"};
    for (int i = 0; i < 4; i++) {
        int bad = 0;
        char err[256] = "";
        const char *text = annotation(ann, keys[i], &bad);
        if (bad) {
            snprintf(err, sizeof(err), "not a string");
        } else if (!text) {
            continue;
        } else if (i == 0) {
            bad = vgpu_parse_percent(text, &p->core_limit, err, sizeof(err)) != 0;
            p->has_core = !bad;
        } else if (i == 1) {
            bad = vgpu_parse_size(text, &p->mem_limit, err, sizeof(err)) != 0;
            p->has_mem = !bad;
        } else if (i == 2) {
            char *end = NULL;
            errno = 0;
            unsigned long v = strtoul(text, &end, 10);
            bad = errno || end == text || *end || text[0] == '-' || text[0] == '+' || v < 1 ||
                  v > 10000;
            if (bad)
                snprintf(err, sizeof(err), "'%s' is not an integer in 1..10000", text);
            else
                p->weight = (uint32_t)v, p->has_weight = 1;
        } else {
            bad = vgpu_parse_bool(text, &p->soft, err, sizeof(err)) != 0;
            p->has_soft = !bad;
        }
        if (bad) {
            size_t used = strlen(msg);
            snprintf(msg + used, msglen - used, "pod %s/%s: annotation %s ignored: %s\n", p->ns,
                     p->name, keys[i], err);
        }
    }
    return 0;
}

/* metadata.resourceVersion of obj into rv[cap]; "" when absent, not a string or too long */
static void object_rv(json_t *obj, char *rv, size_t cap)
{
    const char *s =
        json_string_value(json_object_get(json_object_get(obj, "metadata"), "resourceVersion"));
    rv[0] = 0;
    if (s && strlen(s) < cap) memcpy(rv, s, strlen(s) + 1);
}

int kube_event_parse(const char *line, size_t len, struct kube_event *ev)
{
    memset(ev, 0, sizeof(*ev));
    json_error_t jerr;
    json_t *j = json_loadb(line, len, 0, &jerr);
    const char *type = json_string_value(json_object_get(j, "type"));
    json_t *obj = json_object_get(j, "object");
    if (!type || !json_is_object(obj)) {
        snprintf(ev->msg, sizeof(ev->msg), "ignoring a malformed watch event (%s)",
                 j ? "no type or object" : jerr.text);
        json_decref(j);
        return -1;
    }
    object_rv(obj, ev->rv, sizeof(ev->rv));
    if (strcmp(type, "ADDED") == 0 || strcmp(type, "MODIFIED") == 0 ||
        strcmp(type, "DELETED") == 0) {
        ev->type = type[0] == 'A'   ? KUBE_EV_ADDED
                   : type[0] == 'M' ? KUBE_EV_MODIFIED
                                    : KUBE_EV_DELETED;
        ev->pod_ok = kube_pod_parse(obj, &ev->pod, ev->msg, sizeof(ev->msg)) == 0;
        if (ev->pod_ok) ev->pod.deleted = ev->type == KUBE_EV_DELETED;
    } else if (strcmp(type, "BOOKMARK") == 0) {
        ev->type = KUBE_EV_BOOKMARK;
    } else if (strcmp(type, "ERROR") == 0) {
        const char *m = json_string_value(json_object_get(obj, "message"));
        ev->type = KUBE_EV_ERROR;
        ev->code = json_integer_value(json_object_get(obj, "code"));
        snprintf(ev->msg, sizeof(ev->msg), "watch error %lld: %s", ev->code,
                 m ? m : "(no message)");
    } else {
        ev->type = KUBE_EV_OTHER;
    }
    json_decref(j);
    return 0;
}

int kube_list_parse(const char *body, size_t len, kube_item_fn fn, void *arg, char *rv,
                    size_t rvlen, char *msg, size_t msglen)
{
    json_error_t jerr;
    json_t *list = json_loadb(body ? body : "", body ? len : 0, 0, &jerr);
    json_t *items = json_object_get(list, "items");
    msg[0] = 0;
    if (!json_is_array(items)) {
        snprintf(msg, msglen, "not a pod list (%s)", list ? "no items" : jerr.text);
        json_decref(list);
        return -1;
    }
    size_t i;
    json_t *item;
    json_array_foreach(items, i, item)
    {
        struct kube_pod p;
        char m[2048];
        int ok = kube_pod_parse(item, &p, m, sizeof(m)) == 0;
        fn(arg, ok, &p, m);
    }
    object_rv(list, rv, rvlen);
    json_decref(list);
    return 0;
}
