/* http_server.c - the listeners' connections: admission per group of peers, request deadlines.
 *
 * Why this exists: see http_server.h. How:
 *  - libmicrohttpd runs without a listening socket (MHD_USE_NO_LISTEN_SOCKET); one thread per
 *    listener accepts, tells the peer's group, counts, and hands the socket over with
 *    MHD_add_connection or answers 503 itself. The same thread is the listener's watchdog: it
 *    shutdown()s a connection whose request is overdue, which makes libmicrohttpd close it.
 *  - Each admitted connection has a record (struct hs_conn). Until libmicrohttpd reports it
 *    started it is on the server's pending list, found by its fd; then it is the connection's
 *    socket context, on the active list, until libmicrohttpd reports it closed.
 * Invariants (all under `mu`):
 *  - a record counts in its group, its pool and the stats from admission until it is freed;
 *  - an active record's fd is the connection's socket: libmicrohttpd reports a connection closed
 *    (NOTIFY_CLOSED takes `mu`) before it closes the socket, so the watchdog may shutdown() it;
 *  - a pending record whose fd no longer names its socket (fstat: another inode, or none) was
 *    dropped by libmicrohttpd without a report, and is freed.
 * The deadline of a request: the first one must be complete request_timeout_ms after the
 * connection was accepted; a later one (keep-alive) must be complete request_timeout_ms after
 * its request line came, and that line must come within the idle timeout plus
 * request_timeout_ms of the previous reply (bytes trickling in keep libmicrohttpd's idle timer
 * alive, never this deadline). "Complete" is the handler's final call, or a reply queued
 * before the body came (413). From then on the reply may take as long as it needs; because a
 * handler may block (a long-poll up to 60 s), the idle timer restarts when the handler returns.
 */
#define _GNU_SOURCE
#include "http_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hv_log.h"
#include "peer_group.h"
#include "shm_region.h"

/* An idle keep-alive connection is closed after this long; the command channel's replies
 * never leave a connection this quiet (event stream keepalives every 10 s, and the idle timer
 * restarts after a long-poll's handler returns). */
#define HS_IDLE_TIMEOUT_S 30u
/* A connection's buffer for the request line, headers and what is read of the body at a time
 * (bodies are collected by http_api.c, capped at HV_MAX_BODY). libmicrohttpd takes a buffer
 * over 32 KiB with mmap and gives it back with munmap when the connection closes; with a
 * thread per long poll in the process each munmap interrupts every CPU to flush its TLB, which
 * was a third of the daemon's CPU with 64 workers (bench/daemon_cpu.sh). 32 KiB comes from
 * malloc. Headers past it are answered with 431. */
#define HS_CONN_MEMORY (32u * 1024u)
/* Request threads' stacks: a handler's frames are small (gcc -fstack-usage: none on a request's
 * path above 9 KiB; jansson and stdio add a few KiB). AddressSanitizer's frames are larger. */
#if defined(__SANITIZE_ADDRESS__)
#define HS_STACK_SIZE ((size_t)1024 * 1024)
#else
#define HS_STACK_SIZE ((size_t)256 * 1024)
#endif
/* libmicrohttpd forgets a connection just after reporting it closed; its own limit sits this
 * far above ours so that it never refuses what we admitted. */
#define HS_MHD_SLACK 64u
#define HS_SCAN_MS 250u           /* watchdog precision */
#define HS_PENDING_CHECK_MS 2000u /* a record not started by then is checked against its fd */
#define HS_ACCEPT_BATCH 64        /* accepts between two looks at the deadlines */
#define HS_WARN_EVERY_MS 10000u
#define HS_KEY_LEN PEER_GROUP_KEY_LEN
#define HS_BUCKETS 1024

enum { POOL_OPERATOR, POOL_PODS };

struct hs_group {
    struct hs_group *next;
    uint64_t hash;
    unsigned open;
    char key[HS_KEY_LEN];
};

struct http_server;

struct hs_conn {
    struct hs_conn *prev, *next; /* on its server's pending or active list */
    struct http_server *srv;
    struct hs_group *group; /* NULL on the operator socket */
    int fd;
    dev_t dev;
    ino_t ino;
    int cut;           /* shut down by the watchdog */
    unsigned requests; /* requests begun (request line seen) */
    unsigned calls;    /* handler calls for the current request */
    uint64_t handed_ms;
    uint64_t deadline_ms; /* the current request is due by then; 0 = none (replying) */
};

