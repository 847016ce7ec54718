/* hv_pod.h - the daemon's picture of a pod: its GPUs and limits by source, its workers and
 * their command queues.
 *
 * Why this exists: the registry (registry.h) owns these records and the lock that guards
 * them; the files that read or write a pod's regions (pod_regions.h) need only the records,
 * not the registry, so the types have a header of their own. Every field is read and written
 * with the registry lock held.
 */
#ifndef VGPU_HV_POD_H
#define VGPU_HV_POD_H

#include <stdint.h>
#include <sys/types.h>

#include "alloc_grant.h"
#include "hv_config.h"
#include "pod_files.h"
#include "shm_layout.h"

#define HV_MAX_GPUS VGPU_MAX_DEVICES
#define HV_CMD_QUEUE 32 /* commands kept per worker (a newer limits command supersedes) */
#define HV_KEY_LEN 320  /* "namespace/name" */
#define HV_MAX_WORKERS_PER_POD VGPU_MAX_PROCS /* registrations one pod may hold (429 past it) */

/* Operator settings of a pod for one GPU key: "all", an index ("0") or a uuid ("gpu-..."). */
struct hv_op_entry {
    char key[VGPU_UUID_LEN];
    struct hv_limits l;
};

struct hv_pod_gpu {
    char uuid[VGPU_UUID_LEN]; /* lower case "gpu-..." */
    int index;
    struct hv_limits env; /* the workers' environment limits, most restrictive of all */
    /* resolved (registry_resolve) */
    double core;     /* percent; 0 = no compute limit */
    uint64_t mem;    /* bytes; 0 = no cap */
    uint32_t weight; /* >= 1 */
    int soft;
    const char *source; /* "operator" | "kubernetes" | "defaults" | "env" | "none" */
    /* scheduling (tick.c), hundredths of a percent */
    uint32_t effective; /* core_effective written to the region; 0 = unlimited */
    uint32_t pushed;    /* effective of the last limits command */
    uint32_t used;      /* share used during the last tick */
    uint32_t used_avg;  /* the same over about the last second (status, metrics) */
    uint32_t trim;      /* share_balance.h: what is taken off a soft pod's share (0 = none) */
    int contend_ticks;  /* ticks in a row it was soft and wanted more */
    int wants_more;
    int have_sample;
    uint64_t last_charged, last_waited, sample_ns;
    uint64_t mem_used; /* from the region */
    uint32_t dvfs;     /* from the region: the gate's clock factor, 1024 = 1.0 (0: none yet) */
    uint32_t scale;    /* from the region: the model's correction, 1024 = 1.0 (bounded) */
    /* contention.h, once a second with NVML's figures: the charges since the last window, and
     * the factor written to the control region (1024 = 1.0) */
    uint64_t win_charged, win_ns;
    uint32_t shared;
    uint64_t nvml_mem; /* NVML: memory of the pod's registered processes */
};

/* percent -> hundredths, the unit of shares: a limit above 0 is never 0 (which means none) */
static inline uint32_t hv_percent_x100(double pct)
{
    if (!(pct > 0)) return 0;
    if (pct >= 100) return 10000;
    uint32_t v = (uint32_t)(pct * 100.0 + 0.5);
    return v ? v : 1;
}

/* The pod's clock factor on this GPU (src/limiter/dvfs_model.h): 1.0 until its region says */
static inline double hv_clock_factor(const struct hv_pod_gpu *g)
{
    return g->dvfs ? g->dvfs / 1024.0 : 1.0;
}

struct hv_pod {
    struct hv_pod *next;
    char key[HV_KEY_LEN]; /* ns/name */
    char ns[64];
    char name[254];
    char base[254]; /* the pod's own name: `name` less ":<dir>" for one container of a pod
                     * whose containers have allocations of their own (api_worker.c) */
    char dir[POD_FILES_NAME_LEN]; /* its directory under <shm-dir>/pods ("" none yet) */
    struct pod_files files;       /* its control region and ledger, open while it has workers */
    char broken[160];             /* why its ledger is unusable ("" fine): it fails closed */
    int draining; /* no workers, but live processes still have records in its ledger */
    int reap_hw;  /* ledger records in use up to here at the last reading (region_reap_dead) */
    unsigned reap_calls;
    int retired; /* its allocation directory goes with its last process (allocations.c) */
    int ngrant;  /* what the kubelet granted its container through the device plugin */
    struct alloc_grant grant[2];
    int suspended;
    int n_op; /* operator settings (persisted) */
    struct hv_op_entry op[HV_MAX_GPUS + 1];
    int has_kube;
    struct hv_limits kube; /* annotations */
    int ngpu;
    struct hv_pod_gpu gpu[HV_MAX_GPUS];
    int nworkers;
    int over_cap; /* NVML memory of its processes above its cap (backstop) */
};

struct hv_cmd {
    uint64_t seq;
    char *json; /* the whole command object */
};

struct hv_worker {
    struct hv_worker *next;
    char id[24];
    pid_t host_pid;
    int pid;             /* in its own namespace */
    uint64_t start_time; /* /proc/PID/stat field 22: a reused pid is another process */
    int pidfd;           /* the process itself (pidfd_open), -1 where the kernel has none */
    uint64_t alive_ns;   /* the tick that last saw it running through its pidfd (tick.c) */
    char container[128];
    char pod_key[HV_KEY_LEN];
    uint64_t registered_ns, last_seen_ns;
    uint64_t reg_seq;      /* daemon seq at registration */
    uint64_t last_cmd_seq; /* newest command addressed to it */
    uint64_t acked_seq;
    uint64_t acks;
    int polling; /* open long-polls / event streams: alive while > 0 */
    int qlen;
    struct hv_cmd q[HV_CMD_QUEUE];
};

struct hv_kube_pod {
    struct hv_kube_pod *next;
    char ns[64], name[254], uid[64];
    struct hv_limits l;
};

/* A process NVML shows on a GPU that no worker registered (backstop, tick.c). */
struct hv_unreg {
    pid_t host_pid;
    int gpu; /* NVML index */
    uint64_t mem;
};
#define HV_MAX_UNREG 256

#endif
