/* hook_dispatch.c - generated exported wrappers, and the dlsym and cuGetProcAddress doors (see
 * hook_dispatch.h). */
#define _GNU_SOURCE
#include "hook_dispatch.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "hooks.h"
#include "limiter.h"
#include "log.h"
#include "mem_charge.h"
#include "real_driver.h"

#define VGPU_EXPORT __attribute__((visibility("default")))

/* ---- the generated wrappers: one exported function per hooked symbol ---------------------- */
#define DEFINE_CUDA_WRAPPER(sym, impl, params, args, since, flags)                                 \
    VGPU_EXPORT CUresult sym params                                                                \
    {                                                                                              \
        void *real_ = vgpu_real(VGPU_SYM_##sym);                                                   \
        if (__builtin_expect(!real_, 0)) return CUDA_ERROR_NOT_FOUND;                              \
        if (!((flags)&VGPU_HOOK_MEM)) return VGPU_CALL(impl, real_, args);                         \
        vgpu_mem_op_begin();                                                                       \
        CUresult r_ = VGPU_CALL(impl, real_, args);                                                \
        vgpu_mem_op_end();                                                                         \
        return r_;                                                                                 \
    }
#define DEFINE_NVML_WRAPPER(sym, impl, params, args, since, flags)                                 \
    VGPU_EXPORT nvmlReturn_t sym params                                                            \
    {                                                                                              \
        void *real_ = vgpu_real(VGPU_SYM_##sym);                                                   \
        if (__builtin_expect(!real_, 0)) return NVML_ERROR_FUNCTION_NOT_FOUND;                     \
        return VGPU_CALL(impl, real_, args);                                                       \
    }
VGPU_CUDA_HOOKS(DEFINE_CUDA_WRAPPER)
VGPU_NVML_HOOKS(DEFINE_NVML_WRAPPER)

/* ---- the table of hooks ------------------------------------------------------------------- */
struct hook_info {
    const char *name;
    void *wrapper;
    int since;
    char base[64]; /* name without _vN / _ptsz / _ptds */
    int per_thread;
};
#define HOOK_INFO(sym, impl, params, args, since, flags) {#sym, (void *)sym, since, "", 0},
static struct hook_info hooks[VGPU_SYM_COUNT] = {VGPU_CUDA_HOOKS(HOOK_INFO){NULL, NULL, 0, "", 0},
                                                 VGPU_NVML_HOOKS(HOOK_INFO)};

static pthread_once_t table_once = PTHREAD_ONCE_INIT;
static void init_table(void)
{
    for (int s = 0; s < VGPU_SYM_COUNT; s++) {
        struct hook_info *h = &hooks[s];
        if (!h->name) continue;
        snprintf(h->base, sizeof(h->base), "%s", h->name);
        size_t n = strlen(h->base);
        if (n > 5 &&
            (strcmp(h->base + n - 5, "_ptsz") == 0 || strcmp(h->base + n - 5, "_ptds") == 0)) {
            h->per_thread = 1;
            h->base[n - 5] = 0;
            n -= 5;
        }
        char *v = strrchr(h->base, '_');
        if (v && v[1] == 'v' && v[2] >= '0' && v[2] <= '9') *v = 0;
    }
}

/* ---- dlsym --------------------------------------------------------------------------------- */
/* Reached from dlsym_trampoline.S, which may run before sanitizer runtimes are initialised:
 * nothing on this path is instrumented. */
#define NO_SANITIZE __attribute__((no_sanitize("address", "undefined", "thread")))

/* plain loops: this runs inside dlsym, also before sanitizer runtimes have initialised */
NO_SANITIZE static int same_name(const char *a, const char *b)
{
    while (*a && *a == *b)
        a++, b++;
    return *a == *b;
}

NO_SANITIZE static int find_hook(const char *symbol)
{
    for (int s = 0; s < VGPU_SYM_COUNT; s++)
        if (hooks[s].name && same_name(hooks[s].name, symbol)) return s;
    return -1;
}

/* glibc declares dlsym's arguments nonnull; applications still pass NULL names */
#pragma GCC diagnostic ignored "-Wnonnull-compare"
/* dlsym for every handle but RTLD_NEXT (dlsym_trampoline.S forwards that one untouched) */
NO_SANITIZE __attribute__((visibility("hidden"))) void *vgpu_dlsym_impl(void *handle,
                                                                        const char *symbol)
{
    void *p = vgpu_real_dlsym(handle, symbol);
    /* the macro, not vgpu_nothing_to_limit(): an instrumented call is not allowed here */
    if (!p || !symbol || (symbol[0] != 'c' && symbol[0] != 'n') ||
        atomic_load_explicit(&vgpu_g.nothing_to_limit, memory_order_relaxed))
        return p;
    int s = find_hook(symbol);
    if (s < 0 || p == hooks[s].wrapper) return p;
    /* the application asked a library for an entry point we intercept: that is the real one */
    void *expected = NULL;
    atomic_compare_exchange_strong(&vgpu_real_fns[s], &expected, p);
    VLOG_TRACE("dlsym(%s) -> wrapper", symbol);
    return hooks[s].wrapper;
}

/* ---- cuGetProcAddress ----------------------------------------------------------------------- */
static pthread_once_t all_once = PTHREAD_ONCE_INIT;
static void resolve_all_cuda(void)
{
    for (int s = 0; s < VGPU_SYM_CUDA_END; s++)
        vgpu_real(s);
}

void *vgpu_wrap_proc(const char *symbol, void *real, int cuda_version, cuuint64_t flags)
{
    if (vgpu_nothing_to_limit()) return real;
    pthread_once(&table_once, init_table);
    pthread_once(&all_once, resolve_all_cuda);
    /* 1. the driver handed out an entry point we know by address */
    for (int s = 0; s < VGPU_SYM_CUDA_END; s++) {
        if (atomic_load_explicit(&vgpu_real_fns[s], memory_order_relaxed) == real &&
            strcmp(hooks[s].base, symbol) == 0) {
            VLOG_TRACE("cuGetProcAddress(%s, %d, %llu) -> %s (by address)", symbol, cuda_version,
                       (unsigned long long)flags, hooks[s].name);
            return hooks[s].wrapper;
        }
    }
    /* 2. by name: the variant for this version and stream flavour */
    int want_pt = (flags & CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM) != 0;
    int best = -1;
    for (int pass = 0; pass < 2 && best < 0; pass++) {
        for (int s = 0; s < VGPU_SYM_CUDA_END; s++) {
            if (strcmp(hooks[s].base, symbol) != 0) continue;
            if (hooks[s].per_thread != (pass == 0 ? want_pt : 0)) continue;
            if (hooks[s].since > cuda_version) continue;
            if (best < 0 || hooks[s].since > hooks[best].since) best = s;
        }
    }
    if (best < 0) {
        VLOG_TRACE("cuGetProcAddress(%s, %d, %llu) -> passed through", symbol, cuda_version,
                   (unsigned long long)flags);
        return real;
    }
    void *expected = NULL;
    if (!atomic_compare_exchange_strong(&vgpu_real_fns[best], &expected, real) && expected != real)
        VLOG_DEBUG("cuGetProcAddress(%s, %d) returned an entry point other than %s's export; "
                   "wrapping by name",
                   symbol, cuda_version, hooks[best].name);
    VLOG_TRACE("cuGetProcAddress(%s, %d, %llu) -> %s (by name)", symbol, cuda_version,
               (unsigned long long)flags, hooks[best].name);
    return hooks[best].wrapper;
}

/* The cuGetProcAddress hooks: every answer goes through vgpu_wrap_proc. */
CUresult hook_get_proc_address_v1(void *real, const char *symbol, void **pfn, int cudaVersion,
                                  cuuint64_t flags)
{
    CUresult r = ((vgpu_fn_cuGetProcAddress)real)(symbol, pfn, cudaVersion, flags);
    if (r == CUDA_SUCCESS && symbol && pfn && *pfn)
        *pfn = vgpu_wrap_proc(symbol, *pfn, cudaVersion, flags);
    return r;
}

CUresult hook_get_proc_address_v2(void *real, const char *symbol, void **pfn, int cudaVersion,
                                  cuuint64_t flags, CUdriverProcAddressQueryResult *symbolStatus)
{
    CUresult r = ((vgpu_fn_cuGetProcAddress_v2)real)(symbol, pfn, cudaVersion, flags, symbolStatus);
    if (r == CUDA_SUCCESS && symbol && pfn && *pfn)
        *pfn = vgpu_wrap_proc(symbol, *pfn, cudaVersion, flags);
    return r;
}
