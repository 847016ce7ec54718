/* api_operator.c - the operator API: a pod's limits, suspension and resumption.
 *
 * Why this exists: see api_operator.h. Each change is applied under the registry lock
 * (resolved, written to the pod's region, pushed to its workers), and the operator state is
 * written to disk after the lock is released.
 */
#define _GNU_SOURCE
#include "api_operator.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api_parse.h"
#include "command_channel.h"
#include "gpu_keys.h"
#include "hv_log.h"
#include "kube_pods.h"
#include "nvml_monitor.h"
#include "pod_regions.h"
#include "registry.h"
#include "shm_region.h"
#include "state_store.h"
#include "status.h"

enum MHD_Result api_op_put_limits(struct MHD_Connection *c, const char *ns, const char *name,
                                  const struct api_req *r)
{
    enum MHD_Result ret;
    json_t *o = api_body_object(c, r, 0, &ret);
    if (!o) return ret;
    struct hv_limits l;
    char key[VGPU_UUID_LEN], err[256];
    int bad = parse_put_limits(o, &l, key, sizeof(key), err, sizeof(err));
    json_decref(o);
    if (bad) return api_reply_error(c, 400, "%s", err);
    struct nvml_snapshot *gpus = nvml_snapshot_get(); /* NVML's lock, before the registry's */
    char why[1024];
    registry_lock();
    if (gpu_key_check(gpus, key, why, sizeof(why))) {
        registry_unlock();
        free(gpus);
        return api_reply_error(c, 400, "%s", why);
    }
    free(gpus);
    /* a pod that has not started yet is remembered: its settings apply when it registers */
    struct hv_pod *p = registry_pod_get(ns, name);
    if (!p || registry_op_set(p, key, &l)) {
        registry_unlock();
        return api_reply_error(c, 409, "gpu: too many per-GPU settings for pod %s/%s", ns, name);
    }
    registry_resolve(p);
    region_apply(p);
    if (p->nworkers) cmd_push_pod(p, "limits");
    json_t *snap = state_snapshot();
    hv_logf(HV_INFO, "operator set pod limits", "{s:s, s:s}", "pod", p->key, "gpu", key);
    json_t *entry = status_pod_json(p);
    registry_unlock();
    state_write(hv_reg.cfg->state, snap); /* the disk, with the registry free */
    return api_reply_json(c, 200, entry);
}

enum MHD_Result api_op_delete_limits(struct MHD_Connection *c, const char *ns, const char *name)
{
    char key[HV_KEY_LEN];
    snprintf(key, sizeof(key), "%s/%s", ns, name);
    registry_lock();
    struct hv_pod *p = registry_pod_find(key);
    if (!p) {
        registry_unlock();
        return api_reply_error(c, 404, "pod: unknown pod '%s'", key);
    }
    registry_op_clear(p);
    registry_resolve(p);
    region_apply(p);
    if (p->nworkers) cmd_push_pod(p, "limits");
    json_t *snap = state_snapshot();
    hv_logf(HV_INFO, "operator cleared pod limits", "{s:s}", "pod", p->key);
    json_t *entry = status_pod_json(p);
    registry_pod_maybe_drop(p);
    registry_unlock();
    state_write(hv_reg.cfg->state, snap);
    return api_reply_json(c, 200, entry);
}

enum MHD_Result api_op_suspend(struct MHD_Connection *c, const char *ns, const char *name,
                               int suspend)
{
    char key[HV_KEY_LEN];
    snprintf(key, sizeof(key), "%s/%s", ns, name);
    registry_lock();
    /* only a pod the daemon knows: one with processes or operator settings, or one the
     * Kubernetes watch reports; a typo must not be remembered as a suspension of nothing */
    if (!registry_pod_find(key) && !kube_pods_known(ns, name)) {
        registry_unlock();
        return api_reply_error(c, 404,
                               "pod: unknown pod '%s': no process of it has registered, it has no "
                               "operator settings and Kubernetes does not report it on this node",
                               key);
    }
    struct hv_pod *p = registry_pod_get(ns, name);
    if (!p) {
        registry_unlock();
        return api_reply_error(c, 500, "internal: out of memory");
    }
    /* the pod's entry and those of its containers with allocations of their own */
    uint64_t seq = 0;
    for (struct hv_pod *e = hv_reg.pods; e; e = e->next) {
        if (e != p && (strcmp(e->ns, ns) || strcmp(e->base, name))) continue;
        e->suspended = suspend;
        region_apply(e);
        uint64_t s = cmd_push_pod(e, suspend ? "suspend" : "resume");
        if (s > seq) seq = s;
    }
    json_t *snap = state_snapshot();
    hv_logf(HV_INFO, suspend ? "pod suspended" : "pod resumed", "{s:s, s:I}", "pod", key, "seq",
            (json_int_t)seq);
    registry_unlock(); /* the disk, with the registry free; p is looked up again below */
    state_write(hv_reg.cfg->state, snap);
    registry_lock();
    /* wait up to 1 s for the acks of the pod's workers */
    uint64_t deadline = vgpu_now_ns() + 1000000000ull;
    int workers, acked;
    for (;;) {
        workers = acked = 0;
        for (const struct hv_worker *w = hv_reg.workers; w; w = w->next) {
            const struct hv_pod *e = registry_pod_find(w->pod_key);
            if (e && !strcmp(e->ns, ns) && !strcmp(e->base, name)) {
                workers++;
                acked += w->acked_seq >= w->last_cmd_seq;
            }
        }
        if (acked == workers || hv_reg.stopping || vgpu_now_ns() >= deadline) break;
        struct timespec ts = {(time_t)(deadline / 1000000000ull), (long)(deadline % 1000000000ull)};
        pthread_cond_timedwait(&hv_reg.cv, &hv_reg.mu, &ts);
    }
    if (!suspend && (p = registry_pod_find(key))) registry_pod_maybe_drop(p);
    registry_unlock();
    return api_reply_json(
        c, 200,
        json_pack("{s:I, s:i, s:i}", "seq", (json_int_t)seq, "acked", acked, "workers", workers));
}
