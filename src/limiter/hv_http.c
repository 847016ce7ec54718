/* hv_http.c - HTTP/1.1 over a Unix or TCP socket with deadlines (see hv_http.h). */
#define _GNU_SOURCE
#include "hv_http.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "../common/shm_region.h"

#define MAX_HEADER 16384
#define MAX_REQUEST 16384

/* milliseconds left until deadline, rounded up; 0 when past */
static int ms_left(uint64_t deadline_ns)
{
    uint64_t now = vgpu_now_ns();
    if (now >= deadline_ns) return 0;
    uint64_t ms = (deadline_ns - now + 999999) / 1000000;
    return ms > 60000 ? 60000 : (int)ms;
}

/* 1 ready, 0 deadline, -1 error */
static int wait_for(int fd, short events, uint64_t deadline_ns)
{
    for (;;) {
        struct pollfd p = {.fd = fd, .events = events};
        int ms = ms_left(deadline_ns);
        int r = poll(&p, 1, ms);
        if (r > 0) return (p.revents & (events | POLLHUP | POLLERR)) ? 1 : -1;
        if (r == 0) {
            if (!ms || vgpu_now_ns() >= deadline_ns) return 0;
            continue;
        }
        if (errno != EINTR) return -1;
    }
}

/* connect(2) errors that say no daemon is there to answer, as opposed to a busy one (EAGAIN: a
 * Unix socket's backlog is full) or a slow network */
static int nothing_listens(int e)
{
    return e == ENOENT || e == ECONNREFUSED || e == ENOTDIR || e == EACCES || e == EPERM ||
           e == ENETUNREACH || e == EHOSTUNREACH;
}

/* the connected socket; -1, or -2 when nothing listens (see hv_http_send) */
static int connect_to(const struct hv_endpoint *ep, uint64_t deadline_ns, char *err, size_t errlen)
{
    union {
        struct sockaddr sa;
        struct sockaddr_un un;
        struct sockaddr_in in4;
        struct sockaddr_in6 in6;
    } a;
    socklen_t alen;
    memset(&a, 0, sizeof(a));
    int family;
    if (ep->is_unix) {
        size_t n = strlen(ep->path);
        if (!n || n >= sizeof(a.un.sun_path)) {
            snprintf(err, errlen, "bad socket path '%s'", ep->path);
            return -1;
        }
        family = a.un.sun_family = AF_UNIX;
        memcpy(a.un.sun_path, ep->path, n);
        if (ep->path[0] == '@') {
            a.un.sun_path[0] = 0; /* abstract name: no terminating NUL counted */
            alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
        } else {
            alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
        }
    } else if (inet_pton(AF_INET, ep->ip, &a.in4.sin_addr) == 1) {
        family = a.in4.sin_family = AF_INET;
        a.in4.sin_port = htons((uint16_t)ep->port);
        alen = sizeof(a.in4);
    } else if (inet_pton(AF_INET6, ep->ip, &a.in6.sin6_addr) == 1) {
        family = a.in6.sin6_family = AF_INET6;
        a.in6.sin6_port = htons((uint16_t)ep->port);
        alen = sizeof(a.in6);
    } else {
        snprintf(err, errlen, "bad address '%s'", ep->ip);
        return -1;
    }
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    if (connect(fd, &a.sa, alen) != 0) {
        if (errno != EINPROGRESS && errno != EINTR) {
            int e = errno;
            snprintf(err, errlen, "connect: %s", strerror(e));
            close(fd);
            return nothing_listens(e) ? -2 : -1;
        }
        int r = wait_for(fd, POLLOUT, deadline_ns), soerr = 0;
        socklen_t sl = sizeof(soerr);
        if (r <= 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr) {
            snprintf(err, errlen, "connect: %s",
                     r == 0 ? "timed out" : strerror(soerr ? soerr : errno));
            close(fd);
            return r > 0 && nothing_listens(soerr) ? -2 : -1;
        }
    }
    return fd;
}

