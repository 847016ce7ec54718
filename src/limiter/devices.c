/* devices.c - binding of each GPU ordinal to the pod's ledger (see devices.h). */
#define _GNU_SOURCE
#include "devices.h"

#include <stdio.h>
#include <string.h>

#include "../common/ctl_region.h"
#include "../common/shm_ledger.h"
#include "../common/size_parse.h"
#include "real_driver.h"
#include "limiter.h"
#include "log.h"
#include "fork_hooks.h"

struct vgpu_binding vgpu_bindings[VGPU_MAX_DEVICES];
const struct vgpu_dev_limits *_Atomic vgpu_ledger_lim[VGPU_MAX_DEVICES];
static struct vgpu_binding failed_binding = {.state = VGPU_BIND_FAILED, .ledger = -1};
static struct vgpu_binding pass_binding = {.state = VGPU_BIND_PASS, .ledger = -1};
static pthread_mutex_t bind_lock = PTHREAD_MUTEX_INITIALIZER;

static void vgpu_devices_lock(void)
{
    pthread_mutex_lock(&bind_lock);
}
static void vgpu_devices_unlock(void)
{
    pthread_mutex_unlock(&bind_lock);
}
static void vgpu_devices_reset_in_child(void)
{
    pthread_mutex_init(&bind_lock, NULL);
}

CUresult vgpu_current_device(CUdevice *dev)
{
    vgpu_helper_fn_cuCtxGetDevice f = VGPU_HELPER(cuCtxGetDevice);
    return f ? f(dev) : CUDA_ERROR_NOT_FOUND;
}

void vgpu_format_uuid(const CUuuid *u, char *out, unsigned outlen)
{
    const unsigned char *b = (const unsigned char *)u->bytes;
    snprintf(out, outlen,
             "gpu-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
             b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
             b[15]);
}

int vgpu_device_uuid(CUdevice dev, char *out, unsigned outlen)
{
    CUuuid u;
    vgpu_helper_fn_cuDeviceGetUuid get_uuid = VGPU_HELPER(cuDeviceGetUuid);
    if (!get_uuid || get_uuid(&u, dev) != CUDA_SUCCESS) return -1;
    vgpu_format_uuid(&u, out, outlen);
    return 0;
}

const struct vgpu_dev_limits *vgpu_limits_for(struct vgpu_shm *s, int idx, const char *uuid)
{
    const struct vgpu_ctl *ctl = atomic_load(&vgpu_g.ctl);
    if (!ctl) return &s->dev[idx].lim;
    int k = vgpu_ctl_dev_find(ctl, uuid);
    return k < 0 ? NULL : &ctl->dev[k].lim;
}

/* A compute limit for the log, in words where it is not a share: the encoding's 0 is "no
 * limit", which "0.00%" would show as "nothing allowed" (hundredths of a percent). */
static const char *compute_words(uint32_t limit, uint32_t soft, char *buf, size_t n)
{
    if (soft)
        snprintf(buf, n, "soft %.2f%% (up to %.2f%%)", soft / 100.0, limit ? limit / 100.0 : 100.0);
    else if (limit)
        snprintf(buf, n, "%.2f%%", limit / 100.0);
    else
        snprintf(buf, n, "unlimited");
    return buf;
}

