/* device_plugin.c - the Kubernetes device plugin: advertise GPU memory and GPU time to the
 * kubelet, check and answer its allocations (see device_plugin.h).
 *
 * Why this exists: see device_plugin.h. How it is built:
 *
 *   - GPUs come from the NVML snapshot (nvml_monitor.h). A GPU once seen stays in the table, so
 *     that losing it is reported (Unhealthy) rather than silently dropped; its number of memory
 *     devices is fixed when it is first seen. `gen` changes whenever anything listed changes,
 *     and each open ListAndWatch stream sends the whole list again when it sees a new `gen`.
 *   - The watch thread, every 200 ms: re-reads health once a second; notices a new kubelet
 *     (DIR/kubelet.sock re-created) or an endpoint socket that was removed, then re-creates the
 *     endpoint and registers again; retries a failed registration with backoff.
 *   - Only the kubelet reaches these sockets (a root-only directory on the host, never mounted
 *     into pods), but every field of its requests is checked anyway: counts and lengths are
 *     bounded, every device ID must be one this plugin lists, and nothing it sends is used as a
 *     path or a format.
 *
 * Locking: dp.mu guards the GPU table, `gen` and `last`; it is never held while calling into
 * gRPC or alloc_region_make (which takes the registry lock). The endpoint state (dp.res[]) is
 * the watch thread's alone once started.
 */
#define _GNU_SOURCE
#include "device_plugin.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <protobuf-c/protobuf-c.h>

/* protoc-c names the (unused) service stub of the rpc Register `register`, a C keyword: renamed
 * for the generated header only, after every header it includes is in */
#define register register_
#include "deviceplugin.pb-c.h"
#undef register

#include "allocations.h"
#include "grpc_server.h"
#include "hv_log.h"
#include "nvml_monitor.h"
#include "shm_region.h"

#define DP_API_VERSION "v1beta1"
#define DP_MAX_UNITS 2048         /* memory devices listed per GPU at most (message size) */
#define DP_CORE_UNITS 100         /* gpu-cores devices per GPU: 1% each */
#define DP_MAX_CONTAINERS 64      /* container entries in one request */
#define DP_MAX_IDS 65536          /* device IDs in one container entry */
#define DP_ID_LEN 96              /* longest device ID: a uuid (< 48) + "-m" + digits */
#define DP_POLL_MS 200            /* the watch thread's period; streams look for changes as often */
#define DP_REGISTER_MS 5000       /* deadline of one Register call */
#define DP_PAIR_NS 10000000000ull /* see `last`: allocations this close are taken as one pod's */
#define DP_SOCK_LEN 108           /* sizeof(sockaddr_un.sun_path) */

enum { DP_MEM = 0, DP_CORES = 1, DP_NRES };

struct dp_gpu {
    char uuid[VGPU_UUID_LEN]; /* lower case, as the snapshot has it: [a-z0-9-] only */
    int index;                /* NVML index (for logs) */
    int units;                /* gpu-memory devices: floor(total / unit), <= DP_MAX_UNITS */
    int healthy;
};

/* Which file a path names: device, inode and change time. The time tells a file made anew
 * apart from the one before it even when the file system hands out the same inode again. */
struct dp_file {
    int have;
    dev_t dev;
    ino_t ino;
    struct timespec ctim;
};

static void file_look(const char *path, int want_socket, struct dp_file *f)
{
    struct stat st;
    memset(f, 0, sizeof(*f));
    if (lstat(path, &st) != 0 || (want_socket && !S_ISSOCK(st.st_mode))) return;
    f->have = 1;
    f->dev = st.st_dev;
    f->ino = st.st_ino;
    f->ctim = st.st_ctim;
}

static int file_same(const struct dp_file *a, const struct dp_file *b)
{
    return a->have == b->have && a->dev == b->dev && a->ino == b->ino &&
           a->ctim.tv_sec == b->ctim.tv_sec && a->ctim.tv_nsec == b->ctim.tv_nsec;
}

struct dp_res {
    const char *name;     /* resource name */
    const char *endpoint; /* socket file name in the plugin directory */
    char kind;            /* device ID suffix letter: 'm' / 'c' */
    char path[DP_SOCK_LEN];
    struct gs_server *srv;
    struct dp_file made; /* the socket file this plugin made */
    int registered;      /* with the kubelet now on kubelet.sock */
    int fails;
    uint64_t next_try_ns;   /* next registration attempt */
    uint64_t next_serve_ns; /* next attempt to serve the endpoint after a failure */
};

