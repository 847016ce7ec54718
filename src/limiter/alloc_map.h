/* alloc_map.h - what this process was charged for each live allocation.
 *
 * Why this exists: a free names only a pointer or handle. To give back exactly what was charged
 * (and to the right GPU) the limiter remembers, per allocation, its ledger device and bytes.
 * Process-local (the driver's handles mean nothing in other processes); a kill -9 is covered by
 * the per-process record in the shared ledger instead.
 */
#ifndef VGPU_ALLOC_MAP_H
#define VGPU_ALLOC_MAP_H

#include <stdint.h>

/* Key classes: handles of different kinds may have equal values. */
enum vgpu_key_class {
    VGPU_KEY_PTR = 1,  /* cuMemAlloc*, pitch, managed, oversold: freed by cuMemFree */
    VGPU_KEY_ARRAY,    /* CUarray */
    VGPU_KEY_MIPMAP,   /* CUmipmappedArray */
    VGPU_KEY_VMM,      /* CUmemGenericAllocationHandle */
    VGPU_KEY_EXTERNAL, /* CUexternalMemory: freed by cuDestroyExternalMemory */
};

enum vgpu_alloc_kind {
    VGPU_ALLOC_DEVICE = 0,   /* charged to the device cap */
    VGPU_ALLOC_OVERSOLD = 1, /* served from host memory past the cap */
};

struct vgpu_alloc {
    uint64_t bytes;
    int16_t ledger; /* device index in the pod's ledger */
    uint8_t kind;   /* enum vgpu_alloc_kind */
};

void vgpu_alloc_map_put(int cls, uint64_t key, struct vgpu_alloc a);
/* Remove and return the record; 0 if there was none. */
int vgpu_alloc_map_take(int cls, uint64_t key, struct vgpu_alloc *out);

#endif
