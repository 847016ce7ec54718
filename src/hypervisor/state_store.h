/* state_store.h - operator settings that survive a daemon restart.
 *
 * Why this exists: what an operator set with PUT /v1/pods/.../limits or suspend must still hold
 * after the daemon restarts (upgrade, crash). The settings are written to --state as JSON,
 * atomically (temporary file, fsync, rename), on every change, and read at start.
 */
#ifndef VGPU_HV_STATE_STORE_H
#define VGPU_HV_STATE_STORE_H

#include <stddef.h>

/* Load --state into the registry, before any thread starts. A missing file is no settings (0).
 * Anything else the daemon could not apply exactly as written (unreadable, not JSON, duplicate
 * or unknown keys, a bad value, a pod or GPU key that names nothing) is -1 with a message in err
 * naming the file and the entry, e.g. `--state FILE: pods."team/a".limits."all".core_limit:
 * must be a percentage in (0, 100]`; then nothing was loaded and the file is untouched, and the
 * daemon must not start: it would silently drop an operator's settings. */
int state_load(const char *path, char *err, size_t errlen);
#include <jansson.h>

/* Every pod's operator settings: take the snapshot with the registry lock held, release the
 * registry, then write it (temporary file, fsync, rename, directory fsync); snapshots are
 * written in the order they were taken. state_write returns 0, or -1 (logged). */
json_t *state_snapshot(void);
int state_write(const char *path, json_t *snapshot);

#endif
