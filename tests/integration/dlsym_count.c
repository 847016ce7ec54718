/* dlsym_count.c - a test-only dlsym between the limiter and libc that counts lookups per name
 * and can hide names, standing in for a driver that lacks them.
 *
 * Why this exists: the limiter finds the real dlsym with dlvsym(RTLD_NEXT, "dlsym",
 * "GLIBC_2.34"); preloaded after the limiter, this library exports that version (dlsym_count.map)
 * and so sees every lookup the limiter makes in the driver. A lookup of a hidden name
 * (VGPU_TEST_DLSYM_HIDE, comma-separated) answers NULL, as a driver without it would. At exit
 * the counts of the hidden names are written to VGPU_TEST_DLSYM_COUNTS as "name count" lines,
 * so a test can assert that a missing helper is looked up once, not on every call.
 *
 * It runs inside dlsym, possibly before sanitizer runtimes are ready: plain loops, no
 * instrumented calls on the lookup path.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#define NO_SANITIZE __attribute__((no_sanitize("address", "undefined", "thread")))
#define MAX_NAMES 32
#define NAME_LEN 64

static char names[MAX_NAMES][NAME_LEN];
static atomic_uint counts[MAX_NAMES];
static int nnames = -1;
static void *(*next_dlsym)(void *, const char *);

NO_SANITIZE static void load(void)
{
    if (nnames >= 0) return;
    next_dlsym = (void *(*)(void *, const char *))dlvsym(RTLD_NEXT, "dlsym", "GLIBC_2.34");
    if (!next_dlsym)
        next_dlsym = (void *(*)(void *, const char *))dlvsym(RTLD_NEXT, "dlsym", "GLIBC_2.2.5");
    const char *h = getenv("VGPU_TEST_DLSYM_HIDE");
    int n = 0, k = 0;
    for (; h && *h && n < MAX_NAMES; h++) {
        if (*h == ',') {
            if (k) names[n++][k] = 0;
            k = 0;
        } else if (k < NAME_LEN - 1) {
            names[n][k++] = *h;
        }
    }
    if (k && n < MAX_NAMES) names[n++][k] = 0;
    nnames = n;
}

NO_SANITIZE static int same(const char *a, const char *b)
{
    while (*a && *a == *b)
        a++, b++;
    return *a == *b;
}

/* glibc declares dlsym's arguments nonnull; callers still pass NULL names */
#pragma GCC diagnostic ignored "-Wnonnull-compare"
NO_SANITIZE void *dlsym(void *handle, const char *symbol)
{
    load();
    for (int i = 0; symbol && i < nnames; i++) {
        if (same(names[i], symbol)) {
            atomic_fetch_add(&counts[i], 1);
            return NULL;
        }
    }
    return next_dlsym ? next_dlsym(handle, symbol) : NULL;
}

__attribute__((destructor)) static void report(void)
{
    const char *path = getenv("VGPU_TEST_DLSYM_COUNTS");
    if (!path || !*path || nnames <= 0) return;
    FILE *f = fopen(path, "a");
    if (!f) return;
    for (int i = 0; i < nnames; i++)
        fprintf(f, "%s %u\n", names[i], atomic_load(&counts[i]));
    fclose(f);
}
