/* main.c - vgpu-hypervisor: flags, startup, signals, shutdown.
 *
 * Why this exists: the daemon's life cycle in one place. It creates the listening sockets
 * itself (removing stale socket files, refusing to start when another daemon answers on them),
 * hands each to http_server.c with the configured connection caps and request deadline, starts
 * the tick and the optional Kubernetes watch, then waits for SIGTERM/SIGINT (blocked in every
 * thread, taken with sigwait) and stops everything in order, unlinking its socket files.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#ifdef VGPU_HAVE_DEVICE_PLUGIN
#include "device_plugin.h"
#endif
#include "http_api.h"
#include "http_server.h"
#include "peer_group.h"
#include "hv_config.h"
#include "hv_log.h"
#include "kube_pods.h"
#include "kube_watch.h"
#include "node_publish.h"
#include "nvml_monitor.h"
#include "pod_files.h"
#include "pod_identity.h"
#include "registry.h"
#include "scheduler.h"
#include "shm_region.h"
#include "state_store.h"
#include "tick.h"

static void mkdir_parent(const char *path)
{
    char dir[256];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir) return;
    *slash = 0;
    for (char *s = dir + 1; *s; s++)
        if (*s == '/') {
            *s = 0;
            mkdir(dir, 0755);
            *s = '/';
        }
    mkdir(dir, 0755);
}

static int unix_listen(const char *path, mode_t mode)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(a.sun_path)) {
        hv_logf(HV_ERROR, "socket path too long", "{s:s}", "path", path);
        return -1;
    }
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
    mkdir_parent(path);
    struct stat st;
    if (!lstat(path, &st)) {
        if (!S_ISSOCK(st.st_mode)) {
            hv_logf(HV_ERROR, "refusing to replace a file that is not a socket", "{s:s}", "path",
                    path);
            return -1;
        }
        int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int alive = probe >= 0 && !connect(probe, (struct sockaddr *)&a, sizeof(a));
        if (probe >= 0) close(probe);
        if (alive) {
            hv_logf(HV_ERROR, "another daemon answers on the socket", "{s:s}", "path", path);
            return -1;
        }
        unlink(path);
        hv_logf(HV_INFO, "removed a stale socket file", "{s:s}", "path", path);
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) || chmod(path, mode) ||
        listen(fd, 1024)) {
        hv_logf(HV_ERROR, "cannot listen on the socket", "{s:s, s:s}", "path", path, "error",
                strerror(errno));
        if (fd >= 0) close(fd);
        return -1;
    }
    return fd;
}

static int tcp_listen(const char *spec)
{
    char host[128];
    const char *colon = strrchr(spec, ':');
    if (!colon || colon == spec || !colon[1]) goto bad;
    snprintf(host, sizeof(host), "%.*s", (int)(colon - spec), spec);
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 1 || port > 65535) goto bad;
    struct sockaddr_storage ss = {0};
    socklen_t len;
    size_t hl = strlen(host);
    if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
        host[hl - 1] = 0;
        memmove(host, host + 1, hl - 1);
    }
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        len = sizeof(*a4);
    } else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        len = sizeof(*a6);
    } else {
        goto bad;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd >= 0) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (fd >= 0 && ss.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (fd < 0 || bind(fd, (struct sockaddr *)&ss, len) || listen(fd, 1024)) {
        hv_logf(HV_ERROR, "cannot listen on TCP", "{s:s, s:s}", "listen", spec, "error",
                strerror(errno));
        if (fd >= 0) close(fd);
        return -1;
    }
    return fd;
bad:
    hv_logf(HV_ERROR, "--listen: expected IP:PORT", "{s:s}", "listen", spec);
    return -1;
}

/* Set up the process: no SIGPIPE, the most open files allowed, and SIGTERM, SIGINT and SIGHUP
 * blocked in every thread (created after this) so that main waits for them with sigwait. */
static void process_setup(sigset_t *sigs)
{
    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl;
    if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    sigemptyset(sigs);
    sigaddset(sigs, SIGTERM);
    sigaddset(sigs, SIGINT);
    sigaddset(sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, sigs, NULL);
}

/* The operator socket, the worker socket and (with --listen) TCP, served. 0, or -1 (logged);
 * what was opened is in ls[] either way. */
static int start_listeners(const struct hv_config *cfg, struct hv_listener *ls, int nl)
{
    snprintf(ls[0].path, sizeof(ls[0].path), "%s", cfg->socket);
    snprintf(ls[1].path, sizeof(ls[1].path), "%s", cfg->worker_socket);
    /* connections are counted per pod, as the kernel files its processes (pod_identity.h) */
    peer_group_set_grouper(pod_identity_key);
    ls[0].fd = unix_listen(cfg->socket, 0660);
    ls[1].fd = ls[0].fd >= 0 ? unix_listen(cfg->worker_socket, 0666) : -1;
    if (nl == 3 && ls[1].fd >= 0) ls[2].fd = tcp_listen(cfg->listen);
    const struct http_server_limits lim = {
        .max_connections = (unsigned)cfg->max_connections,
        .max_connections_per_pod = (unsigned)cfg->max_connections_per_pod,
        .request_timeout_ms = (unsigned)cfg->request_timeout_ms,
    };
    const struct http_server_routes routes = {http_api_request, http_api_completed};
    int ok = 1;
    for (int i = 0; i < nl; i++)
        if (ls[i].fd < 0 || http_listener_start(&ls[i], &lim, &routes)) ok = 0;
    return ok ? 0 : -1;
}

/* The Kubernetes watch, or NULL (logged): then annotations are off and pods are known by
 * their UID. */
