/* dp_allocate.c - the device plugin's Allocate: check the kubelet's choice, make each
 * container's allocation region and answer with its environment and mounts.
 *
 * Why this exists: see dp_allocate.h.
 */
#define _GNU_SOURCE
#include "dp_allocate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "allocations.h"
#include "dp_service.h"
#include "hv_log.h"

/* What one container is given. */
struct dp_grant {
    char uuid[VGPU_UUID_LEN];
    int units;
    int *unit;     /* the unit number of each device ID (malloc'ed) */
    char dir[128]; /* its region, relative to --shm-dir */
};

#define DP_NENV 5
#define DP_NMOUNT 5
#define DP_PATH 600

/* The answer for one container, with the storage of its strings. */
struct dp_answer {
    V1beta1__ContainerAllocateResponse m;
    V1beta1__ContainerAllocateResponse__EnvsEntry env[DP_NENV];
    V1beta1__ContainerAllocateResponse__EnvsEntry *envp[DP_NENV];
    V1beta1__Mount mnt[DP_NMOUNT];
    V1beta1__Mount *mntp[DP_NMOUNT];
    char visible[VGPU_UUID_LEN + 8], preload[DP_PATH], limit[32];
    char node[DP_PATH], control[DP_PATH], ledger[DP_PATH];
};

static void env_set(struct dp_answer *a, const char *k, const char *v)
{
    size_t i = a->m.n_envs++;
    v1beta1__container_allocate_response__envs_entry__init(&a->env[i]);
    a->env[i].key = (char *)k;
    a->env[i].value = (char *)v;
    a->envp[i] = &a->env[i];
}

static void mount_add(struct dp_answer *a, const char *container, const char *host, int ro)
{
    size_t i = a->m.n_mounts++;
    v1beta1__mount__init(&a->mnt[i]);
    a->mnt[i].container_path = (char *)container;
    a->mnt[i].host_path = (char *)host;
    a->mnt[i].read_only = ro;
    a->mntp[i] = &a->mnt[i];
}

static void answer_fill(int r, const struct dp_grant *gr, struct dp_answer *a)
{
    v1beta1__container_allocate_response__init(&a->m);
    a->m.envs = a->envp;
    a->m.mounts = a->mntp;
    dp_nvml_name(gr->uuid, a->visible, sizeof(a->visible));
    snprintf(a->preload, sizeof(a->preload), "%s/libcuda_limiter.so", dp.lib_dir);
    if (r == DP_MEM)
        snprintf(a->limit, sizeof(a->limit), "%llu",
                 (unsigned long long)((uint64_t)gr->units * dp.unit));
    else
        snprintf(a->limit, sizeof(a->limit), "%d", gr->units);
    snprintf(a->node, sizeof(a->node), "%s/node", dp.shm_dir);
    snprintf(a->control, sizeof(a->control), "%s/%s/control", dp.shm_dir, gr->dir);
    snprintf(a->ledger, sizeof(a->ledger), "%s/%s/ledger", dp.shm_dir, gr->dir);
    env_set(a, "NVIDIA_VISIBLE_DEVICES", a->visible);
    env_set(a, "LD_PRELOAD", a->preload);
    env_set(a, "VGPU_HYPERVISOR_SOCKET", DP_CONTAINER_SOCKET);
    env_set(a, "VGPU_SHM_DIR", dp.shm_dir);
    /* what a process holds itself to while the daemon cannot be reached */
    env_set(a, r == DP_MEM ? "CUDA_MEM_LIMIT_0" : "CUDA_CORE_LIMIT_0", a->limit);
    mount_add(a, dp.lib_dir, dp.lib_dir, 1);
    mount_add(a, DP_CONTAINER_SOCKET, dp.worker_socket, 0); /* connect() needs no write mount */
    mount_add(a, a->node, a->node, 1);
    mount_add(a, a->control, a->control, 1); /* the daemon's decisions: never the pod's */
    mount_add(a, a->ledger, a->ledger, 0);
}

/* Check one container's devices: all known, none twice, all on one healthy GPU. 0 with the GPU
 * and count in *gr, or -1 with the reason in out. dp.mu held. */
