/* hv_client.c - registration with the node daemon, its command channel, and how commands land in
 * the pod's region (see hv_client.h and docs/hypervisor.md, "Limiter behaviour"). */
#define _GNU_SOURCE
#include "hv_client.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../common/shm_ledger.h"
#include "../common/shm_region.h"
#include "compute_gate.h"
#include "devices.h"
#include "real_driver.h"
#include "hv_http.h"
#include "hv_json.h"
#include "hv_limits.h"
#include "limiter.h"
#include "log.h"
#include "fork_hooks.h"

#define RESP_CAP (256u * 1024u)
#define LONGPOLL_S 25
#define MS 1000000ull
#define START_WAIT_MS 5000 /* the first registration, when the daemon is there (vgpu_hv_start) */

static struct {
    pthread_mutex_t mu;   /* worker_id; held across I/O only by the first registration */
    _Atomic int started;  /* this process ran its first registration */
    _Atomic int stopping; /* exit: the thread ends, no new requests */
    _Atomic int lp_fd;    /* the long-poll connection (closed in a forked child) */
    struct hv_endpoint ep;
    char worker_id[64]; /* empty: not registered */
    uint64_t seq;       /* highest command applied (thread, or the first registration) */
    unsigned heartbeat_ms;
    int ndev; /* GPUs this process sees (bound at the first registration) */
    char uuid[VGPU_MAX_DEVICES][VGPU_UUID_LEN]; /* their UUIDs ("" unknown) */
    int ever;                                   /* a registration succeeded once in this process */
} hv = {.mu = PTHREAD_MUTEX_INITIALIZER, .lp_fd = -1, .heartbeat_ms = 1000};
/* held through the first registration: other threads' cuInit wait for its outcome */
static pthread_mutex_t start_mu = PTHREAD_MUTEX_INITIALIZER;

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

static int append(char *out, size_t cap, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int append(char *out, size_t cap, size_t *len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out + *len, cap - *len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= cap - *len) return -1;
    *len += (size_t)n;
    return 0;
}

/* the registration body (docs/hypervisor.md, POST /v1/workers) */
static int build_register(char *out, size_t cap)
{
    const struct vgpu_config *cfg = &vgpu_g.cfg;
    size_t n = 0;
    int bad = append(out, cap, &n, "{\"pod_id\": ") | hv_json_put_string(out, cap, &n, cfg->pod_id);
    const char *names[] = {"namespace", "pod", "pod_uid", "container"};
    const char *vals[] = {cfg->pod_namespace, cfg->pod_name, cfg->pod_uid, cfg->container};
    for (int i = 0; i < 4; i++)
        if (vals[i][0])
            bad |= append(out, cap, &n, ", \"%s\": ", names[i]) |
                   hv_json_put_string(out, cap, &n, vals[i]);
    bad |= append(out, cap, &n, ", \"pid\": %d, \"gpus\": [", (int)getpid());
    int first = 1;
    for (int o = 0; o < hv.ndev; o++) {
        const char *uuid = hv.uuid[o];
        if (!uuid[0]) continue;
        uint64_t mem = vgpu_config_mem_limit(cfg, o, uuid, NULL);
        uint32_t hard, soft;
        vgpu_config_core_limit(cfg, o, uuid, &hard, &soft);
        bad |= append(out, cap, &n, "%s{\"index\": %d, \"uuid\": \"%s\", \"env\": {",
                      first ? "" : ", ", o, uuid);
        const char *sep = "";
        /* past int64 is no cap in effect, and more than the daemon's JSON parser takes */
        if (mem != VGPU_UNLIMITED && mem <= (uint64_t)INT64_MAX) {
            bad |= append(out, cap, &n, "\"mem_limit\": %llu", (unsigned long long)mem);
            sep = ", ";
        }
        /* a soft limit is the share under contention: the daemon's soft core_limit */
        uint32_t core = soft ? soft : hard;
        if (core)
            bad |= append(out, cap, &n, "%s\"core_limit\": %u.%02u, \"soft\": %s", sep, core / 100,
                          core % 100, soft ? "true" : "false");
        bad |= append(out, cap, &n, "}}");
        first = 0;
    }
    bad |= append(out, cap, &n, "]}");
    return bad ? -1 : 0;
}