struct http_server {
    struct hv_listener *l;
    struct http_server_limits lim;
    struct http_server_routes routes;
    struct MHD_Daemon *mhd;
    pthread_t thread;
    int wake; /* eventfd: stop */
    int pool;
    struct hs_conn *pending, *active;
    uint64_t next_scan_ms;
    /* rate-limited warnings (accept thread only) */
    uint64_t refused_warn_ms, cut_warn_ms, accept_warn_ms;
    unsigned long long refused_seen, cut_seen;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct hs_group *groups[HS_BUCKETS];
static unsigned pool_open[2];
static struct http_server_stats stats;

static const char *const kind_name[] = {"operator", "worker", "tcp"};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* --- groups --------------------------------------------------------------------------------- */

/* mu held. NULL when out of memory. */
static struct hs_group *group_get(const char *key)
{
    uint64_t h = vgpu_fnv1a64(key, strlen(key));
    struct hs_group **b = &groups[h % HS_BUCKETS];
    for (struct hs_group *g = *b; g; g = g->next)
        if (g->hash == h && !strcmp(g->key, key)) return g;
    struct hs_group *g = calloc(1, sizeof(*g));
    if (!g) return NULL;
    g->hash = h;
    snprintf(g->key, sizeof(g->key), "%s", key);
    g->next = *b;
    *b = g;
    return g;
}

/* mu held: free g once nothing counts in it. */
static void group_maybe_free(struct hs_group *g)
{
    if (g->open) return;
    for (struct hs_group **p = &groups[g->hash % HS_BUCKETS]; *p; p = &(*p)->next)
        if (*p == g) {
            *p = g->next;
            break;
        }
    free(g);
}

/* --- connection records (mu held) ---------------------------------------------------------- */

static void list_add(struct hs_conn **head, struct hs_conn *k)
{
    k->prev = NULL;
    k->next = *head;
    if (*head) (*head)->prev = k;
    *head = k;
}

static void list_del(struct hs_conn **head, struct hs_conn *k)
{
    if (k->prev)
        k->prev->next = k->next;
    else
        *head = k->next;
    if (k->next) k->next->prev = k->prev;
    k->prev = k->next = NULL;
}

/* Uncount and free a record that is on no list. */
static void conn_free(struct hs_conn *k)
{
    struct http_server *s = k->srv;
    pool_open[s->pool]--;
    stats.open[s->l->kind]--;
    if (k->group) {
        k->group->open--;
        group_maybe_free(k->group);
    }
    free(k);
}

/* The record libmicrohttpd keeps as the connection's socket context (NULL if none). */
static struct hs_conn *conn_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

/* --- libmicrohttpd callbacks ---------------------------------------------------------------- */

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    struct http_server *s = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        int fd = ci ? ci->connect_fd : -1;
        struct hs_conn *k;
        pthread_mutex_lock(&mu);
        for (k = s->pending; k && k->fd != fd; k = k->next)
            ;
        if (k) {
            list_del(&s->pending, k);
            list_add(&s->active, k);
        }
        pthread_mutex_unlock(&mu);
        *socket_context = k;
        if (!k)
            hv_logf(HV_WARN, "connection without an admission record (no deadline)", "{s:s, s:i}",
                    "listener", kind_name[s->l->kind], "fd", fd);
        return;
    }
    struct hs_conn *k = *socket_context;
    if (!k) return;
    *socket_context = NULL;
    pthread_mutex_lock(&mu);
    list_del(&s->active, k);
    conn_free(k);
    pthread_mutex_unlock(&mu);
}

/* A request line has come: a request begins. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
    struct http_server *s = cls;
    (void)uri;
    struct hs_conn *k = conn_of(c);
    if (k) {
        pthread_mutex_lock(&mu);
        k->calls = 0;
        /* the first request keeps its deadline from the connection's start */
        if (k->requests++) k->deadline_ms = now_ms() + s->lim.request_timeout_ms;
        pthread_mutex_unlock(&mu);
    }
    return NULL; /* the handler's per-request context starts empty */
}

