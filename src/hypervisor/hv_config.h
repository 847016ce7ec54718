/* hv_config.h - the daemon's settings: command-line flags, environment and the INI file.
 *
 * Why this exists: every other module reads one settled configuration; the precedence
 * (flags > environment > --config file > built-in defaults) is decided here once.
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
    struct hv_limits defaults;
};

/* Fill `c` from defaults, the --config file, the environment and argv. Returns 0, 1 when the
 * program should exit successfully (--help, --version), or -1 with a message in err. */
int hv_config_load(struct hv_config *c, int argc, char **argv, char *err, size_t errlen);

/* Parse one limit field given as text ("core_limit", "mem_limit", "weight", "soft") into l.
 * Returns 0, or -1 with a message naming the field in err. */
int hv_limits_parse_field(struct hv_limits *l, const char *field, const char *text, char *err,
                          size_t errlen);

#endif