/* worker ids go into URLs: keep them to unreserved characters */
static int id_ok(const char *id)
{
    if (!*id) return 0;
    for (const char *p = id; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_' || *p == '.' || *p == '~'))
            return 0;
    return 1;
}

/* suspension of a process the control region does not hold (private ledger, fail closed) */
static void set_suspended(int on)
{
    if (atomic_exchange(&vgpu_g.local_suspended, (uint32_t)(on != 0)) != (uint32_t)(on != 0))
        VLOG_INFO("node daemon: %s", on ? "suspended: GPU work waits" : "resumed");
}

/* The region the registration reply names: attach it, or hold this process to the reply's
 * limits on its own ledger. 0, or -1 (logged). */
static int use_region(const char *rb, int susp)
{
    char err[200];
    char dir[256] = "", token[64] = "";
    const char *region = hv_json_get(rb, "region");
    if (!region || hv_json_string(hv_json_get(region, "dir"), dir, sizeof(dir)) != 0 ||
        hv_json_string(hv_json_get(region, "token"), token, sizeof(token)) != 0) {
        VLOG_WARN("node daemon: registration reply names no region: %.300s", rb);
        return -1;
    }
    int r = vgpu_attach_managed(dir, token, err, sizeof(err));
    if (r < 0 && atomic_load(&vgpu_g.ctl)) {
        /* our charges are in the region we have; the daemon now names another */
        VLOG_ERROR("node daemon: %s: this process cannot move its charges there and refuses GPU "
                   "work from now on (restart it)",
                   err);
        atomic_store(&vgpu_g.fail_closed, 1);
        return -1;
    }
    if (r == 0) {
        /* the daemon holds the pod through its control region from now on */
        vgpu_devices_rebind_failed();
        set_suspended(0);
    } else {
        /* not reachable from here (not mounted?) or a private ledger already: the daemon's
         * limits hold this process on its own ledger */
        if (r < 0)
            VLOG_WARN("node daemon: cannot use the pod's region (%s): this process is held to "
                      "the pod's limits on its own; mount %s/%s into the container",
                      err, vgpu_g.cfg.shm_dir, dir);
        struct vgpu_shm *s = vgpu_shm_private_now();
        const char *limits = hv_json_get(rb, "limits");
        if (!s || (limits && !hv_json_is_null(limits) &&
                   vgpu_hv_apply_limits(s, limits, err, sizeof(err)) < 0)) {
            VLOG_WARN("node daemon: registration reply: %s", s ? err : "no private ledger");
            return -1;
        }
        vgpu_devices_rebind_failed();
        set_suspended(susp);
    }
    return 0;
}

/* POST /v1/workers; on success the reply's limits and state are in the region. 0; -1 when the
 * daemon is there but did not answer in time or answered 503 (busy, or its pod watch has not
 * seen the pod yet): worth another try soon; -2 when nothing listens or the daemon refused.
 * quiet: 0 logs every failure as a warning; 1 logs those worth another try at debug level only
 * (the caller tries again); 2 logs failures to reach the daemon at debug level only. */
static int register_once(uint64_t deadline, char *buf, size_t cap, int quiet)
{
    char body[8192], err[200];
    int st;
    char *rb;
    if (build_register(body, sizeof(body)) != 0) {
        VLOG_ERROR("node daemon: registration body too large");
        return -2;
    }
    int hr = hv_http_request(&hv.ep, "POST", "/v1/workers", body, deadline, buf, cap, &st, &rb, err,
                             sizeof(err));
    if (hr != 0) {
        if (quiet == 2 || (quiet && hr != -2))
            VLOG_DEBUG("node daemon: cannot register: %s", err);
        else
            VLOG_WARN("node daemon: cannot register: %s", err);
        return hr == -2 ? -2 : -1;
    }
    char id[64] = "";
    uint64_t seq = 0, hb = 1000, host_pid = 0;
    int susp = 0;
    const char *v;
    if (st != 201 && st != 200) {
        if (quiet && st == 503)
            VLOG_DEBUG("node daemon: registration: HTTP 503: %.300s", rb);
        else
            VLOG_WARN("node daemon: registration refused (HTTP %d): %.300s", st, rb);
        return st == 503 ? -1 : -2;
    }
    if (!hv_json_valid(rb) || hv_json_string(hv_json_get(rb, "worker_id"), id, sizeof(id)) != 0 ||
        !id_ok(id) || ((v = hv_json_get(rb, "seq")) && hv_json_u64(v, &seq) != 0) ||
        ((v = hv_json_get(rb, "heartbeat_ms")) && hv_json_u64(v, &hb) != 0) ||
        ((v = hv_json_get(rb, "suspended")) && hv_json_bool(v, &susp) != 0)) {
        VLOG_WARN("node daemon: malformed registration reply: %.300s", rb);
        return -2;
    }
    if ((v = hv_json_get(rb, "host_pid"))) hv_json_u64(v, &host_pid);
    if (host_pid > 0 && host_pid < (1u << 31)) vgpu_set_host_pid((int)host_pid);
    if (use_region(rb, susp) != 0) return -2;
    pthread_mutex_lock(&hv.mu);
    snprintf(hv.worker_id, sizeof(hv.worker_id), "%s", id);
    pthread_mutex_unlock(&hv.mu);
    hv.seq = seq;
    hv.heartbeat_ms = hb < 100 ? 100 : hb > 60000 ? 60000 : (unsigned)hb;
    hv.ever = 1;
    VLOG_INFO("node daemon: registered as worker %s (seq %llu, heartbeat %u ms)", id,
              (unsigned long long)seq, hv.heartbeat_ms);
    return 0;
}

/* No registration yet: the environment's limits hold this process on a private ledger
 * (limiter.c); without any, GPU work waits and memory is refused until the daemon answers. */
static void apply_fallback(void)
{
    const struct vgpu_config *cfg = &vgpu_g.cfg;
    if (cfg->n_mem > 0 || cfg->has_core) {
        VLOG_WARN("node daemon unreachable: the environment's limits apply until it answers");
        return;
    }
    set_suspended(1);
    VLOG_ERROR("node daemon unreachable and no limits in the environment: GPU memory is refused "
               "and GPU work waits until it answers");
}

static void lost(const char *why)
{
    if (atomic_load(&hv.stopping)) return; /* exiting: the daemon was told, nothing is lost */
    VLOG_WARN("node daemon: %s; registering again (the last limits stay in force)", why);
    pthread_mutex_lock(&hv.mu);
    hv.worker_id[0] = 0;
    pthread_mutex_unlock(&hv.mu);
}

static void current_id(char *id, size_t len)
{
    pthread_mutex_lock(&hv.mu);
    snprintf(id, len, "%s", hv.worker_id);
    pthread_mutex_unlock(&hv.mu);
}

/* a short request on the worker's own path; returns the HTTP status, -1 if the daemon is gone */
static int worker_call(const char *method, const char *id, const char *what, const char *body,
                       char *buf, size_t cap, char **rb)
{
    char path[160], err[200];
    int st;
    snprintf(path, sizeof(path), "/v1/workers/%s%s", id, what);
    if (hv_http_request(&hv.ep, method, path, body, vgpu_now_ns() + 1000 * MS, buf, cap, &st, rb,
                        err, sizeof(err)) != 0) {
        VLOG_DEBUG("node daemon: %s %s: %s", method, path, err);
        return -1;
    }
    return st;
}

/* Apply every command newer than hv.seq, in order, then ack the highest. -1: re-register. */
static int run_commands(const char *body, char *buf, size_t cap, const char *id)
{
    /* with the pod's control region, the daemon has already written what a command says */
    struct vgpu_shm *s = atomic_load(&vgpu_g.ctl) ? NULL : atomic_load(&vgpu_g.shm);
    const char *it = hv_json_valid(body) ? hv_json_get(body, "commands") : NULL, *c;
    if (!it) {
        VLOG_WARN("node daemon: malformed commands reply: %.300s", body);
        return 0;
    }
    uint64_t top = 0;
    int ok = 1;
    char err[200] = "";
    while ((c = hv_json_next(&it)) != NULL) {
        uint64_t seq;
        char type[32];
        if (hv_json_u64(hv_json_get(c, "seq"), &seq) != 0 || seq <= hv.seq) continue;
        if (hv_json_string(hv_json_get(c, "type"), type, sizeof(type)) != 0) type[0] = 0;
        int r = 0;
        if (strcmp(type, "suspend") == 0 || strcmp(type, "resume") == 0) {
            if (!atomic_load(&vgpu_g.ctl)) set_suspended(type[0] == 's');
        } else if (strcmp(type, "limits") == 0) {
            const char *l = hv_json_get(c, "limits");
            if (s) r = vgpu_hv_apply_limits(s, l, err, sizeof(err)) < 0 ? -1 : 0;
            if (s && r == 0)
                VLOG_INFO("node daemon: limits of command %llu applied", (unsigned long long)seq);
        } else {
            r = -1;
            snprintf(err, sizeof(err), "unknown command type '%.20s'", type);
        }
        if (r < 0) {
            ok = 0;
            VLOG_WARN("node daemon: command %llu: %s", (unsigned long long)seq, err);
        }
        hv.seq = top = seq;
    }
    if (!top) return 0;
    char ack[512];
    size_t n = 0;
    append(ack, sizeof(ack), &n, "{\"seq\": %llu, \"ok\": %s", (unsigned long long)top,
           ok ? "true" : "false");
    if (!ok) {
        append(ack, sizeof(ack), &n, ", \"error\": ");
        hv_json_put_string(ack, sizeof(ack) - 2, &n, err);
    }
    append(ack, sizeof(ack), &n, "}");
    char *rb;
    int st = worker_call("POST", id, "/ack", ack, buf, cap, &rb);
    return st == 403 || st == 404 ? -1 : 0;
}

/* One long-poll. 0 fine, -1 the daemon lost us. No heartbeats meanwhile: the daemon counts a
 * worker waiting in a long poll as heard from (and refreshes it when the poll returns), and a
 * lost daemon closes the connection. A heartbeat is a connection and a thread in the daemon:
 * 64 workers beating every second were most of its CPU (bench/daemon_cpu.sh). */
static int poll_once(char *buf, size_t cap)
{
    char id[64], path[200], err[200];
    current_id(id, sizeof(id));
    if (!id[0]) return -1;
    snprintf(path, sizeof(path), "/v1/workers/%s/commands?after=%llu&timeout=%d", id,
             (unsigned long long)hv.seq, LONGPOLL_S);
    int fd = hv_http_send(&hv.ep, "GET", path, NULL, vgpu_now_ns() + 1000 * MS, err, sizeof(err));
    if (fd < 0) {
        lost(err);
        return -1;
    }
    atomic_store(&hv.lp_fd, fd);
    uint64_t give_up = vgpu_now_ns() + (LONGPOLL_S + 10) * 1000 * MS;
    int r = 0, st = 0;
    char *body = NULL;
    for (;;) {
        if (atomic_load(&hv.stopping)) {
            r = 1;
            break;
        }
        uint64_t now = vgpu_now_ns();
        if (now >= give_up) {
            snprintf(err, sizeof(err), "no reply to the long poll");
            r = -1;
            break;
        }
        int w = hv_http_wait(fd, give_up);
        if (w == 1) {
            if (hv_http_recv(fd, vgpu_now_ns() + 2000 * MS, buf, cap, &st, &body, err,
                             sizeof(err)) != 0)
                r = -1;
            break;
        }
        if (w < 0) {
            snprintf(err, sizeof(err), "poll failed");
            r = -1;
            break;
        }
    }
    atomic_store(&hv.lp_fd, -1);
    close(fd);
    if (r > 0) return 0;
    if (r < 0) {
        lost(err);
        return -1;
    }
    if (st == 403 || st == 404) {
        snprintf(err, sizeof(err), "the daemon does not know worker %s (HTTP %d)", id, st);
        lost(err);
        return -1;
    }
    if (st != 200) {
        VLOG_WARN("node daemon: commands: HTTP %d: %.200s", st, body);
        sleep_ms(500);
        return 0;
    }
    if (run_commands(body, buf, cap, id) < 0) {
        lost("ack refused");
        return -1;
    }
    return 0;
}

static void *loop(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "vgpu-hv");
    char *buf = malloc(RESP_CAP);
    if (!buf) {
        VLOG_ERROR("node daemon: out of memory: the client thread stops");
        return NULL;
    }
    unsigned backoff = 100;
    while (!atomic_load(&hv.stopping)) {
        char id[64];
        current_id(id, sizeof(id));
        if (!id[0]) {
            int before = hv.ever;
            if (register_once(vgpu_now_ns() + 2000 * MS, buf, RESP_CAP, 2) == 0) {
                if (!before) VLOG_WARN("node daemon answered: its limits apply now");
                backoff = 100;
                continue;
            }
            /* never registered: every second; after losing the daemon: 0.1 s doubling to 2 s */
            sleep_ms(hv.ever ? backoff : 1000);
            if (hv.ever) backoff = backoff * 2 > 2000 ? 2000 : backoff * 2;
            continue;
        }
        poll_once(buf, RESP_CAP);
    }
    free(buf);
    return NULL;
}

