/* mount_identity.c - the daemon's pod directories a process has mounted (see mount_identity.h). */
#define _GNU_SOURCE
#include "mount_identity.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* field k (0-based) of a mountinfo line: fields are separated by single spaces */
static int field(const char *line, size_t n, int k, const char **f, size_t *flen)
{
    const char *p = line, *end = line + n;
    for (int i = 0; i < k; i++) {
        const char *sp = memchr(p, ' ', (size_t)(end - p));
        if (!sp) return -1;
        p = sp + 1;
    }
    const char *sp = memchr(p, ' ', (size_t)(end - p));
    *f = p;
    *flen = sp ? (size_t)(sp - p) : (size_t)(end - p);
    return *flen ? 0 : -1;
}

/* "major:minor" */
static int devnum(const char *f, size_t n, unsigned *maj, unsigned *min)
{
    char buf[32];
    if (n >= sizeof(buf)) return -1;
    memcpy(buf, f, n);
    buf[n] = 0;
    char *colon = strchr(buf, ':'), *end;
    if (!colon || colon == buf) return -1;
    *colon = 0;
    unsigned long a = strtoul(buf, &end, 10);
    if (*end) return -1;
    unsigned long b = strtoul(colon + 1, &end, 10);
    if (*end || !colon[1]) return -1;
    *maj = (unsigned)a;
    *min = (unsigned)b;
    return 0;
}

/* the <name> of a root ".../pods/<name>/ledger" or ".../pods/<name>/control", if valid */
static int our_name(const char *root, size_t n, char *name)
{
    static const char *const leaf[] = {"/ledger", "/control"};
    for (int i = 0; i < 2; i++) {
        size_t l = strlen(leaf[i]);
        if (n <= l || memcmp(root + n - l, leaf[i], l) != 0) continue;
        size_t end = n - l, start = end;
        while (start > 0 && root[start - 1] != '/')
            start--;
        if (start < 6 || memcmp(root + start - 6, "/pods/", 6) != 0) continue;
        size_t len = end - start;
        if (!len || len >= HV_DIR_NAME_LEN) continue;
        memcpy(name, root + start, len);
        name[len] = 0;
        if (hv_dir_name_ok(name)) return 1;
    }
    return 0;
}

int mount_identity_parse(const char *text, size_t len, unsigned major, unsigned minor,
                         char names[][HV_DIR_NAME_LEN], int max)
{
    int count = 0;
    size_t lines = 0;
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (n) {
            const char *f;
            size_t fl;
            unsigned ma, mi;
            /* 0 mount ID, 1 parent ID, 2 major:minor, 3 root, 4 mount point, ... " - " type */
            if (field(p, n, 2, &f, &fl) || devnum(f, fl, &ma, &mi) || field(p, n, 3, &f, &fl) ||
                f[0] != '/' || !memmem(p, n, " - ", 3))
                return -1;
            lines++;
            char name[HV_DIR_NAME_LEN];
            if (ma == major && mi == minor && our_name(f, fl, name)) {
                int seen = 0;
                for (int i = 0; i < count; i++)
                    seen |= !strcmp(names[i], name);
                if (!seen && count < max) snprintf(names[count++], HV_DIR_NAME_LEN, "%s", name);
            }
        }
        p = nl ? nl + 1 : end;
    }
    return lines ? count : -1;
}

int mount_identity_of_pid(pid_t pid, unsigned major, unsigned minor, char names[][HV_DIR_NAME_LEN],
                          int max)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/mountinfo", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    /* a container's table is a few KiB; one of 1 MiB is read in part and refused */
    size_t cap = 1 << 20, n = 0;
    char *buf = malloc(cap);
    if (!buf) {
        close(fd);
        return -1;
    }
    for (;;) {
        ssize_t r = read(fd, buf + n, cap - n);
        if (r <= 0) break;
        n += (size_t)r;
        if (n == cap) break;
    }
    close(fd);
    int rc = n == cap ? -1 : mount_identity_parse(buf, n, major, minor, names, max);
    free(buf);
    return rc;
}
