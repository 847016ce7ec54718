/* proc_alive.c - liveness of a registered process by pid and start time.
 *
 * Why this exists: see proc_alive.h.
 */
#define _GNU_SOURCE
#include "proc_alive.h"

#include <errno.h>
#include <signal.h>

#include "shm_ledger.h"

uint64_t proc_start_time(pid_t pid)
{
    char st;
    uint64_t start = 0;
    return vgpu_proc_stat(pid, &st, &start) ? 0 : start;
}

int proc_alive(pid_t pid, uint64_t start_time)
{
    if (pid <= 0) return 0;
    if (kill(pid, 0) && errno == ESRCH) return 0;
    char st;
    uint64_t start;
    if (vgpu_proc_stat(pid, &st, &start)) return 0;
    if (st == 'Z' || st == 'X' || st == 'x') return 0;
    return !start_time || start == start_time;
}
