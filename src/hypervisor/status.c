/* status.c - build /v1/status and the pods' status entries.
 *
 * Why this exists: see status.h.
 */
#define _GNU_SOURCE
#include "status.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nvml_monitor.h"
#include "shm_region.h"

/* The operator's settings as the state file holds them: {GPU key: {the fields given}}. They
 * are what a pod without processes (no GPUs yet) will get, so status shows them. */
static json_t *operator_limits_json(const struct hv_pod *p)
{
    json_t *o = json_object();
    for (int i = 0; i < p->n_op; i++) {
        const struct hv_limits *l = &p->op[i].l;
        json_t *e = json_object();
        if (l->has & HV_HAS_CORE) json_object_set_new(e, "core_limit", json_real(l->core));
        if (l->has & HV_HAS_MEM)
            json_object_set_new(e, "mem_limit", json_integer((json_int_t)l->mem));
        if (l->has & HV_HAS_WEIGHT) json_object_set_new(e, "weight", json_integer(l->weight));
        if (l->has & HV_HAS_SOFT) json_object_set_new(e, "soft", json_boolean(l->soft));
        json_object_set_new(o, p->op[i].key, e);
    }
    return o;
}

json_t *status_pod_json(const struct hv_pod *p)
{
    static const char *const rank[] = {"none",       "env",        "defaults",
                                       "allocation", "kubernetes", "operator"};
    int best = p->n_op ? 5 : 0;
    json_t *gpus = json_array();
    for (int i = 0; i < p->ngpu; i++) {
        const struct hv_pod_gpu *g = &p->gpu[i];
        for (int r = 0; r < 6; r++)
            if (!strcmp(g->source, rank[r]) && r > best) best = r;
        json_array_append_new(
            gpus, json_pack("{s:s, s:i, s:I, s:I, s:f, s:f, s:f, s:i, s:b, s:f, s:f}", "uuid",
                            g->uuid, "index", g->index, "mem_limit", (json_int_t)g->mem, "mem_used",
                            (json_int_t)g->mem_used, "core_limit", g->core, "core_effective",
                            g->effective / 100.0, "core_used", g->used_avg / 100.0, "weight",
                            (int)g->weight, "soft", g->soft, "clock_factor", hv_clock_factor(g),
                            "shared_factor", g->shared > 1024 ? g->shared / 1024.0 : 1.0));
    }
    json_t *workers = json_array();
    uint64_t now = vgpu_now_ns();
    for (const struct hv_worker *w = hv_reg.workers; w; w = w->next) {
        if (strcmp(w->pod_key, p->key)) continue;
        json_array_append_new(
            workers, json_pack("{s:s, s:i, s:i, s:I, s:I, s:s}", "worker_id", w->id, "host_pid",
                               (int)w->host_pid, "pid", w->pid, "last_seen_ms",
                               (json_int_t)((now - w->last_seen_ns) / 1000000ull), "acked_seq",
                               (json_int_t)w->acked_seq, "container", w->container));
    }
    return json_pack("{s:s, s:s, s:s, s:s, s:b, s:s, s:b, s:s, s:o, s:o, s:o}", "pod", p->key,
                     "namespace", p->ns, "name", p->name, "dir", p->dir, "region",
                     p->files.ctl != NULL, "broken", p->broken, "suspended", p->suspended, "source",
                     rank[best], "gpus", gpus, "workers", workers, "operator_limits",
                     operator_limits_json(p));
}

json_t *status_peer_json(pid_t host_pid)
{
    json_t *pods = json_array();
    registry_lock();
    for (const struct hv_worker *w = hv_reg.workers; w; w = w->next) {
        if (w->host_pid != host_pid) continue;
        const struct hv_pod *p = registry_pod_find(w->pod_key);
        if (p) json_array_append_new(pods, status_pod_json(p));
        break;
    }
    registry_unlock();
    return json_pack("{s:o}", "pods", pods);
}

json_t *status_json(void)
{
    struct nvml_snapshot *s = nvml_snapshot_get();
    json_t *gpus = json_array();
    for (int i = 0; s && i < s->ngpu; i++) {
        const struct nvml_gpu *g = &s->gpu[i];
        json_array_append_new(
            gpus, json_pack("{s:i, s:s, s:s, s:I, s:I, s:i}", "index", g->index, "uuid", g->uuid,
                            "name", g->name, "mem_total", (json_int_t)g->mem_total, "mem_used",
                            (json_int_t)g->mem_used, "util", (int)((g->util_x100 + 50) / 100)));
    }
    free(s);
    char host[256] = "";
    const char *node = hv_reg.cfg->node_name;
    if (!node[0]) {
        gethostname(host, sizeof(host) - 1);
        node = host;
    }
    json_t *pods = json_array(), *unreg = json_array(), *over = json_array();
    registry_lock();
    for (const struct hv_pod *p = hv_reg.pods; p; p = p->next) {
        json_array_append_new(pods, status_pod_json(p));
        if (p->over_cap) json_array_append_new(over, json_string(p->key));
    }
    for (int i = 0; i < hv_reg.nunreg; i++)
        json_array_append_new(
            unreg, json_pack("{s:i, s:i, s:I}", "host_pid", (int)hv_reg.unreg[i].host_pid, "gpu",
                             hv_reg.unreg[i].gpu, "mem_used", (json_int_t)hv_reg.unreg[i].mem));
    json_t *doc = json_pack("{s:s, s:I, s:i, s:o, s:o, s:o, s:o}", "node", node, "seq",
                            (json_int_t)hv_reg.seq, "workers", hv_reg.nworkers, "gpus", gpus,
                            "pods", pods, "unregistered", unreg, "over_cap", over);
    registry_unlock();
    return doc;
}
