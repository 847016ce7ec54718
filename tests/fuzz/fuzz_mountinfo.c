/* fuzz_mountinfo.c - the daemon reading a container's /proc/PID/mountinfo to find the
 * allocation it was given (src/hypervisor/mount_identity.c). The table is the kernel's, but its
 * paths are names a pod's images and volumes chose: any bytes.
 * Invariants: at most `max` names, each a valid, distinct directory name; the same answer
 * twice; a device no line has finds nothing. */
#include "fuzz_util.h"
#include "mount_identity.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char a[MOUNT_IDENTITY_MAX][HV_DIR_NAME_LEN], b[MOUNT_IDENTITY_MAX][HV_DIR_NAME_LEN];
    unsigned maj = size ? data[0] % 4 : 0, min = size > 1 ? data[1] : 26;
    int n = mount_identity_parse((const char *)data, size, maj, min, a, MOUNT_IDENTITY_MAX);
    FUZZ_CHECK(n >= -1 && n <= MOUNT_IDENTITY_MAX, "count %d", n);
    FUZZ_CHECK(mount_identity_parse((const char *)data, size, maj, min, b, MOUNT_IDENTITY_MAX) == n,
               "not deterministic");
    for (int i = 0; i < n; i++) {
        FUZZ_CHECK(fuzz_terminated(a[i], HV_DIR_NAME_LEN) && hv_dir_name_ok(a[i]), "name %d", i);
        FUZZ_CHECK(!strcmp(a[i], b[i]), "two answers");
        for (int j = 0; j < i; j++)
            FUZZ_CHECK(strcmp(a[i], a[j]), "name %d twice", i);
    }
    if (n >= 0)
        FUZZ_CHECK(mount_identity_parse((const char *)data, size, 4000, 1, a, MOUNT_IDENTITY_MAX) ==
                       0,
                   "found a device no line names");
    return 0;
}
