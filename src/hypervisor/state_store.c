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
#include <pthread.h>
#include <fcntl.h>
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

static int limits_from(json_t *o, struct hv_limits *l)
{
    memset(l, 0, sizeof(*l));
    json_t *v;
    if ((v = json_object_get(o, "core_limit")) && json_is_number(v) && json_number_value(v) > 0 &&
        json_number_value(v) <= 100)
        l->has |= HV_HAS_CORE, l->core = json_number_value(v);
    if ((v = json_object_get(o, "mem_limit")) && json_is_integer(v) && json_integer_value(v) >= 0)
        l->has |= HV_HAS_MEM, l->mem = (uint64_t)json_integer_value(v);
    if ((v = json_object_get(o, "weight")) && json_is_integer(v) && json_integer_value(v) >= 1 &&
        json_integer_value(v) <= 10000)
        l->has |= HV_HAS_WEIGHT, l->weight = (uint32_t)json_integer_value(v);
    if ((v = json_object_get(o, "soft")) && json_is_boolean(v))
        l->has |= HV_HAS_SOFT, l->soft = json_is_true(v);
    return l->has ? 0 : -1;
}

int state_load(const char *path)
{
    json_error_t e;
    json_t *root = json_load_file(path, 0, &e);
    if (!root) {
        if (access(path, F_OK) && errno == ENOENT) return 0;
        /* kept aside: the next change would otherwise overwrite the operator's settings */
        char bad[600];
        snprintf(bad, sizeof(bad), "%s.bad", path);
        int kept = !rename(path, bad);
        hv_logf(HV_ERROR, "state file unreadable; starting without operator settings",
                "{s:s, s:s, s:i, s:s}", "path", path, "error", e.text, "line", e.line, "kept_as",
                kept ? bad : "");
        return -1;
    }
    json_t *pods = json_object_get(root, "pods");
    const char *key;
    json_t *pv;
    int n = 0;
    registry_lock();
    json_object_foreach(pods, key, pv)
    {
        const char *slash = strchr(key, '/');
        if (!slash || slash == key || !slash[1] || !json_is_object(pv)) continue;
        char ns[64];
        snprintf(ns, sizeof(ns), "%.*s", (int)(slash - key), key);
        struct hv_pod *p = registry_pod_get(ns, slash + 1);
        if (!p) continue;
        p->suspended = json_is_true(json_object_get(pv, "suspended"));
        const char *gk;
        json_t *lv;
        json_object_foreach(json_object_get(pv, "limits"), gk, lv)
        {
            struct hv_limits l;
            if (strlen(gk) < VGPU_UUID_LEN && !limits_from(lv, &l)) registry_op_set(p, gk, &l);
        }
        if (!p->n_op && !p->suspended)
            registry_pod_maybe_drop(p);
        else
            n++;
    }
    registry_unlock();
    json_decref(root);
    hv_logf(HV_INFO, "operator settings loaded", "{s:s, s:i}", "path", path, "pods", n);
    return 0;
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
