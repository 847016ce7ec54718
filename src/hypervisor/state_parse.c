/* state_parse.c - the checking of the state file (state_parse.h).
 *
 * Why this exists: state_store.c checked the file while putting it into the registry; the
 * checks are moved here unchanged (the same messages, the same accepted files) as a pure
 * function, which state_load calls and a fuzz harness can run.
 *
 * Every value in the file is an operator's setting. So the file is checked whole before any of
 * it is applied, and anything that cannot be applied exactly as written (a bad value, an unknown
 * field, a key that names no pod or GPU, a file that does not parse) stops the daemon: a daemon
 * that started without a setting would silently give a pod more than its operator allowed.
 */
#include "state_parse.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct load_err {
    char *buf;
    size_t len;
};

/* "WHERE[.SUB]: why" into e; returns -1. WHERE "" names the file itself: "why". */
static int fail(struct load_err *e, const char *where, const char *sub, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(struct load_err *e, const char *where, const char *sub, const char *fmt, ...)
{
    char why[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    snprintf(e->buf, e->len, "%s%s%s%s%s", where, sub ? "." : "", sub ? sub : "",
             *where ? ": " : "", why);
    return -1;
}

/* `s` as a JSON string for messages: quotes, backslashes and control bytes escaped. What does
 * not fit in n bytes is cut at a character's start and shown as "..."; with n >= 400 every pod
 * key the daemon accepts fits unless it is full of escapes. The file's strings are valid UTF-8
 * (jansson refuses anything else), so characters are never split. */
void state_quote(char *out, size_t n, const char *s)
{
    size_t k = 0;
    out[k++] = '"';
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        /* before each character: room for the longest escape (6) and then `..."` and NUL (5);
         * a character is at most 4 bytes, so after it `..."` and NUL still fit */
        if ((ch & 0xc0) != 0x80 && k + 11 > n) {
            memcpy(out + k, "...", 3);
            k += 3;
            break;
        }
        if (ch == '"' || ch == '\\')
            k += (size_t)snprintf(out + k, n - k, "\\%c", ch);
        else if (ch < 0x20 || ch == 0x7f)
            k += (size_t)snprintf(out + k, n - k, "\\u%04x", ch);
        else
            out[k++] = (char)ch;
    }
    out[k++] = '"';
    out[k] = 0;
}

/* A GPU key as PUT /v1/pods/.../limits makes it: "all", an index 0-1023 in decimal without
 * leading zeros, or a GPU uuid (put into its normal form, the one GPUs are matched by).
 * 0, or -1 when it is none of these. */
static int gpu_key(const char *in, char *out, size_t n)
{
    if (!strcmp(in, "all")) {
        snprintf(out, n, "all");
        return 0;
    }
    size_t len = strlen(in);
    if (len && len <= 4 && strspn(in, "0123456789") == len) {
        long v = strtol(in, NULL, 10);
        if ((len > 1 && in[0] == '0') || v > 1023) return -1;
        snprintf(out, n, "%ld", v);
        return 0;
    }
    return hv_norm_uuid(in, out, n);
}

/* One entry of a pod's "limits": exactly the fields state_snapshot writes, each valid. */
static int limits_from(json_t *o, struct hv_limits *l, const char *where, struct load_err *e)
{
    memset(l, 0, sizeof(*l));
    if (!json_is_object(o)) return fail(e, where, NULL, "must be an object");
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        if (!strcmp(k, "core_limit")) {
            double c = json_is_number(v) ? json_number_value(v) : -1;
            if (!(c > 0 && c <= 100)) return fail(e, where, k, "must be a percentage in (0, 100]");
            l->core = c;
            l->has |= HV_HAS_CORE;
        } else if (!strcmp(k, "mem_limit")) {
            if (!json_is_integer(v) || json_integer_value(v) < 0)
                return fail(e, where, k, "must be bytes, an integer >= 0 (0 = no cap)");
            l->mem = (uint64_t)json_integer_value(v);
            l->has |= HV_HAS_MEM;
        } else if (!strcmp(k, "weight")) {
            if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 10000)
                return fail(e, where, k, "must be an integer from 1 to 10000");
            l->weight = (uint32_t)json_integer_value(v);
            l->has |= HV_HAS_WEIGHT;
        } else if (!strcmp(k, "soft")) {
            if (!json_is_boolean(v)) return fail(e, where, k, "must be true or false");
            l->soft = json_is_true(v);
            l->has |= HV_HAS_SOFT;
        } else {
            char qk[128];
            state_quote(qk, sizeof(qk), k);
            return fail(e, where, qk, "unknown field (core_limit, mem_limit, weight, soft)");
        }
    }
    if (!l->has)
        return fail(e, where, NULL, "no limit given (core_limit, mem_limit, weight, soft)");
    return 0;
}

