/* dp_service.c - the DevicePlugin service but Allocate: options, the device list stream,
 * preferred allocations, PreStartContainer, and the replies they share with Allocate.
 *
 * Why this exists: see dp_service.h. Only the kubelet reaches these sockets (a root-only
 * directory on the host, never mounted into pods), but every field of its requests is checked
 * anyway: counts and lengths are bounded, every device ID must be one this plugin lists, and
 * nothing it sends is used as a path or a format.
 */
#define _GNU_SOURCE
#include "dp_service.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hv_log.h"

void dp_fail(struct gs_reply *out, int status, const char *fmt, ...)
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
void dp_reply_pack(struct gs_reply *out, const ProtobufCMessage *m)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    out->data = malloc(n ? n : 1);
    if (!out->data) {
        dp_fail(out, GS_INTERNAL, "out of memory");
        return;
    }
    out->len = protobuf_c_message_pack(m, out->data);
    out->status = GS_OK;
}

int dp_res_of(void *arg)
{
    return (int)(intptr_t)arg;
}

void dp_on_options(void *arg, const uint8_t *req, size_t len, struct gs_reply *out)
{
    V1beta1__DevicePluginOptions o = V1BETA1__DEVICE_PLUGIN_OPTIONS__INIT;
    o.pre_start_required = 0;
    o.get_preferred_allocation_available = 1;
    dp_reply_pack(out, &o.base);
}

void dp_on_list_and_watch(void *arg, struct gs_stream *s, const uint8_t *req, size_t len)
{
    int r = dp_res_of(arg);
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
            uint8_t *buf = dp_list_pack(r, &sent, &n);
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

void dp_on_prestart(void *arg, const uint8_t *req, size_t len, struct gs_reply *out)
{
    V1beta1__PreStartContainerRequest *rq =
        v1beta1__pre_start_container_request__unpack(NULL, len, req);
    if (!rq) {
        dp_fail(out, GS_INVALID_ARGUMENT, "%s: PreStartContainer: malformed request",
                dp.res[dp_res_of(arg)].name);
        return;
    }
    v1beta1__pre_start_container_request__free_unpacked(rq, NULL);
    V1beta1__PreStartContainerResponse resp = V1BETA1__PRE_START_CONTAINER_RESPONSE__INIT;
    dp_reply_pack(out, &resp.base);
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
        if (dp_res_units(r, &dp.gpu[g]) > maxu) maxu = dp_res_units(r, &dp.gpu[g]);
    const char **slot = calloc((size_t)(ngpu ? ngpu : 1) * (size_t)maxu, sizeof(*slot));
    unsigned char *taken = calloc((size_t)(ngpu ? ngpu : 1) * (size_t)maxu, 1);
    int avail[NVML_MON_MAX_GPUS] = {0};
    if (!slot || !taken) goto out;
    for (size_t i = 0; i < c->n_available_deviceids; i++) {
        int k, g = dp_id_parse(r, c->available_deviceids[i], &k);
        if (g < 0 || !dp.gpu[g].healthy || slot[g * maxu + k]) continue;
        slot[g * maxu + k] = c->available_deviceids[i];
        avail[g]++;
    }
    int fixed = -1;
    for (size_t i = 0; i < c->n_must_include_deviceids; i++) {
        const char *id = c->must_include_deviceids[i];
        int k, g = dp_id_parse(r, id, &k);
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

void dp_on_preferred(void *arg, const uint8_t *req, size_t len, struct gs_reply *out)
{
    int r = dp_res_of(arg);
    const char *name = dp.res[r].name;
    V1beta1__PreferredAllocationRequest *rq =
        v1beta1__preferred_allocation_request__unpack(NULL, len, req);
    if (!rq) {
        dp_fail(out, GS_INVALID_ARGUMENT, "%s: GetPreferredAllocation: malformed request", name);
        return;
    }
    size_t nc = rq->n_container_requests;
    V1beta1__ContainerPreferredAllocationResponse *cr = NULL, **crp = NULL;
    const char ***ids = NULL;
    if (nc > DP_MAX_CONTAINERS) {
        dp_fail(out, GS_INVALID_ARGUMENT, "%s: GetPreferredAllocation: %zu containers (at most %d)",
                name, nc, DP_MAX_CONTAINERS);
        goto done;
    }
    cr = calloc(nc ? nc : 1, sizeof(*cr));
    crp = calloc(nc ? nc : 1, sizeof(*crp));
    ids = calloc(nc ? nc : 1, sizeof(*ids));
    if (!cr || !crp || !ids) {
        dp_fail(out, GS_INTERNAL, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < nc; i++) {
        const V1beta1__ContainerPreferredAllocationRequest *c = rq->container_requests[i];
        if (c->n_available_deviceids > DP_MAX_IDS || c->n_must_include_deviceids > DP_MAX_IDS ||
            c->allocation_size < 1 || c->allocation_size > DP_MAX_IDS) {
            dp_fail(out, GS_INVALID_ARGUMENT,
                    "%s: GetPreferredAllocation: %d devices wanted of %zu available, %zu required "
                    "(each 1 to %d)",
                    name, (int)c->allocation_size, c->n_available_deviceids,
                    c->n_must_include_deviceids, DP_MAX_IDS);
            goto done;
        }
        ids[i] = calloc(c->n_must_include_deviceids + (size_t)c->allocation_size, sizeof(char *));
        if (!ids[i]) {
            dp_fail(out, GS_INTERNAL, "out of memory");
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
    dp_reply_pack(out, &resp.base); /* before the request (whose strings it points to) is freed */
done:
    for (size_t i = 0; ids && i < nc; i++)
        free(ids[i]);
    free(ids);
    free(cr);
    free(crp);
    v1beta1__preferred_allocation_request__free_unpacked(rq, NULL);
}
