/* mem_overhead.c - the true-up of driver overhead from NVML (see mem_overhead.h). */
#define _GNU_SOURCE
#include "mem_overhead.h"

#include <unistd.h>

#include "../common/shm_ledger.h"
#include "devices.h"
#include "limiter.h"
#include "mem_charge.h"
#include "nvml_gpu.h"
#include "real_driver.h"

#define NVML_VALUE_NOT_AVAILABLE_ULL (~0ull)

/* Our bytes on a GPU as the driver counts them (NVML), or -1 if NVML cannot tell. When the
 * list was read, *others says whether it has a process that is not this one. */
static long long driver_bytes(const char *uuid, int *others)
{
    nvmlDevice_t dev = vgpu_nvml_device(uuid);
    vgpu_fn_nvmlDeviceGetComputeRunningProcesses_v3 list =
        VGPU_REAL(nvmlDeviceGetComputeRunningProcesses_v3);
    if (!dev || !list) return -1;
    nvmlProcessInfo_t infos[128];
    unsigned n = 128;
    if (list(dev, &n, infos) != NVML_SUCCESS) return -1;
    *others = 0;
    int slot = atomic_load(&vgpu_g.slot);
    struct vgpu_shm *s = atomic_load(&vgpu_g.shm);
    unsigned host = (s && slot >= 0) ? (unsigned)atomic_load(&s->proc[slot].host_pid) : 0;
    long long mine = -1;
    int found = 0;
    for (unsigned i = 0; i < n && i < 128; i++) {
        if (infos[i].pid != (unsigned)vgpu_g.self.pid && (!host || infos[i].pid != host)) {
            *others = 1;
        } else if (!found++ && infos[i].usedGpuMemory != NVML_VALUE_NOT_AVAILABLE_ULL) {
            mine = (long long)infos[i].usedGpuMemory;
        }
    }
    return mine;
}

int vgpu_overhead_true_up(struct vgpu_shm *s, int slot)
{
    int others = 0, known = 0;
    for (int d = 0; d < VGPU_MAX_DEVICES; d++) {
        const struct vgpu_binding *b = &vgpu_bindings[d];
        if (atomic_load(&b->state) != VGPU_BIND_LEDGER) continue;
        long long have = -1;
        uint64_t charged = 0, ovh;
        for (int attempt = 0; attempt < 20; attempt++) {
            /* read the driver and the ledger while no other thread is between the two */
            uint64_t epoch;
            if (attempt) usleep(500);
            if (!vgpu_mem_quiet_begin(&epoch)) continue;
            int o = -1; /* a list that says nothing of us still says who else is there */
            have = driver_bytes(b->uuid, &o);
            if (o >= 0) known = 1, others |= o;
            charged = atomic_load(&s->proc[slot].mem[b->ledger]);
            if (vgpu_mem_quiet_end(epoch)) break;
            have = -2; /* not a consistent snapshot */
        }
        if (have == -2) continue; /* busy: next pass */
        if (have >= 0) {
            atomic_store(&((struct vgpu_binding *)b)->ovh_found, 1);
            ovh = (uint64_t)have > charged ? (uint64_t)have - charged : 0;
        } else if (vgpu_g.cfg.context_reserve_set) {
            ovh = vgpu_g.cfg.context_reserve;
        } else {
            continue;
        }
        if (ovh != atomic_load(&s->proc[slot].ovh[b->ledger]))
            vgpu_ledger_set_overhead(s, slot, b->ledger, ovh);
    }
    return known ? others : -1;
}