int hv_http_send(const struct hv_endpoint *ep, const char *method, const char *path,
                 const char *body, uint64_t deadline_ns, char *err, size_t errlen)
{
    char req[MAX_REQUEST];
    size_t blen = body ? strlen(body) : 0;
    int n;
    if (body)
        n = snprintf(
            req, sizeof(req),
            "%s %s HTTP/1.1\r\nHost: vgpu-hypervisor\r\nUser-Agent: vgpu-limiter\r\n"
            "Accept: application/json\r\nConnection: close\r\nContent-Type: application/json\r\n"
            "Content-Length: %zu\r\n\r\n%s",
            method, path, blen, body);
    else
        n = snprintf(req, sizeof(req),
                     "%s %s HTTP/1.1\r\nHost: vgpu-hypervisor\r\nUser-Agent: vgpu-limiter\r\n"
                     "Accept: application/json\r\nConnection: close\r\n\r\n",
                     method, path);
    if (n < 0 || (size_t)n >= sizeof(req)) {
        snprintf(err, errlen, "request too large");
        return -1;
    }
    int fd = connect_to(ep, deadline_ns, err, errlen);
    if (fd < 0) return fd;
    size_t off = 0;
    while (off < (size_t)n) {
        ssize_t w = send(fd, req + off, (size_t)n - off, MSG_NOSIGNAL);
        if (w > 0) {
            off += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) &&
            wait_for(fd, POLLOUT, deadline_ns) == 1)
            continue;
        snprintf(err, errlen, "send: %s", w < 0 ? strerror(errno) : "nothing sent");
        close(fd);
        return -1;
    }
    return fd;
}

int hv_http_wait(int fd, uint64_t deadline_ns)
{
    return wait_for(fd, POLLIN, deadline_ns);
}

/* Chunked body at b[0..n): 1 complete (*out_len: de-chunked size; moved in place when write),
 * 0 incomplete, -1 malformed. */
static int dechunk(char *b, size_t n, int write, size_t *out_len)
{
    size_t r = 0, w = 0;
    for (;;) {
        size_t i = r;
        uint64_t sz = 0;
        int digits = 0;
        while (i < n && isxdigit((unsigned char)b[i])) {
            char c = (char)tolower((unsigned char)b[i]);
            sz = sz * 16 + (uint64_t)(c <= '9' ? c - '0' : c - 'a' + 10);
            if (++digits > 12) return -1;
            i++;
        }
        if (i >= n) return 0;
        if (!digits) return -1;
        while (i < n && b[i] != '\r') { /* chunk extensions */
            if (b[i] == '\n') return -1;
            i++;
        }
        if (i + 1 >= n) return 0;
        if (b[i + 1] != '\n') return -1;
        i += 2;
        if (sz == 0) {
            for (;;) { /* trailers, then an empty line */
                if (i + 1 >= n) return 0;
                if (b[i] == '\r' && b[i + 1] == '\n') {
                    *out_len = w;
                    return 1;
                }
                char *e = memmem(b + i, n - i, "\r\n", 2);
                if (!e) return 0;
                i = (size_t)(e - b) + 2;
            }
        }
        if (n - i < sz + 2) return 0;
        if (b[i + sz] != '\r' || b[i + sz + 1] != '\n') return -1;
        if (write) memmove(b + w, b + i, sz);
        w += sz;
        r = i + sz + 2;
    }
}

