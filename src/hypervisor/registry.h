/* registry.h - what the daemon knows: pods, their workers, their settings by source, and the
 * one lock that guards all of it.
 *
 * Why this exists: request threads (registration, operator changes), the tick thread and the
 * Kubernetes watch all change the same picture. Keeping it in one place behind one mutex (and
 * one condition variable that wakes long-polls) keeps the rules simple: lock, look up by key
 * (never keep pointers across an unlock), change, unlock. Limit precedence lives here too.
 */
#ifndef VGPU_HV_REGISTRY_H
#define VGPU_HV_REGISTRY_H

#include <jansson.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>

#include "allocations.h"
#include "hv_config.h"
#include "pod_files.h"
#include "pod_identity.h"
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
    char dir[POD_FILES_NAME_LEN]; /* its directory under <shm-dir>/pods ("" none yet) */
    struct pod_files files;       /* its control region and ledger, open while it has workers */
    char broken[160];             /* why its ledger is unusable ("" fine): it fails closed */
    int draining; /* no workers, but live processes still have records in its ledger */
    int retired;  /* its allocation directory goes with its last process (allocations.c) */
    int ngrant;   /* what the kubelet granted its container through the device plugin */
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

struct hv_registry {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* broadcast on every new command, ack, removal and at shutdown */
    struct hv_pod *pods;
    struct hv_worker *workers;
    struct hv_kube_pod *kube;
    int nworkers;
    uint64_t seq;         /* last command sequence number of this daemon */
    uint64_t next_worker; /* worker ids */
    uint64_t commands;    /* commands pushed (metrics) */
    int kube_on;          /* a Kubernetes watch runs: pods are known by their UID */
    int stopping;
    int nunreg;
    struct hv_unreg unreg[HV_MAX_UNREG];
    const struct hv_config *cfg;
};

extern struct hv_registry hv_reg;

void registry_init(const struct hv_config *cfg);
void registry_shutdown(void); /* wake every waiter */
void registry_free_all(void); /* at exit: unmap regions (limits stay), free everything */
void registry_lock(void);
void registry_unlock(void);

/* All below: call with the lock held. */
struct hv_pod *registry_pod_find(const char *key);
struct hv_pod *registry_pod_get(const char *ns, const char *name); /* find or create */
/* Drop the pod if nothing keeps it (no workers, no operator settings, not suspended). */
void registry_pod_maybe_drop(struct hv_pod *p);
/* An allocation's directory `dir` ("a-<id>") is to be removed: a pod that has it open closes
 * it and forgets it (0: the caller removes it), or, while a process of that pod still runs, is
 * marked to remove it with its last process (1). Registry lock held. */
int registry_dir_release(const char *dir);
struct hv_pod_gpu *registry_pod_gpu(struct hv_pod *p, const char *uuid, int index); /* get/add */
struct hv_worker *registry_worker_find(const char *id);
struct hv_worker *registry_worker_add(struct hv_pod *p, pid_t host_pid, int pid);
void registry_worker_remove(struct hv_worker *w, const char *why);

/* Apply the precedence (operator > kubernetes > [defaults] > min(env, default)) to every GPU of
 * the pod. Returns 1 when any resolved value changed. */
int registry_resolve(struct hv_pod *p);
/* Operator settings: merge `l` into the entry for `gpu_key` ("all", index, uuid). */
int registry_op_set(struct hv_pod *p, const char *gpu_key, const struct hv_limits *l);
void registry_op_clear(struct hv_pod *p);

/* The limits array of replies and commands: [{"uuid","index","mem_limit","core_limit",
 * "core_effective","soft","weight"}] for every GPU of the pod. */
json_t *registry_limits_json(const struct hv_pod *p);

#endif
