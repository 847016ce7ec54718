/* hook_dispatch.h - how a hook reaches the real driver, and the three doors into the hooks.
 *
 * Why this exists: applications reach the driver through exported symbols, dlsym and
 * cuGetProcAddress (gpu-facts.md). This module owns the real entry points (resolved lazily, so a
 * symbol missing from an older driver never breaks start-up), generates the exported wrappers
 * from hook_table.h, and answers dlsym / cuGetProcAddress lookups with those wrappers.
 */
#ifndef VGPU_HOOK_DISPATCH_H
#define VGPU_HOOK_DISPATCH_H

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

/* Given what the real cuGetProcAddress returned for (symbol, version, flags), the pointer to
 * hand to the application: our wrapper if the entry point is one we intercept, else `real`. */
void *vgpu_wrap_proc(const char *symbol, void *real, int cuda_version, cuuint64_t flags);

/* The real dlsym (not our interposer). */
void *vgpu_real_dlsym(void *handle, const char *symbol);

/* Handles of the real libraries (dlopen'ed on first use; NULL if absent). */
void *vgpu_libcuda(void);
void *vgpu_libnvml(void);

#endif
