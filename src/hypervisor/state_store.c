/* state_store.c - persist operator settings to --state as JSON.
 *
 * Why this exists: see state_store.h. Format:
 *   {"version": 1, "pods": {"ns/name": {"suspended": false,
 *       "limits": {"all": {"core_limit": 30.0, "mem_limit": 4294967296, "weight": 2,
 *                          "soft": true}, "gpu-...": {...}, "0": {...}}}}}
 */
#define _GNU_SOURCE
#include "state_store.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hv_log.h"
#include "registry.h"

static json_t *limits_json(const struct hv_limits *l)
{
    json_t *o = json_object();
    if (l->has & HV_HAS_CORE) json_object_set_new(o, "core_limit", json_real(l->core));
    if (l->has & HV_HAS_MEM) json_object_set_new(o, "mem_limit", json_integer((json_int_t)l->mem));
    if (l->has & HV_HAS_WEIGHT) json_object_set_new(o, "weight", json_integer(l->weight));
    if (l->has & HV_HAS_SOFT) json_object_set_new(o, "soft", json_boolean(l->soft));
    return o;
}

/* --- loading ----------------------------------------------------------------------------------
 *
 * Every value in the file is an operator's setting. So the file is checked whole before any of
 * it is applied, and anything that cannot be applied exactly as written (a bad value, an unknown
 * field, a key that names no pod or GPU, a file that does not parse) stops the daemon: a daemon
 * that started without a setting would silently give a pod more than its operator allowed.
 * The file is never changed here; the operator fixes it and starts the daemon again. */

struct load_err {
    char *buf;
    size_t len;
    const char *path;
};

/* "--state PATH: WHERE[.SUB]: why" into e; returns -1. WHERE "" names the file itself. */
static int fail(struct load_err *e, const char *where, const char *sub, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(struct load_err *e, const char *where, const char *sub, const char *fmt, ...)
{
    char why[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    snprintf(e->buf, e->len, "--state %s: %s%s%s%s%s", e->path, where, sub ? "." : "",
             sub ? sub : "", *where ? ": " : "", why);
    return -1;
}

/* `s` as a JSON string for messages: quotes, backslashes and control bytes escaped. What does
 * not fit in n bytes is cut at a character's start and shown as "..."; with n >= 400 every pod
 * key the daemon accepts fits unless it is full of escapes. The file's strings are valid UTF-8
 * (jansson refuses anything else), so characters are never split. */
static void quote(char *out, size_t n, const char *s)
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

/* A namespace or pod name as the operator API accepts it in a path (http_api.c, valid_segment):
 * 1 to max-1 bytes, no control bytes, spaces or '/', not "." or "..". Kept in step by hand:
 * a pod the API can name must load, and nothing else can be in a file the daemon wrote. */
static int segment_ok(const char *s, size_t n, size_t max)
{
    if (!n || n >= max || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x21 || s[i] == 0x7f || s[i] == '/') return 0;
    return 1;
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
    return registry_norm_uuid(in, out, n);
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
            quote(qk, sizeof(qk), k);
            return fail(e, where, qk, "unknown field (core_limit, mem_limit, weight, soft)");
        }
    }
    if (!l->has)
        return fail(e, where, NULL, "no limit given (core_limit, mem_limit, weight, soft)");
    return 0;
}

/* One pod: check it (apply = 0) or put it into the registry (apply = 1, after every pod
 * passed). Returns 0, or -1 with the message in e. */
static int load_pod(const char *key, json_t *pv, int apply, struct load_err *e)
{
    char qkey[400], where[408], at[600];
    quote(qkey, sizeof(qkey), key);
    snprintf(where, sizeof(where), "pods.%s", qkey);
    const char *slash = strchr(key, '/');
    if (!slash) return fail(e, where, NULL, "must be \"namespace/name\"");
    if (!segment_ok(key, (size_t)(slash - key), 64))
        return fail(e, where, NULL,
                    "the namespace must be 1-63 bytes without spaces, control characters or "
                    "'/', and not \".\" or \"..\"");
    if (!segment_ok(slash + 1, strlen(slash + 1), 254))
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
            quote(qk, sizeof(qk), k);
            return fail(e, where, qk, "unknown field (suspended, limits)");
        }
    }
    if (susp && !json_is_boolean(susp)) return fail(e, where, "suspended", "must be true or false");
    if (limits && !json_is_object(limits)) return fail(e, where, "limits", "must be an object");
    char keys[HV_MAX_GPUS + 1][VGPU_UUID_LEN];
    const char *as_written[HV_MAX_GPUS + 1];
    struct hv_limits lim[HV_MAX_GPUS + 1];
    int n = 0;
    json_object_foreach(limits, k, v)
    {
        char qk[128], gk[VGPU_UUID_LEN];
        quote(qk, sizeof(qk), k);
        snprintf(at, sizeof(at), "%s.limits.%s", where, qk);
        if (gpu_key(k, gk, sizeof(gk)))
            return fail(e, at, NULL,
                        "not a GPU: \"all\", an index 0-1023 or a GPU uuid (\"GPU-...\")");
        for (int i = 0; i < n; i++)
            if (!strcmp(keys[i], gk))
                return fail(e, at, NULL, "the same GPU as the key \"%.64s\"", as_written[i]);
        if (n >= HV_MAX_GPUS + 1)
            return fail(e, at, NULL, "more than %d GPU settings for one pod", HV_MAX_GPUS + 1);
        if (limits_from(v, &lim[n], at, e)) return -1;
        as_written[n] = k;
        memcpy(keys[n++], gk, sizeof(gk));
    }
    if (!apply) return 0;
    char ns[64];
    snprintf(ns, sizeof(ns), "%.*s", (int)(slash - key), key); /* fits: checked above */
    struct hv_pod *p = registry_pod_get(ns, slash + 1);
    if (!p) return fail(e, where, NULL, "out of memory");
    p->suspended = susp && json_is_true(susp);
    for (int i = 0; i < n; i++) /* cannot fail: at most HV_MAX_GPUS + 1 distinct keys */
        if (registry_op_set(p, keys[i], &lim[i]))
            return fail(e, where, NULL, "too many GPU settings");
    if (!p->n_op && !p->suspended) registry_pod_maybe_drop(p);
    return 0;
}

