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

#include "hv_config.h"
#include "hv_pod.h"

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
/* The same, for an entry `name` that stands for part of pod `base` (its annotations apply). */
struct hv_pod *registry_pod_get_of(const char *ns, const char *name, const char *base);
/* The entry of pod ns/base (itself or one of its containers') that has directory `dir`. */
struct hv_pod *registry_pod_find_dir(const char *ns, const char *base, const char *dir);
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