/* At exit: the daemon forgets us now rather than after three missed heartbeats; 100 ms at most.
 * The thread may be blocked in its long poll: it is not waited for. */
static void at_exit(void)
{
    atomic_store(&hv.stopping, 1);
    char id[64] = "";
    if (pthread_mutex_trylock(&hv.mu) == 0) {
        snprintf(id, sizeof(id), "%s", hv.worker_id);
        hv.worker_id[0] = 0;
        pthread_mutex_unlock(&hv.mu);
    }
    if (!id[0]) return;
    char path[160], buf[1024], err[160], *rb;
    int st;
    snprintf(path, sizeof(path), "/v1/workers/%s", id);
    hv_http_request(&hv.ep, "DELETE", path, NULL, vgpu_now_ns() + 100 * MS, buf, sizeof(buf), &st,
                    &rb, err, sizeof(err));
}

void vgpu_hv_start(void)
{
    const struct vgpu_config *cfg = &vgpu_g.cfg;
    if (!cfg->hv_on || atomic_load_explicit(&hv.started, memory_order_acquire)) return;
    pthread_mutex_lock(&start_mu);
    if (atomic_load(&hv.started)) {
        pthread_mutex_unlock(&start_mu);
        return;
    }
    hv.ep.is_unix = cfg->hv_socket[0] != 0;
    snprintf(hv.ep.path, sizeof(hv.ep.path), "%s", cfg->hv_socket);
    snprintf(hv.ep.ip, sizeof(hv.ep.ip), "%s", cfg->hv_ip);
    hv.ep.port = cfg->hv_port;
    int count = 0;
    vgpu_helper_fn_cuDeviceGetCount get_count = VGPU_HELPER(cuDeviceGetCount);
    if (!get_count || get_count(&count) != CUDA_SUCCESS) count = 0;
    hv.ndev = count > VGPU_MAX_DEVICES ? VGPU_MAX_DEVICES : count;
    for (int o = 0; o < hv.ndev; o++)
        if (vgpu_device_uuid(o, hv.uuid[o], sizeof(hv.uuid[o])) != 0) hv.uuid[o][0] = 0;

    /* A daemon that is there but busy (many processes starting at once) or not yet sure of the
     * pod (it waits up to 2 s for its pod watch, then answers 503) is given START_WAIT_MS in
     * all; one that is not there at all is not waited for. */
    char *buf = malloc(RESP_CAP);
    uint64_t give_up = vgpu_now_ns() + START_WAIT_MS * MS;
    int r = -2;
    while (buf) {
        int last = vgpu_now_ns() + 200 * MS >= give_up;
        r = register_once(give_up, buf, RESP_CAP, !last);
        if (r != -1) break;
        if (vgpu_now_ns() + 200 * MS >= give_up) {
            if (!last)
                VLOG_WARN("node daemon: cannot register: no answer within %d ms", START_WAIT_MS);
            break;
        }
        sleep_ms(100);
    }
    int ok = r == 0;
    free(buf);
    if (!ok) apply_fallback();
    /* every GPU joins the pod's ledger now (or this process's own with the environment's
     * limits): the daemon sees the process's record from the start */
    for (int o = 0; o < hv.ndev; o++)
        vgpu_bind(o);

    static int exit_hook;
    if (!exit_hook) exit_hook = atexit(at_exit) == 0;
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old); /* the thread starts with every signal blocked */
    pthread_t t;
    if (pthread_create(&t, &a, loop, NULL) != 0)
        VLOG_ERROR("node daemon: cannot start the client thread: commands are not received");
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&a);
    atomic_store_explicit(&hv.started, 1, memory_order_release);
    pthread_mutex_unlock(&start_mu);
}

/* In the child after fork(): no thread, no registration; the next cuInit registers anew. */
static void vgpu_hv_after_fork(void)
{
    pthread_mutex_init(&hv.mu, NULL);
    pthread_mutex_init(&start_mu, NULL);
    int fd = atomic_exchange(&hv.lp_fd, -1);
    if (fd >= 0) close(fd); /* the parent's long poll: not ours to keep open */
    hv.worker_id[0] = 0;
    hv.ever = 0;
    hv.seq = 0;
    atomic_store(&hv.stopping, 0);
    atomic_store(&hv.started, 0);
}

__attribute__((constructor)) static void register_fork(void)
{
    vgpu_fork_register(VGPU_FORK_HV_CLIENT, NULL, NULL, vgpu_hv_after_fork);
}
