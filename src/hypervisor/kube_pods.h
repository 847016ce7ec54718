/* kube_pods.h - pods the Kubernetes watch reports: their annotations as limits.
 *
 * Why this exists: a pod's vgpu.io annotations are one source of its limits (registry.c
 * decides precedence). When the watch reports a change, the pod's resolved limits are
 * recomputed, written to its control region and pushed to its workers as a "limits" command.
 */
#ifndef VGPU_HV_KUBE_PODS_H
#define VGPU_HV_KUBE_PODS_H

struct kube_pod;

/* kube_watch callback: record the pod (or forget it when deleted) and apply a change of its
 * limits. Takes the registry lock itself. */
void kube_pods_update(const struct kube_pod *kp, void *arg);
/* 1 when the watch reports a pod of this namespace and name. Registry lock held. */
int kube_pods_known(const char *ns, const char *name);

#endif
