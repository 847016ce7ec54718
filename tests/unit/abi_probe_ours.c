/* abi_probe_ours.c - the probe list evaluated against vgpu's own declarations. */
#include <stddef.h>
#include <stdint.h>

#include "../../src/limiter/cuda_abi.h"
#include "abi_probe_list.h"

#define AS_VALUE(e) (long long)(e),
#define AS_NAME(e) #e,
const long long vgpu_abi_ours[] = {VGPU_ABI_PROBES(AS_VALUE)};
const char *const vgpu_abi_names[] = {VGPU_ABI_PROBES(AS_NAME)};
const int vgpu_abi_count = sizeof(vgpu_abi_ours) / sizeof(vgpu_abi_ours[0]);
