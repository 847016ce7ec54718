/* config.h - the limiter's configuration, read once from the environment.
 *
 * Why this exists: users come from three seeds with three spellings of the same limits. This
 * module accepts all of them, decides precedence in one place, names the variable in every
 * error, and records a parse failure as `error` so that every hook can fail closed (no limit we
 * cannot read ever turns into an unlimited GPU).
 *
 * Every variable of the three seeds is listed in README.md ("Configuration"), with what it
 * means here; the ones this module reads are:
 *
 * Memory cap of a GPU (index i = the i-th GPU this process sees, uuid = its UUID):
 *   TENSOR_FUSION_CUDA_MEM_LIMIT   JSON map, keys are UUIDs (any case, "GPU-" optional) or indices
 *   CUDA_MEM_LIMIT_<i>             per index; CUDA_MEM_LIMIT: every index without its own
 *   VCUDA_MEMORY_LIMIT             every GPU (as in vcuda-hook, KB/MB/GB/TB are powers of 1024)
 * Values: bytes or sizes with units (size_parse.h). When several apply to one GPU the smallest
 * wins. Host memory (VGPU-Controller's and vcuda-hook's meaning, vgpu_config_mem_split):
 *   CUDA_MEM_RATIO_<i> / CUDA_MEM_RATIO   r in [1, 64]: of the cap, cap / r is GPU memory and
 *                                         the rest host memory (r > 1 turns oversold on)
 *   CUDA_MEM_OVERSOLD_<i> / CUDA_MEM_OVERSOLD  boolean: with r = 1, the cap again in host memory
 *   VCUDA_OVER_SUB_RATIO                  r > 0 (or a percent): cap x r more in host memory
 *
 * Compute share of a GPU, percent in (0, 100]:
 *   TENSOR_FUSION_CUDA_UP_LIMIT    JSON map, like the memory map: a hard limit
 *   CUDA_CORE_LIMIT_<i>            hard limit: never more than this share of GPU time
 *   CUDA_CORE_SOFT_LIMIT_<i>       above the hard limit (VGPU-Controller's meaning): the hard
 *                                  share under contention, up to the soft one while no other pod
 *                                  uses the GPU; at or below it (or alone): this share under
 *                                  contention, up to the hard limit (or 100%) while idle
 * Unsuffixed CUDA_CORE_LIMIT / CUDA_CORE_SOFT_LIMIT apply to every index without its own.
 * Several hard limits for one GPU: the smallest wins.
 *
 * Node daemon (docs/hypervisor.md): VGPU_HYPERVISOR_SOCKET=PATH (a Unix socket; "@name" for an
 * abstract one), or HYPERVISOR_IP (an IPv4/IPv6 literal) + HYPERVISOR_PORT (1-65535). Either
 * turns the daemon client on; the socket wins when both are set. One of IP/port without the
 * other, an IP that is not a literal address, a bad port or a path too long is an error.
 *
 * Strictness: a value that does not parse exactly (a suffix that is not 0-15 as written, "00",
 * a hexadecimal, exponent or signed number, surrounding blanks, "10%%") is an error naming the
 * variable when it bears on a limit, the GPU mapping or the daemon; a log setting or a variable
 * that is read but has no effect here is left at its default with a note (cfg->notes).
 */
#ifndef VGPU_LIMITER_CONFIG_H
#define VGPU_LIMITER_CONFIG_H

#include <stdint.h>

#include "../common/shm_layout.h"

#define VGPU_CFG_MAX_KEYS 32
#define VGPU_CFG_MAX_NOTES 8

struct vgpu_limit_entry {
    char uuid[VGPU_UUID_LEN]; /* normalised; empty when keyed by index */
    int index;                /* -1 when keyed by UUID */
    uint64_t value;
    char source[96]; /* variable it came from */
};

struct vgpu_config {
    int error; /* non-zero: a limit could not be read; CUDA calls fail */
    char error_msg[512];
    int log_level;

