/* kube_watch.c - list and watch this node's pods on the Kubernetes API server (libcurl,
 * jansson) and report each pod's identity and vgpu.io/ annotations to the daemon.
 *
 * Why this exists: see kube_watch.h. The thread lists the pods of the node, then watches from
 * the list's resourceVersion (newline-delimited JSON events). A watch that ends cleanly is
 * resumed from the last resourceVersion seen (events and bookmarks); "410 Gone" or any error
 * makes it list again, and a relist reports pods that vanished meanwhile as deleted. The
 * bearer token is re-read on every connection (projected tokens rotate). Stopping aborts a
 * transfer from libcurl's progress callback, which runs at least once a second.
 */
#define _GNU_SOURCE
#include "kube_watch.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"
#define MAX_LIST_BODY (256u << 20)
#define MAX_EVENT_LINE (16u << 20)
#define WATCH_TIMEOUT_S 300

struct known_pod {
    char ns[64], name[254], uid[64];
    uint32_t warn_hash; /* which malformed annotations were logged for it already */
    int seen;
};

struct buf {
    char *p;
    size_t len, cap;
};

struct kube_watch {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;                    /* under mu; also read lock-free from the transfer callbacks */
    char *list_url, *watch_base; /* watch_base + rv + tail */
    char *token_file, *ca_file;
    int https;
    kube_pod_cb cb;
    void *cb_arg;
    struct known_pod *known;
    size_t n_known, cap_known;
    char rv[256];
};

_Static_assert(sizeof(((struct kube_watch *)0)->rv) == sizeof(((struct kube_event *)0)->rv),
               "a resourceVersion is copied whole between kube_event and kube_watch");

/* What one watch transfer ended with. */
enum watch_end { WATCH_CLOSED, WATCH_GONE, WATCH_ERROR };

struct watch_ctx {
    struct kube_watch *w;
    CURL *curl;
    struct buf line;
    struct buf errbody;
    long status;
    int events;
    int gone, failed;
};

static void logmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logmsg(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fprintf(stderr, "vgpu-hypervisor: kube: %s\n", msg);
}

static int stopping(struct kube_watch *w)
{
    return __atomic_load_n(&w->stop, __ATOMIC_ACQUIRE);
}

static int buf_add(struct buf *b, const char *p, size_t n, size_t max)
{
    if (b->len + n + 1 > max) return -1;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np) return -1;
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = 0;
    return 0;
}

/* ---- pods ---- */

static uint32_t fnv1a(uint32_t h, const char *s)
{
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static struct known_pod *known_find(struct kube_watch *w, const char *uid)
{
    for (size_t i = 0; i < w->n_known; i++)
        if (strcmp(w->known[i].uid, uid) == 0) return &w->known[i];
    return NULL;
}

static struct known_pod *known_add(struct kube_watch *w, const struct kube_pod *p)
{
    struct known_pod *k = known_find(w, p->uid);
    if (k) return k;
    if (w->n_known == w->cap_known) {
        size_t cap = w->cap_known ? w->cap_known * 2 : 64;
        struct known_pod *nk = realloc(w->known, cap * sizeof(*nk));
        if (!nk) return NULL;
        w->known = nk;
        w->cap_known = cap;
    }
    k = &w->known[w->n_known++];
    memset(k, 0, sizeof(*k));
    snprintf(k->ns, sizeof(k->ns), "%s", p->ns);
    snprintf(k->name, sizeof(k->name), "%s", p->name);
    snprintf(k->uid, sizeof(k->uid), "%s", p->uid);
    return k;
}

static void known_remove(struct kube_watch *w, const char *uid)
{
    struct known_pod *k = known_find(w, uid);
    if (!k) return;
    *k = w->known[--w->n_known];
}

static void log_lines(const char *text)
{
    char copy[2048];
    snprintf(copy, sizeof(copy), "%s", text);
    char *save = NULL;
    for (char *ln = strtok_r(copy, "\n", &save); ln; ln = strtok_r(NULL, "\n", &save))
        logmsg("%s", ln);
}

/* Report a pod that exists (list item, ADDED, MODIFIED) or is gone (DELETED); ok and msg as
 * kube_pod_parse returned them. */
static void report(struct kube_watch *w, int ok, const struct kube_pod *p, const char *msg)
{
    if (!ok) {
        log_lines(msg);
        return;
    }
    if (p->deleted) {
        struct kube_pod d = {0};
        memcpy(d.ns, p->ns, sizeof(d.ns));
        memcpy(d.name, p->name, sizeof(d.name));
        memcpy(d.uid, p->uid, sizeof(d.uid));
        d.deleted = 1;
        known_remove(w, p->uid);
        w->cb(&d, w->cb_arg);
        return;
    }
    struct known_pod *k = known_find(w, p->uid);
    uint32_t h = msg[0] ? fnv1a(2166136261u, msg) : 0;
    /* one log line per malformed annotation, once per distinct value */
    if (msg[0] && (!k || k->warn_hash != h)) log_lines(msg);
    if (!k) k = known_add(w, p);
    if (k) {
        k->warn_hash = h;
        k->seen = 1;
    }
    w->cb(p, w->cb_arg);
}

static void report_item(void *arg, int ok, const struct kube_pod *pod, const char *msg)
{
    report(arg, ok, pod, msg);
}

/* ---- HTTP ---- */

static int progress_cb(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    return stopping(arg) ? 1 : 0;
}

static struct curl_slist *auth_headers(struct kube_watch *w)
{
    struct curl_slist *h = curl_slist_append(NULL, "Accept: application/json");
    FILE *f = fopen(w->token_file, "r");
    if (!f) return h; /* no token: anonymous (e.g. a local proxy) */
    char token[8192];
    size_t n = fread(token, 1, sizeof(token) - 1, f);
    fclose(f);
    token[n] = 0;
    while (n && (token[n - 1] == '\n' || token[n - 1] == '\r' || token[n - 1] == ' '))
        token[--n] = 0;
    if (n) {
        char line[8300];
        snprintf(line, sizeof(line), "Authorization: Bearer %s", token);
        struct curl_slist *h2 = curl_slist_append(h, line);
        if (h2) h = h2;
    }
    return h;
}

static CURL *new_transfer(struct kube_watch *w, const char *url, struct curl_slist *hdrs)
{
    CURL *c = curl_easy_init();
    if (!c) return NULL;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, progress_cb);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, w);
    curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
    if (w->https && w->ca_file) curl_easy_setopt(c, CURLOPT_CAINFO, w->ca_file);
    return c;
}