static struct {
    pthread_mutex_t mu;
    int ngpu;
    struct dp_gpu gpu[NVML_MON_MAX_GPUS];
    uint64_t gen;
    /* The GPU of the latest Allocate of each resource, and when. The kubelet allocates a
     * container's resources one after the other and says nothing of the pod in Allocate; so
     * GetPreferredAllocation of one resource prefers the GPU the other was just given, which
     * keeps a container's memory and cores on the same GPU whenever that GPU fits. */
    struct {
        char uuid[VGPU_UUID_LEN];
        uint64_t ns;
    } last[DP_NRES];
    /* set before the threads start, read-only after */
    struct dp_res res[DP_NRES];
    char kubelet[DP_SOCK_LEN];
    uint64_t unit;
    char lib_dir[256], shm_dir[256], worker_socket[256];
    /* watch thread */
    struct dp_file kubelet_seen; /* kubelet.sock as last seen */
    pthread_t thr;
    atomic_int stop;
    int started;
} dp = {.mu = PTHREAD_MUTEX_INITIALIZER};

static int res_units(int r, const struct dp_gpu *g)
{
    return r == DP_MEM ? g->units : DP_CORE_UNITS;
}

/* The name NVIDIA's container runtime and CUDA use: "GPU-<hex>" (NVML writes the prefix in
 * upper case and the digits in lower case; the snapshot lowered all of it). */
static void nvml_name(const char *uuid, char *out, size_t n)
{
    if (!strncmp(uuid, "gpu-", 4))
        snprintf(out, n, "GPU-%s", uuid + 4);
    else if (!strncmp(uuid, "mig-", 4))
        snprintf(out, n, "MIG-%s", uuid + 4);
    else
        snprintf(out, n, "%s", uuid);
}

static int uuid_ok(const char *u)
{
    if (!*u || strlen(u) >= VGPU_UUID_LEN) return 0;
    for (; *u; u++)
        if (!((*u >= 'a' && *u <= 'z') || (*u >= '0' && *u <= '9') || *u == '-')) return 0;
    return 1;
}

/* --- GPUs and their health ------------------------------------------------------------------ */

static void refresh_gpus(void)
{
    struct nvml_snapshot *snap = nvml_snapshot_get();
    if (!snap) return;
    pthread_mutex_lock(&dp.mu);
    int changed = 0;
    for (int i = 0; i < dp.ngpu; i++) {
        struct dp_gpu *g = &dp.gpu[i];
        int healthy = 0;
        for (int k = 0; snap->ok && k < snap->ngpu; k++)
            if (!strcmp(snap->gpu[k].uuid, g->uuid) && snap->gpu[k].mem_total > 0) {
                healthy = 1;
                g->index = snap->gpu[k].index;
            }
        if (healthy != g->healthy) {
            hv_logf(healthy ? HV_INFO : HV_WARN,
                    healthy ? "device plugin: GPU healthy again"
                            : "device plugin: GPU lost (NVML does not report it): Unhealthy",
                    "{s:s, s:i}", "uuid", g->uuid, "gpu", g->index);
            g->healthy = healthy;
            changed = 1;
        }
    }
    for (int k = 0; snap->ok && k < snap->ngpu; k++) {
        const struct nvml_gpu *s = &snap->gpu[k];
        int known = 0;
        for (int i = 0; i < dp.ngpu; i++)
            known |= !strcmp(dp.gpu[i].uuid, s->uuid);
        if (known || !s->mem_total || dp.ngpu >= NVML_MON_MAX_GPUS) continue;
        if (!uuid_ok(s->uuid)) {
            hv_logf(HV_WARN, "device plugin: GPU with an unusable uuid left out", "{s:i}", "gpu",
                    s->index);
            continue;
        }
        struct dp_gpu *g = &dp.gpu[dp.ngpu++];
        memset(g, 0, sizeof(*g));
        snprintf(g->uuid, sizeof(g->uuid), "%s", s->uuid);
        g->index = s->index;
        uint64_t units = s->mem_total / dp.unit;
        if (units > DP_MAX_UNITS) {
            hv_logf(HV_WARN,
                    "device plugin: memory unit too small for this GPU: only part of its memory "
                    "is listed (raise --memory-unit)",
                    "{s:s, s:i}", "uuid", g->uuid, "listed_units", DP_MAX_UNITS);
            units = DP_MAX_UNITS;
        }
        g->units = (int)units;
        g->healthy = 1;
        hv_logf(HV_INFO, "device plugin: GPU listed", "{s:s, s:i, s:i, s:I, s:i}", "uuid", g->uuid,
                "gpu", g->index, "memory_units", g->units, "unit_bytes", (json_int_t)dp.unit,
                "core_units", DP_CORE_UNITS);
        changed = 1;
    }
    if (changed) dp.gen++;
    pthread_mutex_unlock(&dp.mu);
    free(snap);
}

