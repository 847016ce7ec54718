/* mem_view.c - what the application and nvidia-smi see of a capped GPU.
 *
 * Why this exists: frameworks size themselves from what the driver reports (JAX preallocates a
 * fraction of it, PyTorch reports it), and operators read nvidia-smi. On a capped GPU the total
 * is the cap, used is what the whole pod holds, free is what is left of the cap (never more
 * than the card really has free), and the process list shows only the pod's processes.
 */
#include <stdlib.h>
#include <string.h>

#include "../common/shm_ledger.h"
#include "../common/shm_region.h"
#include "real_driver.h"
#include "hooks.h"
#include "limiter.h"
#include "log.h"
#include "mem_charge.h"
#include "mem_pools.h"

#define REAP_INTERVAL_NS 500000000ull

struct capped {
    const struct vgpu_shm_dev *v;
    const struct vgpu_dev_limits *lim;
};

static void view(struct capped c, uint64_t real_free, uint64_t real_total, uint64_t *vfree,
                 uint64_t *vtotal)
{
    const struct vgpu_shm_dev *v = c.v;
    uint64_t cap = atomic_load(&c.lim->mem_limit);
    uint64_t used = atomic_load(&v->mem_used);
    uint64_t total = cap < real_total ? cap : real_total;
    uint64_t free = total > used ? total - used : 0;
    *vtotal = total;
    *vfree = free < real_free ? free : real_free;
}

/* ledger device of the current GPU, with pools and dead processes settled; v NULL if uncapped */
static struct capped current_view(CUresult *err, int *refuse)
{
    struct vgpu_charge c;
    *refuse = 0;
    int st = vgpu_charge_begin_current(&c, err, NULL);
    if (st == VGPU_CHARGE_REFUSE) *refuse = 1;
    if (st != VGPU_CHARGE_YES) return (struct capped){NULL, NULL};
    vgpu_pools_true_up_all();
    vgpu_ledger_reap_if_due(c.s, vgpu_g.self.pidns, atomic_load(&vgpu_g.ctl), REAP_INTERVAL_NS);
    return (struct capped){&c.s->dev[c.b->ledger], c.b->lim};
}

CUresult hook_mem_get_info(void *real, size_t *free, size_t *total)
{
    if (vgpu_check_config()) return CUDA_ERROR_INVALID_VALUE;
    CUresult r = ((vgpu_fn_cuMemGetInfo_v2)real)(free, total);
    if (r != CUDA_SUCCESS || !free || !total) return r;
    int refuse;
    struct capped v = current_view(&r, &refuse);
    if (refuse) return r;
    if (v.v) {
        uint64_t f, t;
        view(v, *free, *total, &f, &t);
        *free = f;
        *total = t;
    }
    return CUDA_SUCCESS;
}

CUresult hook_mem_get_info_v1(void *real, unsigned int *free, unsigned int *total)
{
    if (vgpu_check_config()) return CUDA_ERROR_INVALID_VALUE;
    CUresult r = ((vgpu_fn_cuMemGetInfo)real)(free, total);
    if (r != CUDA_SUCCESS || !free || !total) return r;
    int refuse;
    struct capped v = current_view(&r, &refuse);
    if (refuse) return r;
    if (v.v) {
        uint64_t f, t;
        /* the 32-bit call saturates; compare against the uncapped card as the driver sees it */
        view(v, UINT64_MAX, UINT64_MAX, &f, &t);
        if (t < *total) *total = (unsigned)t;
        if (f < *free) *free = (unsigned)f;
    }
    return CUDA_SUCCESS;
}

static uint64_t capped_total(CUdevice dev, uint64_t real_total)
{
    struct vgpu_charge c;
    CUresult err;
    if (vgpu_charge_begin(dev, &c, &err) != VGPU_CHARGE_YES) return real_total;
    uint64_t cap = atomic_load(&c.b->lim->mem_limit);
    return cap < real_total ? cap : real_total;
}

CUresult hook_device_total_mem(void *real, size_t *bytes, CUdevice dev)
{
    if (vgpu_check_config()) return CUDA_ERROR_INVALID_VALUE;
    CUresult r = ((vgpu_fn_cuDeviceTotalMem_v2)real)(bytes, dev);
    if (r == CUDA_SUCCESS && bytes) *bytes = capped_total(dev, *bytes);
    return r;
}

CUresult hook_device_total_mem_v1(void *real, unsigned int *bytes, CUdevice dev)
{
    if (vgpu_check_config()) return CUDA_ERROR_INVALID_VALUE;
    CUresult r = ((vgpu_fn_cuDeviceTotalMem)real)(bytes, dev);
    if (r == CUDA_SUCCESS && bytes) *bytes = (unsigned)capped_total(dev, *bytes);
    return r;
}

/* ---- NVML ------------------------------------------------------------------------------------ */

nvmlReturn_t hook_nvml_init(void *real)
{
    if (vgpu_check_config()) return NVML_ERROR_UNKNOWN;
    return ((nvmlReturn_t(*)(void))real)();
}

nvmlReturn_t hook_nvml_init_with_flags(void *real, unsigned int flags)
{
    if (vgpu_check_config()) return NVML_ERROR_UNKNOWN;
    return ((vgpu_fn_nvmlInitWithFlags)real)(flags);
}

