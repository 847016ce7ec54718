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
/* Write every pod's operator settings (registry lock held). 0, or -1 (logged). */
int state_save(const char *path);

#endif