int state_load(const char *path, char *err, size_t errlen)
{
    struct load_err e = {.buf = err, .len = errlen, .path = path};
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) { /* never written: no operator settings yet */
            hv_logf(HV_INFO, "no state file yet", "{s:s}", "path", path);
            return 0;
        }
        return fail(&e, "", NULL, "cannot open: %s", strerror(errno));
    }
    json_error_t je;
    /* duplicate keys: one of two settings would be dropped without a word */
    json_t *root = json_loadfd(fd, JSON_REJECT_DUPLICATES, &je);
    close(fd);
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
            quote(qk, sizeof(qk), k);
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
    for (int apply = 0; apply < 2; apply++) {
        if (apply) registry_lock();
        json_object_foreach(pods, k, v)
        {
            if (load_pod(k, v, apply, &e)) {
                if (apply) registry_unlock();
                goto out;
            }
        }
        if (apply) registry_unlock();
    }
    hv_logf(HV_INFO, "operator settings loaded", "{s:s, s:i}", "path", path, "pods",
            (int)json_object_size(pods));
    rc = 0;
out:
    json_decref(root);
    return rc;
}

static int mkdirs(const char *path)
{
    char dir[512];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir) return 0;
    *slash = 0;
    for (char *s = dir + 1; *s; s++)
        if (*s == '/') {
            *s = 0;
            mkdir(dir, 0755);
            *s = '/';
        }
    return mkdir(dir, 0755) && errno != EEXIST ? -1 : 0;
}

/* Writers take this while still holding the registry lock and release it after the file is
 * on disk: snapshots reach the disk in the order they were taken, and the disk work (fsync)
 * happens with the registry free. Lock order: registry, then writer. */
static pthread_mutex_t writer = PTHREAD_MUTEX_INITIALIZER;

json_t *state_snapshot(void)
{
    json_t *pods = json_object();
    for (const struct hv_pod *p = hv_reg.pods; p; p = p->next) {
        if (!p->n_op && !p->suspended) continue;
        json_t *lim = json_object();
        for (int i = 0; i < p->n_op; i++)
            json_object_set_new(lim, p->op[i].key, limits_json(&p->op[i].l));
        json_object_set_new(pods, p->key,
                            json_pack("{s:b, s:o}", "suspended", p->suspended, "limits", lim));
    }
    json_t *root = json_pack("{s:i, s:o}", "version", 1, "pods", pods);
    pthread_mutex_lock(&writer);
    return root;
}

int state_write(const char *path, json_t *root)
{
    char tmp[600];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    int ret = -1;
    mkdirs(path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd >= 0) {
        ret = json_dumpfd(root, fd, JSON_INDENT(1) | JSON_SORT_KEYS);
        if (!ret) ret = write(fd, "\n", 1) == 1 ? 0 : -1;
        if (!ret) ret = fsync(fd);
        if (close(fd)) ret = -1;
        if (!ret) ret = rename(tmp, path);
        if (ret) unlink(tmp);
    }
    if (!ret) { /* the rename itself survives a power loss only once its directory is synced */
        char dir[600];
        snprintf(dir, sizeof(dir), "%s", path);
        char *slash = strrchr(dir, '/');
        if (slash) *slash = 0;
        int dfd = open(slash ? (dir[0] ? dir : "/") : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
    }
    if (ret)
        hv_logf(HV_ERROR, "cannot write the state file", "{s:s, s:s}", "path", path, "error",
                strerror(errno));
    json_decref(root);
    pthread_mutex_unlock(&writer);
    return ret;
}
