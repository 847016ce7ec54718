/* test_cuda_abi_matches.c - vgpu's CUDA declarations (cuda_abi.h) agree with the real cuda.h on
 * every layout and value vgpu relies on. Built only where cuda.h is installed. */
#include <cuda.h>
#include <stddef.h>
#include <stdint.h>

#include "abi_probe_list.h"
#include "unit_case.h"

extern const long long vgpu_abi_ours[];
extern const char *const vgpu_abi_names[];
extern const int vgpu_abi_count;

#define AS_VALUE(e) (long long)(e),
static const long long real_values[] = {VGPU_ABI_PROBES(AS_VALUE)};

UNIT_CASE(our_declarations_match_real_cuda_h)
{
    int n = (int)(sizeof(real_values) / sizeof(real_values[0]));
    CHECK_EQ_INT(n, vgpu_abi_count);
    for (int i = 0; i < n && i < vgpu_abi_count; i++) {
        if (real_values[i] != vgpu_abi_ours[i]) {
            fprintf(stderr, "%s: cuda.h has %lld, cuda_abi.h has %lld\n", vgpu_abi_names[i],
                    real_values[i], vgpu_abi_ours[i]);
            CHECK(0);
        }
    }
    printf("%d layout facts agree with %s CUDA %d\n", n, "cuda.h of", CUDA_VERSION);
}
