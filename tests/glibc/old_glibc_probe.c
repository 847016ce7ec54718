/* old_glibc_probe.c - the program old_glibc_test.sh runs under an old glibc's own loader, with
 * the injected libraries preloaded, over the simulated driver built against that glibc.
 *
 * Why this exists: tests/integration's cuda_probe is built against the build host's glibc and
 * cannot start under an older one. This one is compiled by the test against the old glibc's
 * headers and libraries (--sysroot), and needs only what the check needs:
 *
 *   old_glibc_probe
 *
 * prints "glibc=VERSION PATH=..." (the glibc the process runs on, and PATH as libadd_path.so
 * left it), then "linked=BYTES dlsym=BYTES": how much fitted in 64 MiB blocks through the
 * driver's linked cuMemAlloc_v2, and again through a pointer from dlopen and dlsym (the
 * limiter's exported dlsym and its hooks under that glibc). Exits 0 when both stopped on
 * CUDA_ERROR_OUT_OF_MEMORY, 1 otherwise.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <gnu/libc-version.h>
#include <stdio.h>
#include <stdlib.h>

#include "../../src/limiter/cuda_abi.h"

CUresult cuInit(unsigned int flags);
CUresult cuDeviceGet(CUdevice *dev, int ordinal);
CUresult cuCtxCreate_v2(CUcontext *ctx, unsigned int flags, CUdevice dev);
CUresult cuMemAlloc_v2(CUdeviceptr *ptr, size_t bytes);
CUresult cuMemFree_v2(CUdeviceptr ptr);

#define BLOCK (64ULL << 20)
#define MAX_BLOCKS 256 /* 16 GiB: more than any cap the test sets */

typedef CUresult (*alloc_fn)(CUdeviceptr *, size_t);

/* allocates 64 MiB blocks until refused (or MAX_BLOCKS), frees them; returns the bytes that
 * fitted, and the refusal in *last */
static unsigned long long fill(alloc_fn alloc, CUresult *last)
{
    CUdeviceptr ptrs[MAX_BLOCKS];
    int n = 0;
    *last = CUDA_SUCCESS;
    while (n < MAX_BLOCKS && (*last = alloc(&ptrs[n], BLOCK)) == CUDA_SUCCESS)
        n++;
    for (int i = 0; i < n; i++)
        cuMemFree_v2(ptrs[i]);
    return (unsigned long long)n * BLOCK;
}

int main(void)
{
    const char *path = getenv("PATH");
    printf("glibc=%s PATH=%s\n", gnu_get_libc_version(), path ? path : "(unset)");
    CUdevice dev;
    CUcontext ctx;
    if (cuInit(0) != CUDA_SUCCESS || cuDeviceGet(&dev, 0) != CUDA_SUCCESS ||
        cuCtxCreate_v2(&ctx, 0, dev) != CUDA_SUCCESS) {
        fprintf(stderr, "old_glibc_probe: no context on device 0\n");
        return 1;
    }
    void *lib = dlopen("libcuda.so.1", RTLD_NOW);
    alloc_fn via_dlsym = lib ? (alloc_fn)dlsym(lib, "cuMemAlloc_v2") : NULL;
    if (!via_dlsym) {
        fprintf(stderr, "old_glibc_probe: no cuMemAlloc_v2 through dlsym: %s\n", dlerror());
        return 1;
    }
    CUresult last_linked, last_dlsym;
    unsigned long long linked = fill(cuMemAlloc_v2, &last_linked);
    unsigned long long through_dlsym = fill(via_dlsym, &last_dlsym);
    printf("linked=%llu dlsym=%llu\n", linked, through_dlsym);
    return last_linked == CUDA_ERROR_OUT_OF_MEMORY && last_dlsym == CUDA_ERROR_OUT_OF_MEMORY ? 0
                                                                                             : 1;
}
