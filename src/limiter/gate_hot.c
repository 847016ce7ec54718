/* gate_hot.c - the submission path's hot line and the capture count (see gate_hot.h). */
#include "gate_hot.h"

#include "fork_hooks.h"

struct vgpu_gate_hot vgpu_gate_hot;

void vgpu_capture_begin(void)
{
    atomic_fetch_add(&vgpu_gate_hot.captures, 1);
}

void vgpu_capture_end(void)
{
    int n = atomic_load(&vgpu_gate_hot.captures);
    while (n > 0 && !atomic_compare_exchange_weak(&vgpu_gate_hot.captures, &n, n - 1)) {
    }
}

int vgpu_capturing(void)
{
    return atomic_load_explicit(&vgpu_gate_hot.captures, memory_order_relaxed) > 0;
}

/* captures belong to the parent's threads */
static void vgpu_gate_hot_reset_in_child(void)
{
    atomic_store(&vgpu_gate_hot.captures, 0);
}

__attribute__((constructor)) static void register_fork(void)
{
    vgpu_fork_register(VGPU_FORK_GATE, NULL, NULL, vgpu_gate_hot_reset_in_child);
}
