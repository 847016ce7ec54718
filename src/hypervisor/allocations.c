/* allocations.c - regions of device-plugin allocations (see allocations.h).
 *
 * Why this exists: the device plugin needs a region per allocation before a container starts.
 * A fresh directory "a-<16 random hex digits>" is made by pod_files_open (so it is made like
 * every pod's, owned by the daemon, no symlink followed), its control region written with the
 * allocation's limits as region_apply (pod_regions.c) writes a hard limit: mem_limit in bytes
 * (VGPU_UNLIMITED for none), core_limit and core_effective in hundredths of a percent, no soft
 * floor, weight 1; and the grant itself (grant.json: GPU, limits and the unit numbers of the
 * kubelet's device IDs) beside it, for the registration of the container's processes.
 *
 * Lifetime: the kubelet mounts the directory into every start of the container (it calls
 * Allocate once per container of a pod, and a restarted container gets the same answer), so
 * the directory outlives the container's processes. It is retired when the kubelet gives one
 * of its units to a new allocation: the kubelet only does so once the pod that held the unit is
 * no longer active, so the old directory can never be mounted again. The number of allocation
 * directories is thereby bounded by the number of units the node lists.
 */
#define _GNU_SOURCE
#include "allocations.h"

#include <ctype.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <jansson.h>

#include "ctl_region.h"
#include "hv_log.h"
#include "names.h"
#include "pod_files.h"
#include "registry.h"
#include "shm_region.h"

#define GRANT_FILE "grant.json"

#define GRANT_MAX 65536     /* grant.json: room for every unit of a large GPU at 1 GiB */
#define ALLOC_DIRS_MAX 8192 /* allocation directories looked at per allocation */

/* The grant in `name`, with its unit numbers when `units` is not NULL (malloc'ed, *nunits). */
static int grant_load(const char *name, struct alloc_grant *g, int **units, size_t *nunits)
{
    memset(g, 0, sizeof(*g));
    if (units) *units = NULL, *nunits = 0;
    char *text = malloc(GRANT_MAX);
    if (!text || strncmp(name, "a-", 2) != 0 ||
        pod_files_meta_read(name, GRANT_FILE, text, GRANT_MAX)) {
        free(text);
        return -1;
    }
    /* the daemon's own file, read with the checks of any input all the same */
    json_error_t e;
    json_t *o = json_loads(text, JSON_REJECT_DUPLICATES, &e);
    free(text);
    json_t *gpu = json_object_get(o, "gpu"), *mem = json_object_get(o, "mem_bytes"),
           *cores = json_object_get(o, "cores"), *u = json_object_get(o, "units");
    int ok = json_is_object(o) && json_is_string(gpu) &&
             hv_norm_uuid(json_string_value(gpu), g->uuid, sizeof(g->uuid)) == 0 &&
             json_is_integer(mem) && json_integer_value(mem) >= 0 && json_is_integer(cores) &&
             json_integer_value(cores) >= 0 && json_integer_value(cores) <= 100 &&
             (!u || json_is_array(u));
    if (ok) {
        g->mem_bytes = (uint64_t)json_integer_value(mem);
        g->cores = (int)json_integer_value(cores);
    }
    size_t nu = ok && u ? json_array_size(u) : 0;
    if (ok && units && nu && (*units = malloc(nu * sizeof(int)))) {
        for (size_t i = 0; i < nu; i++) {
            json_t *x = json_array_get(u, i);
            long long v = json_is_integer(x) ? json_integer_value(x) : -1;
            if (v < 0 || v >= ALLOC_UNIT_MAX) continue;
            (*units)[(*nunits)++] = (int)v;
        }
    }
    json_decref(o);
    return ok ? 0 : -1;
}

struct names {
    char (*v)[POD_FILES_NAME_LEN];
    int n, cap;
};

static void collect(const char *name, void *arg)
{
    struct names *l = arg;
    if (l->n < l->cap) snprintf(l->v[l->n++], POD_FILES_NAME_LEN, "%s", name);
}

/* Retire every allocation on `uuid` of the same resource that holds one of `units`: the kubelet
 * has given those units to a new allocation, so their pod is gone. A directory whose processes
 * still run goes with its last process (reported: the kubelet should not do that): a pod's
 * limits are never pulled from under it. Registry lock held. */
static void retire_overlapping(const char *uuid, int is_mem, const int *units, size_t nunits)
{
    int top = 0;
    for (size_t i = 0; i < nunits; i++)
        if (units[i] >= top) top = units[i] + 1;
    unsigned char *mine = calloc((size_t)top + 1, 1);
    struct names l = {calloc(ALLOC_DIRS_MAX, POD_FILES_NAME_LEN), 0, ALLOC_DIRS_MAX};
    if (!mine || !l.v) goto out;
    for (size_t i = 0; i < nunits; i++)
        mine[units[i]] = 1;
    pod_files_each("a-", ALLOC_DIRS_MAX, collect, &l);
    for (int i = 0; i < l.n; i++) {
        struct alloc_grant g;
        int *theirs = NULL, hit = 0;
        size_t nt = 0;
        if (grant_load(l.v[i], &g, &theirs, &nt) == 0 && !strcmp(g.uuid, uuid) &&
            (g.mem_bytes != 0) == is_mem)
            for (size_t k = 0; k < nt && !hit; k++)
                hit = theirs[k] < top && mine[theirs[k]];
        free(theirs);
        if (!hit) continue;
        if (registry_dir_release(l.v[i]) != 0) {
            hv_logf(HV_WARN,
                    "device plugin: units given again while their pod still runs; its region "
                    "goes with its last process",
                    "{s:s, s:s}", "dir", l.v[i], "gpu", uuid);
            continue;
        }
        pod_files_remove(l.v[i]);
        hv_logf(HV_INFO, "device plugin: allocation retired (its units were given again)",
                "{s:s, s:s}", "dir", l.v[i], "gpu", uuid);
    }
out:
    free(mine);
    free(l.v);
}

