/* fork_hooks.h - one list of what each module of the limiter does around fork().
 *
 * Why this exists: several modules hold a lock that another thread may own at the moment the
 * application forks, and every module has state the child must not inherit (the parent's
 * threads, events, long poll). Each module registers its own handlers here from its own
 * initialisation, so no file has to know every module; this list runs them in one fixed lock
 * order, which is written down once, in the rank below.
 *
 * Invariant: prepare handlers run in rank order (each takes its module's lock, so the ranks are
 * the limiter's lock order), parent handlers in the reverse order, child handlers in rank order;
 * child handlers depend on no other module's, they only reset their own state.
 */
#ifndef VGPU_FORK_HOOKS_H
#define VGPU_FORK_HOOKS_H

/* The lock order: devices -> the process state's lock (limiter.h) -> pools -> graph memory ->
 * allocation map; then modules that only reset state in the child. */
enum vgpu_fork_rank {
    VGPU_FORK_DEVICES,
    VGPU_FORK_LIMITER,
    VGPU_FORK_POOLS,
    VGPU_FORK_GRAPH_MEM,
    VGPU_FORK_ALLOC_MAP,
    VGPU_FORK_COST_MODEL,
    VGPU_FORK_GATE,
    VGPU_FORK_GATE_CLOCK,
    VGPU_FORK_MAINTENANCE,
    VGPU_FORK_HV_CLIENT,
    VGPU_FORK_RANKS
};

/* Register a module's handlers (any may be NULL) under its rank; called from the module's
 * constructor, once. The first registration installs the list with pthread_atfork. */
void vgpu_fork_register(enum vgpu_fork_rank rank, void (*prepare)(void), void (*parent)(void),
                        void (*child)(void));

#endif