/* The GPU (its index in dp.gpu) of device `id` of resource r, its unit in *unit; -1 when the
 * ID is not one this plugin lists. dp.mu held. */
static int id_parse(int r, const char *id, int *unit)
{
    size_t n = strnlen(id, DP_ID_LEN);
    if (!n || n >= DP_ID_LEN) return -1;
    const char *dash = strrchr(id, '-');
    if (!dash || dash[1] != dp.res[r].kind) return -1;
    const char *d = dash + 2;
    size_t nd = strlen(d);
    if (nd < 1 || nd > 5 || (d[0] == '0' && nd > 1)) return -1;
    int k = 0;
    for (size_t i = 0; i < nd; i++) {
        if (d[i] < '0' || d[i] > '9') return -1;
        k = k * 10 + (d[i] - '0');
    }
    size_t ul = (size_t)(dash - id);
    for (int g = 0; g < dp.ngpu; g++)
        if (strlen(dp.gpu[g].uuid) == ul && !memcmp(dp.gpu[g].uuid, id, ul)) {
            if (k >= res_units(r, &dp.gpu[g])) return -1;
            *unit = k;
            return g;
        }
    return -1;
}

/* --- replies ------------------------------------------------------------------------------- */

static void fail(struct gs_reply *out, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail(struct gs_reply *out, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out->msg, sizeof(out->msg), fmt, ap);
    va_end(ap);
    out->status = status;
    free(out->data);
    out->data = NULL;
    out->len = 0;
}

/* Pack a message into the reply. */
static void reply_pack(struct gs_reply *out, const ProtobufCMessage *m)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    out->data = malloc(n ? n : 1);
    if (!out->data) {
        fail(out, GS_INTERNAL, "out of memory");
        return;
    }
    out->len = protobuf_c_message_pack(m, out->data);
    out->status = GS_OK;
}

/* The whole device list of resource r, packed (malloc'ed); the `gen` it shows in *gen. */
static uint8_t *list_pack(int r, uint64_t *gen, size_t *len)
{
    pthread_mutex_lock(&dp.mu);
    size_t n = 0;
    for (int g = 0; g < dp.ngpu; g++)
        n += (size_t)res_units(r, &dp.gpu[g]);
    V1beta1__Device *dev = calloc(n ? n : 1, sizeof(*dev));
    V1beta1__Device **ptr = calloc(n ? n : 1, sizeof(*ptr));
    char *ids = malloc((n ? n : 1) * DP_ID_LEN);
    uint8_t *buf = NULL;
    if (dev && ptr && ids) {
        size_t i = 0;
        for (int g = 0; g < dp.ngpu; g++)
            for (int k = 0; k < res_units(r, &dp.gpu[g]); k++, i++) {
                v1beta1__device__init(&dev[i]);
                snprintf(ids + i * DP_ID_LEN, DP_ID_LEN, "%s-%c%d", dp.gpu[g].uuid, dp.res[r].kind,
                         k);
                dev[i].id = ids + i * DP_ID_LEN;
                dev[i].health = (char *)(dp.gpu[g].healthy ? "Healthy" : "Unhealthy");
                ptr[i] = &dev[i];
            }
        *gen = dp.gen;
        V1beta1__ListAndWatchResponse resp = V1BETA1__LIST_AND_WATCH_RESPONSE__INIT;
        resp.n_devices = n;
        resp.devices = ptr;
        *len = v1beta1__list_and_watch_response__get_packed_size(&resp);
        buf = malloc(*len ? *len : 1);
        if (buf) v1beta1__list_and_watch_response__pack(&resp, buf);
    }
    pthread_mutex_unlock(&dp.mu);
    free(dev);
    free(ptr);
    free(ids);
    return buf;
}

/* --- the DevicePlugin service ------------------------------------------------------------- */