static size_t list_write(char *p, size_t sz, size_t n, void *arg)
{
    return buf_add(arg, p, sz * n, MAX_LIST_BODY) == 0 ? sz * n : 0;
}

static const char *status_message(const char *body)
{
    static __thread char msg[300];
    json_t *j = body ? json_loads(body, 0, NULL) : NULL;
    const char *m = json_string_value(json_object_get(j, "message"));
    snprintf(msg, sizeof(msg), "%s", m ? m : body ? body : "");
    json_decref(j);
    return msg;
}

/* List the node's pods, report them, report known pods that are gone, keep the list's
 * resourceVersion. 0 or -1. */
static int do_list(struct kube_watch *w)
{
    struct buf body = {0};
    struct curl_slist *hdrs = auth_headers(w);
    CURL *c = new_transfer(w, w->list_url, hdrs);
    int rc = -1;
    if (!c) goto out;
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, list_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
    CURLcode cr = curl_easy_perform(c);
    if (stopping(w)) goto out;
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (cr != CURLE_OK) {
        logmsg("listing pods at %s failed: %s", w->list_url, curl_easy_strerror(cr));
        goto out;
    }
    if (status != 200) {
        logmsg("listing pods at %s: HTTP %ld %s", w->list_url, status, status_message(body.p));
        goto out;
    }
    char rv[sizeof(w->rv)], msg[300];
    for (size_t i = 0; i < w->n_known; i++)
        w->known[i].seen = 0;
    if (kube_list_parse(body.p, body.len, report_item, w, rv, sizeof(rv), msg, sizeof(msg)) != 0) {
        logmsg("listing pods: %s", msg);
        goto out;
    }
    /* pods that went away while we were not watching */
    for (size_t k = 0; k < w->n_known;) {
        if (w->known[k].seen) {
            k++;
            continue;
        }
        struct kube_pod d = {0};
        memcpy(d.ns, w->known[k].ns, sizeof(d.ns));
        memcpy(d.name, w->known[k].name, sizeof(d.name));
        memcpy(d.uid, w->known[k].uid, sizeof(d.uid));
        d.deleted = 1;
        w->known[k] = w->known[--w->n_known];
        w->cb(&d, w->cb_arg);
    }
    memcpy(w->rv, rv, sizeof(w->rv));
    rc = 0;
out:
    if (c) curl_easy_cleanup(c);
    curl_slist_free_all(hdrs);
    free(body.p);
    return rc;
}

static void watch_event(struct watch_ctx *x, const char *line, size_t len)
{
    struct kube_watch *w = x->w;
    struct kube_event ev;
    if (kube_event_parse(line, len, &ev) != 0) {
        logmsg("%s", ev.msg);
        return;
    }
    x->events++;
    switch (ev.type) {
    case KUBE_EV_ADDED:
    case KUBE_EV_MODIFIED:
    case KUBE_EV_DELETED:
        report(w, ev.pod_ok, &ev.pod, ev.msg);
        if (ev.rv[0]) memcpy(w->rv, ev.rv, sizeof(w->rv));
        break;
    case KUBE_EV_BOOKMARK:
        if (ev.rv[0]) memcpy(w->rv, ev.rv, sizeof(w->rv));
        break;
    case KUBE_EV_ERROR:
        if (ev.code == 410) {
            x->gone = 1;
        } else {
            logmsg("%s", ev.msg);
            x->failed = 1;
        }
        break;
    case KUBE_EV_OTHER:
        break;
    }
}

