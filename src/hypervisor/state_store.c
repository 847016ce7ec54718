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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hv_log.h"
#include "registry.h"
#include "state_parse.h"

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
 * The file is checked whole (state_parse.c) before any of it is applied: anything that cannot
 * be applied exactly as written stops the daemon. The file is never changed here; the operator
 * fixes it and starts the daemon again. */

#define STATE_MAX_FILE (64u << 20) /* far more than any node's settings; /dev/zero ends here */

/* The whole file as json_loadfd read it before: up to the end, where a read error also ends
 * it (a directory reads as empty and so is refused as not JSON). NULL when out of memory or
 * larger than STATE_MAX_FILE. */
static char *read_all(int fd, size_t *len)
{
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap);
    for (ssize_t r = 1; buf && r > 0;) {
        if (n == cap) {
            char *more = cap < STATE_MAX_FILE ? realloc(buf, cap * 2) : NULL;
            if (!more) {
                free(buf);
                return NULL;
            }
            buf = more;
            cap *= 2;
        }
        r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            r = 1;
        else if (r > 0)
            n += (size_t)r;
    }
    *len = n;
    return buf;
}

/* One checked pod into the registry (lock held); 0, or -1 with the message in err. */
static int apply_pod(const struct state_pod *sp, const char *path, char *err, size_t errlen)
{
    struct hv_pod *p = registry_pod_get(sp->ns, sp->name);
    int ok = p != NULL;
    if (p) {
        p->suspended = sp->suspended;
        for (int i = 0; ok && i < sp->n; i++) /* cannot fail: at most STATE_MAX_KEYS keys */
            ok = !registry_op_set(p, sp->key[i], &sp->lim[i]);
    }
    if (!ok) {
        char key[HV_KEY_LEN], qkey[400];
        snprintf(key, sizeof(key), "%s/%s", sp->ns, sp->name);
        state_quote(qkey, sizeof(qkey), key);
        snprintf(err, errlen, "--state %s: pods.%s: %s", path, qkey,
                 p ? "too many GPU settings" : "out of memory");
        return -1;
    }
    if (!p->n_op && !p->suspended) registry_pod_maybe_drop(p);
    return 0;
}

int state_load(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) { /* never written: no operator settings yet */
            hv_logf(HV_INFO, "no state file yet", "{s:s}", "path", path);
            return 0;
        }
        snprintf(err, errlen, "--state %s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    size_t len = 0;
    char *text = read_all(fd, &len);
    close(fd);
    if (!text) {
        snprintf(err, errlen, "--state %s: larger than %u MiB or out of memory", path,
                 STATE_MAX_FILE >> 20);
        return -1;
    }
    struct state_doc doc;
    char msg[1024]; /* holds every message of state_parse whole (state_parse.h) */
    int rc = state_parse(text, len, &doc, msg, sizeof(msg));
    free(text);
    if (rc) {
        snprintf(err, errlen, "--state %s: %s", path, msg);
        return -1;
    }
    registry_lock();
    for (size_t i = 0; !rc && i < doc.n_pods; i++)
        rc = apply_pod(&doc.pods[i], path, err, errlen);
    registry_unlock();
    if (!rc)
        hv_logf(HV_INFO, "operator settings loaded", "{s:s, s:i}", "path", path, "pods",
                (int)doc.n_pods);
    state_doc_free(&doc);
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
