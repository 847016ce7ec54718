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

/* The size of one vgpu.io/gpu-memory device: 1 MiB .. 1 TiB (a smaller unit would list more
 * devices than the kubelet's messages hold). 0, or -1 with a message in why. */
static int parse_memory_unit(const char *text, uint64_t *out, char *why, size_t n)
{
    uint64_t b;
    char e[160];
    if (vgpu_parse_size(text, &b, e, sizeof(e))) {
        snprintf(why, n, "%s", e);
        return -1;
    }
    if (b < (1ull << 20) || b > (1ull << 40)) {
        snprintf(why, n, "from 1MiB to 1TiB");
        return -1;
    }
    *out = b;
    return 0;
}

/* "cgroup" (a worker's pod is its cgroup's) or "env" (development: what it says) */
static int parse_identity(const char *text, int *env)
{
    if (!strcmp(text, "cgroup"))
        *env = 0;
    else if (!strcmp(text, "env"))
        *env = 1;
    else
        return -1;
    return 0;
}

/* A namespace name as Kubernetes allows it: a DNS label (RFC 1123), 1-63 of [a-z0-9-], not
 * starting or ending with '-'. Nothing else can name a real namespace, so anything else in the
 * trusted list is a typo that would silently trust nothing. */
static int dns_label(const char *s, size_t n)
{
    if (n < 1 || n > 63 || s[0] == '-' || s[n - 1] == '-') return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return 0;
    return 1;
}

/* Add the namespaces of `list` (separated by commas and/or white space) to c's trusted ones.
 * Returns 0, or -1 with a message naming the first bad entry in why (nothing after it added). */
static int add_trusted(struct hv_config *c, const char *list, char *why, size_t n)
{
    for (const char *p = list;;) {
        p += strspn(p, ", \t\r\n");
        if (!*p) return 0;
        size_t len = strcspn(p, ", \t\r\n");
        if (!dns_label(p, len)) {
            snprintf(why, n,
                     "invalid namespace '%.*s' (a DNS label: 1-63 of a-z, 0-9 and '-', not "
                     "starting or ending with '-')",
                     (int)(len > 80 ? 80 : len), p);
            return -1;
        }
        char ns[64];
        memcpy(ns, p, len);
        ns[len] = 0;
        p += len;
        if (hv_config_ns_trusted(c, ns)) continue;
        if (c->n_trusted_ns >= HV_MAX_TRUSTED_NS) {
            snprintf(why, n, "more than %d namespaces", HV_MAX_TRUSTED_NS);
            return -1;
        }
        memcpy(c->trusted_ns[c->n_trusted_ns++], ns, len + 1);
    }
}

int hv_config_ns_trusted(const struct hv_config *c, const char *ns)
{
    for (int i = 0; i < c->n_trusted_ns; i++)
        if (!strcmp(c->trusted_ns[i], ns)) return 1;
    return 0;
}

struct ini_ctx {
    struct hv_config *c;
    char err[256];
    int line, err_line; /* lines read so far; the line whose value was refused (0: none) */
    FILE *f;            /* what ini_read reads: the file, or else the text */
    const char *text;
};