static size_t watch_write(char *p, size_t sz, size_t n, void *arg)
{
    struct watch_ctx *x = arg;
    size_t total = sz * n;
    if (stopping(x->w)) return 0;
    if (x->status == 0) curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &x->status);
    if (x->status != 200) { /* a Status object: keep some of it for the message */
        buf_add(&x->errbody, p, total < 4096 ? total : 4096, 8192);
        return total;
    }
    for (size_t i = 0; i < total; i++) {
        if (p[i] != '\n') continue;
        if (buf_add(&x->line, p, i, MAX_EVENT_LINE) != 0) return 0;
        if (x->line.len) watch_event(x, x->line.p, x->line.len);
        x->line.len = 0;
        p += i + 1;
        total -= i + 1;
        i = (size_t)-1;
        if (x->gone || x->failed) return 0; /* end this watch */
    }
    if (buf_add(&x->line, p, total, MAX_EVENT_LINE) != 0) {
        logmsg("watch event over %u bytes", MAX_EVENT_LINE);
        x->failed = 1;
        return 0;
    }
    return sz * n;
}

static enum watch_end do_watch(struct kube_watch *w, int *events)
{
    char *rv = curl_easy_escape(NULL, w->rv, 0);
    size_t len = strlen(w->watch_base) + (rv ? strlen(rv) : 0) + 64;
    char *url = malloc(len);
    struct curl_slist *hdrs = auth_headers(w);
    struct watch_ctx x = {.w = w};
    enum watch_end end = WATCH_ERROR;
    if (!url || !rv) goto out;
    snprintf(url, len, "%s%s&allowWatchBookmarks=true&timeoutSeconds=%d", w->watch_base, rv,
             WATCH_TIMEOUT_S);
    x.curl = new_transfer(w, url, hdrs);
    if (!x.curl) goto out;
    curl_easy_setopt(x.curl, CURLOPT_WRITEFUNCTION, watch_write);
    curl_easy_setopt(x.curl, CURLOPT_WRITEDATA, &x);
    CURLcode cr = curl_easy_perform(x.curl);
    if (stopping(w)) goto out;
    if (x.status == 0) curl_easy_getinfo(x.curl, CURLINFO_RESPONSE_CODE, &x.status);
    if (x.gone || x.status == 410) {
        end = WATCH_GONE;
    } else if (x.failed) {
        end = WATCH_ERROR;
    } else if (x.status != 200 && x.status != 0) {
        logmsg("watching pods: HTTP %ld %s", x.status, status_message(x.errbody.p));
    } else if (cr != CURLE_OK) {
        logmsg("watching pods: %s", curl_easy_strerror(cr));
    } else {
        if (x.line.len) watch_event(&x, x.line.p, x.line.len); /* last line without newline */
        end = x.gone ? WATCH_GONE : x.failed ? WATCH_ERROR : WATCH_CLOSED;
    }
out:
    *events = x.events;
    if (x.curl) curl_easy_cleanup(x.curl);
    curl_slist_free_all(hdrs);
    curl_free(rv);
    free(url);
    free(x.line.p);
    free(x.errbody.p);
    return end;
}

/* ---- thread ---- */

/* Sleep up to `sec` seconds unless stopped; returns 1 when stopping. */
static int pause_for(struct kube_watch *w, int sec)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += sec;
    pthread_mutex_lock(&w->mu);
    while (!w->stop && pthread_cond_timedwait(&w->cv, &w->mu, &until) != ETIMEDOUT) {
    }
    int s = w->stop;
    pthread_mutex_unlock(&w->mu);
    return s;
}

static void *watch_thread(void *arg)
{
    struct kube_watch *w = arg;
    int backoff = 1, need_list = 1;
    while (!stopping(w)) {
        if (need_list) {
            if (do_list(w) != 0) {
                if (pause_for(w, backoff)) break;
                backoff = backoff * 2 > 30 ? 30 : backoff * 2;
                continue;
            }
            need_list = 0;
        }
        time_t t0 = time(NULL);
        int events = 0;
        enum watch_end end = do_watch(w, &events);
        if (stopping(w)) break;
        if (end == WATCH_GONE) { /* our resourceVersion is too old: list again now */
            need_list = 1;
            continue;
        }
        if (end == WATCH_CLOSED && (events > 0 || time(NULL) - t0 >= 5)) {
            backoff = 1; /* normal end (server timeout): resume from the last version */
            continue;
        }
        /* an error, or a stream that closes at once without news: back off */
        if (end == WATCH_ERROR) need_list = 1;
        if (pause_for(w, backoff)) break;
        backoff = backoff * 2 > 30 ? 30 : backoff * 2;
    }
    return NULL;
}

