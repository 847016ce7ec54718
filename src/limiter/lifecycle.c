/* lifecycle.c - loading and unloading of the limiter (see limiter.h for why loading is cheap).
 *
 * Why this exists: the constructor and destructor are the one place that reaches modules from
 * above (configuration, cost model, maintenance thread, ledger); keeping them apart from the
 * process state in limiter.c means no module that the state serves is called back by it. Each
 * module registers its own fork handling (fork_hooks.h).
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <unistd.h>

#include "../common/shm_ledger.h"
#include "config.h"
#include "cost_model.h"
#include "limiter.h"
#include "log.h"
#include "maintenance.h"

extern char **environ;

__attribute__((constructor)) static void limiter_load(void)
{
    vgpu_config_load(&vgpu_g.cfg, environ);
    vgpu_log_level = vgpu_g.cfg.log_level;
    vgpu_config_log_notes(&vgpu_g.cfg);
    atomic_store(&vgpu_g.fail_closed, vgpu_g.cfg.error != 0);
    atomic_store(&vgpu_g.nothing_to_limit, !vgpu_g.cfg.error && !vgpu_g.cfg.ledger_on);
    vgpu_proc_self(&vgpu_g.self);
    vgpu_cost_configure(getenv("VGPU_SAMPLE_GAP_MS"), getenv("VGPU_COST_RECENT"));
}

__attribute__((destructor)) static void limiter_unload(void)
{
    vgpu_maintenance_stop(); /* usually already stopped by its exit handler */
    atomic_store(&vgpu_g.exiting, 1);
    struct vgpu_shm *s = atomic_load(&vgpu_g.shm);
    int slot = atomic_load(&vgpu_g.slot);
    if (s && slot >= 0 && vgpu_g.self.pid == getpid())
        vgpu_ledger_proc_release(s, slot, vgpu_g.self.pid);
}
