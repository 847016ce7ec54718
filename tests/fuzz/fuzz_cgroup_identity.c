/* fuzz_cgroup_identity.c - the daemon's reading of /proc/PID/cgroup (src/hypervisor/
 * pod_identity.c), which decides a worker's pod. The text is the kernel's, but a container's
 * cgroup names (pod UIDs, container IDs, paths) come from whoever made them: any bytes.
 * Invariants: success gives a kind, NUL-terminated fields, a UID of the canonical shape for a
 * Kubernetes pod, a 64-hex container ID when there is one, and the same answer twice. */
#include <ctype.h>

#include "fuzz_util.h"
#include "pod_identity.h"

static int is_uid(const char *u)
{
    if (strlen(u) != 36) return 0;
    for (int i = 0; i < 36; i++)
        if (i == 8 || i == 13 || i == 18 || i == 23
                ? u[i] != '-'
                : !isxdigit((unsigned char)u[i]) || isupper((unsigned char)u[i]))
            return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct pod_identity a, b;
    int r = pod_identity_parse((const char *)data, size, &a);
    FUZZ_CHECK(pod_identity_parse((const char *)data, size, &b) == r, "not deterministic");
    if (r != 0) return 0;
    FUZZ_CHECK(!memcmp(&a, &b, sizeof(a)), "two answers for one text");
    FUZZ_CHECK(a.kind == POD_KIND_K8S || a.kind == POD_KIND_CONTAINER || a.kind == POD_KIND_CGROUP,
               "kind %d", a.kind);
    FUZZ_CHECK(fuzz_terminated(a.uid, sizeof(a.uid)) &&
                   fuzz_terminated(a.container, sizeof(a.container)) &&
                   fuzz_terminated(a.cgroup, sizeof(a.cgroup)),
               "a field is not terminated");
    FUZZ_CHECK(a.cgroup[0] == '/', "cgroup '%s'", a.cgroup);
    if (a.kind == POD_KIND_K8S) FUZZ_CHECK(is_uid(a.uid), "uid '%s'", a.uid);
    if (a.kind != POD_KIND_K8S) FUZZ_CHECK(!a.uid[0], "uid '%s' without K8S", a.uid);
    if (a.kind == POD_KIND_CONTAINER) FUZZ_CHECK(a.container[0], "no container");
    if (a.container[0]) {
        FUZZ_CHECK(strlen(a.container) == 64, "container '%s'", a.container);
        for (int i = 0; i < 64; i++)
            FUZZ_CHECK(isxdigit((unsigned char)a.container[i]), "container '%s'", a.container);
    }
    return 0;
}