/* Index of an NVML device among the GPUs the configuration's indices refer to (-1: none). */
static int config_index(nvmlDevice_t device, const char *uuid)
{
    const struct vgpu_config *cfg = &vgpu_g.cfg;
    unsigned idx = 0;
    vgpu_helper_fn_nvmlDeviceGetIndex get_index = VGPU_HELPER(nvmlDeviceGetIndex);
    int have_idx = get_index && get_index(device, &idx) == NVML_SUCCESS;
    if (!cfg->n_visible) return have_idx ? (int)idx : -1;
    for (int i = 0; i < cfg->n_visible; i++) {
        if (strcmp(cfg->visible[i], uuid) == 0) return i;
        if (have_idx && atoi(cfg->visible[i]) == (int)idx && cfg->visible[i][0] >= '0' &&
            cfg->visible[i][0] <= '9')
            return i;
    }
    return -1;
}

/* Cap and pod usage of an NVML device; 0 if it is not capped. */
static int nvml_capped(nvmlDevice_t device, uint64_t *cap, uint64_t *used)
{
    if (!vgpu_g.cfg.ledger_on) return 0;
    char raw[NVML_DEVICE_UUID_V2_BUFFER_SIZE], uuid[VGPU_UUID_LEN];
    vgpu_helper_fn_nvmlDeviceGetUUID get_uuid = VGPU_HELPER(nvmlDeviceGetUUID);
    if (!get_uuid || get_uuid(device, raw, sizeof(raw)) != NVML_SUCCESS) return 0;
    if (vgpu_normalize_uuid(raw, uuid, sizeof(uuid)) != 0) return 0;
    struct vgpu_shm *s = vgpu_shm();
    int d = s ? vgpu_ledger_dev_find(s, uuid) : -1;
    const struct vgpu_dev_limits *lim = d >= 0 ? vgpu_limits_for(s, d, uuid) : NULL;
    if (lim) {
        vgpu_ledger_reap_if_due(s, vgpu_g.self.pidns, atomic_load(&vgpu_g.ctl), REAP_INTERVAL_NS);
        *cap = atomic_load(&lim->mem_limit);
        *used = atomic_load(&s->dev[d].mem_used);
    } else if (d >= 0) {
        *cap = 0; /* the daemon set no limits for this GPU: nothing is free (fail closed) */
        *used = 0;
    } else {
        *cap = vgpu_config_mem_limit(&vgpu_g.cfg, config_index(device, uuid), uuid, NULL);
        *used = 0;
    }
    return *cap != VGPU_UNLIMITED;
}

nvmlReturn_t hook_nvml_memory_info(void *real, nvmlDevice_t device, nvmlMemory_t *memory)
{
    nvmlReturn_t r = ((vgpu_fn_nvmlDeviceGetMemoryInfo)real)(device, memory);
    uint64_t cap, used;
    if (r != NVML_SUCCESS || !memory || !nvml_capped(device, &cap, &used)) return r;
    uint64_t total = cap < memory->total ? cap : memory->total;
    memory->total = total;
    memory->used = used < total ? used : total;
    memory->free = total - memory->used;
    return r;
}

nvmlReturn_t hook_nvml_memory_info_v2(void *real, nvmlDevice_t device, nvmlMemory_v2_t *memory)
{
    nvmlReturn_t r = ((vgpu_fn_nvmlDeviceGetMemoryInfo_v2)real)(device, memory);
    uint64_t cap, used;
    if (r != NVML_SUCCESS || !memory || !nvml_capped(device, &cap, &used)) return r;
    uint64_t total = cap < memory->total ? cap : memory->total;
    memory->total = total;
    memory->reserved = 0; /* the driver's reservation is outside the pod's share */
    memory->used = used < total ? used : total;
    memory->free = total - memory->used;
    return r;
}

/* Process lists: keep the pod's processes only. Both record layouts start with the pid. */
typedef nvmlReturn_t (*list_fn)(nvmlDevice_t, unsigned int *, void *);
static nvmlReturn_t filtered_list(list_fn fn, size_t elem, nvmlDevice_t device, unsigned int *count,
                                  void *infos)
{
    uint64_t cap, used;
    if (!count || !nvml_capped(device, &cap, &used)) return fn(device, count, infos);
    unsigned n = 64;
    unsigned char *buf = NULL;
    nvmlReturn_t r;
    for (int tries = 0; tries < 4; tries++) {
        free(buf);
        buf = calloc(n, elem);
        if (!buf) return NVML_ERROR_UNKNOWN;
        unsigned got = n;
        r = fn(device, &got, buf);
        if (r == NVML_ERROR_INSUFFICIENT_SIZE) {
            n = got + 16;
            continue;
        }
        n = got;
        break;
    }
    if (r != NVML_SUCCESS) {
        free(buf);
        return r;
    }
    struct vgpu_shm *s = vgpu_shm();
    unsigned kept = 0;
    for (unsigned i = 0; i < n; i++) {
        unsigned pid;
        memcpy(&pid, buf + i * elem, sizeof(pid));
        if (s && vgpu_ledger_has_pid(s, vgpu_g.self.pidns, pid))
            memmove(buf + kept++ * elem, buf + i * elem, elem);
    }
    unsigned room = *count;
    *count = kept;
    if (kept > room || (kept && !infos)) {
        free(buf);
        return NVML_ERROR_INSUFFICIENT_SIZE;
    }
    if (kept) memcpy(infos, buf, kept * elem);
    free(buf);
    return NVML_SUCCESS;
}

nvmlReturn_t hook_nvml_processes_v1(void *real, nvmlDevice_t device, unsigned int *infoCount,
                                    nvmlProcessInfo_v1_t *infos)
{
    return filtered_list((list_fn)real, sizeof(*infos), device, infoCount, infos);
}

nvmlReturn_t hook_nvml_processes(void *real, nvmlDevice_t device, unsigned int *infoCount,
                                 nvmlProcessInfo_t *infos)
{
    return filtered_list((list_fn)real, sizeof(*infos), device, infoCount, infos);
}