static void restart_idle_timer(struct MHD_Connection *c)
{
    /* libmicrohttpd restarts the timer when a timeout is set on a connection that has none */
    MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT, 0u);
    MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT, HS_IDLE_TIMEOUT_S);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **ctx)
{
    struct http_server *s = cls;
    struct hs_conn *k = conn_of(c);
    int complete = 0;
    if (k) {
        pthread_mutex_lock(&mu);
        /* the first call has the headers, the last one (nothing uploaded) the whole body */
        complete = k->calls++ > 0 && !*upload_size;
        if (complete) k->deadline_ms = 0;
        pthread_mutex_unlock(&mu);
    }
    enum MHD_Result ret =
        s->routes.request(s->l, c, url, method, version, upload, upload_size, ctx);
    if (k && !complete && MHD_get_connection_info(c, MHD_CONNECTION_INFO_HTTP_STATUS)) {
        /* answered before the body came (413): libmicrohttpd discards the rest */
        pthread_mutex_lock(&mu);
        k->deadline_ms = 0;
        pthread_mutex_unlock(&mu);
        complete = 1;
    }
    if (complete) restart_idle_timer(c);
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **ctx,
                         enum MHD_RequestTerminationCode code)
{
    struct http_server *s = cls;
    if (s->routes.completed) s->routes.completed(s->l, c, ctx, code);
    struct hs_conn *k = conn_of(c);
    if (k) {
        pthread_mutex_lock(&mu);
        k->calls = 0;
        k->deadline_ms = now_ms() + (uint64_t)HS_IDLE_TIMEOUT_S * 1000u + s->lim.request_timeout_ms;
        pthread_mutex_unlock(&mu);
    }
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    const struct http_server *s = cls;
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n && msg[n - 1] == '\n')
        msg[--n] = 0;
    /* MHD_add_connection does not say what kind of socket it gets: on a Unix socket
     * libmicrohttpd tries TCP options once per connection, and says so */
    if (s->l->kind != HV_LISTEN_TCP &&
        (!strncmp(msg, "Setting TCP_", 12) || !strncmp(msg, "Failed to push the data", 23)))
        return;
    hv_logf(HV_DEBUG, "libmicrohttpd", "{s:s}", "detail", msg);
}

/* --- admission ------------------------------------------------------------------------------ */

/* Answer 503 without waiting for anything, then close. What the peer has sent so far is read
 * first, so that closing does not reset the connection before the answer is read. */
