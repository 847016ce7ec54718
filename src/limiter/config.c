/* config.c - the limiter's configuration from the environment (see config.h for the rules): the
 * pod's identity, the visible GPUs, the node daemon, logging, and the assembled whole. The
 * per-GPU limits are read by config_limits.c. */
#define _GNU_SOURCE
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/cgroup_path.h"
#include "../common/shm_region.h"
#include "../common/size_parse.h"
#include "config_env.h"
#include "log.h"

int vgpu_config_pod_from_cgroup(struct vgpu_config *cfg, const char *text, size_t len)
{
    struct pod_identity id;
    if (pod_identity_parse(text, len, &id) == 0 &&
        pod_identity_name(&id, cfg->pod_id, sizeof(cfg->pod_id)) == 0) {
        cfg->pod_source = "cgroup";
        return 0;
    }
    /* unreadable or not a cgroup file: the pod every such process shares, so that its limits
     * still hold (one ledger for all of them), never a pod of its own */
    snprintf(cfg->pod_id, sizeof(cfg->pod_id), "host");
    cfg->pod_source = "cgroup (unreadable /proc/self/cgroup)";
    return -1;
}

static void load_pod_identity(struct vgpu_config *cfg, char *const *envp)
{
    const char *uid = vgpu_env_get(envp, "VGPU_POD_UID");
    const char *name = vgpu_env_get(envp, "VGPU_POD_NAME");
    const char *ns = vgpu_env_get(envp, "VGPU_POD_NAMESPACE");
    const char *name_var = "VGPU_POD_NAME";
    if (!name || !*name) {
        name = vgpu_env_get(envp, "POD_NAME");
        name_var = "POD_NAME";
    }
    if (!ns || !*ns) ns = vgpu_env_get(envp, "POD_NAMESPACE");
    const char *ctr = vgpu_env_get(envp, "VGPU_CONTAINER_NAME");
    if (!ctr || !*ctr) ctr = vgpu_env_get(envp, "CONTAINER_NAME");
    snprintf(cfg->pod_uid, sizeof(cfg->pod_uid), "%s", uid ? uid : "");
    snprintf(cfg->pod_name, sizeof(cfg->pod_name), "%s", name ? name : "");
    snprintf(cfg->pod_namespace, sizeof(cfg->pod_namespace), "%s", ns ? ns : "");
    snprintf(cfg->container, sizeof(cfg->container), "%s", ctr ? ctr : "");
    if (uid && *uid) {
        snprintf(cfg->pod_id, sizeof(cfg->pod_id), "uid:%s", uid);
        cfg->pod_source = "VGPU_POD_UID";
        return;
    }
    if (name && *name) {
        snprintf(cfg->pod_id, sizeof(cfg->pod_id), "%s/%s", ns && *ns ? ns : "default", name);
        cfg->pod_source = name_var;
        return;
    }
    /* no pod named: the pod the cgroup says, as the daemon names it */
    char buf[POD_IDENTITY_FILE_MAX];
    ssize_t n = pod_identity_read_file("/proc/self/cgroup", buf, sizeof(buf));
    vgpu_config_pod_from_cgroup(cfg, buf, n < 0 ? 0 : (size_t)n);
}

/* GPU_DEVICES_UUID (VGPU-Controller: the pod's GPUs by UUID, index i = the i-th), else
 * CUDA_VISIBLE_DEVICES (indices or UUIDs, as CUDA reads it), else NVIDIA_VISIBLE_DEVICES
 * (VGPU-Controller's fallback) when it lists UUIDs: its indices are the host's, which the
 * container renumbers, and "all"/"none"/"void" say nothing about the order. */
static void load_visible(struct vgpu_config *cfg, char *const *envp)
{
    static const char *vars[] = {"GPU_DEVICES_UUID", "CUDA_VISIBLE_DEVICES",
                                 "NVIDIA_VISIBLE_DEVICES"};
    const char *list = NULL, *var = NULL;
    for (int i = 0; i < 3 && !list; i++) {
        const char *v = vgpu_env_get(envp, vars[i]);
        if (v && (*v || i == 1)) {
            list = v;
            var = vars[i];
        }
    }
    if (!list) return;
    int uuids_only = var != vars[1];
    char buf[1024];
    if (strlen(list) >= sizeof(buf)) {
        vgpu_config_error(cfg, "%s: %s", var, "the list is longer than 1023 bytes");
        return;
    }
    snprintf(buf, sizeof(buf), "%s", list);
    char got[VGPU_MAX_DEVICES][VGPU_UUID_LEN];
    int n = 0;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (isspace((unsigned char)*tok))
            tok++;
        char norm[VGPU_UUID_LEN];
        int is_uuid = vgpu_normalize_uuid(tok, norm, sizeof(norm)) == 0;
        if (!is_uuid && uuids_only) {
            if (var == vars[2]) { /* the container runtime's variable: no mapping from it */
                vgpu_config_note(
                    cfg, VGPU_LOG_INFO,
                    "NVIDIA_VISIBLE_DEVICES: '%s' is not a list of GPU UUIDs: GPU indices "
                    "are the order NVML reports",
                    list);
                return;
            }
            vgpu_config_error(cfg, "%s: '%s' is not a GPU or MIG UUID", var, tok);
            return;
        }
        if (n == VGPU_MAX_DEVICES) {
            char detail[64];
            snprintf(detail, sizeof(detail), "more than %d GPUs", VGPU_MAX_DEVICES);
            vgpu_config_error(cfg, "%s: %s", var, detail);
            return;
        }
        snprintf(got[n++], VGPU_UUID_LEN, "%s", is_uuid ? norm : tok);
    }
    memcpy(cfg->visible, got, sizeof(got));
    cfg->n_visible = n;
    cfg->visible_source = var;
}