/* A [daemon] text value into its field; refused when it does not fit, never cut. */
static int ini_text(struct ini_ctx *x, const char *name, char *dst, size_t n, const char *value)
{
    size_t len = strlen(value);
    if (len >= n) {
        snprintf(x->err, sizeof(x->err), "[daemon] %s: longer than %zu bytes", name, n - 1);
        return 0;
    }
    memcpy(dst, value, len + 1);
    return 1;
}

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
    if (!strcmp(section, "kubernetes")) {
        /* a repeated key or a continuation line adds to the list (libinih cuts lines at 200
         * bytes, so a long list needs several) */
        char e[200];
        if (strcmp(name, "trusted_namespaces")) {
            snprintf(x->err, sizeof(x->err), "[kubernetes] unknown key '%s'", name);
            return 0;
        }
        if (add_trusted(c, value, e, sizeof(e))) {
            snprintf(x->err, sizeof(x->err), "[kubernetes] trusted_namespaces: %s", e);
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
        return ini_text(x, name, c->socket, sizeof(c->socket), value);
    else if (!strcmp(name, "worker_socket"))
        return ini_text(x, name, c->worker_socket, sizeof(c->worker_socket), value);
    else if (!strcmp(name, "listen"))
        return ini_text(x, name, c->listen, sizeof(c->listen), value);
    else if (!strcmp(name, "shm_dir"))
        return ini_text(x, name, c->shm_dir, sizeof(c->shm_dir), value);
    else if (!strcmp(name, "state"))
        return ini_text(x, name, c->state, sizeof(c->state), value);
    else if (!strcmp(name, "node_name"))
        return ini_text(x, name, c->node_name, sizeof(c->node_name), value);
    else if (!strcmp(name, "kube_api"))
        return ini_text(x, name, c->kube_api, sizeof(c->kube_api), value);
    else if (!strcmp(name, "policy"))
        return ini_text(x, name, c->policy, sizeof(c->policy), value);
    else if (!strcmp(name, "device_plugin_dir"))
        return ini_text(x, name, c->device_plugin_dir, sizeof(c->device_plugin_dir), value);
    else if (!strcmp(name, "lib_dir"))
        return ini_text(x, name, c->lib_dir, sizeof(c->lib_dir), value);
    else if (!strcmp(name, "memory_unit")) {
        char why[160];
        if (parse_memory_unit(value, &c->memory_unit, why, sizeof(why))) {
            snprintf(x->err, sizeof(x->err), "[daemon] memory_unit: invalid value '%s': %s", value,
                     why);
            return 0;
        }
    } else if (!strcmp(name, "identity")) {
        if (parse_identity(value, &c->identity_env)) {
            snprintf(x->err, sizeof(x->err),
                     "[daemon] identity: invalid value '%s' (cgroup, or env for development)",
                     value);
            return 0;
        }
    } else if (!strcmp(name, "tick_ms") || !strcmp(name, "heartbeat_ms")) {
        if (parse_int(value, 10, 600000, &v)) {
            snprintf(x->err, sizeof(x->err), "[daemon] %s: invalid value '%s'", name, value);
            return 0;
        }
        *(name[0] == 't' ? &c->tick_ms : &c->heartbeat_ms) = (int)v;
    } else if (!strcmp(name, "max_connections") || !strcmp(name, "max_connections_per_pod")) {
        if (parse_int(value, 1, 1048576, &v)) {
            snprintf(x->err, sizeof(x->err), "[daemon] %s: invalid value '%s' (1..1048576)", name,
                     value);
            return 0;
        }
        *(!strcmp(name, "max_connections") ? &c->max_connections : &c->max_connections_per_pod) =
            (int)v;
    } else if (!strcmp(name, "request_timeout_ms")) {
        if (parse_int(value, 100, 600000, &v)) {
            snprintf(x->err, sizeof(x->err),
                     "[daemon] request_timeout_ms: invalid value '%s' (100..600000 ms)", value);
            return 0;
        }
        c->request_timeout_ms = (int)v;
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

/* libinih goes on after an error and returns the line of the first one, which may be a syntax
 * error the callback never saw. So lines are counted here (libinih counts one per read) and
 * only the first refused value's message is kept, and shown only for its own line. */
static char *ini_read(char *str, int num, void *stream)
{
    struct ini_ctx *x = stream;
    char *r = NULL;
    if (x->f) {
        r = fgets(str, num, x->f);
    } else if (*x->text && num > 1) { /* as ini_parse_string reads */
        int n = 0;
        while (n < num - 1 && x->text[n] && x->text[n] != '\n')
            n++;
        if (n < num - 1 && x->text[n] == '\n') n++;
        memcpy(str, x->text, (size_t)n);
        str[n] = 0;
        x->text += n;
        r = str;
    }
    if (r) x->line++;
    return r;
}

static int ini_cb_first(void *arg, const char *section, const char *name, const char *value)
{
    struct ini_ctx *x = arg;
    if (x->err_line) return 1; /* refused already: the first message stands */
    if (ini_cb(arg, section, name, value)) return 1;
    x->err_line = x->line;
    return 0;
}

static const char *ini_error(const struct ini_ctx *x, int line)
{
    return line == x->err_line ? x->err : "syntax error";
}

int hv_config_parse_ini(struct hv_config *c, const char *text, char *err, size_t errlen)
{
    struct ini_ctx x = {.c = c, .text = text};
    int r = ini_parse_stream(ini_read, &x, ini_cb_first, &x);
    if (r == 0) return 0;
    if (r < 0)
        snprintf(err, errlen, "out of memory");
    else
        snprintf(err, errlen, "line %d: %s", r, ini_error(&x, r));
    return -1;
}

static void usage(FILE *f)
{
    fputs("usage: vgpu-hypervisor [options]\n"
          "  --config FILE        INI file ([daemon], [defaults], [kubernetes])\n"
          "  --socket PATH        operator socket (env VGPU_SOCKET; /run/vgpu/vgpu.sock)\n"
          "  --worker-socket PATH worker socket (worker.sock beside the operator socket)\n"
          "  --listen IP:PORT     also serve workers over TCP\n"
          "  --shm-dir DIR        pod regions (env VGPU_SHM_DIR; /run/vgpu/shm)\n"
          "  --identity MODE      a worker's pod: cgroup (from the kernel), or env: what its\n"
          "                       registration says (development only: any process can\n"
          "                       then act as any pod)\n"
          "  --state FILE         operator settings (/var/lib/vgpu/state.json)\n"
          "  --tick-ms N          scheduling period (100)\n"
          "  --heartbeat-ms N     heartbeat interval asked of workers (1000)\n"
          "  --policy NAME        compute policy (weighted)\n"
          "  --kube-api URL       Kubernetes API server (in-cluster when KUBERNETES_SERVICE_HOST)\n"
          "  --node-name NAME     this node's name (env NODE_NAME)\n"
          "  --trusted-namespaces LIST\n"
          "                       namespaces (comma or space separated) whose pods' vgpu.io/*\n"
          "                       annotations replace [defaults]; elsewhere annotations may\n"
          "                       only lower them (replaces [kubernetes] trusted_namespaces)\n"
          "  --device-plugin-dir DIR\n"
          "                       serve the Kubernetes device plugin (vgpu.io/gpu-memory,\n"
          "                       vgpu.io/gpu-cores) to the kubelet whose device-plugin\n"
          "                       directory this is (/var/lib/kubelet/device-plugins); off\n"
          "                       when not given\n"
          "  --memory-unit SIZE   GPU memory of one vgpu.io/gpu-memory device (1GiB)\n"
          "  --lib-dir DIR        where the node's libcuda_limiter.so is, mounted read-only\n"
          "                       into containers (/usr/local/vgpu/lib)\n"
          "  --log-level LEVEL    debug|info|warn|error (info)\n"
          "  --max-connections N  open connections at most on the worker socket and TCP\n"
          "                       together, and as many on the operator socket (8192)\n"
          "  --max-connections-per-pod N\n"
          "                       open connections at most per pod (over TCP: per peer\n"
          "                       address); more are answered 503 at once (256)\n"
          "  --request-timeout-ms N\n"
          "                       a connection must deliver each request, headers and body,\n"
          "                       within N ms (of its start for the first); else it is cut\n"
          "                       (10000). Replies (long-polls, events) are not limited.\n",
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
    O_MAXCONN,
    O_MAXPOD,
    O_REQ_TIMEOUT,
    O_IDENTITY,
    O_TRUSTED_NS,
    O_DP_DIR,
    O_MEM_UNIT,
    O_LIB_DIR,
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
                                     {"max-connections", required_argument, 0, O_MAXCONN},
                                     {"max-connections-per-pod", required_argument, 0, O_MAXPOD},
                                     {"request-timeout-ms", required_argument, 0, O_REQ_TIMEOUT},
                                     {"identity", required_argument, 0, O_IDENTITY},
                                     {"trusted-namespaces", required_argument, 0, O_TRUSTED_NS},
                                     {"device-plugin-dir", required_argument, 0, O_DP_DIR},
                                     {"memory-unit", required_argument, 0, O_MEM_UNIT},
                                     {"lib-dir", required_argument, 0, O_LIB_DIR},
                                     {"help", no_argument, 0, O_HELP},
                                     {"version", no_argument, 0, O_VERSION},
                                     {0, 0, 0, 0}};

int hv_config_load(struct hv_config *c, int argc, char **argv, char *err, size_t errlen)
{
    memset(c, 0, sizeof(*c));
    copy(c->socket, sizeof(c->socket), "/run/vgpu/vgpu.sock");
    copy(c->shm_dir, sizeof(c->shm_dir), VGPU_SHM_MANAGED_DIR);
    copy(c->state, sizeof(c->state), "/var/lib/vgpu/state.json");
    copy(c->policy, sizeof(c->policy), "weighted");
    c->tick_ms = 100;
    c->heartbeat_ms = 1000;
    c->log_level = HV_INFO;
    /* a limiter holds one connection (its long poll) and opens one more at times: 256 lets a
     * pod run some 200 GPU processes, and takes 32 pods at their caps to fill the total */
    c->max_connections = 8192;
    c->max_connections_per_pod = 256;
    c->request_timeout_ms = 10000;
    c->memory_unit = 1ull << 30;
    copy(c->lib_dir, sizeof(c->lib_dir), "/usr/local/vgpu/lib");

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
        struct ini_ctx x = {.c = c, .f = fopen(c->config_file, "r")};
        int r = x.f ? ini_parse_stream(ini_read, &x, ini_cb_first, &x) : -1;
        if (x.f) fclose(x.f);
        if (r < 0) {
            snprintf(err, errlen, "--config %s: cannot read the file", c->config_file);
            return -1;
        }
        if (r > 0) {
            snprintf(err, errlen, "--config %s line %d: %s", c->config_file, r, ini_error(&x, r));
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
        case O_IDENTITY:
            if (parse_identity(optarg, &c->identity_env)) {
                snprintf(err, errlen, "--identity: invalid value '%s' (cgroup, or env)", optarg);
                return -1;
            }
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
        case O_DP_DIR:
        case O_LIB_DIR: { /* refused when too long: a cut path would name another directory */
            char *dst = o == O_DP_DIR ? c->device_plugin_dir : c->lib_dir;
            size_t dn = o == O_DP_DIR ? sizeof(c->device_plugin_dir) : sizeof(c->lib_dir);
            if (strlen(optarg) >= dn) {
                snprintf(err, errlen, "--%s: longer than %zu bytes",
                         o == O_DP_DIR ? "device-plugin-dir" : "lib-dir", dn - 1);
                return -1;
            }
            copy(dst, dn, optarg);
            break;
        }
        case O_MEM_UNIT: {
            char why[160];
            if (parse_memory_unit(optarg, &c->memory_unit, why, sizeof(why))) {
                snprintf(err, errlen, "--memory-unit: invalid value '%s': %s", optarg, why);
                return -1;
            }
            break;
        }
        case O_TRUSTED_NS: { /* the flag's list replaces the file's ("" trusts none) */
            char why[200];
            c->n_trusted_ns = 0;
            if (add_trusted(c, optarg, why, sizeof(why))) {
                snprintf(err, errlen, "--trusted-namespaces: %s", why);
                return -1;
            }
            break;
        }
        case O_TICK:
        case O_HB:
            if (parse_int(optarg, 10, 600000, &v)) {
                snprintf(err, errlen, "--%s: invalid value '%s' (10..600000 ms)",
                         o == O_TICK ? "tick-ms" : "heartbeat-ms", optarg);
                return -1;
            }
            *(o == O_TICK ? &c->tick_ms : &c->heartbeat_ms) = (int)v;
            break;
        case O_MAXCONN:
        case O_MAXPOD:
            if (parse_int(optarg, 1, 1048576, &v)) {
                snprintf(err, errlen, "--%s: invalid value '%s' (1..1048576)",
                         o == O_MAXCONN ? "max-connections" : "max-connections-per-pod", optarg);
                return -1;
            }
            *(o == O_MAXCONN ? &c->max_connections : &c->max_connections_per_pod) = (int)v;
            break;
        case O_REQ_TIMEOUT:
            if (parse_int(optarg, 100, 600000, &v)) {
                snprintf(err, errlen, "--request-timeout-ms: invalid value '%s' (100..600000 ms)",
                         optarg);
                return -1;
            }
            c->request_timeout_ms = (int)v;
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
    /* the device plugin hands these to the kubelet as host paths of mounts and as LD_PRELOAD in
     * a container, where a relative path would name something else or nothing */
    if (c->device_plugin_dir[0]) {
        const struct {
            const char *flag, *path;
        } abs[] = {{"device-plugin-dir", c->device_plugin_dir},
                   {"lib-dir", c->lib_dir},
                   {"shm-dir", c->shm_dir},
                   {"worker-socket", c->worker_socket}};
        for (size_t i = 0; i < sizeof(abs) / sizeof(abs[0]); i++)
            if (abs[i].path[0] != '/') {
                snprintf(err, errlen,
                         "--%s: '%s' is not an absolute path (the device plugin gives it to "
                         "containers)",
                         abs[i].flag, abs[i].path);
                return -1;
            }
    }
    return 0;
}
