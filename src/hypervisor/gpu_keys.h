/* gpu_keys.h - does this node have the GPU an operator's setting names?
 *
 * Why this exists: `PUT /v1/pods/.../limits` with {"gpu": 7} on a one-GPU node would be kept
 * (and persisted) for a GPU that no process can ever use, so the operator believes a limit is
 * in force that is not. The daemon's knowledge of the node's GPUs is NVML's list, plus every
 * GPU a worker registered (the limiter's view, which may name GPUs NVML does not list, e.g.
 * MIG instances); a key naming none of them is refused with the list of what exists.
 */
#ifndef VGPU_HV_GPU_KEYS_H
#define VGPU_HV_GPU_KEYS_H

#include <stddef.h>

#include "nvml_monitor.h"

/* `key` as parse_put_limits makes it: "all", a decimal index, or a normalised uuid. 0 when the
 * node has such a GPU (or key is "all"); -1 with a message naming the key and listing the
 * known GPUs. `s` may be NULL (no NVML). Call with the registry lock held. */
int gpu_key_check(const struct nvml_snapshot *s, const char *key, char *err, size_t n);

#endif
