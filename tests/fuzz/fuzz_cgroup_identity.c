/* fuzz_cgroup_identity.c - the reading of /proc/PID/cgroup (src/common/cgroup_path.c) that
 * decides a worker's pod in the daemon and the limiter's pod when no pod is named. The text is
 * the kernel's, but a container's cgroup names (pod UIDs, container IDs, paths) come from
 * whoever made them: any bytes. Invariants: success gives a kind, NUL-terminated fields, a UID
 * of the canonical shape for a Kubernetes pod, a 64-hex container ID when there is one, "/"
 * exactly for the host, a name of [a-z0-9-] that says the kind, and the same answer twice. */
#include <ctype.h>

#include "fuzz_util.h"
#include "cgroup_path.h"

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
    FUZZ_CHECK(a.kind == POD_KIND_K8S || a.kind == POD_KIND_CONTAINER ||
                   a.kind == POD_KIND_CGROUP || a.kind == POD_KIND_HOST,
               "kind %d", a.kind);
    FUZZ_CHECK(fuzz_terminated(a.uid, sizeof(a.uid)) &&
                   fuzz_terminated(a.container, sizeof(a.container)) &&
                   fuzz_terminated(a.cgroup, sizeof(a.cgroup)),
               "a field is not terminated");
    FUZZ_CHECK(a.cgroup[0] == '/', "cgroup '%s'", a.cgroup);
    if (a.kind == POD_KIND_K8S) FUZZ_CHECK(is_uid(a.uid), "uid '%s'", a.uid);
    if (a.kind != POD_KIND_K8S) FUZZ_CHECK(!a.uid[0], "uid '%s' without K8S", a.uid);
    if (a.kind == POD_KIND_CONTAINER) FUZZ_CHECK(a.container[0], "no container");
    if (a.kind == POD_KIND_CGROUP || a.kind == POD_KIND_HOST)
        FUZZ_CHECK((a.kind == POD_KIND_HOST) == !strcmp(a.cgroup, "/"), "kind %d for '%s'", a.kind,
                   a.cgroup);
    char name[160];
    FUZZ_CHECK(pod_identity_name(&a, name, sizeof(name)) == 0, "no name");
    for (const char *c = name; *c; c++)
        FUZZ_CHECK((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-', "name '%s'",
                   name);
    static const char *const prefix[] = {"", "k8s-", "ctr-", "cg-", "host"};
    FUZZ_CHECK(!strncmp(name, prefix[a.kind], strlen(prefix[a.kind])), "name '%s' for kind %d",
               name, a.kind);
    if (a.container[0]) {
        FUZZ_CHECK(strlen(a.container) == 64, "container '%s'", a.container);
        for (int i = 0; i < 64; i++)
            FUZZ_CHECK(isxdigit((unsigned char)a.container[i]), "container '%s'", a.container);
    }
    return 0;
}