static int res_of(void *arg)
{
    return (int)(intptr_t)arg;
}

static void on_options(void *arg, const uint8_t *req, size_t len, struct gs_reply *out)
{
    V1beta1__DevicePluginOptions o = V1BETA1__DEVICE_PLUGIN_OPTIONS__INIT;
    o.pre_start_required = 0;
    o.get_preferred_allocation_available = 1;
    reply_pack(out, &o.base);
}

static void on_list_and_watch(void *arg, struct gs_stream *s, const uint8_t *req, size_t len)
{
    int r = res_of(arg);
    hv_logf(HV_INFO, "device plugin: the kubelet watches the device list", "{s:s}", "resource",
            dp.res[r].name);
    uint64_t sent = 0;
    int first = 1;
    while (!atomic_load(&dp.stop)) {
        pthread_mutex_lock(&dp.mu);
        uint64_t now_gen = dp.gen;
        pthread_mutex_unlock(&dp.mu);
        if (first || now_gen != sent) {
            size_t n = 0;
            uint8_t *buf = list_pack(r, &sent, &n);
            int bad = !buf || gs_stream_send(s, buf, n) != 0;
            free(buf);
            if (bad) break;
            first = 0;
        }
        if (gs_stream_wait(s, DP_POLL_MS) != 0) break;
    }
    hv_logf(HV_INFO, "device plugin: device list stream ended", "{s:s}", "resource",
            dp.res[r].name);
}

static void on_prestart(void *arg, const uint8_t *req, size_t len, struct gs_reply *out)
{
    V1beta1__PreStartContainerRequest *rq =
        v1beta1__pre_start_container_request__unpack(NULL, len, req);
    if (!rq) {
        fail(out, GS_INVALID_ARGUMENT, "%s: PreStartContainer: malformed request",
             dp.res[res_of(arg)].name);
        return;
    }
    v1beta1__pre_start_container_request__free_unpacked(rq, NULL);
    V1beta1__PreStartContainerResponse resp = V1BETA1__PRE_START_CONTAINER_RESPONSE__INIT;
    reply_pack(out, &resp.base);
}

/* The choice for one container: `size` devices on one GPU, the must-include ones first (they
 * fix the GPU), else the GPU the other resource was just given if it fits, else the GPU with
 * the most available units that fits, else (none fits) as many as the fullest GPU has: the
 * kubelet then adds others and Allocate refuses the mix with a message. out[] gets pointers to
 * the request's own strings. */
static size_t prefer_one(int r, const V1beta1__ContainerPreferredAllocationRequest *c,
                         const char **out)
{
    size_t nout = 0;
    pthread_mutex_lock(&dp.mu);
    int ngpu = dp.ngpu, maxu = 1;
    for (int g = 0; g < ngpu; g++)
        if (res_units(r, &dp.gpu[g]) > maxu) maxu = res_units(r, &dp.gpu[g]);
    const char **slot = calloc((size_t)(ngpu ? ngpu : 1) * (size_t)maxu, sizeof(*slot));
    unsigned char *taken = calloc((size_t)(ngpu ? ngpu : 1) * (size_t)maxu, 1);
    int avail[NVML_MON_MAX_GPUS] = {0};
    if (!slot || !taken) goto out;
    for (size_t i = 0; i < c->n_available_deviceids; i++) {
        int k, g = id_parse(r, c->available_deviceids[i], &k);
        if (g < 0 || !dp.gpu[g].healthy || slot[g * maxu + k]) continue;
        slot[g * maxu + k] = c->available_deviceids[i];
        avail[g]++;
    }
    int fixed = -1;
    for (size_t i = 0; i < c->n_must_include_deviceids; i++) {
        const char *id = c->must_include_deviceids[i];
        int k, g = id_parse(r, id, &k);
        if (g >= 0) {
            if (taken[g * maxu + k]) continue;
            taken[g * maxu + k] = 1;
            if (fixed < 0) fixed = g;
        }
        out[nout++] = id; /* the kubelet requires them whatever they are */
    }
    size_t size = (size_t)c->allocation_size;
    if (fixed < 0) {
        int other = r == DP_MEM ? DP_CORES : DP_MEM;
        uint64_t now = vgpu_now_ns();
        for (int g = 0; g < ngpu; g++)
            if (dp.last[other].ns && now - dp.last[other].ns < DP_PAIR_NS &&
                !strcmp(dp.last[other].uuid, dp.gpu[g].uuid) && (size_t)avail[g] >= size)
                fixed = g;
        for (int g = 0; fixed < 0 && g < ngpu; g++) /* the most available units that fit */
            if ((size_t)avail[g] >= size) {
                fixed = g;
                for (int h = g + 1; h < ngpu; h++)
                    if ((size_t)avail[h] >= size && avail[h] > avail[fixed]) fixed = h;
            }
        for (int g = 0; fixed < 0 && g < ngpu; g++) /* none fits: the fullest */
            if (avail[g] > 0) {
                fixed = g;
                for (int h = g + 1; h < ngpu; h++)
                    if (avail[h] > avail[fixed]) fixed = h;
            }
    }
    for (int k = 0; fixed >= 0 && k < maxu && nout < size; k++)
        if (slot[fixed * maxu + k] && !taken[fixed * maxu + k]) {
            taken[fixed * maxu + k] = 1;
            out[nout++] = slot[fixed * maxu + k];
        }
out:
    pthread_mutex_unlock(&dp.mu);
    free(slot);
    free(taken);
    return nout;
}

