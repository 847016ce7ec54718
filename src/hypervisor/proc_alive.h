/* proc_alive.h - is a registered process still the one that registered?
 *
 * Why this exists: the registry (a worker's start time), the tick (workers that died) and the
 * pod regions (ledger records of dead processes) all ask it; a file of its own keeps them
 * from calling each other for it. A reused pid is another process: the start time (field 22
 * of /proc/PID/stat) tells them apart.
 */
#ifndef VGPU_HV_PROC_ALIVE_H
#define VGPU_HV_PROC_ALIVE_H

#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Is the process alive (same pid, same start time when start_time is not 0, not a zombie)? */
int proc_alive(pid_t pid, uint64_t start_time);
/* Its start time, 0 when it cannot be read. */
uint64_t proc_start_time(pid_t pid);

/* A pidfd for the process (Linux 5.3+), -1 when the kernel or sandbox has none. It names the
 * process, never a later one with the same pid, so asking it is a poll instead of a read of
 * /proc/PID/stat: the tick asks for every worker ten times a second, all in one poll(2). Open it
 * before reading the start time, so both describe the same process. */
int proc_pidfd_open(pid_t pid);
/* Have the processes of these pidfds exited (zombies included)? One poll(2) for all: the
 * caller sets q[i].fd (-1: none), then proc_pidfd_result(&q[i]) says 1 exited, 0 running,
 * -1 unknown. */
void proc_pidfds_poll(struct pollfd *q, size_t n);
int proc_pidfd_result(const struct pollfd *q);

#endif
