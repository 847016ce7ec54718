/* allocations.c - regions of device-plugin allocations (see allocations.h).
 *
 * Why this exists: the device plugin needs a region per allocation before a container starts.
 * This is the minimal version: a fresh directory "a-<16 random hex digits>" made by
 * pod_files_open (so it is made like every pod's, owned by the daemon, no symlink followed),
 * its control region written with the allocation's limits as region_apply (pod_regions.c)
 * writes a hard limit: mem_limit in bytes (VGPU_UNLIMITED for none), core_limit and
 * core_effective in hundredths of a percent, no soft floor, weight 1; and the grant itself
 * (grant.json) beside it, for the registration of the container's processes. Nothing here
 * retires a region yet.
 */
#define _GNU_SOURCE
#include "allocations.h"

#include <ctype.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include <jansson.h>

#include "ctl_region.h"
#include "names.h"
#include "pod_files.h"
#include "registry.h"
#include "shm_region.h"

#define GRANT_FILE "grant.json"

int alloc_region_make(const char *gpu_uuid, uint64_t mem_bytes, int cores, char *dir_out, size_t n,
                      char *err, size_t errlen)
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
    struct pod_files f;
    registry_lock(); /* pod_files.h: its functions run under the registry lock */
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
        char grant[256];
        snprintf(grant, sizeof(grant), "{\"gpu\": \"%s\", \"mem_bytes\": %llu, \"cores\": %d}\n",
                 uuid, (unsigned long long)mem_bytes, cores);
        if (r == 0 && pod_files_meta_write(name, GRANT_FILE, grant) != 0) {
            snprintf(err, errlen, "pods/%s: cannot write its grant", name);
            r = -1;
        }
        if (r != 0) pod_files_remove(name);
    }
    registry_unlock();
    if (r != 0) return -1;
    snprintf(dir_out, n, "pods/%s", name);
    return 0;
}

int alloc_grant_read(const char *name, struct alloc_grant *g)
{
    char text[512];
    memset(g, 0, sizeof(*g));
    if (strncmp(name, "a-", 2) != 0 || pod_files_meta_read(name, GRANT_FILE, text, sizeof(text)))
        return -1;
    /* the daemon's own file, read with the checks of any input all the same */
    json_error_t e;
    json_t *o = json_loads(text, JSON_REJECT_DUPLICATES, &e);
    json_t *gpu = json_object_get(o, "gpu"), *mem = json_object_get(o, "mem_bytes"),
           *cores = json_object_get(o, "cores");
    int ok = json_is_object(o) && json_is_string(gpu) &&
             hv_norm_uuid(json_string_value(gpu), g->uuid, sizeof(g->uuid)) == 0 &&
             json_is_integer(mem) && json_integer_value(mem) >= 0 && json_is_integer(cores) &&
             json_integer_value(cores) >= 0 && json_integer_value(cores) <= 100;
    if (ok) {
        g->mem_bytes = (uint64_t)json_integer_value(mem);
        g->cores = (int)json_integer_value(cores);
    }
    json_decref(o);
    return ok ? 0 : -1;
}
