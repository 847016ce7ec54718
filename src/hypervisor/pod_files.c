/* pod_files.c - the daemon's files under --shm-dir (see pod_files.h). */
#define _GNU_SOURCE
#include "pod_files.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "ctl_region.h"
#include "hv_log.h"
#include "node_region.h"
#include "shm_region.h"

#define REMOVE_DEPTH 8      /* what a pod made in its ledger directory: removed this deep */
#define REMOVE_ENTRIES 4096 /* and this many entries a directory at most */

static int pods_fd = -1;
static char node_dir[512];

/* Remove `name` in `dfd` (recursively, bounded), never following a link. */
static void remove_at(int dfd, const char *name, int depth)
{
    struct stat st;
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) return;
    if (!S_ISDIR(st.st_mode)) {
        unlinkat(dfd, name, 0);
        return;
    }
    if (depth < REMOVE_DEPTH) {
        int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        /* another user's directory may not let us remove its entries: make it ours to empty
         * (CAP_CHOWN and CAP_FOWNER, which the daemon has, rather than CAP_DAC_OVERRIDE) */
        if (fd >= 0 && fchown(fd, geteuid(), getegid()) == 0) fchmod(fd, 0700);
        DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
        if (!d && fd >= 0) close(fd);
        struct dirent *e;
        for (int k = 0; d && k < REMOVE_ENTRIES && (e = readdir(d)) != NULL; k++)
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
                remove_at(fd, e->d_name, depth + 1);
        if (d) closedir(d);
    }
    unlinkat(dfd, name, AT_REMOVEDIR);
}

/* Directory `name` in `parent` with `mode`, ours: made when missing; anything else in its place
 * (a symlink, a file, another user's directory) removed first. An O_DIRECTORY fd, or -1. */
static int own_dir(int parent, const char *name, mode_t mode, char *err, size_t errlen)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        if (mkdirat(parent, name, mode) != 0 && errno != EEXIST) break;
        int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        struct stat st;
        if (fd >= 0 && fstat(fd, &st) == 0 && st.st_uid == geteuid()) {
            if ((st.st_mode & 07777) != mode) fchmod(fd, mode);
            return fd;
        }
        if (fd >= 0) close(fd);
        hv_logf(HV_WARN, "removed what was not the daemon's in its directory", "{s:s}", "name",
                name);
        remove_at(parent, name, 0);
    }
    snprintf(err, errlen, "cannot make directory %s: %s", name, strerror(errno));
    return -1;
}

/* mkdir -p for the parents of `path` (0755) */
static void make_parents(const char *path)
{
    char dir[512];
    snprintf(dir, sizeof(dir), "%s", path);
    for (char *s = dir + 1; *s; s++)
        if (*s == '/') {
            *s = 0;
            mkdir(dir, 0755);
            *s = '/';
        }
}

int pod_files_init(const char *root, char *err, size_t errlen)
{
    make_parents(root);
    if (mkdir(root, 0711) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "--shm-dir %s: %s", root, strerror(errno));
        return -1;
    }
    int rfd = open(root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (rfd < 0 || fstat(rfd, &st) != 0 || st.st_uid != geteuid()) {
        snprintf(err, errlen,
                 "--shm-dir %s: not a directory of uid %u (a symlink, or another user's): the "
                 "daemon will not use it",
                 root, (unsigned)geteuid());
        if (rfd >= 0) close(rfd);
        return -1;
    }
    if ((st.st_mode & 07777) != 0711) fchmod(rfd, 0711); /* pods never write here */
    int nfd = own_dir(rfd, VGPU_NODE_DIR, 0755, err, errlen);
    if (nfd >= 0) close(nfd);
    if (pods_fd >= 0) close(pods_fd);
    pods_fd = own_dir(rfd, "pods", 0711, err, errlen);
    close(rfd);
    snprintf(node_dir, sizeof(node_dir), "%s/%s", root, VGPU_NODE_DIR);
    return nfd >= 0 && pods_fd >= 0 ? 0 : -1;
}

const char *pod_files_node_dir(void)
{
    return node_dir;
}

