/* device_plugin.h - the daemon's Kubernetes device plugin (kubelet device-plugin API v1beta1).
 *
 * Why this exists: the limiter holds each pod to its share of a GPU, but only the scheduler can
 * keep a node from being promised more than it has. The plugin advertises every GPU's memory as
 * countable devices of vgpu.io/gpu-memory (one per --memory-unit, default 1 GiB; IDs
 * "<gpu uuid>-m<k>") and its time as 100 devices of vgpu.io/gpu-cores (1% each; "<uuid>-c<k>"),
 * so the kube-scheduler never gives out more than the node holds. When the kubelet allocates
 * devices to a container, the plugin checks that they lie on one GPU, makes the allocation's
 * region (allocations.h) and answers with what the container needs: the GPU
 * (NVIDIA_VISIBLE_DEVICES), its limits, LD_PRELOAD of the limiter, the worker socket, and
 * mounts of the libraries, the node region and the allocation's own region only.
 *
 * Each resource has its own socket in the kubelet's device-plugin directory (vgpu-memory.sock,
 * vgpu-cores.sock) and registers on DIR/kubelet.sock; both are re-created and registered again
 * when the kubelet restarts (its socket changes). A GPU NVML no longer reports is listed
 * Unhealthy within about a second.
 */
#ifndef VGPU_HV_DEVICE_PLUGIN_H
#define VGPU_HV_DEVICE_PLUGIN_H

#include <stddef.h>

#include "hv_config.h"

#define DP_RESOURCE_MEMORY "vgpu.io/gpu-memory"
#define DP_RESOURCE_CORES "vgpu.io/gpu-cores"

/* Serve both resources from cfg->device_plugin_dir and register them (registration is retried
 * in the background until a kubelet answers). Call after nvml_monitor_start and
 * pod_files_init. 0, or -1 with a message in err. */
int device_plugin_start(const struct hv_config *cfg, char *err, size_t errlen);
/* Stop serving (open ListAndWatch streams end); the sockets are removed. Safe when not started. */
void device_plugin_stop(void);

#endif
