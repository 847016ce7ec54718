/* proc_alive.h - is a registered process still the one that registered?
 *
 * Why this exists: the registry (a worker's start time), the tick (workers that died) and the
 * pod regions (ledger records of dead processes) all ask it; a file of its own keeps them
 * from calling each other for it. A reused pid is another process: the start time (field 22
 * of /proc/PID/stat) tells them apart.
 */
#ifndef VGPU_HV_PROC_ALIVE_H
#define VGPU_HV_PROC_ALIVE_H

#include <stdint.h>
#include <sys/types.h>

/* Is the process alive (same pid, same start time when start_time is not 0, not a zombie)? */
int proc_alive(pid_t pid, uint64_t start_time);
/* Its start time, 0 when it cannot be read. */
uint64_t proc_start_time(pid_t pid);

#endif