static int check_one(int r, const V1beta1__ContainerAllocateRequest *c, unsigned char *seen,
                     int maxu, struct dp_grant *gr, struct gs_reply *out)
{
    const char *name = dp.res[r].name;
    size_t n = c->n_devices_ids;
    int most = 0;
    for (int g = 0; g < dp.ngpu; g++)
        if (dp_res_units(r, &dp.gpu[g]) > most) most = dp_res_units(r, &dp.gpu[g]);
    if (n < 1 || n > DP_MAX_IDS) {
        dp_fail(out, GS_INVALID_ARGUMENT, "%s: %zu units requested (1 to %d on one GPU here)", name,
                n, most);
        return -1;
    }
    uint32_t gpus = 0;
    int rc = 0;
    size_t i = 0;
    if (!(gr->unit = malloc(n * sizeof(int)))) {
        dp_fail(out, GS_INTERNAL, "out of memory");
        return -1;
    }
    for (; i < n; i++) {
        const char *id = c->devices_ids[i];
        int k, g = dp_id_parse(r, id, &k);
        if (g < 0) {
            dp_fail(out, GS_INVALID_ARGUMENT, "%s: unknown device '%.*s' (not one this node lists)",
                    name, DP_ID_LEN, id);
            rc = -1;
            break;
        }
        if (seen[g * maxu + k]) {
            dp_fail(out, GS_INVALID_ARGUMENT, "%s: device '%s' listed twice", name, id);
            rc = -1;
            break;
        }
        seen[g * maxu + k] = 1;
        gr->unit[i] = k;
        gpus |= 1u << g;
    }
    for (size_t j = 0; j < i; j++) { /* leave `seen` clean for the next container */
        int k, g = dp_id_parse(r, c->devices_ids[j], &k);
        if (g >= 0) seen[g * maxu + k] = 0;
    }
    if (rc) return rc;
    if (gpus & (gpus - 1)) {
        char list[400] = "";
        size_t off = 0;
        for (int g = 0; g < dp.ngpu && off < sizeof(list); g++)
            if (gpus & (1u << g))
                off += (size_t)snprintf(list + off, sizeof(list) - off, "%s%s", off ? ", " : "",
                                        dp.gpu[g].uuid);
        dp_fail(out, GS_FAILED_PRECONDITION,
                "%s: %zu units requested across GPUs %s; a container's units must be on one GPU "
                "(at most %d fit on one GPU of this node)",
                name, n, list, most);
        return -1;
    }
    int g = __builtin_ctz(gpus);
    if (!dp.gpu[g].healthy) {
        dp_fail(out, GS_FAILED_PRECONDITION, "%s: GPU %s is unhealthy (NVML does not report it)",
                name, dp.gpu[g].uuid);
        return -1;
    }
    snprintf(gr->uuid, sizeof(gr->uuid), "%s", dp.gpu[g].uuid);
    gr->units = (int)n;
    return 0;
}

void dp_on_allocate(void *arg, const uint8_t *req, size_t len, struct gs_reply *out)
{
    int r = dp_res_of(arg);
    const char *name = dp.res[r].name;
    V1beta1__AllocateRequest *rq = v1beta1__allocate_request__unpack(NULL, len, req);
    if (!rq) {
        dp_fail(out, GS_INVALID_ARGUMENT, "%s: Allocate: malformed request", name);
        return;
    }
    size_t nc = rq->n_container_requests;
    struct dp_grant *gr = NULL;
    struct dp_answer *ans = NULL;
    V1beta1__ContainerAllocateResponse **ansp = NULL;
    unsigned char *seen = NULL;
    if (nc < 1 || nc > DP_MAX_CONTAINERS) {
        dp_fail(out, GS_INVALID_ARGUMENT, "%s: Allocate: %zu containers (1 to %d)", name, nc,
                DP_MAX_CONTAINERS);
        goto done;
    }
    gr = calloc(nc, sizeof(*gr));
    ans = calloc(nc, sizeof(*ans));
    ansp = calloc(nc, sizeof(*ansp));
    if (!gr || !ans || !ansp) {
        dp_fail(out, GS_INTERNAL, "out of memory");
        goto done;
    }
    /* every container is checked before any region is made: a refused call leaves nothing */
    pthread_mutex_lock(&dp.mu);
    int maxu = 1, bad = 0;
    for (int g = 0; g < dp.ngpu; g++)
        if (dp_res_units(r, &dp.gpu[g]) > maxu) maxu = dp_res_units(r, &dp.gpu[g]);
    seen = calloc((size_t)(dp.ngpu ? dp.ngpu : 1) * (size_t)maxu, 1);
    if (!seen) {
        dp_fail(out, GS_INTERNAL, "out of memory");
        bad = 1;
    }
    for (size_t i = 0; !bad && i < nc; i++)
        bad = check_one(r, rq->container_requests[i], seen, maxu, &gr[i], out) != 0;
    pthread_mutex_unlock(&dp.mu);
    if (bad) {
        hv_logf(HV_WARN, "device plugin: allocation refused", "{s:s, s:s}", "resource", name,
                "error", out->msg);
        goto done;
    }
    for (size_t i = 0; i < nc; i++) {
        char err[256];
        uint64_t mem = r == DP_MEM ? (uint64_t)gr[i].units * dp.unit : 0;
        int cores = r == DP_CORES ? gr[i].units : 0;
        if (alloc_region_make(gr[i].uuid, mem, cores, gr[i].unit, (size_t)gr[i].units, gr[i].dir,
                              sizeof(gr[i].dir), err, sizeof(err)) != 0) {
            dp_fail(out, GS_INTERNAL, "%s: cannot make the allocation's region: %s", name, err);
            hv_logf(HV_ERROR, "device plugin: allocation failed", "{s:s, s:s}", "resource", name,
                    "error", err);
            goto done;
        }
        answer_fill(r, &gr[i], &ans[i]);
        ansp[i] = &ans[i].m;
        hv_logf(HV_INFO, "device plugin: allocated", "{s:s, s:s, s:i, s:s}", "resource", name,
                "gpu", gr[i].uuid, "units", gr[i].units, "dir", gr[i].dir);
    }
    pthread_mutex_lock(&dp.mu);
    snprintf(dp.last[r].uuid, sizeof(dp.last[r].uuid), "%s", gr[nc - 1].uuid);
    dp.last[r].ns = vgpu_now_ns();
    pthread_mutex_unlock(&dp.mu);
    V1beta1__AllocateResponse resp = V1BETA1__ALLOCATE_RESPONSE__INIT;
    resp.n_container_responses = nc;
    resp.container_responses = ansp;
    dp_reply_pack(out, &resp.base);
done:
    free(seen);
    for (size_t i = 0; gr && i < nc; i++)
        free(gr[i].unit);
    free(gr);
    free(ans);
    free(ansp);
    v1beta1__allocate_request__free_unpacked(rq, NULL);
}
