/* fork_hooks.c - the list of the modules' fork handlers, run in lock order (see fork_hooks.h). */
#include "fork_hooks.h"

#include <pthread.h>

/* written only by constructors (one thread, before the application runs) */
static struct {
    void (*prepare)(void);
    void (*parent)(void);
    void (*child)(void);
} handlers[VGPU_FORK_RANKS];

static void run_prepare(void)
{
    for (int r = 0; r < VGPU_FORK_RANKS; r++)
        if (handlers[r].prepare) handlers[r].prepare();
}

static void run_parent(void)
{
    for (int r = VGPU_FORK_RANKS - 1; r >= 0; r--)
        if (handlers[r].parent) handlers[r].parent();
}

static void run_child(void)
{
    for (int r = 0; r < VGPU_FORK_RANKS; r++)
        if (handlers[r].child) handlers[r].child();
}

void vgpu_fork_register(enum vgpu_fork_rank rank, void (*prepare)(void), void (*parent)(void),
                        void (*child)(void))
{
    static int installed;
    if ((unsigned)rank >= VGPU_FORK_RANKS) return;
    handlers[rank].prepare = prepare;
    handlers[rank].parent = parent;
    handlers[rank].child = child;
    if (!installed) installed = pthread_atfork(run_prepare, run_parent, run_child) == 0;
}