/* One pod "key": pv into p. Returns 0, or -1 with the message in e. */
static int load_pod(const char *key, json_t *pv, struct state_pod *p, struct load_err *e)
{
    char qkey[400], where[408], at[600];
    state_quote(qkey, sizeof(qkey), key);
    snprintf(where, sizeof(where), "pods.%s", qkey);
    const char *slash = strchr(key, '/');
    if (!slash) return fail(e, where, NULL, "must be \"namespace/name\"");
    if (!hv_name_ok(key, (size_t)(slash - key), sizeof(p->ns)))
        return fail(e, where, NULL,
                    "the namespace must be 1-63 bytes without spaces, control characters or "
                    "'/', and not \".\" or \"..\"");
    if (!hv_name_ok(slash + 1, strlen(slash + 1), sizeof(p->name)))
        return fail(e, where, NULL,
                    "the name must be 1-253 bytes without spaces, control characters or '/', "
                    "and not \".\" or \"..\"");
    if (!json_is_object(pv)) return fail(e, where, NULL, "must be an object");
    json_t *susp = NULL, *limits = NULL, *v;
    const char *k;
    json_object_foreach(pv, k, v)
    {
        if (!strcmp(k, "suspended"))
            susp = v;
        else if (!strcmp(k, "limits"))
            limits = v;
        else {
            char qk[128];
            state_quote(qk, sizeof(qk), k);
            return fail(e, where, qk, "unknown field (suspended, limits)");
        }
    }
    if (susp && !json_is_boolean(susp)) return fail(e, where, "suspended", "must be true or false");
    if (limits && !json_is_object(limits)) return fail(e, where, "limits", "must be an object");
    const char *as_written[STATE_MAX_KEYS];
    int n = 0;
    json_object_foreach(limits, k, v)
    {
        char qk[128], gk[VGPU_UUID_LEN];
        state_quote(qk, sizeof(qk), k);
        snprintf(at, sizeof(at), "%s.limits.%s", where, qk);
        if (gpu_key(k, gk, sizeof(gk)))
            return fail(e, at, NULL,
                        "not a GPU: \"all\", an index 0-1023 or a GPU uuid (\"GPU-...\")");
        for (int i = 0; i < n; i++)
            if (!strcmp(p->key[i], gk))
                return fail(e, at, NULL, "the same GPU as the key \"%.64s\"", as_written[i]);
        if (n >= STATE_MAX_KEYS)
            return fail(e, at, NULL, "more than %d GPU settings for one pod", STATE_MAX_KEYS);
        if (limits_from(v, &p->lim[n], at, e)) return -1;
        as_written[n] = k;
        memcpy(p->key[n++], gk, sizeof(gk));
    }
    /* both fit: checked above */
    snprintf(p->ns, sizeof(p->ns), "%.*s", (int)(slash - key), key);
    snprintf(p->name, sizeof(p->name), "%s", slash + 1);
    p->suspended = susp && json_is_true(susp);
    p->n = n;
    return 0;
}

int state_parse(const char *text, size_t len, struct state_doc *out, char *err, size_t errlen)
{
    struct load_err e = {.buf = err, .len = errlen};
    memset(out, 0, sizeof(*out));
    json_error_t je;
    /* duplicate keys: one of two settings would be dropped without a word */
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) return fail(&e, "", NULL, "line %d column %d: %s", je.line, je.column, je.text);
    int rc = -1;
    json_t *pods = NULL, *version = NULL, *v;
    const char *k;
    if (!json_is_object(root)) {
        fail(&e, "", NULL, "must be a JSON object {\"version\": 1, \"pods\": {...}}");
        goto out;
    }
    json_object_foreach(root, k, v)
    {
        if (!strcmp(k, "version"))
            version = v;
        else if (!strcmp(k, "pods"))
            pods = v;
        else {
            char qk[128];
            state_quote(qk, sizeof(qk), k);
            fail(&e, qk, NULL, "unknown field (version, pods)");
            goto out;
        }
    }
    if (!version || !json_is_integer(version) || json_integer_value(version) != 1) {
        fail(&e, "version", NULL, "must be 1 (the only format this daemon reads)");
        goto out;
    }
    if (pods && !json_is_object(pods)) {
        fail(&e, "pods", NULL, "must be an object");
        goto out;
    }
    out->pods = calloc(json_object_size(pods) + 1, sizeof(*out->pods));
    if (!out->pods) {
        fail(&e, "pods", NULL, "out of memory");
        goto out;
    }
    json_object_foreach(pods, k, v)
    {
        if (load_pod(k, v, &out->pods[out->n_pods], &e)) goto out;
        out->n_pods++;
    }
    rc = 0;
out:
    json_decref(root);
    if (rc) state_doc_free(out);
    return rc;
}

void state_doc_free(struct state_doc *doc)
{
    free(doc->pods);
    doc->pods = NULL;
    doc->n_pods = 0;
}