static void on_preferred(void *arg, const uint8_t *req, size_t len, struct gs_reply *out)
{
    int r = res_of(arg);
    const char *name = dp.res[r].name;
    V1beta1__PreferredAllocationRequest *rq =
        v1beta1__preferred_allocation_request__unpack(NULL, len, req);
    if (!rq) {
        fail(out, GS_INVALID_ARGUMENT, "%s: GetPreferredAllocation: malformed request", name);
        return;
    }
    size_t nc = rq->n_container_requests;
    V1beta1__ContainerPreferredAllocationResponse *cr = NULL, **crp = NULL;
    const char ***ids = NULL;
    if (nc > DP_MAX_CONTAINERS) {
        fail(out, GS_INVALID_ARGUMENT, "%s: GetPreferredAllocation: %zu containers (at most %d)",
             name, nc, DP_MAX_CONTAINERS);
        goto done;
    }
    cr = calloc(nc ? nc : 1, sizeof(*cr));
    crp = calloc(nc ? nc : 1, sizeof(*crp));
    ids = calloc(nc ? nc : 1, sizeof(*ids));
    if (!cr || !crp || !ids) {
        fail(out, GS_INTERNAL, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < nc; i++) {
        const V1beta1__ContainerPreferredAllocationRequest *c = rq->container_requests[i];
        if (c->n_available_deviceids > DP_MAX_IDS || c->n_must_include_deviceids > DP_MAX_IDS ||
            c->allocation_size < 1 || c->allocation_size > DP_MAX_IDS) {
            fail(out, GS_INVALID_ARGUMENT,
                 "%s: GetPreferredAllocation: %d devices wanted of %zu available, %zu required "
                 "(each 1 to %d)",
                 name, (int)c->allocation_size, c->n_available_deviceids,
                 c->n_must_include_deviceids, DP_MAX_IDS);
            goto done;
        }
        ids[i] = calloc(c->n_must_include_deviceids + (size_t)c->allocation_size, sizeof(char *));
        if (!ids[i]) {
            fail(out, GS_INTERNAL, "out of memory");
            goto done;
        }
        v1beta1__container_preferred_allocation_response__init(&cr[i]);
        cr[i].n_deviceids = prefer_one(r, c, ids[i]);
        cr[i].deviceids = (char **)ids[i];
        crp[i] = &cr[i];
    }
    V1beta1__PreferredAllocationResponse resp = V1BETA1__PREFERRED_ALLOCATION_RESPONSE__INIT;
    resp.n_container_responses = nc;
    resp.container_responses = crp;
    reply_pack(out, &resp.base); /* before the request (whose strings it points to) is freed */
done:
    for (size_t i = 0; ids && i < nc; i++)
        free(ids[i]);
    free(ids);
    free(cr);
    free(crp);
    v1beta1__preferred_allocation_request__free_unpacked(rq, NULL);
}

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
    nvml_name(gr->uuid, a->visible, sizeof(a->visible));
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
        if (res_units(r, &dp.gpu[g]) > most) most = res_units(r, &dp.gpu[g]);
    if (n < 1 || n > DP_MAX_IDS) {
        fail(out, GS_INVALID_ARGUMENT, "%s: %zu units requested (1 to %d on one GPU here)", name, n,
             most);
        return -1;
    }
    uint32_t gpus = 0;
    int rc = 0;
    size_t i = 0;
    if (!(gr->unit = malloc(n * sizeof(int)))) {
        fail(out, GS_INTERNAL, "out of memory");
        return -1;
    }
    for (; i < n; i++) {
        const char *id = c->devices_ids[i];
        int k, g = id_parse(r, id, &k);
        if (g < 0) {
            fail(out, GS_INVALID_ARGUMENT, "%s: unknown device '%.*s' (not one this node lists)",
                 name, DP_ID_LEN, id);
            rc = -1;
            break;
        }
        if (seen[g * maxu + k]) {
            fail(out, GS_INVALID_ARGUMENT, "%s: device '%s' listed twice", name, id);
            rc = -1;
            break;
        }
        seen[g * maxu + k] = 1;
        gr->unit[i] = k;
        gpus |= 1u << g;
    }
    for (size_t j = 0; j < i; j++) { /* leave `seen` clean for the next container */
        int k, g = id_parse(r, c->devices_ids[j], &k);
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
        fail(out, GS_FAILED_PRECONDITION,
             "%s: %zu units requested across GPUs %s; a container's units must be on one GPU "
             "(at most %d fit on one GPU of this node)",
             name, n, list, most);
        return -1;
    }
    int g = __builtin_ctz(gpus);
    if (!dp.gpu[g].healthy) {
        fail(out, GS_FAILED_PRECONDITION, "%s: GPU %s is unhealthy (NVML does not report it)", name,
             dp.gpu[g].uuid);
        return -1;
    }
    snprintf(gr->uuid, sizeof(gr->uuid), "%s", dp.gpu[g].uuid);
    gr->units = (int)n;
    return 0;
}

