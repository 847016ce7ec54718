/* real_driver.h - how the limiter reaches the real driver and NVML.
 *
 * Why this exists: every hook and every module that asks the driver something for itself needs
 * the real entry points, resolved lazily (a symbol missing from an older driver never breaks
 * start-up). They sit below everything else: this module calls no other of the limiter, so the
 * hooks can use it while hook_dispatch.c, which calls the hooks, sits above them.
 */
#ifndef VGPU_REAL_DRIVER_H
#define VGPU_REAL_DRIVER_H

#include <stdatomic.h>

#include "hook_table.h"

extern _Atomic(void *) vgpu_real_fns[VGPU_SYM_COUNT];
void *vgpu_real_resolve(int sym);

/* Real entry point of hooked symbol `sym` (NULL if the driver lacks it). */
static inline void *vgpu_real(int sym)
{
    void *p = atomic_load_explicit(&vgpu_real_fns[sym], memory_order_acquire);
    return __builtin_expect(p != NULL, 1) ? p : vgpu_real_resolve(sym);
}

/* Real driver function the limiter calls for itself (NULL if missing). */
void *vgpu_helper(int helper);

#define VGPU_REAL(sym) ((vgpu_fn_##sym)vgpu_real(VGPU_SYM_##sym))
#define VGPU_HELPER(sym) ((vgpu_helper_fn_##sym)vgpu_helper(VGPU_HELPER_##sym))

/* The real dlsym (not our interposer). */
void *vgpu_real_dlsym(void *handle, const char *symbol);

/* Handles of the real libraries (dlopen'ed on first use; NULL if absent). */
void *vgpu_libcuda(void);
void *vgpu_libnvml(void);

#endif