static void free_watch(struct kube_watch *w)
{
    free(w->list_url);
    free(w->watch_base);
    free(w->token_file);
    free(w->ca_file);
    free(w->known);
    free(w);
}

/* The API server's base URL (no trailing '/'): opts->api_url, or in a cluster the service's
 * address. 0, or -1 with a message in err. */
static int api_address(const struct kube_watch_opts *opts, char *api, size_t n, char *err,
                       size_t errlen)
{
    if (opts->api_url && *opts->api_url) {
        snprintf(api, n, "%s", opts->api_url);
    } else {
        const char *host = getenv("KUBERNETES_SERVICE_HOST");
        const char *port = getenv("KUBERNETES_SERVICE_PORT");
        if (!host || !*host) {
            snprintf(err, errlen,
                     "kube watch: no API server address (set kube_api, or run in a cluster "
                     "with KUBERNETES_SERVICE_HOST)");
            return -1;
        }
        int v6 = strchr(host, ':') != NULL;
        snprintf(api, n, "https://%s%s%s:%s", v6 ? "[" : "", host, v6 ? "]" : "",
                 port && *port ? port : "443");
    }
    size_t alen = strlen(api);
    while (alen && api[alen - 1] == '/')
        api[--alen] = 0;
    if (strncmp(api, "http://", 7) != 0 && strncmp(api, "https://", 8) != 0) {
        snprintf(err, errlen, "kube watch: API address '%s' is not an http:// or https:// URL",
                 api);
        return -1;
    }
    return 0;
}

struct kube_watch *kube_watch_start(const struct kube_watch_opts *opts, kube_pod_cb cb, void *arg,
                                    char *err, size_t errlen)
{
    struct kube_watch_opts none = {0};
    if (!opts) opts = &none;
    if (!cb) {
        snprintf(err, errlen, "kube watch: no callback");
        return NULL;
    }
    char api[512];
    if (api_address(opts, api, sizeof(api), err, errlen)) return NULL;
    const char *node = opts->node_name && *opts->node_name ? opts->node_name : getenv("NODE_NAME");
    if (!node || !*node) {
        snprintf(err, errlen, "kube watch: no node name (set node_name or NODE_NAME)");
        return NULL;
    }

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(err, errlen, "kube watch: libcurl initialisation failed");
        return NULL;
    }
    struct kube_watch *w = calloc(1, sizeof(*w));
    char *enode = curl_easy_escape(NULL, node, 0);
    if (!w || !enode) goto nomem;
    w->cb = cb;
    w->cb_arg = arg;
    w->https = strncmp(api, "https://", 8) == 0;
    if (asprintf(&w->list_url, "%s/api/v1/pods?fieldSelector=spec.nodeName%%3D%s", api, enode) <
        0) {
        w->list_url = NULL;
        goto nomem;
    }
    if (asprintf(&w->watch_base, "%s&watch=1&resourceVersion=", w->list_url) < 0) {
        w->watch_base = NULL;
        goto nomem;
    }
    w->token_file = strdup(opts->token_file ? opts->token_file : SA_DIR "/token");
    if (!w->token_file) goto nomem;
    if (opts->ca_file) {
        w->ca_file = strdup(opts->ca_file);
        if (!w->ca_file) goto nomem;
    } else if (access(SA_DIR "/ca.crt", R_OK) == 0) {
        w->ca_file = strdup(SA_DIR "/ca.crt");
        if (!w->ca_file) goto nomem;
    }
    curl_free(enode);
    enode = NULL;
    pthread_mutex_init(&w->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cv, &ca);
    pthread_condattr_destroy(&ca);
    int e = pthread_create(&w->thread, NULL, watch_thread, w);
    if (e != 0) {
        snprintf(err, errlen, "kube watch: cannot start a thread: %s", strerror(e));
        pthread_cond_destroy(&w->cv);
        pthread_mutex_destroy(&w->mu);
        free_watch(w);
        curl_global_cleanup();
        return NULL;
    }
    return w;
nomem:
    snprintf(err, errlen, "kube watch: out of memory");
    curl_free(enode);
    if (w) free_watch(w);
    curl_global_cleanup();
    return NULL;
}

void kube_watch_stop(struct kube_watch *w)
{
    if (!w) return;
    pthread_mutex_lock(&w->mu);
    __atomic_store_n(&w->stop, 1, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free_watch(w);
    curl_global_cleanup();
}