static void refuse(int fd, const char *why)
{
    char body[320], msg[640], sink[4096];
    int bl = snprintf(body, sizeof(body), "{\"error\": \"connections: %s\"}\n", why);
    int n = snprintf(msg, sizeof(msg),
                     "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                     "Content-Length: %d\r\nConnection: close\r\nRetry-After: 1\r\n\r\n%s",
                     bl, body);
    for (int i = 0; i < 4 && recv(fd, sink, sizeof(sink), MSG_DONTWAIT) > 0; i++)
        ;
    if (n > 0 && (size_t)n < sizeof(msg))
        (void)!send(fd, msg, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
    shutdown(fd, SHUT_WR);
    close(fd);
}

static void warn_refused(struct http_server *s, const char *key, const char *why)
{
    uint64_t now = now_ms();
    if (s->refused_warn_ms && now - s->refused_warn_ms < HS_WARN_EVERY_MS) return;
    pthread_mutex_lock(&mu);
    unsigned long long total = stats.refused[s->l->kind];
    pthread_mutex_unlock(&mu);
    hv_logf(HV_WARN, "connections refused over a cap", "{s:s, s:s, s:s, s:I}", "listener",
            kind_name[s->l->kind], "group", key, "why", why, "refused_since_last_warning",
            (json_int_t)(total - s->refused_seen));
    s->refused_warn_ms = now;
    s->refused_seen = total;
}

static void admit(struct http_server *s, int fd, const struct sockaddr_storage *ss, socklen_t sl)
{
    char key[HS_KEY_LEN] = "", why[200] = "";
    if (s->pool == POOL_PODS) peer_group(s->l->kind, fd, ss, key, sizeof(key));
    struct stat st;
    if (fstat(fd, &st)) {
        close(fd);
        return;
    }
    struct hs_conn *k = calloc(1, sizeof(*k));
    pthread_mutex_lock(&mu);
    /* the kernel gave us this fd, so a pending record still naming it is stale */
    for (struct hs_conn *p = s->pending, *pn; p; p = pn) {
        pn = p->next;
        if (p->fd == fd) {
            list_del(&s->pending, p);
            conn_free(p);
        }
    }
    struct hs_group *g = NULL;
    if (!k)
        snprintf(why, sizeof(why), "the daemon is out of memory");
    else if (pool_open[s->pool] >= s->lim.max_connections)
        snprintf(why, sizeof(why), "%u open connections %s, the most allowed (max_connections)",
                 pool_open[s->pool],
                 s->pool == POOL_PODS ? "from pods (worker socket and TCP together)"
                                      : "on the operator socket");
    else if (s->pool == POOL_PODS && !(g = group_get(key)))
        snprintf(why, sizeof(why), "the daemon is out of memory");
    else if (g && g->open >= s->lim.max_connections_per_pod)
        snprintf(why, sizeof(why),
                 "%u open connections from this %s, the most allowed (max_connections_per_pod)",
                 g->open, s->l->kind == HV_LISTEN_TCP ? "address" : "pod");
    if (why[0]) {
        if (g) group_maybe_free(g); /* it may have been made just now */
        stats.refused[s->l->kind]++;
        pthread_mutex_unlock(&mu);
        free(k);
        refuse(fd, why);
        warn_refused(s, key[0] ? key : "operator", why);
        return;
    }
    k->srv = s;
    k->group = g;
    k->fd = fd;
    k->dev = st.st_dev;
    k->ino = st.st_ino;
    k->handed_ms = now_ms();
    k->deadline_ms = k->handed_ms + s->lim.request_timeout_ms;
    if (g) g->open++;
    pool_open[s->pool]++;
    stats.open[s->l->kind]++;
    list_add(&s->pending, k);
    pthread_mutex_unlock(&mu);
    if (MHD_add_connection(s->mhd, fd, (const struct sockaddr *)ss, sl) != MHD_YES) {
        /* libmicrohttpd has closed the socket; it never reports this one */
        int e = errno;
        pthread_mutex_lock(&mu);
        list_del(&s->pending, k);
        conn_free(k);
        pthread_mutex_unlock(&mu);
        hv_logf(HV_WARN, "libmicrohttpd refused a connection", "{s:s, s:s}", "listener",
                kind_name[s->l->kind], "error", strerror(e));
    }
}

/* --- the watchdog --------------------------------------------------------------------------- */

/* Cut what is overdue, drop stale pending records. Returns ms until it should look again. */
static unsigned scan(struct http_server *s)
{
    uint64_t now = now_ms();
    if (now < s->next_scan_ms) return (unsigned)(s->next_scan_ms - now);
    uint64_t next = now + HS_SCAN_MS;
    unsigned cut = 0;
    pthread_mutex_lock(&mu);
    for (struct hs_conn *k = s->active; k; k = k->next) {
        if (!k->deadline_ms || k->cut) continue;
        if (now >= k->deadline_ms) {
            shutdown(k->fd, SHUT_RDWR); /* libmicrohttpd's thread sees the end and closes */
            k->cut = 1;
            cut++;
        } else if (k->deadline_ms < next) {
            next = k->deadline_ms;
        }
    }
    for (struct hs_conn *k = s->pending, *kn; k; k = kn) {
        kn = k->next;
        struct stat st;
        if (now - k->handed_ms < HS_PENDING_CHECK_MS) continue;
        if (fstat(k->fd, &st) || st.st_dev != k->dev || st.st_ino != k->ino) {
            list_del(&s->pending, k);
            conn_free(k);
        }
    }
    stats.deadline_cut[s->l->kind] += cut;
    unsigned long long total = stats.deadline_cut[s->l->kind];
    pthread_mutex_unlock(&mu);
    s->next_scan_ms = next;
    if (cut && (!s->cut_warn_ms || now - s->cut_warn_ms >= HS_WARN_EVERY_MS)) {
        hv_logf(HV_WARN, "connections cut: request not delivered in time", "{s:s, s:i, s:I}",
                "listener", kind_name[s->l->kind], "request_timeout_ms",
                (int)s->lim.request_timeout_ms, "cut_since_last_warning",
                (json_int_t)(total - s->cut_seen));
        s->cut_warn_ms = now;
        s->cut_seen = total;
    }
    return (unsigned)(next - now);
}

static void *accept_main(void *arg)
{
    struct http_server *s = arg;
    uint64_t pause_until = 0; /* out of descriptors: let some close before accepting again */
    for (;;) {
        unsigned wait = scan(s);
        uint64_t now = now_ms();
        int paused = now < pause_until;
        if (paused && pause_until - now < wait) wait = (unsigned)(pause_until - now);
        struct pollfd p[2] = {{.fd = s->wake, .events = POLLIN},
                              {.fd = s->l->fd, .events = POLLIN}};
        int r = poll(p, paused ? 1 : 2, (int)wait);
        if (r < 0 && errno != EINTR) {
            hv_logf(HV_ERROR, "poll on the listening socket failed", "{s:s, s:s}", "listener",
                    kind_name[s->l->kind], "error", strerror(errno));
            pause_until = now_ms() + 100;
            continue;
        }
        if (r > 0 && p[0].revents) break;
        if (r <= 0 || paused || !p[1].revents) continue;
        for (int i = 0; i < HS_ACCEPT_BATCH; i++) {
            struct sockaddr_storage ss;
            socklen_t sl = sizeof(ss);
            int fd = accept4(s->l->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd >= 0) {
                admit(s, fd, &ss, sl);
                continue;
            }
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                pause_until = now_ms() + 100;
                if (!s->accept_warn_ms || now - s->accept_warn_ms >= HS_WARN_EVERY_MS) {
                    hv_logf(HV_WARN, "cannot accept connections", "{s:s, s:s}", "listener",
                            kind_name[s->l->kind], "error", strerror(errno));
                    s->accept_warn_ms = now;
                }
            }
            break; /* EAGAIN: all taken */
        }
    }
    return NULL;
}

