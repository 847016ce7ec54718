/* layout_pin.h - compile-time pins for the layouts that cross the process boundary.
 *
 * Why this exists: a ledger, control region or node region is written by one build and read by
 * another (the daemon and the limiters of a pod may come from different releases), and the
 * magic/version check is the only thing that keeps them from misreading each other. A field
 * that moves without a version bump breaks that silently. Every layout header pins each field's
 * offset and size, and each struct's size, with these macros: a build in which one moves fails,
 * and the message says what to do. tests/unit/test_layout.c checks the same table at run time.
 */
#ifndef VGPU_LAYOUT_PIN_H
#define VGPU_LAYOUT_PIN_H

#include <stddef.h>

/* Field `field` of struct `type` sits at byte `off` and is `size` bytes long. */
#define VGPU_PIN_FIELD(type, field, off, size)                                                     \
    _Static_assert(offsetof(struct type, field) == (off) &&                                        \
                       sizeof(((struct type *)0)->field) == (size),                                \
                   "struct " #type "." #field " moved or changed size: bump the layout's "         \
                   "version, then update the pins and tests/unit/test_layout.c")
/* struct `type` is `size` bytes long. */
#define VGPU_PIN_SIZE(type, size)                                                                  \
    _Static_assert(sizeof(struct type) == (size),                                                  \
                   "struct " #type " changed size: bump the layout's version, then update the "    \
                   "pins and tests/unit/test_layout.c")

#endif
