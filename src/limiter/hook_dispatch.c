/* hook_dispatch.c - real entry points, generated exported wrappers, and the dlsym and
 * cuGetProcAddress doors (see hook_dispatch.h). */
#define _GNU_SOURCE
#include "hook_dispatch.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hooks.h"
#include "mem_charge.h"
#include "log.h"

#define VGPU_EXPORT __attribute__((visibility("default")))

_Atomic(void *) vgpu_real_fns[VGPU_SYM_COUNT];
static _Atomic(void *) helper_fns[VGPU_HELPER_COUNT];

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
#define HELPER_NAME(sym, ret, params) #sym,
static const char *helper_names[VGPU_HELPER_COUNT] = {VGPU_CUDA_HELPERS(HELPER_NAME) NULL,
                                                      VGPU_NVML_HELPERS(HELPER_NAME)};

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

/* ---- real libraries and dlsym ------------------------------------------------------------- */
/* Used by dlsym_trampoline.S, which may run before sanitizer runtimes are initialised: these
 * two functions are not instrumented. */
#define NO_SANITIZE __attribute__((no_sanitize("address", "undefined", "thread")))
void *(*vgpu_real_dlsym_fn)(void *, const char *)__attribute__((visibility("hidden")));

NO_SANITIZE __attribute__((visibility("hidden"))) void vgpu_init_real_dlsym(void)
{
    static const char *versions[] = {"GLIBC_2.34", "GLIBC_2.2.5", "GLIBC_2.17", "GLIBC_2.0"};
    void *(*fn)(void *, const char *) = NULL;
    for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]) && !fn; i++)
        fn = (void *(*)(void *, const char *))dlvsym(RTLD_NEXT, "dlsym", versions[i]);
    __atomic_store_n(&vgpu_real_dlsym_fn, fn, __ATOMIC_RELEASE);
}

NO_SANITIZE void *vgpu_real_dlsym(void *handle, const char *symbol)
{
    void *(*fn)(void *, const char *) = __atomic_load_n(&vgpu_real_dlsym_fn, __ATOMIC_ACQUIRE);
    if (!fn) {
        vgpu_init_real_dlsym();
        fn = __atomic_load_n(&vgpu_real_dlsym_fn, __ATOMIC_ACQUIRE);
    }
    return fn ? fn(handle, symbol) : NULL;
}

static void *libcuda_handle, *libnvml_handle;
static pthread_once_t libcuda_once = PTHREAD_ONCE_INIT, libnvml_once = PTHREAD_ONCE_INIT;
static void open_libcuda(void)
{
    const char *p = getenv("VGPU_REAL_LIBCUDA");
    libcuda_handle = dlopen(p && *p ? p : "libcuda.so.1", RTLD_LAZY);
    if (!libcuda_handle) VLOG_ERROR("cannot load the CUDA driver: %s", dlerror());
}
static void open_libnvml(void)
{
    const char *p = getenv("VGPU_REAL_LIBNVML");
    libnvml_handle = dlopen(p && *p ? p : "libnvidia-ml.so.1", RTLD_LAZY);
    if (!libnvml_handle) VLOG_DEBUG("cannot load NVML: %s", dlerror());
}
void *vgpu_libcuda(void)
{
    pthread_once(&libcuda_once, open_libcuda);
    return libcuda_handle;
}
void *vgpu_libnvml(void)
{
    pthread_once(&libnvml_once, open_libnvml);
    return libnvml_handle;
}

void *vgpu_real_resolve(int sym)
{
    if (sym < 0 || sym >= VGPU_SYM_COUNT || sym == VGPU_SYM_CUDA_END) return NULL;
    pthread_once(&table_once, init_table);
    void *lib = sym < VGPU_SYM_CUDA_END ? vgpu_libcuda() : vgpu_libnvml();
    void *p = lib ? vgpu_real_dlsym(lib, hooks[sym].name) : NULL;
    if (!p) return NULL;
    void *expected = NULL;
    /* keep an entry point the application's own dlsym already recorded */
    if (!atomic_compare_exchange_strong(&vgpu_real_fns[sym], &expected, p)) return expected;
    return p;
}

/* Helpers are looked up once per library, found or not: a helper the driver lacks (a stand-in
 * driver without events, say) must cost a load and a branch per call, not a dlsym. */
static pthread_once_t helpers_once[2] = {PTHREAD_ONCE_INIT, PTHREAD_ONCE_INIT};
static void resolve_helpers(int from, int to, void *lib)
{
    for (int h = from; h < to; h++) {
        void *p = lib ? vgpu_real_dlsym(lib, helper_names[h]) : NULL;
        if (!p)
            VLOG_DEBUG("driver function %s is missing: features using it stay off",
                       helper_names[h]);
        atomic_store_explicit(&helper_fns[h], p, memory_order_release);
    }
}
static void resolve_cuda_helpers(void)
{
    resolve_helpers(0, VGPU_HELPER_CUDA_END, vgpu_libcuda());
}
static void resolve_nvml_helpers(void)
{
    resolve_helpers(VGPU_HELPER_CUDA_END + 1, VGPU_HELPER_COUNT, vgpu_libnvml());
}

void *vgpu_helper(int helper)
{
    if (helper < 0 || helper >= VGPU_HELPER_COUNT || helper == VGPU_HELPER_CUDA_END) return NULL;
    void *p = atomic_load_explicit(&helper_fns[helper], memory_order_acquire);
    if (__builtin_expect(p != NULL, 1)) return p;
    if (helper < VGPU_HELPER_CUDA_END)
        pthread_once(&helpers_once[0], resolve_cuda_helpers);
    else
        pthread_once(&helpers_once[1], resolve_nvml_helpers);
    return atomic_load_explicit(&helper_fns[helper], memory_order_acquire);
}

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
    if (!p || !symbol || (symbol[0] != 'c' && symbol[0] != 'n')) return p;
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
