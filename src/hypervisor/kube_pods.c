/* kube_pods.c - what the Kubernetes watch reports, into the registry and out to the pods.
 *
 * Why this exists: see kube_pods.h. It sits above the registry, the pod regions and the
 * command channel, so that the registry never calls the channel back: the registry holds the
 * data, this file decides that a changed annotation is written and pushed.
 */
#include "kube_pods.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "command_channel.h"
#include "hv_log.h"
#include "kube_watch.h"
#include "pod_regions.h"
#include "registry.h"

static void kube_limits(const struct kube_pod *kp, struct hv_limits *l)
{
    memset(l, 0, sizeof(*l));
    if (kp->has_core) l->has |= HV_HAS_CORE, l->core = kp->core_limit;
    if (kp->has_mem) l->has |= HV_HAS_MEM, l->mem = kp->mem_limit;
    if (kp->has_weight) l->has |= HV_HAS_WEIGHT, l->weight = kp->weight ? kp->weight : 1;
    if (kp->has_soft) l->has |= HV_HAS_SOFT, l->soft = kp->soft;
}

int kube_pods_known(const char *ns, const char *name)
{
    for (const struct hv_kube_pod *k = hv_reg.kube; k; k = k->next)
        if (!strcmp(k->ns, ns) && !strcmp(k->name, name)) return 1;
    return 0;
}

void kube_pods_update(const struct kube_pod *kp, void *arg)
{
    (void)arg;
    registry_lock();
    struct hv_kube_pod **pp = &hv_reg.kube, *k = NULL;
    for (; *pp; pp = &(*pp)->next)
        if (!strcmp((*pp)->uid, kp->uid)) {
            k = *pp;
            break;
        }
    if (kp->deleted) {
        if (k) {
            *pp = k->next;
            free(k);
        }
    } else {
        if (!k && (k = calloc(1, sizeof(*k)))) {
            k->next = hv_reg.kube;
            hv_reg.kube = k;
        }
        if (k) {
            snprintf(k->ns, sizeof(k->ns), "%s", kp->ns);
            snprintf(k->name, sizeof(k->name), "%s", kp->name);
            snprintf(k->uid, sizeof(k->uid), "%s", kp->uid);
            kube_limits(kp, &k->l);
        }
    }
    /* the pod's entry, and those of its containers that have allocations of their own */
    for (struct hv_pod *p = hv_reg.pods; p; p = p->next) {
        if (strcmp(p->ns, kp->ns) || strcmp(p->base, kp->name)) continue;
        p->has_kube = !kp->deleted;
        if (!kp->deleted) kube_limits(kp, &p->kube);
        if (registry_resolve(p)) {
            region_apply(p);
            cmd_push_pod(p, "limits");
            hv_logf(HV_INFO, "pod limits changed by annotations", "{s:s}", "pod", p->key);
        }
    }
    registry_unlock();
}
