/* pod_identity.c - a live process's pod from its cgroup (see pod_identity.h). */
#include "pod_identity.h"

#include <stdio.h>

int pod_identity_of_pid(pid_t pid, struct pod_identity *out)
{
    char path[64], buf[POD_IDENTITY_FILE_MAX];
    snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
    ssize_t n = pod_identity_read_file(path, buf, sizeof(buf));
    if (n < 0) return -1;
    return pod_identity_parse(buf, (size_t)n, out);
}

int pod_identity_key(pid_t pid, char *key, size_t n)
{
    struct pod_identity id;
    if (pod_identity_of_pid(pid, &id) != 0) return -1;
    return pod_identity_name(&id, key, n);
}
