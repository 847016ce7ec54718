/* ledger_reader.h - the daemon reads a pod's ledger (src/common/shm_layout.h), which the pod
 * writes and may fill with anything.
 *
 * Why this exists: every byte of a ledger is the pod's word. The daemon never maps one (a pod can
 * truncate the file under a mapping) and never takes its lock; it copies parts with pread and
 * accepts a copy only when it is a ledger: the magic, version and size of this build, device
 * entries whose state is EMPTY or READY and whose READY names are NUL-terminated "gpu-...".
 * Pure functions of the file's bytes: fuzzed in tests/fuzz.
 */
#ifndef VGPU_HV_LEDGER_READER_H
#define VGPU_HV_LEDGER_READER_H

#include <stddef.h>

#include "shm_layout.h"

/* Bytes of the header and dev[], what the daemon reads every tick. */
#define LEDGER_HEAD_BYTES offsetof(struct vgpu_shm, proc)

/* Copy the header and dev[] of the ledger in `fd` into *copy (only those bytes are written).
 * 0, or -1 with why it is not a ledger in `why`. */
int ledger_read_head(int fd, struct vgpu_shm *copy, char *why, size_t whylen);
/* The READY device of a checked copy named `uuid`, or NULL. */
const struct vgpu_shm_dev *ledger_dev(const struct vgpu_shm *copy, const char *uuid);
/* Copy the process records into procs[VGPU_MAX_PROCS]. 0, or -1 (the file is short). */
int ledger_read_procs(int fd, struct vgpu_shm_proc *procs);
/* The first n records only (n <= VGPU_MAX_PROCS). */
int ledger_read_procs_n(int fd, struct vgpu_shm_proc *procs, int n);

#endif
