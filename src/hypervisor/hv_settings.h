/* hv_settings.h - the one table of the daemon's settings.
 *
 * Why this exists: a setting is named in four places (its INI key, its environment variable,
 * its command-line option and its --help line); one row per setting names all of them, with
 * its type, range, default and the field of struct hv_config it fills, so that adding a
 * setting is adding a field to struct hv_config and a row to the table, and the four can never
 * disagree. hv_config.c decides the order in which the sources apply; this file parses one
 * value of one setting.
 */
#ifndef VGPU_HV_SETTINGS_H
#define VGPU_HV_SETTINGS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

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
    int shared_correction; /* percent */
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

/* 1 when pods of namespace `ns` may set their limits freely by annotations (trusted_ns). */
int hv_config_ns_trusted(const struct hv_config *c, const char *ns);

/* Parse one limit field given as text ("core_limit", "mem_limit", "weight", "soft") into l.
 * Returns 0, or -1 with a message naming the field in err. */
int hv_limits_parse_field(struct hv_limits *l, const char *field, const char *text, char *err,
                          size_t errlen);

enum hv_setting_type {
    HV_SET_TEXT,      /* a string field; refused when it does not fit, never cut */
    HV_SET_INT,       /* an int field in [lo, hi] */
    HV_SET_SIZE,      /* a uint64_t of bytes ("1GiB") in [lo, hi] */
    HV_SET_LOG_LEVEL, /* debug|info|warn|error */
    HV_SET_IDENTITY,  /* cgroup|env into identity_env */
    HV_SET_NS_LIST,   /* trusted namespaces, added to the list */
    HV_SET_LIMIT,     /* one [defaults] field (hv_limits_parse_field) */
    HV_SET_FLAG,      /* an option without a value (--help, --version: hv_config.c) */
};

struct hv_setting {
    const char *option;  /* long option without "--", or NULL (INI only) */
    const char *section; /* INI section, or NULL (option only) */
    const char *key;     /* INI key in that section */
    const char *env;     /* environment variable, or NULL */
    int env_if_unset;    /* the variable applies only when the INI file left the field empty */
    enum hv_setting_type type;
    long long lo, hi;  /* HV_SET_INT, HV_SET_SIZE */
    const char *range; /* the range as the messages and --help show it */
    size_t off, size;  /* the field in struct hv_config */
    const char *def;   /* the built-in default, parsed as any value is; NULL: none */
    const char *arg;   /* --help: what the option's value is ("PATH", "N") */
    const char *help;  /* --help: what it does */
};

#define HV_MAX_SETTINGS 64 /* rows at most */

extern const struct hv_setting hv_settings[];
extern const size_t hv_n_settings;

/* The setting of INI `section` and `key`, or NULL. *known_section: 1 when some setting is in
 * that section. */
const struct hv_setting *hv_setting_by_key(const char *section, const char *key,
                                           int *known_section);
/* Set s's field of c from `value`. `who` names the source in messages ("--tick-ms",
 * "[daemon] tick_ms", "VGPU_SOCKET"). 0, or -1 with a message naming who and the value. */
int hv_setting_apply(struct hv_config *c, const struct hv_setting *s, const char *value,
                     const char *who, char *err, size_t errlen);
/* "--tick-ms" / "[daemon] tick_ms" for s into buf. */
const char *hv_setting_option_name(const struct hv_setting *s, char *buf, size_t n);
const char *hv_setting_key_name(const struct hv_setting *s, char *buf, size_t n);
/* The --help text, every setting with its option, INI key, environment and default. */
void hv_settings_usage(FILE *f);

#endif