static int new_token(char *out)
{
    unsigned char b[16];
    if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b)) return -1;
    for (int i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
    return 0;
}

/* A regular file with one link (of ours, with `mine`) at `name` in `dfd`, opened with `flags`;
 * anything else there is removed. -1 with errno ENOENT when there is (now) none. */
static int own_file(int dfd, const char *name, int flags, int mine)
{
    int fd = openat(dfd, name, flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) return -1;
    struct stat st;
    if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 1 &&
        (!mine || st.st_uid == geteuid()))
        return fd;
    if (fd >= 0) close(fd);
    remove_at(dfd, name, 0);
    errno = ENOENT;
    return -1;
}

/* Make `name` in `dfd` through a temporary name, so a half-written file is never seen: fill()
 * writes it. An fd opened with `flags` on the result, or -1. */
static int make_file(int dfd, const char *name, mode_t mode, uid_t uid, gid_t gid, int flags,
                     int (*fill)(int fd, const void *a, const void *b), const void *a,
                     const void *b)
{
    char tmp[128];
    snprintf(tmp, sizeof(tmp), ".%s.new", name);
    unlinkat(dfd, tmp, 0);
    int fd = openat(dfd, tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) return -1;
    int ok = fill(fd, a, b) == 0 && (uid == POD_FILES_UID_ANY || fchown(fd, uid, gid) == 0) &&
             fchmod(fd, mode) == 0 && renameat(dfd, tmp, dfd, name) == 0;
    close(fd);
    if (!ok) {
        unlinkat(dfd, tmp, 0);
        return -1;
    }
    return openat(dfd, name, flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
}

static int fill_ctl(int fd, const void *key, const void *token)
{
    return vgpu_ctl_init_fd(fd, key, token);
}

static int fill_ledger(int fd, const void *key, const void *unused)
{
    (void)unused;
    return vgpu_shm_init_fd(fd, key);
}

int pod_files_open(const char *name, const char *key, uid_t uid, gid_t gid, struct pod_files *f,
                   char *err, size_t errlen)
{
    f->ctl = NULL;
    f->ledger_fd = -1;
    snprintf(f->name, sizeof(f->name), "%s", name);
    if (pods_fd < 0 || !hv_dir_name_ok(name)) {
        snprintf(err, errlen, "pods/%s: no such directory can be made", name);
        return -1;
    }
    int pfd = own_dir(pods_fd, name, uid == POD_FILES_UID_ANY ? 0700 : 0711, err, errlen);
    int cfd = pfd >= 0 ? own_dir(pfd, "control", 0755, err, errlen) : -1;
    int lfd = pfd >= 0 ? own_dir(pfd, "ledger", 0755, err, errlen) : -1;
    int r = -1;
    if (cfd < 0 || lfd < 0) goto out;
    /* the control region: ours, of this pod; made anew when it is of another version */
    int fd = own_file(cfd, "control.shm", O_RDWR, 1);
    if (fd >= 0) {
        char why[160];
        f->ctl = vgpu_ctl_map_fd(fd, 1, why, sizeof(why));
        close(fd);
        if (f->ctl && strcmp(f->ctl->pod, key) != 0) {
            snprintf(err, errlen, "pods/%s belongs to pod '%.160s', not '%s'", name, f->ctl->pod,
                     key);
            vgpu_ctl_unmap(f->ctl);
            f->ctl = NULL;
            r = -2;
            goto out;
        }
        if (!f->ctl) {
            hv_logf(HV_WARN, "control region replaced", "{s:s, s:s}", "pod", key, "error", why);
            unlinkat(cfd, "control.shm", 0);
            /* its ledger goes with it: limiters attached to the old pair keep their mapping */
            unlinkat(lfd, "ledger.shm", 0);
        }
    }
    if (!f->ctl) {
        char token[VGPU_CTL_TOKEN_LEN];
        if (new_token(token) != 0) {
            snprintf(err, errlen, "no random bytes for a token: %s", strerror(errno));
            goto out;
        }
        fd =
            make_file(cfd, "control.shm", 0644, POD_FILES_UID_ANY, 0, O_RDWR, fill_ctl, key, token);
        char why[160] = "";
        if (fd >= 0) {
            f->ctl = vgpu_ctl_map_fd(fd, 1, why, sizeof(why));
            close(fd);
        }
        if (!f->ctl) {
            snprintf(err, errlen, "pods/%s/control: cannot make the control region: %s", name,
                     *why ? why : strerror(errno));
            goto out;
        }
    }
    f->ledger_fd = own_file(lfd, "ledger.shm", O_RDONLY, 0);
    if (f->ledger_fd < 0)
        f->ledger_fd = make_file(lfd, "ledger.shm", uid == POD_FILES_UID_ANY ? 0666 : 0660, uid,
                                 gid, O_RDONLY, fill_ledger, key, NULL);
    if (f->ledger_fd < 0) {
        snprintf(err, errlen, "pods/%s/ledger: cannot make the ledger: %s", name, strerror(errno));
        goto out;
    }
    r = 0;
out:
    if (r != 0) pod_files_close(f);
    if (pfd >= 0) close(pfd);
    if (cfd >= 0) close(cfd);
    if (lfd >= 0) close(lfd);
    return r;
}

void pod_files_close(struct pod_files *f)
{
    if (f->ctl) vgpu_ctl_unmap(f->ctl);
    if (f->ledger_fd >= 0) close(f->ledger_fd);
    f->ctl = NULL;
    f->ledger_fd = -1;
}

int pod_files_dev(unsigned *major, unsigned *minor)
{
    struct stat st;
    if (pods_fd < 0 || fstat(pods_fd, &st) != 0) return -1;
    *major = major(st.st_dev);
    *minor = minor(st.st_dev);
    return 0;
}

static int fill_text(int fd, const void *text, const void *unused)
{
    (void)unused;
    size_t n = strlen(text);
    return write(fd, text, n) == (ssize_t)n ? 0 : -1;
}

/* the pod's directory, ours, without following links; -1 when it is not there */
static int pod_dir_fd(const char *name)
{
    if (pods_fd < 0 || !hv_dir_name_ok(name)) return -1;
    int fd = openat(pods_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (fd >= 0 && (fstat(fd, &st) != 0 || st.st_uid != geteuid())) {
        close(fd);
        fd = -1;
    }
    return fd;
}

int pod_files_meta_write(const char *name, const char *file, const char *text)
{
    int dfd = pod_dir_fd(name);
    if (dfd < 0 || !hv_dir_name_ok(file)) {
        if (dfd >= 0) close(dfd);
        return -1;
    }
    int fd = make_file(dfd, file, 0600, POD_FILES_UID_ANY, 0, O_RDONLY, fill_text, text, NULL);
    close(dfd);
    if (fd < 0) return -1;
    close(fd);
    return 0;
}

int pod_files_meta_read(const char *name, const char *file, char *buf, size_t n)
{
    int dfd = pod_dir_fd(name);
    if (dfd < 0 || !hv_dir_name_ok(file) || !n) {
        if (dfd >= 0) close(dfd);
        return -1;
    }
    int fd = own_file(dfd, file, O_RDONLY, 1);
    close(dfd);
    if (fd < 0) return -1;
    size_t got = 0;
    ssize_t r;
    while (got + 1 < n && (r = read(fd, buf + got, n - 1 - got)) > 0)
        got += (size_t)r;
    close(fd);
    buf[got] = 0;
    return 0;
}

int pod_files_each(const char *prefix, int max, void (*fn)(const char *name, void *arg), void *arg)
{
    int fd = pods_fd >= 0 ? openat(pods_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0) close(fd);
        return -1;
    }
    size_t pl = strlen(prefix);
    int n = 0;
    struct dirent *e;
    while (n < max && (e = readdir(d)))
        if (!strncmp(e->d_name, prefix, pl) && hv_dir_name_ok(e->d_name)) {
            fn(e->d_name, arg);
            n++;
        }
    closedir(d);
    return n;
}

void pod_files_remove(const char *name)
{
    if (pods_fd >= 0 && hv_dir_name_ok(name)) remove_at(pods_fd, name, 0);
}
