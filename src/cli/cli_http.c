/* cli_http.c - one HTTP request to vgpu-hypervisor over its operator Unix socket (libcurl).
 *
 * Why this exists: every command is one request; this file owns the transport, including
 * turning "no daemon" into a reason an operator understands (the connect errno, e.g. "No such
 * file or directory" or "Connection refused", rather than libcurl's generic message).
 */
#define _GNU_SOURCE
#include "cli.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_BODY (64u << 20)

struct sink {
    char *p;
    size_t len, cap;
    int too_big;
};

static size_t on_data(char *p, size_t sz, size_t n, void *arg)
{
    struct sink *s = arg;
    size_t add = sz * n;
    if (s->len + add + 1 > MAX_BODY) {
        s->too_big = 1;
        return 0;
    }
    if (s->len + add + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 8192;
        while (cap < s->len + add + 1)
            cap *= 2;
        char *np = realloc(s->p, cap);
        if (!np) return 0;
        s->p = np;
        s->cap = cap;
    }
    memcpy(s->p + s->len, p, add);
    s->len += add;
    s->p[s->len] = 0;
    return add;
}

/* Why connecting failed, in the words of connect(2). */
static void connect_reason(const char *path, const char *fallback, char *err, size_t errlen)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path)) {
        snprintf(err, errlen, "socket path longer than %zu bytes", sizeof(sa.sun_path) - 1);
        return;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "%s", fallback);
        return;
    }
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        snprintf(err, errlen, "%s", strerror(errno));
    else
        snprintf(err, errlen, "%s", fallback); /* it listens now, but did not answer before */
    close(fd);
}

int cli_request(const char *socket_path, const char *method, const char *path, const char *body,
                struct cli_response *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (curl_global_init(CURL_GLOBAL_NOTHING) != CURLE_OK) {
        snprintf(err, errlen, "libcurl initialisation failed");
        return -1;
    }
    CURL *c = curl_easy_init();
    if (!c) {
        snprintf(err, errlen, "libcurl initialisation failed");
        curl_global_cleanup();
        return -1;
    }
    char url[4096];
    snprintf(url, sizeof(url), "http://localhost%s", path);
    char curl_err[CURL_ERROR_SIZE] = "";
    struct sink s = {0};
    struct curl_slist *hdrs = NULL;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, socket_path);
    curl_easy_setopt(c, CURLOPT_PROXY, ""); /* a local socket: never through http_proxy */
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 5L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, curl_err);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
    if (body) {
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    } else if (strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, 0L);
    }
    CURLcode rc = curl_easy_perform(c);
    int ret = 0;
    if (rc != CURLE_OK) {
        const char *why = curl_err[0] ? curl_err : curl_easy_strerror(rc);
        if (s.too_big)
            snprintf(err, errlen, "answer larger than %u MiB", MAX_BODY >> 20);
        else if (rc == CURLE_COULDNT_CONNECT)
            connect_reason(socket_path, why, err, errlen);
        else
            snprintf(err, errlen, "%s", why);
        free(s.p);
        ret = -1;
    } else {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
        out->body = s.p ? s.p : strdup("");
        out->len = s.len;
        if (!out->body) {
            snprintf(err, errlen, "out of memory");
            ret = -1;
        }
    }
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
    curl_global_cleanup();
    return ret;
}

void cli_response_free(struct cli_response *r)
{
    free(r->body);
    r->body = NULL;
    r->len = 0;
}
