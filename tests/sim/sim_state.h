/* sim_state.h - the simulated GPU's state shared by every process on the machine.
 *
 * Why this exists: a real GPU's memory and time are shared by all processes using it, and what
 * one process does is visible to the others through cuMemGetInfo and NVML. The simulator keeps
 * that machine-wide truth in one file mapped MAP_SHARED (VGPU_SIM_STATE): per device the busy
 * timeline, per process what it holds on each device. Per-process objects (pointers, contexts,
 * streams) stay in each process. Tests may map the file and read this layout directly.
 */
#ifndef VGPU_SIM_STATE_H
#define VGPU_SIM_STATE_H

#include <pthread.h>
#include <stdint.h>

#define SIM_MAX_DEV 8
#define SIM_MAX_PROC 256
#define SIM_RING 200 /* 10 ms buckets: the last 2 s */
#define SIM_BUCKET_NS 10000000ull
#define SIM_NDEFER 16
#define SIM_MAGIC 0x31304d5355504756ull /* "VGPUSM01" */
#define SIM_2M (2ull << 20)
#define SIM_MS 1000000ull
#define SIM_DEVICE_NAME "vgpu simulated H100"

/* What a process holds on a device; NVML's per-process figure is the sum. */
enum sim_use { SIM_USE_MEM, SIM_USE_CTX, SIM_USE_POOL, SIM_USE_VMM, SIM_NUSE };

struct sim_ring { /* busy microseconds per 10 ms bucket; tag = absolute bucket number */
    uint32_t tag[SIM_RING];
    uint32_t busy_us[SIM_RING];
};

struct sim_proc_dev {
    uint64_t use[SIM_NUSE]; /* bytes: allocations (2 MiB footprints), context, pools, VMM */
    uint32_t contexts;      /* live contexts of the process on the device */
    uint32_t pad;
    struct sim_ring ring;
};

struct sim_proc {
    int32_t pid;
    uint32_t in_use;
    uint64_t start_time; /* /proc/<pid>/stat field 22, tells a reused pid apart */
    uint64_t managed;    /* managed (host-resident) bytes: never device memory */
    struct sim_proc_dev dev[SIM_MAX_DEV];
};

struct sim_defer { /* busy time beyond the accounting horizon, added as time passes */
    int32_t slot, pid;
    uint64_t from, to;
};

struct sim_dev {
    uint64_t busy_until; /* CLOCK_MONOTONIC ns at which the last queued work ends */
    uint32_t ndefer;
    uint32_t last_slot; /* 1 + the slot of the process whose work was queued last (0: none) */
    struct sim_defer defer[SIM_NDEFER];
    struct sim_ring ring;
};

struct sim_state {
    uint64_t magic; /* written last, once the rest is initialised */
    uint32_t layout;
    uint32_t ndev;
    uint64_t total;       /* bytes per device */
    pthread_mutex_t lock; /* process-shared, robust */
    struct sim_dev dev[SIM_MAX_DEV];
    struct sim_proc proc[SIM_MAX_PROC];
};

/* Everything below has hidden visibility: each library embeds its own copy. */
extern struct sim_state *sim_st;

struct sim_state *sim_state_open(void); /* map (once) and apply the environment; NULL on error */
void sim_lock(void);
void sim_unlock(void);
void sim_reap_locked(void);    /* forget processes that are gone */
int sim_register_locked(void); /* slot of the calling process, usage reset; -1 if full */
uint64_t sim_proc_used(const struct sim_proc *p, int dev);
uint64_t sim_used_locked(int dev); /* all live processes */
/* Add delta bytes of kind to the process in slot on dev (reaping first); fails (-1) when a
 * positive delta does not fit in what is free on the device. */
int sim_charge(int slot, int dev, int kind, int64_t delta);
void sim_busy_add_locked(int slot, int dev, uint64_t start, uint64_t end, uint64_t now);
void sim_defer_flush_locked(int dev, uint64_t now);
uint64_t sim_ring_busy_ns(const struct sim_ring *r, uint64_t from, uint64_t to, uint64_t now);

uint64_t sim_now_ns(void); /* CLOCK_MONOTONIC: one clock for every process */
void sim_sleep_until(uint64_t t_ns);
uint64_t sim_parse_size(const char *s, uint64_t def); /* "123", "16G", "16GiB", "512M" */
uint64_t sim_env_size(const char *name, uint64_t def);
void sim_uuid(int dev, unsigned char out[16]);
static inline uint64_t sim_round_up(uint64_t v, uint64_t a)
{
    return (v + a - 1) / a * a;
}

#endif
