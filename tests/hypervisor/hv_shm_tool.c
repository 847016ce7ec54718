/* hv_shm_tool.c - create, show and feed a pod region for the daemon's tests.
 *
 * Why this exists: the daemon's tests must see what it writes into a pod's shared-memory
 * region (limits, suspended, managed, core_effective) and give it usage to schedule, without a
 * GPU or a preloaded limiter. This uses the same src/common code the limiter uses.
 *
 *   hv_shm_tool create DIR POD_ID UUID...         region with one empty device slot per uuid
 *   hv_shm_tool show DIR POD_ID                   the control fields as one JSON object
 *   hv_shm_tool charge DIR POD_ID UUID NS WAITED  add to gate_charged_ns / gate_waited_ns
 *   hv_shm_tool hold-lock DIR POD_ID SECONDS      take the pod's ledger lock, print LOCKED,
 *                                                 keep it SECONDS (a stuck process of the pod)
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shm_ledger.h"
#include "shm_region.h"

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: hv_shm_tool create|show|charge DIR POD_ID ...\n");
        return 2;
    }
    char err[256];
    int create = !strcmp(argv[1], "create");
    struct vgpu_shm *s =
        vgpu_shm_open(argv[2], argv[3], create ? VGPU_SHM_CREATE : 0, err, sizeof(err));
    if (!s) {
        fprintf(stderr, "hv_shm_tool: %s\n", err);
        return 1;
    }
    if (create) {
        for (int i = 4; i < argc; i++) {
            struct vgpu_dev_init init = {.mem_limit = VGPU_UNLIMITED};
            int created;
            if (vgpu_ledger_dev_attach(s, argv[i], &init, &created) < 0) return 1;
        }
    } else if (!strcmp(argv[1], "show")) {
        printf("{\"suspended\": %u, \"managed\": %u, \"managed_ns\": %llu, \"control_seq\": %llu, "
               "\"devs\": {",
               atomic_load(&s->suspended), atomic_load(&s->managed),
               (unsigned long long)atomic_load(&s->managed_ns),
               (unsigned long long)atomic_load(&s->control_seq));
        const char *sep = "";
        for (int d = 0; d < VGPU_MAX_DEVICES; d++) {
            struct vgpu_shm_dev *v = &s->dev[d];
            if (atomic_load(&v->state) != VGPU_DEV_READY) continue;
            printf("%s\"%s\": {\"mem_limit\": %llu, \"core_limit\": %u, \"core_soft\": %u, "
                   "\"core_effective\": %u, \"weight\": %u}",
                   sep, v->uuid, (unsigned long long)atomic_load(&v->mem_limit),
                   atomic_load(&v->core_limit), atomic_load(&v->core_soft),
                   atomic_load(&v->core_effective), atomic_load(&v->weight));
            sep = ", ";
        }
        printf("}}\n");
    } else if (!strcmp(argv[1], "charge") && argc == 7) {
        int d = vgpu_ledger_dev_find(s, argv[4]);
        if (d < 0) return 1;
        atomic_fetch_add(&s->dev[d].gate_charged_ns, strtoull(argv[5], NULL, 10));
        atomic_fetch_add(&s->dev[d].gate_waited_ns, strtoull(argv[6], NULL, 10));
    } else if (!strcmp(argv[1], "hold-lock") && argc == 5) {
        if (vgpu_shm_lock(s) != 0) return 1;
        printf("LOCKED\n");
        fflush(stdout);
        sleep((unsigned)atoi(argv[4]));
        vgpu_shm_unlock(s);
    } else {
        fprintf(stderr, "hv_shm_tool: unknown command %s\n", argv[1]);
        return 2;
    }
    vgpu_shm_close(s);
    return 0;
}