int hv_http_parse(char *buf, size_t len, int eof, int *status, char **body, size_t *body_len)
{
    char *end = memmem(buf, len, "\r\n\r\n", 4);
    if (!end) return eof || len > MAX_HEADER ? -1 : 0;
    if (len < 12 || strncmp(buf, "HTTP/1.", 7) != 0 || buf[8] != ' ' ||
        !isdigit((unsigned char)buf[9]) || !isdigit((unsigned char)buf[10]) ||
        !isdigit((unsigned char)buf[11]) || (buf[12] != ' ' && buf[12] != '\r'))
        return -1;
    int st = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
    if (st < 200) return -1; /* no interim replies: we never send Expect */
    int chunked = 0;
    int64_t clen = -1;
    char *line = (char *)memchr(buf, '\n', (size_t)(end + 2 - buf)) + 1; /* end + 1 is a '\n' */
    while (line < end + 2) {
        char *eol = memmem(line, (size_t)(end + 2 - line), "\r\n", 2);
        if (!eol) break;
        char *colon = memchr(line, ':', (size_t)(eol - line));
        if (colon) {
            size_t nlen = (size_t)(colon - line);
            char *v = colon + 1;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            if (nlen == 14 && strncasecmp(line, "Content-Length", 14) == 0) {
                int64_t x = 0;
                if (v == eol) return -1;
                for (char *p = v; p < eol; p++) {
                    if (*p == ' ' || *p == '\t') break;
                    if (!isdigit((unsigned char)*p) || x > (INT64_MAX - 9) / 10) return -1;
                    x = x * 10 + (*p - '0');
                }
                if (clen >= 0 && clen != x) return -1;
                clen = x;
            } else if (nlen == 17 && strncasecmp(line, "Transfer-Encoding", 17) == 0) {
                for (char *p = v; p + 7 <= eol; p++)
                    if (strncasecmp(p, "chunked", 7) == 0) chunked = 1;
            }
        }
        line = eol + 2;
    }
    char *b = end + 4;
    size_t avail = len - (size_t)(b - buf), blen;
    if (st == 204 || st == 304) {
        blen = 0;
    } else if (chunked) {
        int r = dechunk(b, avail, 0, &blen);
        if (r <= 0) return r < 0 || eof ? -1 : 0;
        dechunk(b, avail, 1, &blen);
    } else if (clen >= 0) {
        if (avail < (uint64_t)clen) return eof ? -1 : 0;
        blen = (size_t)clen;
    } else {
        if (!eof) return 0;
        blen = avail;
    }
    b[blen] = 0;
    *status = st;
    *body = b;
    if (body_len) *body_len = blen;
    return 1;
}

int hv_http_recv(int fd, uint64_t deadline_ns, char *buf, size_t cap, int *status, char **body,
                 char *err, size_t errlen)
{
    size_t len = 0;
    int eof = 0;
    for (;;) {
        if (len || eof) {
            int r = hv_http_parse(buf, len, eof, status, body, NULL);
            if (r == 1) return 0;
            if (r < 0) {
                snprintf(err, errlen, "%s",
                         eof && len == 0 ? "connection closed without a reply" : "malformed reply");
                return -1;
            }
        }
        if (len + 1 >= cap) {
            snprintf(err, errlen, "reply larger than %zu bytes", cap);
            return -1;
        }
        ssize_t n = recv(fd, buf + len, cap - 1 - len, 0);
        if (n > 0) {
            len += (size_t)n;
            continue;
        }
        if (n == 0) {
            eof = 1;
            continue;
        }
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            snprintf(err, errlen, "recv: %s", strerror(errno));
            return -1;
        }
        int w = wait_for(fd, POLLIN, deadline_ns);
        if (w <= 0) {
            snprintf(err, errlen, "%s", w == 0 ? "timed out waiting for the reply" : "poll failed");
            return -1;
        }
    }
}

int hv_http_request(const struct hv_endpoint *ep, const char *method, const char *path,
                    const char *body, uint64_t deadline_ns, char *buf, size_t cap, int *status,
                    char **body_out, char *err, size_t errlen)
{
    int fd = hv_http_send(ep, method, path, body, deadline_ns, err, errlen);
    if (fd < 0) return fd;
    int r = hv_http_recv(fd, deadline_ns, buf, cap, status, body_out, err, errlen);
    close(fd);
    return r;
}