static void on_allocate(void *arg, const uint8_t *req, size_t len, struct gs_reply *out)
{
    int r = res_of(arg);
    const char *name = dp.res[r].name;
    V1beta1__AllocateRequest *rq = v1beta1__allocate_request__unpack(NULL, len, req);
    if (!rq) {
        fail(out, GS_INVALID_ARGUMENT, "%s: Allocate: malformed request", name);
        return;
    }
    size_t nc = rq->n_container_requests;
    struct dp_grant *gr = NULL;
    struct dp_answer *ans = NULL;
    V1beta1__ContainerAllocateResponse **ansp = NULL;
    unsigned char *seen = NULL;
    if (nc < 1 || nc > DP_MAX_CONTAINERS) {
        fail(out, GS_INVALID_ARGUMENT, "%s: Allocate: %zu containers (1 to %d)", name, nc,
             DP_MAX_CONTAINERS);
        goto done;
    }
    gr = calloc(nc, sizeof(*gr));
    ans = calloc(nc, sizeof(*ans));
    ansp = calloc(nc, sizeof(*ansp));
    if (!gr || !ans || !ansp) {
        fail(out, GS_INTERNAL, "out of memory");
        goto done;
    }
    /* every container is checked before any region is made: a refused call leaves nothing */
    pthread_mutex_lock(&dp.mu);
    int maxu = 1, bad = 0;
    for (int g = 0; g < dp.ngpu; g++)
        if (res_units(r, &dp.gpu[g]) > maxu) maxu = res_units(r, &dp.gpu[g]);
    seen = calloc((size_t)(dp.ngpu ? dp.ngpu : 1) * (size_t)maxu, 1);
    if (!seen) {
        fail(out, GS_INTERNAL, "out of memory");
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
            fail(out, GS_INTERNAL, "%s: cannot make the allocation's region: %s", name, err);
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
    reply_pack(out, &resp.base);
done:
    free(seen);
    for (size_t i = 0; gr && i < nc; i++)
        free(gr[i].unit);
    free(gr);
    free(ans);
    free(ansp);
    v1beta1__allocate_request__free_unpacked(rq, NULL);
}

/* --- endpoints and registration ------------------------------------------------------------ */

static const char *const method_paths[] = {
    "/v1beta1.DevicePlugin/GetDevicePluginOptions", "/v1beta1.DevicePlugin/ListAndWatch",
    "/v1beta1.DevicePlugin/GetPreferredAllocation", "/v1beta1.DevicePlugin/Allocate",
    "/v1beta1.DevicePlugin/PreStartContainer"};

/* (Re)create the endpoint of resource r. 0 or -1 (logged). */
static int endpoint_start(int r)
{
    struct dp_res *rs = &dp.res[r];
    void *arg = (void *)(intptr_t)r;
    const struct gs_method m[] = {{method_paths[0], on_options, NULL, arg},
                                  {method_paths[1], NULL, on_list_and_watch, arg},
                                  {method_paths[2], on_preferred, NULL, arg},
                                  {method_paths[3], on_allocate, NULL, arg},
                                  {method_paths[4], on_prestart, NULL, arg}};
    gs_server_stop(rs->srv); /* its streams belong to a kubelet that is gone */
    rs->srv = NULL;
    rs->registered = 0;
    rs->fails = 0;
    rs->next_try_ns = 0;
    char err[256];
    rs->srv = gs_server_start(rs->path, m, (int)(sizeof(m) / sizeof(m[0])), err, sizeof(err));
    file_look(rs->path, 1, &rs->made);
    if (!rs->srv || !rs->made.have) {
        hv_logf(HV_ERROR, "device plugin: cannot serve the endpoint (retrying every 5 s)",
                "{s:s, s:s, s:s}", "resource", rs->name, "socket", rs->path, "error",
                rs->srv ? "no socket file" : err);
        rs->next_serve_ns = vgpu_now_ns() + 5000000000ull;
        return -1;
    }
    return 0;
}

static void register_one(int r)
{
    struct dp_res *rs = &dp.res[r];
    V1beta1__DevicePluginOptions o = V1BETA1__DEVICE_PLUGIN_OPTIONS__INIT;
    o.get_preferred_allocation_available = 1;
    V1beta1__RegisterRequest rq = V1BETA1__REGISTER_REQUEST__INIT;
    rq.version = (char *)DP_API_VERSION;
    rq.endpoint = (char *)rs->endpoint;
    rq.resource_name = (char *)rs->name;
    rq.options = &o;
    uint8_t buf[512], *resp = NULL;
    size_t n = v1beta1__register_request__get_packed_size(&rq), rlen = 0;
    if (n > sizeof(buf)) return; /* cannot happen: every field is ours and short */
    v1beta1__register_request__pack(&rq, buf);
    char err[GS_STATUS_MSG_LEN + 128];
    int rc = gs_call_unary(dp.kubelet, "/v1beta1.Registration/Register", buf, n, DP_REGISTER_MS,
                           &resp, &rlen, err, sizeof(err));
    free(resp);
    uint64_t now = vgpu_now_ns();
    if (rc == 0) {
        rs->registered = 1;
        rs->fails = 0;
        hv_logf(HV_INFO, "device plugin: registered with the kubelet", "{s:s, s:s, s:s, s:s}",
                "resource", rs->name, "endpoint", rs->endpoint, "kubelet", dp.kubelet, "version",
                DP_API_VERSION);
        return;
    }
    /* 0.5 s, 1, 2, 4, then every 5 s; the first failure after a success is a warning */
    uint64_t wait_ms = rs->fails >= 4 ? 5000 : 500ull << rs->fails;
    rs->next_try_ns = now + wait_ms * 1000000ull;
    hv_logf(rs->fails ? HV_DEBUG : HV_WARN, "device plugin: registration failed (retrying)",
            "{s:s, s:s, s:s}", "resource", rs->name, "kubelet", dp.kubelet, "error", err);
    rs->fails++;
}

static void *watch_thread(void *arg)
{
    uint64_t next_health = 0;
    while (!atomic_load(&dp.stop)) {
        uint64_t now = vgpu_now_ns();
        if (now >= next_health) {
            refresh_gpus();
            next_health = now + 1000000000ull;
        }
        struct dp_file k;
        file_look(dp.kubelet, 1, &k);
        int have = k.have;
        if (have && !file_same(&k, &dp.kubelet_seen)) {
            /* a kubelet (re)started: it removed every plugin socket; serve anew, register */
            hv_logf(HV_INFO, "device plugin: kubelet socket (re)created", "{s:s}", "kubelet",
                    dp.kubelet);
            for (int r = 0; r < DP_NRES; r++)
                endpoint_start(r);
        }
        if (!have)
            for (int r = 0; r < DP_NRES; r++)
                dp.res[r].registered = 0; /* no kubelet: register with the next one */
        dp.kubelet_seen = k;
        for (int r = 0; r < DP_NRES && !atomic_load(&dp.stop); r++) {
            struct dp_res *rs = &dp.res[r];
            struct dp_file now_file;
            file_look(rs->path, 1, &now_file);
            if (!file_same(&now_file, &rs->made) && vgpu_now_ns() >= rs->next_serve_ns) {
                if (rs->srv)
                    hv_logf(HV_INFO, "device plugin: endpoint socket gone: serving it anew",
                            "{s:s, s:s}", "resource", rs->name, "socket", rs->path);
                endpoint_start(r);
            }
            if (have && rs->srv && !rs->registered && vgpu_now_ns() >= rs->next_try_ns)
                register_one(r);
        }
        struct timespec ts = {0, DP_POLL_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

int device_plugin_start(const struct hv_config *cfg, char *err, size_t errlen)
{
    const char *dir = cfg->device_plugin_dir;
    static const struct {
        const char *name, *endpoint;
        char kind;
    } def[DP_NRES] = {{DP_RESOURCE_MEMORY, "vgpu-memory.sock", 'm'},
                      {DP_RESOURCE_CORES, "vgpu-cores.sock", 'c'}};
    memset(dp.res, 0, sizeof(dp.res));
    for (int r = 0; r < DP_NRES; r++) {
        dp.res[r].name = def[r].name;
        dp.res[r].endpoint = def[r].endpoint;
        dp.res[r].kind = def[r].kind;
        if ((size_t)snprintf(dp.res[r].path, sizeof(dp.res[r].path), "%s/%s", dir,
                             def[r].endpoint) >= sizeof(dp.res[r].path)) {
            snprintf(err, errlen, "--device-plugin-dir %s: too long for a socket path", dir);
            return -1;
        }
    }
    if ((size_t)snprintf(dp.kubelet, sizeof(dp.kubelet), "%s/kubelet.sock", dir) >=
        sizeof(dp.kubelet)) {
        snprintf(err, errlen, "--device-plugin-dir %s: too long for a socket path", dir);
        return -1;
    }
    if (mkdir(dir, 0750) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "--device-plugin-dir %s: %s", dir, strerror(errno));
        return -1;
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "--device-plugin-dir %s: not a directory", dir);
        return -1;
    }
    dp.unit = cfg->memory_unit ? cfg->memory_unit : 1ull << 30;
    snprintf(dp.lib_dir, sizeof(dp.lib_dir), "%s", cfg->lib_dir);
    snprintf(dp.shm_dir, sizeof(dp.shm_dir), "%s", cfg->shm_dir);
    snprintf(dp.worker_socket, sizeof(dp.worker_socket), "%s", cfg->worker_socket);
    atomic_store(&dp.stop, 0);
    gs_global_init();
    refresh_gpus();
    /* endpoints first, then registration: the kubelet calls back as soon as it is told */
    for (int r = 0; r < DP_NRES; r++)
        if (endpoint_start(r) != 0) {
            snprintf(err, errlen, "device plugin: cannot serve %s", dp.res[r].path);
            for (int q = 0; q <= r; q++) {
                gs_server_stop(dp.res[q].srv);
                dp.res[q].srv = NULL;
            }
            gs_global_shutdown();
            return -1;
        }
    /* the kubelet there now is registered with below, not treated as a restart */
    file_look(dp.kubelet, 1, &dp.kubelet_seen);
    if (pthread_create(&dp.thr, NULL, watch_thread, NULL) != 0) {
        snprintf(err, errlen, "device plugin: cannot start its thread");
        for (int r = 0; r < DP_NRES; r++) {
            gs_server_stop(dp.res[r].srv);
            dp.res[r].srv = NULL;
        }
        gs_global_shutdown();
        return -1;
    }
    dp.started = 1;
    hv_logf(HV_INFO, "device plugin started", "{s:s, s:I, s:s, s:i}", "dir", dir, "memory_unit",
            (json_int_t)dp.unit, "lib_dir", dp.lib_dir, "gpus", dp.ngpu);
    return 0;
}

void device_plugin_stop(void)
{
    if (!dp.started) return;
    atomic_store(&dp.stop, 1);
    pthread_join(dp.thr, NULL);
    for (int r = 0; r < DP_NRES; r++) {
        struct dp_res *rs = &dp.res[r];
        gs_server_stop(rs->srv); /* gRPC removes its socket file */
        rs->srv = NULL;
        struct dp_file f;
        file_look(rs->path, 1, &f);
        if (f.have && file_same(&f, &rs->made)) unlink(rs->path);
    }
    gs_global_shutdown();
    dp.started = 0;
}