static struct kube_watch *start_kube(const struct hv_config *cfg)
{
    char err[512];
    struct kube_watch_opts ko = {.api_url = cfg->kube_api[0] ? cfg->kube_api : NULL,
                                 .node_name = cfg->node_name[0] ? cfg->node_name : NULL};
    struct kube_watch *kw = kube_watch_start(&ko, kube_pods_update, NULL, err, sizeof(err));
    if (!kw) {
        hv_logf(HV_WARN, "Kubernetes watch not started: annotations off, pods known by their UID",
                "{s:s}", "error", err);
        registry_lock();
        hv_reg.kube_on = 0;
        registry_unlock();
    }
    return kw;
}

/* Serve until SIGTERM or SIGINT; SIGHUP is ignored. */
static void wait_for_stop(const sigset_t *sigs)
{
    for (;;) {
        int sig = 0;
        if (sigwait(sigs, &sig)) continue;
        if (sig == SIGHUP) {
            hv_logf(HV_INFO, "SIGHUP ignored (restart to reload the configuration)", "{}");
            continue;
        }
        hv_logf(HV_INFO, "shutting down", "{s:s}", "signal", sig == SIGTERM ? "SIGTERM" : "SIGINT");
        return;
    }
}

/* Stop what runs, in the order that keeps locks safe, and remove the sockets. */
static void stop_all(struct kube_watch *kw, struct hv_listener *ls, int nl)
{
#ifdef VGPU_HAVE_DEVICE_PLUGIN
    device_plugin_stop(); /* first: its Allocate takes the registry lock */
#endif
    registry_shutdown();
    if (kw) kube_watch_stop(kw);
    for (int i = 0; i < nl; i++) {
        if (ls[i].server)
            http_listener_stop(&ls[i]); /* closes the listening socket */
        else if (ls[i].fd >= 0)
            close(ls[i].fd);
    }
    tick_stop();
    node_publish_close();
    for (int i = 0; i < 2; i++)
        if (ls[i].fd >= 0) unlink(ls[i].path);
    registry_free_all();
    nvml_monitor_stop();
}

/* What the configuration asks and this build or the policy table cannot give: 0, or -1
 * (said on stderr). */
static int check_build(const struct hv_config *cfg, const struct sched_policy **policy)
{
#ifndef VGPU_HAVE_DEVICE_PLUGIN
    if (cfg->device_plugin_dir[0]) {
        fprintf(stderr, "vgpu-hypervisor: --device-plugin-dir: the device plugin is not built in "
                        "(it needs libgrpc-dev, libprotobuf-c-dev and protobuf-c-compiler)\n");
        return -1;
    }
#endif
    *policy = sched_policy_find(cfg->policy);
    if (!*policy) {
        fprintf(stderr, "vgpu-hypervisor: --policy: unknown policy '%s'\n", cfg->policy);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static struct hv_config cfg;
    char err[512];
    int r = hv_config_load(&cfg, argc, argv, err, sizeof(err));
    if (r) {
        if (r < 0) fprintf(stderr, "vgpu-hypervisor: %s\n", err);
        return r < 0 ? 2 : 0;
    }
    hv_log_set_level(cfg.log_level);
    const struct sched_policy *policy;
    if (check_build(&cfg, &policy)) return 2;
    sigset_t sigs; /* every thread created from here on inherits the blocked set */
    process_setup(&sigs);

    registry_init(&cfg);
    if (state_load(cfg.state, err, sizeof(err))) { /* never without the operator's settings */
        fprintf(stderr, "vgpu-hypervisor: %s\n", err);
        return 2;
    }
    nvml_monitor_start();
    /* the daemon's directory: it makes every pod's files there itself (pod_files.h) */
    if (pod_files_init(cfg.shm_dir, err, sizeof(err)) != 0) {
        fprintf(stderr, "vgpu-hypervisor: %s\n", err);
        nvml_monitor_stop();
        return 2;
    }
    node_publish_open(pod_files_node_dir());
    /* with a Kubernetes watch, a worker's pod is known by its UID: registrations wait for it */
    int want_kube = cfg.kube_api[0] || getenv("KUBERNETES_SERVICE_HOST");
    hv_reg.kube_on = want_kube;

    struct hv_listener ls[3] = {{.kind = HV_LISTEN_OPERATOR, .fd = -1},
                                {.kind = HV_LISTEN_WORKER, .fd = -1},
                                {.kind = HV_LISTEN_TCP, .fd = -1}};
    int nl = cfg.listen[0] ? 3 : 2, rc = 1;
    int ok = start_listeners(&cfg, ls, nl) == 0;
    struct kube_watch *kw = NULL;
    if (ok && tick_start(policy, cfg.tick_ms, cfg.heartbeat_ms, cfg.shared_correction)) ok = 0;
    if (ok && want_kube) kw = start_kube(&cfg);
#ifdef VGPU_HAVE_DEVICE_PLUGIN
    /* the kubelet's view of this node's GPUs: after NVML and the pods' directory, which it uses */
    if (ok && cfg.device_plugin_dir[0] && device_plugin_start(&cfg, err, sizeof(err))) {
        hv_logf(HV_ERROR, "device plugin not started", "{s:s}", "error", err);
        ok = 0;
    }
#endif
    if (ok) {
        hv_logf(HV_INFO, "vgpu-hypervisor started", "{s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:s}",
                "version", VGPU_VERSION, "socket", cfg.socket, "worker_socket", cfg.worker_socket,
                "listen", cfg.listen, "shm_dir", cfg.shm_dir, "state", cfg.state, "tick_ms",
                cfg.tick_ms, "policy", policy->name);
        wait_for_stop(&sigs);
        rc = 0;
    }
    stop_all(kw, ls, nl);
    hv_logf(HV_INFO, "stopped", "{s:i}", "exit_code", rc);
    return rc;
}
