/* proc_alive.c - liveness of a registered process by pid and start time.
 *
 * Why this exists: see proc_alive.h.
 */
#define _GNU_SOURCE
#include "proc_alive.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

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

int proc_pidfd_open(pid_t pid)
{
#ifdef SYS_pidfd_open
    if (pid <= 0) return -1;
    long fd = syscall(SYS_pidfd_open, pid, 0);
    if (fd < 0) return -1;
    /* O_CLOEXEC is implied by pidfd_open */
    return (int)fd;
#else
    (void)pid;
    return -1;
#endif
}

void proc_pidfds_poll(struct pollfd *q, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        q[i].events = POLLIN;
        q[i].revents = 0;
    }
    if (!n) return;
    int r;
    do
        r = poll(q, (nfds_t)n, 0);
    while (r < 0 && errno == EINTR);
    if (r < 0)
        for (size_t i = 0; i < n; i++)
            q[i].revents = POLLNVAL; /* unknown: the callers ask /proc */
}

int proc_pidfd_result(const struct pollfd *q)
{
    if (q->fd < 0 || (q->revents & POLLNVAL)) return -1;
    return (q->revents & (POLLIN | POLLHUP)) ? 1 : 0;
}
