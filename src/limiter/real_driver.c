/* real_driver.c - the real entry points of the driver and NVML (see real_driver.h). */
#define _GNU_SOURCE
#include "real_driver.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>

#include "log.h"

_Atomic(void *) vgpu_real_fns[VGPU_SYM_COUNT];
static _Atomic(void *) helper_fns[VGPU_HELPER_COUNT];

/* the names of the hooked symbols, from the one list in hook_table.h */
#define SYM_NAME(sym, impl, params, args, since, flags) #sym,
static const char *const sym_names[VGPU_SYM_COUNT] = {VGPU_CUDA_HOOKS(SYM_NAME) NULL,
                                                      VGPU_NVML_HOOKS(SYM_NAME)};
#define HELPER_NAME(sym, ret, params) #sym,
static const char *helper_names[VGPU_HELPER_COUNT] = {VGPU_CUDA_HELPERS(HELPER_NAME) NULL,
                                                      VGPU_NVML_HELPERS(HELPER_NAME)};

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
    void *lib = sym < VGPU_SYM_CUDA_END ? vgpu_libcuda() : vgpu_libnvml();
    void *p = lib ? vgpu_real_dlsym(lib, sym_names[sym]) : NULL;
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
