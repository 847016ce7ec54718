/* hv_config.c - the daemon's settings: command-line flags, environment and the INI file.
 *
 * Why this exists: see hv_config.h. The INI file is read with libinih; values are checked
 * here with the shared strict parsers (src/common/size_parse.h), so a typo stops the daemon
 * at start with a message naming the section and key instead of being ignored.
 */
#define _GNU_SOURCE
#include "hv_config.h"

#include <errno.h>
#include <getopt.h>
#include <ini.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hv_log.h"
#include "shm_region.h"
#include "size_parse.h"

static void copy(char *dst, size_t n, const char *src)
{
    snprintf(dst, n, "%s", src ? src : "");
}

static int parse_int(const char *text, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (!*text || *end || errno || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

int hv_limits_parse_field(struct hv_limits *l, const char *field, const char *text, char *err,
                          size_t errlen)
{
    char why[160] = "";
    if (!strcmp(field, "core_limit")) {
        double pct;
        if (vgpu_parse_percent(text, &pct, why, sizeof(why))) goto bad;
        l->core = pct;
        l->has |= HV_HAS_CORE;
    } else if (!strcmp(field, "mem_limit")) {
        uint64_t b;
        if (vgpu_parse_size(text, &b, why, sizeof(why))) goto bad;
        l->mem = b;
        l->has |= HV_HAS_MEM;
    } else if (!strcmp(field, "weight")) {
        long w;
        if (parse_int(text, 1, 10000, &w)) {
            snprintf(why, sizeof(why), "an integer from 1 to 10000");
            goto bad;
        }
        l->weight = (uint32_t)w;
        l->has |= HV_HAS_WEIGHT;
    } else if (!strcmp(field, "soft")) {
        int b;
        if (vgpu_parse_bool(text, &b, why, sizeof(why))) goto bad;
        l->soft = b;
        l->has |= HV_HAS_SOFT;
    } else {
        snprintf(err, errlen, "unknown field '%s'", field);
        return -1;
    }
    return 0;
bad:
    snprintf(err, errlen, "%s: invalid value '%s'%s%s", field, text, *why ? ": " : "", why);
    return -1;
}

struct ini_ctx {
    struct hv_config *c;
    char err[256];
};

static int ini_cb(void *arg, const char *section, const char *name, const char *value)
{
    struct ini_ctx *x = arg;
    struct hv_config *c = x->c;
    if (!strcmp(section, "defaults")) {
        char e[200];
        if (hv_limits_parse_field(&c->defaults, name, value, e, sizeof(e))) {
            snprintf(x->err, sizeof(x->err), "[defaults] %s", e);
            return 0;
        }
        return 1;
    }
    if (strcmp(section, "daemon")) {
        snprintf(x->err, sizeof(x->err), "unknown section [%s]", section);
        return 0;
    }
    long v;
    if (!strcmp(name, "socket"))
        copy(c->socket, sizeof(c->socket), value);
    else if (!strcmp(name, "worker_socket"))
        copy(c->worker_socket, sizeof(c->worker_socket), value);
    else if (!strcmp(name, "listen"))
        copy(c->listen, sizeof(c->listen), value);
    else if (!strcmp(name, "shm_dir"))
        copy(c->shm_dir, sizeof(c->shm_dir), value);
    else if (!strcmp(name, "state"))
        copy(c->state, sizeof(c->state), value);
    else if (!strcmp(name, "node_name"))
        copy(c->node_name, sizeof(c->node_name), value);
    else if (!strcmp(name, "kube_api"))
        copy(c->kube_api, sizeof(c->kube_api), value);
    else if (!strcmp(name, "policy"))
        copy(c->policy, sizeof(c->policy), value);
    else if (!strcmp(name, "tick_ms") || !strcmp(name, "heartbeat_ms")) {
        if (parse_int(value, 10, 600000, &v)) {
            snprintf(x->err, sizeof(x->err), "[daemon] %s: invalid value '%s'", name, value);
            return 0;
        }
        *(name[0] == 't' ? &c->tick_ms : &c->heartbeat_ms) = (int)v;
    } else if (!strcmp(name, "log_level")) {
        if ((c->log_level = hv_log_parse_level(value)) < 0) {
            snprintf(x->err, sizeof(x->err), "[daemon] log_level: invalid value '%s'", value);
            return 0;
        }
    } else {
        snprintf(x->err, sizeof(x->err), "[daemon] unknown key '%s'", name);
        return 0;
    }
    return 1;
}

static void usage(FILE *f)
{
    fputs("usage: vgpu-hypervisor [options]\n"
          "  --config FILE        INI file ([daemon], [defaults])\n"
          "  --socket PATH        operator socket (env VGPU_SOCKET; /run/vgpu/vgpu.sock)\n"
          "  --worker-socket PATH worker socket (worker.sock beside the operator socket)\n"
          "  --listen IP:PORT     also serve workers over TCP\n"
          "  --shm-dir DIR        pod regions (env VGPU_SHM_DIR; /dev/shm/vgpu)\n"
          "  --state FILE         operator settings (/var/lib/vgpu/state.json)\n"
          "  --tick-ms N          scheduling period (100)\n"
          "  --heartbeat-ms N     heartbeat interval asked of workers (1000)\n"
          "  --policy NAME        compute policy (weighted)\n"
          "  --kube-api URL       Kubernetes API server (in-cluster when KUBERNETES_SERVICE_HOST)\n"
          "  --node-name NAME     this node's name (env NODE_NAME)\n"
          "  --log-level LEVEL    debug|info|warn|error (info)\n",
          f);
}

enum {
    O_CONFIG = 256,
    O_SOCKET,
    O_WSOCKET,
    O_LISTEN,
    O_SHM,
    O_STATE,
    O_TICK,
    O_HB,
    O_POLICY,
    O_KUBE,
    O_NODE,
    O_LOG,
    O_HELP,
    O_VERSION
};
static const struct option opts[] = {{"config", required_argument, 0, O_CONFIG},
                                     {"socket", required_argument, 0, O_SOCKET},
                                     {"worker-socket", required_argument, 0, O_WSOCKET},
                                     {"listen", required_argument, 0, O_LISTEN},
                                     {"shm-dir", required_argument, 0, O_SHM},
                                     {"state", required_argument, 0, O_STATE},
                                     {"tick-ms", required_argument, 0, O_TICK},
                                     {"heartbeat-ms", required_argument, 0, O_HB},
                                     {"policy", required_argument, 0, O_POLICY},
                                     {"kube-api", required_argument, 0, O_KUBE},
                                     {"node-name", required_argument, 0, O_NODE},
                                     {"log-level", required_argument, 0, O_LOG},
                                     {"help", no_argument, 0, O_HELP},
                                     {"version", no_argument, 0, O_VERSION},
                                     {0, 0, 0, 0}};

int hv_config_load(struct hv_config *c, int argc, char **argv, char *err, size_t errlen)
{
    memset(c, 0, sizeof(*c));
    copy(c->socket, sizeof(c->socket), "/run/vgpu/vgpu.sock");
    copy(c->shm_dir, sizeof(c->shm_dir), VGPU_SHM_DEFAULT_DIR);
    copy(c->state, sizeof(c->state), "/var/lib/vgpu/state.json");
    copy(c->policy, sizeof(c->policy), "weighted");
    c->tick_ms = 100;
    c->heartbeat_ms = 1000;
    c->log_level = HV_INFO;

    /* first pass: only --config (and --help), so that the file comes before env and flags */
    opterr = 0;
    optind = 1;
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (o == O_CONFIG) copy(c->config_file, sizeof(c->config_file), optarg);
        if (o == O_HELP) {
            usage(stdout);
            return 1;
        }
        if (o == O_VERSION) {
            puts("vgpu-hypervisor " VGPU_VERSION);
            return 1;
        }
    }
    if (c->config_file[0]) {
        struct ini_ctx x = {.c = c};
        int r = ini_parse(c->config_file, ini_cb, &x);
        if (r < 0) {
            snprintf(err, errlen, "--config %s: cannot read the file", c->config_file);
            return -1;
        }
        if (r > 0) {
            snprintf(err, errlen, "--config %s line %d: %s", c->config_file, r,
                     x.err[0] ? x.err : "syntax error");
            return -1;
        }
    }
    const char *e;
    if ((e = getenv("VGPU_SOCKET")) && *e) copy(c->socket, sizeof(c->socket), e);
    if ((e = getenv("VGPU_SHM_DIR")) && *e) copy(c->shm_dir, sizeof(c->shm_dir), e);
    if (!c->node_name[0] && (e = getenv("NODE_NAME")) && *e)
        copy(c->node_name, sizeof(c->node_name), e);

    opterr = 0;
    optind = 1;
    long v;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case O_CONFIG:
            break;
        case O_SOCKET:
            copy(c->socket, sizeof(c->socket), optarg);
            break;
        case O_WSOCKET:
            copy(c->worker_socket, sizeof(c->worker_socket), optarg);
            break;
        case O_LISTEN:
            copy(c->listen, sizeof(c->listen), optarg);
            break;
        case O_SHM:
            copy(c->shm_dir, sizeof(c->shm_dir), optarg);
            break;
        case O_STATE:
            copy(c->state, sizeof(c->state), optarg);
            break;
        case O_POLICY:
            copy(c->policy, sizeof(c->policy), optarg);
            break;
        case O_KUBE:
            copy(c->kube_api, sizeof(c->kube_api), optarg);
            break;
        case O_NODE:
            copy(c->node_name, sizeof(c->node_name), optarg);
            break;
        case O_TICK:
        case O_HB:
            if (parse_int(optarg, 10, 600000, &v)) {
                snprintf(err, errlen, "--%s: invalid value '%s' (10..600000 ms)",
                         o == O_TICK ? "tick-ms" : "heartbeat-ms", optarg);
                return -1;
            }
            *(o == O_TICK ? &c->tick_ms : &c->heartbeat_ms) = (int)v;
            break;
        case O_LOG:
            if ((c->log_level = hv_log_parse_level(optarg)) < 0) {
                snprintf(err, errlen, "--log-level: invalid value '%s'", optarg);
                return -1;
            }
            break;
        default:
            snprintf(err, errlen, "unknown or incomplete option '%s' (see --help)",
                     argv[optind - 1]);
            return -1;
        }
    }
    if (optind < argc) {
        snprintf(err, errlen, "unexpected argument '%s'", argv[optind]);
        return -1;
    }
    if (!c->worker_socket[0]) {
        const char *slash = strrchr(c->socket, '/');
        int dirlen = slash ? (int)(slash - c->socket) : 0;
        if (slash)
            snprintf(c->worker_socket, sizeof(c->worker_socket), "%.*s/worker.sock", dirlen,
                     c->socket);
        else
            copy(c->worker_socket, sizeof(c->worker_socket), "worker.sock");
    }
    if (!strcmp(c->worker_socket, c->socket)) {
        snprintf(err, errlen, "--worker-socket must differ from --socket (%s)", c->socket);
        return -1;
    }
    return 0;
}
