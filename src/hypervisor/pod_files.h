/* pod_files.h - the daemon's files under --shm-dir: its root, the node directory, and one
 * directory per pod.
 *
 * Why this exists: every file a limiter trusts is made here, by the daemon (root), so that no
 * pod can plant, pre-create or redirect one (docs/security.md):
 *
 *   <root>/                       0711  the daemon's
 *   <root>/node/node.shm          0644  node region (node_layout.h); pods mount node/ read-only
 *   <root>/pods/<name>/           0711 (0700 when the pod's user is not known)
 *   <root>/pods/<name>/control/control.shm   0644  the daemon's decisions (ctl_layout.h);
 *                                                  pods mount control/ read-only
 *   <root>/pods/<name>/ledger/ledger.shm     the pod's ledger (shm_layout.h), owned by the
 *                                            pod's user (0660), or 0666 when not known;
 *                                            pods mount ledger/ read-write
 *   <root>/pods/<name>/<meta>                0600  the daemon's notes on the pod (an
 *                                            allocation's grant: allocations.h)
 *
 * Everything is opened relative to directory descriptors, without following symlinks, and
 * checked for owner and type; anything in the daemon's place that is not what it made (a
 * symlink, a file of another user, a layout of another version) is removed and made anew.
 * All functions: registry lock held (or before the daemon serves).
 */
#ifndef VGPU_HV_POD_FILES_H
#define VGPU_HV_POD_FILES_H

#include <stddef.h>
#include <sys/types.h>

#include "ctl_layout.h"
#include "names.h"

#define POD_FILES_NAME_LEN HV_DIR_NAME_LEN /* "<kind>-<id>" (names.h) */
#define POD_FILES_UID_ANY ((uid_t)-1)

struct pod_files {
    struct vgpu_ctl *ctl; /* mapped read-write; NULL when not open */
    int ledger_fd;        /* read-only (pread: a pod can truncate its ledger), -1 */
    char name[POD_FILES_NAME_LEN];
};

/* At start: make or check <root>, <root>/node and <root>/pods. 0, or -1 with a message. */
int pod_files_init(const char *root, char *err, size_t errlen);
/* "<root>/node", for the node region. */
const char *pod_files_node_dir(void);
/* The directory of pod `name` ([A-Za-z0-9._-], not starting with '.'), created when missing:
 * its control region belongs to pod `key` (an existing one of another pod is refused: -2), its
 * ledger to uid/gid (POD_FILES_UID_ANY: any user). 0, -1 (err says why) or -2 (another pod's). */
int pod_files_open(const char *name, const char *key, uid_t uid, gid_t gid, struct pod_files *f,
                   char *err, size_t errlen);
void pod_files_close(struct pod_files *f);
/* The device of <root>/pods (the filesystem pods' mounts of their directories lie on). 0 or -1. */
int pod_files_dev(unsigned *major, unsigned *minor);
/* A file of the daemon's own in pod `name`'s directory, beside control/ and ledger/ (pods mount
 * those two, never the directory: they cannot see or write it): written whole (temporary name,
 * rename), or read (at most n - 1 bytes, NUL-terminated). 0, or -1. */
int pod_files_meta_write(const char *name, const char *file, const char *text);
int pod_files_meta_read(const char *name, const char *file, char *buf, size_t n);

/* Call fn for each pod directory whose name starts with `prefix` (at most `max` of them, in
 * the order the filesystem lists them). Returns how many were listed, or -1. */
int pod_files_each(const char *prefix, int max, void (*fn)(const char *name, void *arg), void *arg);

/* Remove the directory of pod `name` and everything in it (what the pod wrote in its ledger
 * directory too), without following links; bounded. */
void pod_files_remove(const char *name);

#endif
