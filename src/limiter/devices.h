/* devices.h - which ledger entry (if any) governs each GPU this process sees.
 *
 * Why this exists: the driver names a GPU by ordinal, the configuration by index or UUID, the
 * pod's ledger by UUID. The first time a GPU is used this module resolves its UUID and cap and
 * attaches it to the pod's ledger; after that, a lookup is one atomic load.
 */
#ifndef VGPU_DEVICES_H
#define VGPU_DEVICES_H

#include <stdatomic.h>
#include <stdint.h>

#include "cuda_abi.h"
#include "../common/shm_layout.h"

enum {
    VGPU_BIND_UNKNOWN = 0,
    VGPU_BIND_PASS = 1,   /* no cap on this GPU: calls pass through untouched */
    VGPU_BIND_LEDGER = 2, /* capped: every allocation goes through the pod's ledger */
    VGPU_BIND_FAILED = 3, /* capped but the ledger is unusable: allocations are refused */
};

struct vgpu_binding {
    _Atomic int state;
    int ledger; /* index in shm->dev when state == VGPU_BIND_LEDGER */
    /* the limits this GPU is held to (limiter.h): the control region's when the daemon manages
     * the pod, else the ledger's own dev[].lim; set before state becomes VGPU_BIND_LEDGER */
    const struct vgpu_dev_limits *lim;
    int oversold;
    CUdevice ordinal;
    char uuid[VGPU_UUID_LEN]; /* normalised "gpu-..." */
    uint64_t total_real;
    _Atomic int ovh_found; /* NVML has shown this process on the GPU: its overhead is counted */
    _Atomic int ovh_tried; /* an allocation path asked NVML once already */
};

const struct vgpu_binding *vgpu_bind_slow(CUdevice dev);
extern struct vgpu_binding vgpu_bindings[VGPU_MAX_DEVICES];
/* The limits of ledger device `d` (index in shm->dev) in this process, NULL while unbound. */
extern const struct vgpu_dev_limits *_Atomic vgpu_ledger_lim[VGPU_MAX_DEVICES];

/* Binding of GPU ordinal `dev`, resolved on first use. Never NULL. */
static inline const struct vgpu_binding *vgpu_bind(CUdevice dev)
{
    if (__builtin_expect(dev >= 0 && dev < VGPU_MAX_DEVICES, 1)) {
        const struct vgpu_binding *b = &vgpu_bindings[dev];
        if (__builtin_expect(atomic_load_explicit(&b->state, memory_order_acquire) != 0, 1))
            return b;
    }
    return vgpu_bind_slow(dev);
}

/* GPU of the calling thread's current context. */
CUresult vgpu_current_device(CUdevice *dev);

/* Format the 16 UUID bytes as "gpu-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx". */
void vgpu_format_uuid(const CUuuid *u, char *out, unsigned outlen);
/* The limits ledger device `idx` (uuid) is held to (see vgpu_binding.lim); NULL when the
 * daemon's control region has none for it. */
const struct vgpu_dev_limits *vgpu_limits_for(struct vgpu_shm *s, int idx, const char *uuid);
/* The normalised UUID of GPU ordinal `dev` from the driver, without binding it. 0 or -1. */
int vgpu_device_uuid(CUdevice dev, char *out, unsigned outlen);
/* Bind again every GPU whose binding failed because no ledger could be had (a daemon that
 * answered late): nothing was charged through a failed binding, so it may change. */
void vgpu_devices_rebind_failed(void);
/* Count the driver's overhead on the bound GPUs now: a GPU was just bound, or its first
 * allocation is about to be weighed against the cap. It is the maintenance thread's true-up,
 * registered at load (maintenance.h); nothing is counted before it is registered. */
void vgpu_devices_true_up_now(void);
void vgpu_devices_on_true_up(void (*fn)(void));

#endif