/* VGPU_HYPERVISOR_SOCKET, or HYPERVISOR_IP + HYPERVISOR_PORT */
static void load_hypervisor(struct vgpu_config *cfg, char *const *envp)
{
    const char *sock = vgpu_env_get(envp, "VGPU_HYPERVISOR_SOCKET");
    const char *ip = vgpu_env_get(envp, "HYPERVISOR_IP");
    const char *port = vgpu_env_get(envp, "HYPERVISOR_PORT");
    if (sock && *sock) {
        if (strlen(sock) >= sizeof(cfg->hv_socket)) {
            vgpu_config_error(cfg, "%s: %s", "VGPU_HYPERVISOR_SOCKET",
                              "the path is longer than a Unix socket path may be (107 bytes)");
            return;
        }
        snprintf(cfg->hv_socket, sizeof(cfg->hv_socket), "%s", sock);
        cfg->hv_on = 1;
        return;
    }
    int has_ip = ip && *ip, has_port = port && *port;
    if (!has_ip && !has_port) return;
    cfg->hv_on = 1; /* a half-configured daemon still fails closed, never unlimited */
    if (!has_ip) {
        vgpu_config_error(cfg, "%s: %s", "HYPERVISOR_IP",
                          "must be set together with HYPERVISOR_PORT");
        return;
    }
    unsigned char addr[16];
    if (strlen(ip) >= sizeof(cfg->hv_ip) ||
        (inet_pton(AF_INET, ip, addr) != 1 && inet_pton(AF_INET6, ip, addr) != 1)) {
        vgpu_config_error(cfg, "%s: '%s' is not an IPv4 or IPv6 address", "HYPERVISOR_IP", ip);
        return;
    }
    snprintf(cfg->hv_ip, sizeof(cfg->hv_ip), "%s", ip);
    if (!has_port) {
        vgpu_config_error(cfg, "%s: %s", "HYPERVISOR_PORT",
                          "must be set together with HYPERVISOR_IP");
        return;
    }
    char *end;
    long v = strtol(port, &end, 10);
    if (!isdigit((unsigned char)*port) || *port == '0' || *end || v < 1 || v > 65535) {
        vgpu_config_error(cfg, "%s: '%s' is not a port number (1-65535)", "HYPERVISOR_PORT", port);
        return;
    }
    cfg->hv_port = (int)v;
}

/* The first set variable of `vars` that names a level decides; one that does not is noted
 * and the next one is tried. */
static int load_log_level(struct vgpu_config *cfg, char *const *envp)
{
    static const char *vars[] = {"VGPU_LOG_LEVEL", "VCUDA_LOG_LEVEL", "TF_LOG_LEVEL",
                                 "LOGGER_LEVEL"};
    for (int i = 0; i < 4; i++) {
        const char *v = vgpu_env_get(envp, vars[i]);
        if (!v || !*v) continue;
        int level;
        int bad = i == 3 ? vgpu_log_level_from_logger_level(v, &level)
                         : vgpu_log_level_from_name(v, &level);
        if (!bad) {
            cfg->log_level = level;
            return i;
        }
        vgpu_config_note(cfg, VGPU_LOG_WARN, "%s: '%s' is not a log level (%s): ignored", vars[i],
                         v, i == 3 ? "0-5" : "off, error, warn, info, debug, trace or 0-4");
    }
    return -1;
}

/* Switches that turn the seeds' logs off: vgpu.rs's TF_ENABLE_LOG=off|0|false and vcuda-hook's
 * VCUDA_LOG_SINK=null|none. Only VGPU_LOG_LEVEL (ours) overrides them. */