static int bind_device(struct vgpu_binding *b, CUdevice dev)
{
    const struct vgpu_config *cfg = &vgpu_g.cfg;
    if (vgpu_device_uuid(dev, b->uuid, sizeof(b->uuid)) != 0) {
        VLOG_ERROR("cannot read the UUID of GPU %d", dev);
        return VGPU_BIND_FAILED;
    }
    size_t total = 0;
    vgpu_fn_cuDeviceTotalMem_v2 total_fn = VGPU_REAL(cuDeviceTotalMem_v2);
    if (total_fn) total_fn(&total, dev);
    b->total_real = total;
    b->ordinal = dev;

    const char *why = NULL;
    uint64_t limit = vgpu_config_mem_limit(cfg, dev, b->uuid, &why);
    uint32_t core_hard = 0, core_soft = 0;
    vgpu_config_core_limit(cfg, dev, b->uuid, &core_hard, &core_soft);
    if (core_soft && core_hard && core_soft > core_hard) {
        VLOG_WARN("GPU %d: soft compute limit %.2f%% above the hard one %.2f%%: using the hard one",
                  dev, core_soft / 100.0, core_hard / 100.0);
        core_soft = core_hard;
    }
    if (limit == VGPU_UNLIMITED && !core_hard && !core_soft && !cfg->hv_on) {
        VLOG_INFO("GPU %d (%s): no limit configured", dev, b->uuid);
        return VGPU_BIND_PASS;
    }
    uint64_t host_part = 0;
    b->oversold = vgpu_config_mem_split(cfg, dev, limit, &limit, &host_part);
    struct vgpu_dev_init init = {
        .mem_limit = limit,
        .oversold_limit = host_part,
        .flags = b->oversold ? VGPU_DEV_OVERSOLD : 0,
        .total_real = total,
        /* a soft limit alone may use the whole GPU when it is idle */
        .core_limit = core_hard ? core_hard : (core_soft ? 10000 : 0),
        .core_soft = core_soft,
    };
    struct vgpu_shm *s = vgpu_shm();
    if (!s) return VGPU_BIND_FAILED;
    int created = 0;
    int idx = vgpu_ledger_dev_attach(s, b->uuid, &init, &created);
    if (idx < 0) {
        VLOG_ERROR("GPU %d (%s): the pod's ledger has no room for another GPU (%d)", dev, b->uuid,
                   VGPU_MAX_DEVICES);
        return VGPU_BIND_FAILED;
    }
    const struct vgpu_dev_limits *lim = vgpu_limits_for(s, idx, b->uuid);
    if (!lim) {
        VLOG_ERROR("GPU %d (%s): the node daemon set no limits for it: GPU work on it is refused",
                   dev, b->uuid);
        return VGPU_BIND_FAILED;
    }
    if (atomic_load(&vgpu_g.ctl)) /* managed: only the daemon lends host memory */
        b->oversold = (atomic_load(&lim->flags) & VGPU_DEV_OVERSOLD) != 0;
    char a[32], c[32], pc[48], oc[48];
    uint64_t pod_limit = atomic_load(&lim->mem_limit);
    if (!created && !cfg->hv_on &&
        (pod_limit != limit || atomic_load(&lim->core_limit) != init.core_limit ||
         atomic_load(&lim->core_soft) != init.core_soft))
        VLOG_WARN("GPU %d (%s): the pod's limits (memory %s, compute %s) differ from this "
                  "process's configuration (memory %s, compute %s); the pod's stay",
                  dev, b->uuid,
                  pod_limit == VGPU_UNLIMITED ? "none" : vgpu_format_size(pod_limit, a, sizeof(a)),
                  compute_words(atomic_load(&lim->core_limit), atomic_load(&lim->core_soft), pc,
                                sizeof(pc)),
                  limit == VGPU_UNLIMITED ? "none" : vgpu_format_size(limit, c, sizeof(c)),
                  compute_words(init.core_limit, init.core_soft, oc, sizeof(oc)));
    b->ledger = idx;
    b->lim = lim;
    if (vgpu_slot() < 0) return VGPU_BIND_FAILED;
    atomic_store_explicit(&vgpu_ledger_lim[idx], lim, memory_order_release);
    VLOG_INFO(
        "GPU %d (%s): memory cap %s (from %s), oversubscription %s; compute %s", dev, b->uuid,
        pod_limit == VGPU_UNLIMITED ? "none" : vgpu_format_size(pod_limit, a, sizeof(a)),
        atomic_load(&vgpu_g.ctl) ? "the node daemon"
        : why                    ? why
                                 : "-",
        b->oversold ? "on" : "off",
        compute_words(atomic_load(&lim->core_limit), atomic_load(&lim->core_soft), pc, sizeof(pc)));
    return VGPU_BIND_LEDGER;
}

static void (*_Atomic true_up)(void);

void vgpu_devices_on_true_up(void (*fn)(void))
{
    atomic_store(&true_up, fn);
}

void vgpu_devices_true_up_now(void)
{
    void (*fn)(void) = atomic_load(&true_up);
    if (fn) fn();
}

const struct vgpu_binding *vgpu_bind_slow(CUdevice dev)
{
    if (dev < 0 || dev >= VGPU_MAX_DEVICES)
        return vgpu_g.cfg.ledger_on ? &failed_binding : &pass_binding;
    struct vgpu_binding *b = &vgpu_bindings[dev];
    int st = 0;
    pthread_mutex_lock(&bind_lock);
    if (atomic_load(&b->state) == VGPU_BIND_UNKNOWN) {
        b->ledger = -1;
        st = bind_device(b, dev);
        atomic_store_explicit(&b->state, st, memory_order_release);
    }
    pthread_mutex_unlock(&bind_lock);
    if (st == VGPU_BIND_LEDGER) vgpu_devices_true_up_now();
    return b;
}

void vgpu_devices_rebind_failed(void)
{
    int bound = 0;
    pthread_mutex_lock(&bind_lock);
    for (int d = 0; d < VGPU_MAX_DEVICES; d++) {
        struct vgpu_binding *b = &vgpu_bindings[d];
        if (atomic_load(&b->state) != VGPU_BIND_FAILED) continue;
        b->ledger = -1;
        int st = bind_device(b, d);
        atomic_store_explicit(&b->state, st, memory_order_release);
        bound |= st == VGPU_BIND_LEDGER;
    }
    pthread_mutex_unlock(&bind_lock);
    if (bound) vgpu_devices_true_up_now();
}

__attribute__((constructor)) static void register_fork(void)
{
    vgpu_fork_register(VGPU_FORK_DEVICES, vgpu_devices_lock, vgpu_devices_unlock,
                       vgpu_devices_reset_in_child);
}