    struct vgpu_limit_entry mem[VGPU_CFG_MAX_KEYS];
    int n_mem;
    struct vgpu_limit_entry core[VGPU_CFG_MAX_KEYS]; /* values: percent x 100 */
    int n_core;
    uint32_t core_ctl[VGPU_MAX_DEVICES];  /* CUDA_CORE_LIMIT_<i> (or unsuffixed), 0 = none */
    uint32_t core_soft[VGPU_MAX_DEVICES]; /* CUDA_CORE_SOFT_LIMIT_<i> (or unsuffixed), 0 = none */
    int has_core;                         /* any compute limit at all (checked on every launch) */
    uint32_t mem_indexed;                 /* bit i: CUDA_MEM_LIMIT_<i> set (beats CUDA_MEM_LIMIT) */
    int oversold[VGPU_MAX_DEVICES];       /* CUDA_MEM_OVERSOLD_<i> (or unsuffixed) */
    double ratio[VGPU_MAX_DEVICES];       /* CUDA_MEM_RATIO_<i> (or unsuffixed), 1 when unset */
    double over_sub;                      /* VCUDA_OVER_SUB_RATIO, 0 when unset */

    /* settings read but not applied (log values that are not levels, variables with no effect
     * here): logged once by vgpu_config_log_notes when the log level is known */
    struct {
        int level;
        char text[200];
    } notes[VGPU_CFG_MAX_NOTES];
    int n_notes;

    /* identity of the pod whose processes share the limits */
    char pod_id[VGPU_POD_ID_LEN];
    const char *pod_source; /* which variable (or "cgroup") named it */
    char shm_dir[256];

    /* device memory charged per process and GPU for the driver's own use (context, modules)
     * while the driver's real figure for this process is unknown (no host pid in NVML) */
    uint64_t context_reserve;
    int context_reserve_set;

    /* names of the pod as Kubernetes knows them (empty when not given) */
    char pod_name[128], pod_namespace[128], pod_uid[64], container[128];

    /* the node daemon (vgpu-hypervisor); hv_on: a daemon is configured */
    int hv_on;
    char hv_socket[108]; /* sizeof(sockaddr_un.sun_path) */
    char hv_ip[64];
    int hv_port;
    /* devices join the pod's ledger / submissions pass the gate: env limits or a daemon, which
     * may set limits at any time */
    int ledger_on;
    int gate_on;

    /* GPU_DEVICES_UUID, else CUDA_VISIBLE_DEVICES, else NVIDIA_VISIBLE_DEVICES (UUIDs only)
     * entries, to map indices to NVML devices; visible_source names the variable */
    char visible[VGPU_MAX_DEVICES][VGPU_UUID_LEN];
    int n_visible;
    const char *visible_source;
};

/* Read the configuration from `envp` (NULL-terminated "NAME=value" strings). Never fails: on a
 * bad value it sets cfg->error and cfg->error_msg and keeps reading. */
void vgpu_config_load(struct vgpu_config *cfg, char *const *envp);

/* The pod when the environment names none: from `text`, the contents of /proc/self/cgroup
 * (cgroup_path.h: "k8s-<uid>", "ctr-<id>", "cg-<hash>", "host"), into cfg->pod_id and
 * cfg->pod_source. 0, or -1 when the text is not a cgroup file: the pod is then "host". */
int vgpu_config_pod_from_cgroup(struct vgpu_config *cfg, const char *text, size_t len);

/* Memory cap of GPU `index` with `uuid` (normalised), VGPU_UNLIMITED if none. `*why` names
 * the variable that decided it (may be NULL). */
uint64_t vgpu_config_mem_limit(const struct vgpu_config *cfg, int index, const char *uuid,
                               const char **why);

/* True if any memory limit is configured at all. */
int vgpu_config_has_mem_limits(const struct vgpu_config *cfg);

/* Compute limits of GPU `index` / `uuid` in hundredths of a percent: *hard (0 = none) and
 * *soft (0 = none). */
void vgpu_config_core_limit(const struct vgpu_config *cfg, int index, const char *uuid,
                            uint32_t *hard, uint32_t *soft);
int vgpu_config_has_core_limits(const struct vgpu_config *cfg);

/* Split the cap `limit` of GPU `index` into GPU memory (*device) and host memory (*host) as
 * CUDA_MEM_RATIO / CUDA_MEM_OVERSOLD / VCUDA_OVER_SUB_RATIO say. Returns 1 when some of it may
 * live in host memory (oversold), 0 otherwise (*device = limit, *host = 0). */
int vgpu_config_mem_split(const struct vgpu_config *cfg, int index, uint64_t limit,
                          uint64_t *device, uint64_t *host);

/* Log the notes gathered while loading (at their levels, through log.h). */
void vgpu_config_log_notes(const struct vgpu_config *cfg);

/* "GPU-ABC..." / "abc..." -> "gpu-abc..." (lower case, prefix added). Returns 0 if `in` looks
 * like a GPU or MIG UUID, -1 otherwise. */
int vgpu_normalize_uuid(const char *in, char *out, unsigned outlen);

#endif