static void load_log_switches(struct vgpu_config *cfg, char *const *envp, int decided_by)
{
    const char *en = vgpu_env_get(envp, "TF_ENABLE_LOG");
    const char *sink = vgpu_env_get(envp, "VCUDA_LOG_SINK");
    int off = 0;
    if (en && (strcmp(en, "off") == 0 || strcmp(en, "0") == 0 || strcmp(en, "false") == 0)) off = 1;
    if (sink && *sink) {
        if (strcasecmp(sink, "null") == 0 || strcasecmp(sink, "none") == 0)
            off = 1;
        else if (strcasecmp(sink, "stderr") != 0)
            vgpu_config_note(
                cfg, VGPU_LOG_WARN,
                "VCUDA_LOG_SINK: '%s' ignored: the limiter writes to stderr only (a line in "
                "the program's stdout or in a file it did not ask for could break it)",
                sink);
    }
    if (off && decided_by != 0) cfg->log_level = VGPU_LOG_OFF;
}

/* Variables of the seeds that are read and deliberately not applied, with the reason. */
static void load_ignored(struct vgpu_config *cfg, char *const *envp)
{
    static const struct {
        const char *name, *reason;
        int level;
    } ignored[] = {
        {"TF_LOG_PATH", "the limiter writes to stderr only", VGPU_LOG_WARN},
        {"VCUDA_LOG_FILE", "the limiter writes to stderr only", VGPU_LOG_WARN},
        {"VCUDA_DEVICE_NAME", "GPUs keep their own names", VGPU_LOG_WARN},
        {"TENSOR_FUSION_IPC_SERVER_PATH",
         "the node daemon is VGPU_HYPERVISOR_SOCKET or HYPERVISOR_IP/HYPERVISOR_PORT",
         VGPU_LOG_WARN},
        {"TENSOR_FUSION_NGPU_PATH", "the limiter loads no library a variable names", VGPU_LOG_WARN},
        {"TF_CUDA_LIB_PATH", "the real libcuda is found by the dynamic loader", VGPU_LOG_WARN},
        {"TF_NVML_LIB_PATH", "the real libnvidia-ml is found by the dynamic loader", VGPU_LOG_WARN},
        {"ENABLE_CUDA_HOOKS",
         "hooks cannot be turned off from the environment (that would be "
         "unlimited)",
         VGPU_LOG_WARN},
        {"ENABLE_NVML_HOOKS",
         "hooks cannot be turned off from the environment (that would be "
         "unlimited)",
         VGPU_LOG_WARN},
        {"CUDA_LIMITER_MOCK_MODE", "a test switch of vgpu.rs", VGPU_LOG_WARN},
        {"ENV_COMPATIBILITY_MODE",
         "the pod's processes are counted in its ledger, whatever the cgroup version",
         VGPU_LOG_INFO},
        {"VMEMORY_NODE_ENABLED", "host memory is counted per pod, not per node", VGPU_LOG_INFO},
    };
    for (size_t i = 0; i < sizeof(ignored) / sizeof(ignored[0]); i++) {
        const char *v = vgpu_env_get(envp, ignored[i].name);
        if (v && *v)
            vgpu_config_note(cfg, ignored[i].level, "%s ignored: %s", ignored[i].name,
                             ignored[i].reason);
    }
}

void vgpu_config_load(struct vgpu_config *cfg, char *const *envp)
{
    memset(cfg, 0, sizeof(*cfg));
    char err[400];

    cfg->log_level = VGPU_LOG_WARN;
    load_log_switches(cfg, envp, load_log_level(cfg, envp));
    load_ignored(cfg, envp);

    vgpu_config_load_limits(cfg, envp);

    const char *cr = vgpu_env_get(envp, "VGPU_CONTEXT_RESERVE");
    if (cr && *cr) {
        if (vgpu_parse_size(cr, &cfg->context_reserve, err, sizeof(err)) != 0)
            vgpu_config_error(cfg, "%s: %s", "VGPU_CONTEXT_RESERVE", err);
        else
            cfg->context_reserve_set = 1;
    }

    load_pod_identity(cfg, envp);
    load_visible(cfg, envp);
    load_hypervisor(cfg, envp);
    /* managed: the daemon's directory as mounted into the pod; standalone: this user's own */
    const char *dir = vgpu_env_get(envp, "VGPU_SHM_DIR");
    if (dir && *dir)
        snprintf(cfg->shm_dir, sizeof(cfg->shm_dir), "%s", dir);
    else if (cfg->hv_on)
        snprintf(cfg->shm_dir, sizeof(cfg->shm_dir), "%s", VGPU_SHM_MANAGED_DIR);
    else
        vgpu_shm_standalone_dir(cfg->shm_dir, sizeof(cfg->shm_dir));
    cfg->ledger_on = cfg->n_mem > 0 || cfg->has_core || cfg->hv_on;
    cfg->gate_on = cfg->has_core || cfg->hv_on;
}
