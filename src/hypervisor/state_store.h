/* state_store.h - operator settings that survive a daemon restart.
 *
 * Why this exists: what an operator set with PUT /v1/pods/.../limits or suspend must still hold
 * after the daemon restarts (upgrade, crash). The settings are written to --state as JSON,
 * atomically (temporary file, fsync, rename), on every change, and read at start.
 */
#ifndef VGPU_HV_STATE_STORE_H
#define VGPU_HV_STATE_STORE_H

/* Load --state into the registry (no lock needed: before any thread starts). 0 or -1. A
 * missing file is not an error. */
int state_load(const char *path);
#include <jansson.h>

/* Every pod's operator settings: take the snapshot with the registry lock held, release the
 * registry, then write it (temporary file, fsync, rename, directory fsync); snapshots are
 * written in the order they were taken. state_write returns 0, or -1 (logged). */
json_t *state_snapshot(void);
int state_write(const char *path, json_t *snapshot);

#endif
