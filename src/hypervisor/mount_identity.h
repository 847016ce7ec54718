/* mount_identity.h - which of the daemon's pod directories a process has mounted, as the kernel
 * says (/proc/PID/mountinfo).
 *
 * Why this exists: the kubelet's Allocate call names devices, not the pod that gets them. The
 * device plugin makes a directory for each allocation and has the container mount it; the
 * container's mount table, which a pod cannot change (mounting needs CAP_SYS_ADMIN), then
 * tells the daemon which allocation a registering process belongs to. A mount is one of ours
 * when it lies on the filesystem of the daemon's pods directory (same device) and its root
 * (the path within that filesystem, field 4) ends in "/pods/<name>/ledger" or
 * "/pods/<name>/control".
 */
#ifndef VGPU_HV_MOUNT_IDENTITY_H
#define VGPU_HV_MOUNT_IDENTITY_H

#include <stddef.h>
#include <sys/types.h>

#include "names.h"

#define MOUNT_IDENTITY_MAX 8 /* directories one process may have mounted that are counted */

/* The distinct pod directory names (HV_DIR_NAME_LEN each) that the mountinfo text `text`
 * shows mounted from device major:minor; at most `max`. Returns how many, or -1 when the text
 * is not a mountinfo table. */
int mount_identity_parse(const char *text, size_t len, unsigned major, unsigned minor,
                         char names[][HV_DIR_NAME_LEN], int max);

/* The same for a live process: reads /proc/PID/mountinfo; -1 when it cannot be read. */
int mount_identity_of_pid(pid_t pid, unsigned major, unsigned minor, char names[][HV_DIR_NAME_LEN],
                          int max);

#endif