/* --- listeners ------------------------------------------------------------------------------ */

int http_listener_start(struct hv_listener *l, const struct http_server_limits *lim,
                        const struct http_server_routes *routes)
{
    struct http_server *s = calloc(1, sizeof(*s));
    const char *where = l->path[0] ? l->path : "tcp";
    if (!s) goto fail;
    s->l = l;
    s->lim = *lim;
    s->routes = *routes;
    s->pool = l->kind == HV_LISTEN_OPERATOR ? POOL_OPERATOR : POOL_PODS;
    s->wake = eventfd(0, EFD_CLOEXEC);
    int fl = fcntl(l->fd, F_GETFL);
    if (s->wake < 0 || fl < 0 || fcntl(l->fd, F_SETFL, fl | O_NONBLOCK)) goto fail;
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_POLL | MHD_USE_ERROR_LOG | MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ITC;
    s->mhd = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log,
        s, /* first: libmicrohttpd logs the options that follow */
        MHD_OPTION_CONNECTION_LIMIT, lim->max_connections + HS_MHD_SLACK,
        MHD_OPTION_CONNECTION_TIMEOUT, HS_IDLE_TIMEOUT_S, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)HS_CONN_MEMORY, MHD_OPTION_THREAD_STACK_SIZE, HS_STACK_SIZE,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_NOTIFY_CONNECTION, on_connection,
        s, MHD_OPTION_URI_LOG_CALLBACK, on_uri, s, MHD_OPTION_END);
    if (!s->mhd) goto fail;
    int e = pthread_create(&s->thread, NULL, accept_main, s);
    if (e) {
        MHD_stop_daemon(s->mhd);
        errno = e;
        goto fail;
    }
    l->server = s;
    return 0;
fail:
    hv_logf(HV_ERROR, "cannot start the HTTP server", "{s:s, s:s}", "socket", where, "error",
            strerror(errno));
    if (s && s->wake >= 0) close(s->wake);
    free(s);
    return -1;
}

void http_listener_stop(struct hv_listener *l)
{
    struct http_server *s = l->server;
    if (!s) return;
    uint64_t one = 1;
    (void)!write(s->wake, &one, sizeof(one));
    pthread_join(s->thread, NULL);
    MHD_stop_daemon(s->mhd); /* reports every started connection closed */
    pthread_mutex_lock(&mu);
    while (s->pending) { /* handed over, never started: libmicrohttpd closed them silently */
        struct hs_conn *k = s->pending;
        list_del(&s->pending, k);
        conn_free(k);
    }
    pthread_mutex_unlock(&mu);
    close(s->wake);
    close(l->fd);
    free(s);
    l->server = NULL;
}

void http_server_stats(struct http_server_stats *out)
{
    pthread_mutex_lock(&mu);
    *out = stats;
    pthread_mutex_unlock(&mu);
}
