/* hook_dispatch.h - the three doors into the hooks: exported symbols, dlsym, cuGetProcAddress.
 *
 * Why this exists: applications reach the driver through exported symbols, dlsym and
 * cuGetProcAddress (docs/architecture.md, "Adding a hook"). This module generates the
 * exported wrappers from hook_table.h and answers dlsym / cuGetProcAddress lookups with those
 * wrappers; the real entry points behind them are real_driver.h's. It calls the hooks (hooks.h) and
 * nothing calls it but the application and dlsym_trampoline.S.
 */
#ifndef VGPU_HOOK_DISPATCH_H
#define VGPU_HOOK_DISPATCH_H

#include "hook_table.h"

/* Given what the real cuGetProcAddress returned for (symbol, version, flags), the pointer to
 * hand to the application: our wrapper if the entry point is one we intercept, else `real`. */
void *vgpu_wrap_proc(const char *symbol, void *real, int cuda_version, cuuint64_t flags);

#endif
