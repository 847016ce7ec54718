/* hv_config.h - the daemon's settings: command-line flags, environment and the INI file.
 *
 * Why this exists: every other module reads one settled configuration; the precedence
 * (flags > environment > --config file > built-in defaults) is decided here once. Each
 * setting is one row of the table in hv_settings.c (option, INI key, environment variable,
 * type, range, default, --help text): a new setting is a field here and a row there. The
 * parsers of single values (hv_limits_parse_field, the trusted namespaces) live there too.
 */
#ifndef VGPU_HV_CONFIG_H
#define VGPU_HV_CONFIG_H

#include <stddef.h>
#include <stdint.h>

/* One source's limits for a pod on a GPU; any subset of the fields may be set. */
enum { HV_HAS_CORE = 1, HV_HAS_MEM = 2, HV_HAS_WEIGHT = 4, HV_HAS_SOFT = 8 };
struct hv_limits {
    unsigned has;    /* HV_HAS_* */
    double core;     /* percent, (0, 100] */
    uint64_t mem;    /* bytes, 0 = no cap */
    uint32_t weight; /* 1..10000 */
    int soft;        /* 0 / 1 */
};

#define HV_MAX_TRUSTED_NS 256

struct hv_config {
    char config_file[512];
    char socket[256];        /* operator socket */
    char worker_socket[256]; /* worker socket ("" = worker.sock beside the operator socket) */
    char listen[128];        /* "IP:PORT" or "" */
    char shm_dir[256];
    char state[512];
    char node_name[254];
    char kube_api[256];
    char policy[32];
    int tick_ms;
    int heartbeat_ms;
    int log_level;
    int max_connections;         /* open at once: operator socket; worker socket + TCP (8192) */
    int max_connections_per_pod; /* per pod (or peer address over TCP) (256) */
    int request_timeout_ms;      /* to deliver a request, headers and body (10000) */
    /* development mode (--identity env): a worker's pod is what its registration says, not
     * its cgroup; any process can then act as any pod (docs/security.md) */
    int identity_env;
    /* the Kubernetes device plugin (device_plugin.h): the kubelet's device-plugin directory
     * ("" = off), the bytes of one vgpu.io/gpu-memory device (1 GiB), and where the node
     * agent installs the libraries that Allocate mounts into containers */
    char device_plugin_dir[256];
    uint64_t memory_unit;
    char lib_dir[256];
    struct hv_limits defaults;
    /* Namespaces whose pods' vgpu.io annotations are the operator's word ([kubernetes]
     * trusted_namespaces, --trusted-namespaces): they replace [defaults]. Every other pod's
     * annotations are its tenant's and may only lower them (registry.c). Each entry is a
     * valid DNS label. */
    int n_trusted_ns;
    char trusted_ns[HV_MAX_TRUSTED_NS][64];
};

/* Fill `c` from defaults, the --config file, the environment and argv. Returns 0, 1 when the
 * program should exit successfully (--help, --version), or -1 with a message in err. */
int hv_config_load(struct hv_config *c, int argc, char **argv, char *err, size_t errlen);

/* Apply INI text in the --config file's format ([daemon], [defaults], [kubernetes]) to c, over what
 * it holds, with the same checks as the file. Returns 0, or -1 with "line N: message" in err. */
int hv_config_parse_ini(struct hv_config *c, const char *text, char *err, size_t errlen);

/* 1 when pods of namespace `ns` may set their limits freely by annotations (trusted_ns). */
int hv_config_ns_trusted(const struct hv_config *c, const char *ns);

/* Parse one limit field given as text ("core_limit", "mem_limit", "weight", "soft") into l.
 * Returns 0, or -1 with a message naming the field in err. */
int hv_limits_parse_field(struct hv_limits *l, const char *field, const char *text, char *err,
                          size_t errlen);

#endif