int alloc_region_make(const char *gpu_uuid, uint64_t mem_bytes, int cores, const int *units,
                      size_t nunits, char *dir_out, size_t n, char *err, size_t errlen)
{
    char uuid[VGPU_UUID_LEN];
    size_t ul = strlen(gpu_uuid);
    if (!ul || ul >= sizeof(uuid) || cores < 0 || cores > 100) {
        snprintf(err, errlen, "bad allocation (GPU '%.64s', %d%% of its time)", gpu_uuid, cores);
        return -1;
    }
    for (size_t i = 0; i <= ul; i++) /* the control region's uuids are lower case */
        uuid[i] = (char)tolower((unsigned char)gpu_uuid[i]);
    unsigned char b[8];
    if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b)) {
        snprintf(err, errlen, "no random bytes for an allocation id: %s", strerror(errno));
        return -1;
    }
    char id[17], name[POD_FILES_NAME_LEN], key[32];
    for (int i = 0; i < 8; i++)
        snprintf(id + 2 * i, 3, "%02x", b[i]);
    snprintf(name, sizeof(name), "a-%s", id);
    snprintf(key, sizeof(key), "alloc/%s", id);
    for (size_t i = 0; i < nunits; i++)
        if (units[i] < 0 || units[i] >= ALLOC_UNIT_MAX) {
            snprintf(err, errlen, "bad allocation (unit %d)", units[i]);
            return -1;
        }
    json_t *gj = json_pack("{s:s, s:I, s:i, s:[]}", "gpu", uuid, "mem_bytes", (json_int_t)mem_bytes,
                           "cores", cores, "units");
    for (size_t i = 0; gj && i < nunits; i++)
        json_array_append_new(json_object_get(gj, "units"), json_integer(units[i]));
    char *grant = gj ? json_dumps(gj, JSON_COMPACT) : NULL;
    json_decref(gj);
    if (!grant || strlen(grant) + 2 > GRANT_MAX) {
        free(grant);
        snprintf(err, errlen, "cannot record the grant of %zu units", nunits);
        return -1;
    }
    struct pod_files f;
    registry_lock(); /* pod_files.h: its functions run under the registry lock */
    retire_overlapping(uuid, mem_bytes != 0, units, nunits);
    int r = pod_files_open(name, key, POD_FILES_UID_ANY, 0, &f, err, errlen);
    if (r == 0) {
        struct vgpu_ctl *c = f.ctl;
        int d = vgpu_ctl_dev_find(c, uuid);
        if (d < 0)
            for (d = 0; d < VGPU_MAX_DEVICES && atomic_load(&c->dev[d].state) != VGPU_DEV_EMPTY;)
                d++;
        if (d >= VGPU_MAX_DEVICES) {
            snprintf(err, errlen, "pods/%s: no free GPU entry in its control region", name);
            r = -1;
        } else {
            struct vgpu_ctl_dev *v = &c->dev[d];
            uint32_t share = (uint32_t)cores * 100u; /* hundredths of a percent */
            if (atomic_load(&v->state) != VGPU_DEV_READY) {
                memset(v->uuid, 0, sizeof(v->uuid));
                memcpy(v->uuid, uuid, ul + 1);
            }
            /* the limits before READY: a reader never sees the GPU without them */
            atomic_store(&v->lim.mem_limit, mem_bytes ? mem_bytes : VGPU_UNLIMITED);
            atomic_store(&v->lim.core_soft, 0u);
            atomic_store(&v->lim.core_limit, share);
            atomic_store(&v->lim.weight, 1u);
            atomic_store(&v->lim.core_effective, share);
            atomic_store_explicit(&v->state, VGPU_DEV_READY, memory_order_release);
            atomic_store(&c->managed_ns, vgpu_now_ns());
        }
        pod_files_close(&f);
        if (r == 0 && pod_files_meta_write(name, GRANT_FILE, grant) != 0) {
            snprintf(err, errlen, "pods/%s: cannot write its grant", name);
            r = -1;
        }
        if (r != 0) pod_files_remove(name);
    }
    registry_unlock();
    free(grant);
    if (r != 0) return -1;
    snprintf(dir_out, n, "pods/%s", name);
    return 0;
}

int alloc_grant_read(const char *name, struct alloc_grant *g)
{
    return grant_load(name, g, NULL, NULL);
}
