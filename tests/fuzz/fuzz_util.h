/* fuzz_util.h - what every libFuzzer harness in tests/fuzz shares: a NUL-terminated copy of the
 * input (the parsers read C strings) and an invariant check that aborts, so that libFuzzer
 * records the input as a crash and names the broken invariant on stderr.
 */
#ifndef VGPU_FUZZ_UTIL_H
#define VGPU_FUZZ_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond, ...)                                                                      \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "invariant failed at %s:%d: %s\n  ", __FILE__, __LINE__, #cond);       \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* data[0..size) as a malloc'd C string; it ends at the first NUL of the input, if any */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s) abort();
    memcpy(s, data, size);
    s[size] = 0;
    return s;
}

/* 1 when s[0..cap) holds a NUL: a fixed-size field is terminated */
static inline int fuzz_terminated(const char *s, size_t cap)
{
    return memchr(s, 0, cap) != NULL;
}

#endif
