/* test_hv_proto.c - the limiter's daemon client reads what docs/hypervisor.md says the daemon
 * sends: JSON replies (nested, escaped, malformed ones refused) and HTTP/1.1 replies delimited
 * by Content-Length, chunked encoding or the end of the connection, in any fragmentation; and
 * its requests keep their deadlines against a server that never answers or hangs up. */
#define _GNU_SOURCE
#include <locale.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "../../src/common/shm_region.h"
#include "../../src/limiter/hv_http.h"
#include "../../src/limiter/hv_json.h"
#include "unit_case.h"

UNIT_CASE(json_replies_read_and_wrong_types_refused)
{
    const char *reg =
        "{\"worker_id\": \"w-17\", \"host_pid\": 4242, \"pod\": \"ns/name\", \"seq\": 5,\n"
        " \"suspended\": false, \"heartbeat_ms\": 1000, \"note\": {\"a\": [1, {\"b\": null}]},\n"
        " \"limits\": [{\"uuid\": \"GPU-5e1a\\u0030\", \"index\": 0, \"mem_limit\": "
        "18446744073709551615,\n"
        "   \"core_limit\": 30.5, \"core_effective\": 2.5e1, \"soft\": true, \"weight\": 3},\n"
        "  {\"index\": 1, \"mem_limit\": 0}]}";
    CHECK(hv_json_valid(reg));
    char s[64];
    uint64_t u;
    double d;
    int b;
    CHECK(hv_json_string(hv_json_get(reg, "worker_id"), s, sizeof(s)) == 0);
    CHECK_STR(s, "w-17");
    CHECK(hv_json_u64(hv_json_get(reg, "seq"), &u) == 0 && u == 5);
    CHECK(hv_json_bool(hv_json_get(reg, "suspended"), &b) == 0 && b == 0);
    CHECK(hv_json_get(reg, "missing") == NULL);
    CHECK(hv_json_get(reg, "a") == NULL); /* members of nested objects are not the top's */
    const char *it = hv_json_get(reg, "limits"), *e;
    e = hv_json_next(&it);
    CHECK(e != NULL);
    CHECK(hv_json_string(hv_json_get(e, "uuid"), s, sizeof(s)) == 0);
    CHECK_STR(s, "GPU-5e1a0");
    CHECK(hv_json_u64(hv_json_get(e, "mem_limit"), &u) == 0 && u == UINT64_MAX);
    CHECK(hv_json_double(hv_json_get(e, "core_limit"), &d) == 0 && d == 30.5);
    CHECK(hv_json_double(hv_json_get(e, "core_effective"), &d) == 0 && d == 25.0);
    CHECK(hv_json_bool(hv_json_get(e, "soft"), &b) == 0 && b == 1);
    e = hv_json_next(&it);
    CHECK(e != NULL);
    CHECK(hv_json_u64(hv_json_get(e, "index"), &u) == 0 && u == 1);
    CHECK(hv_json_next(&it) == NULL);
    CHECK(hv_json_next(&it) == NULL);
    /* wrong types and ranges are refused, not guessed */
    CHECK(hv_json_u64("-1", &u) != 0);
    CHECK(hv_json_u64("18446744073709551616", &u) != 0);
    CHECK(hv_json_u64("1.5", &u) != 0);
    CHECK(hv_json_u64("4e9", &u) == 0 && u == 4000000000ull);
    CHECK(hv_json_u64("\"5\"", &u) != 0);
    CHECK(hv_json_bool("1", &b) != 0);
    CHECK(hv_json_string("12", s, sizeof(s)) != 0);
    CHECK(hv_json_string("\"0123456789\"", s, 5) != 0); /* too long for the buffer */
    CHECK(hv_json_string("\"\\u00e9\\ud83d\\ude00\"", s, sizeof(s)) == 0);
    CHECK_STR(s, "\xc3\xa9\xf0\x9f\x98\x80");
    CHECK(hv_json_next(&(const char *){"{\"a\": 1}"}) == NULL);
    /* malformed documents */
    const char *bad[] = {"",
                         "{",
                         "{\"a\" 1}",
                         "{\"a\": 1,}",
                         "[1 2]",
                         "{\"a\": 01}",
                         "{\"a\": tru}",
                         "{\"a\": \"x\ny\"}",
                         "{\"a\": \"\\q\"}",
                         "{\"a\": 1} x",
                         "{\"a\": \"\\ud800\"}",
                         "{\"a\": -}",
                         "{\"a\": 1.}",
                         "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (hv_json_valid(bad[i])) {
            fprintf(stderr, "accepted malformed JSON: %s\n", bad[i]);
            CHECK(0);
        }
    CHECK(hv_json_valid(" [ ] "));
    CHECK(hv_json_valid("{\"a\": [], \"b\": {}, \"c\": -0.5E-3}"));
    /* numbers do not depend on the application's locale */
    setlocale(LC_NUMERIC, "de_DE.UTF-8");
    CHECK(hv_json_double("12.75", &d) == 0 && d == 12.75);
    setlocale(LC_NUMERIC, "C");
    /* escaping */
    char out[64];
    size_t n = 0;
    CHECK(hv_json_put_string(out, sizeof(out), &n, "a\"b\\c\n") == 0);
    CHECK_STR(out, "\"a\\\"b\\\\c\\u000a\"");
    n = 0;
    CHECK(hv_json_put_string(out, 6, &n, "abcdefgh") == -1);
    CHECK(strlen(out) < 6);
}

/* parse `text` fed in pieces of `step` bytes; returns the parse result at the end */
static int parse_in_steps(const char *text, size_t step, int eof, int *status, char *body_out,
                          size_t cap)
{
    size_t len = strlen(text);
    char *buf = malloc(len + 1);
    int r = 0;
    for (size_t have = step < len ? step : len;; have = have + step < len ? have + step : len) {
        memcpy(buf, text, have);
        char *body;
        size_t bl;
        r = hv_http_parse(buf, have, eof && have == len, status, &body, &bl);
        if (r != 0 && have < len) {
            fprintf(stderr, "complete or broken after %zu of %zu bytes (%d): %s\n", have, len, r,
                    text);
            r = -2;
            break;
        }
        if (have == len) {
            if (r == 1) {
                snprintf(body_out, cap, "%s", body);
                if (bl != strlen(body)) r = -3;
            }
            break;
        }
    }
    free(buf);
    return r;
}

UNIT_CASE(http_replies_framed_in_any_fragmentation)
{
    int st;
    char body[256];
    const char *cl = "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\ncontent-length: "
                     "13\r\n\r\n{\"seq\": 1234}";
    const char *ch = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "5\r\n{\"com\r\nA;ext=1\r\nmands\": []\r\n1\r\n}\r\n0\r\nX-Trailer: y\r\n\r\n";
    const char *eofd = "HTTP/1.0 200 OK\r\nConnection: close\r\n\r\nok";
    for (size_t step = 1; step <= 40; step += 13) {
        CHECK_EQ_INT(parse_in_steps(cl, step, 0, &st, body, sizeof(body)), 1);
        CHECK_EQ_INT(st, 201);
        CHECK_STR(body, "{\"seq\": 1234}");
        CHECK_EQ_INT(parse_in_steps(ch, step, 0, &st, body, sizeof(body)), 1);
        CHECK_EQ_INT(st, 200);
        CHECK_STR(body, "{\"commands\": []}");
    }
    CHECK_EQ_INT(parse_in_steps(eofd, 3, 1, &st, body, sizeof(body)), 1);
    CHECK_STR(body, "ok");
    CHECK_EQ_INT(parse_in_steps("HTTP/1.1 204 No Content\r\n\r\n", 100, 0, &st, body, sizeof(body)),
                 1);
    CHECK_EQ_INT(st, 204);
    CHECK_STR(body, "");
    /* without a length the reply ends with the connection only */
    char b2[128];
    snprintf(b2, sizeof(b2), "%s", eofd);
    char *bp;
    CHECK_EQ_INT(hv_http_parse(b2, strlen(b2), 0, &st, &bp, NULL), 0);
    /* broken replies */
    const char *bad[] = {
        "HTTP/1.1 2x0 OK\r\n\r\n",
        "SMTP 220\r\n\r\n",
        "HTTP/1.1 100 Continue\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n1",
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n123",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char tmp[256];
        snprintf(tmp, sizeof(tmp), "%s", bad[i]);
        if (hv_http_parse(tmp, strlen(tmp), 0, &st, &bp, NULL) != -1) {
            fprintf(stderr, "accepted a broken reply: %s\n", bad[i]);
            CHECK(0);
        }
    }
    /* truncated by the peer */
    CHECK_EQ_INT(parse_in_steps("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12345", 100, 1, &st,
                                body, sizeof(body)),
                 -1);
    CHECK_EQ_INT(parse_in_steps("HTTP/1.1 200 OK\r\nContent-Le", 100, 1, &st, body, sizeof(body)),
                 -1);
}

/* a one-shot server on a Unix socket: mode 0 answers in pieces, 1 never answers, 2 hangs up */
struct server {
    int lfd, mode;
    char request[4096];
};

static void *serve(void *arg)
{
    struct server *sv = arg;
    int fd = accept(sv->lfd, NULL, NULL);
    if (fd < 0) return NULL;
    if (sv->mode == 2) {
        close(fd);
        return NULL;
    }
    ssize_t n = 0, r;
    while (!strstr(sv->request, "\r\n\r\n{}") &&
           (r = read(fd, sv->request + n, sizeof(sv->request) - 1 - (size_t)n)) > 0)
        n += r;
    if (sv->mode == 0) {
        const char *parts[] = {"HTTP/1.1 200 OK\r\nTransfer-", "Encoding: chunked\r\n\r\n5\r\n{\"s",
                               "eq\r\n6\r\n\": 42}\r\n0\r\n\r\n"};
        for (int i = 0; i < 3; i++) {
            if (write(fd, parts[i], strlen(parts[i])) < 0) break;
            usleep(20000);
        }
    } else {
        usleep(500000);
    }
    close(fd);
    return NULL;
}

UNIT_CASE(requests_keep_deadlines_on_a_real_socket)
{
    signal(SIGPIPE, SIG_DFL); /* a write to a closed peer must not kill us: MSG_NOSIGNAL */
    struct hv_endpoint ep = {.is_unix = 1};
    snprintf(ep.path, sizeof(ep.path), "/tmp/vgpu-test-hv-%d.sock", (int)getpid());
    for (int mode = 0; mode < 3; mode++) {
        struct server sv = {.mode = mode};
        sv.lfd = socket(AF_UNIX, SOCK_STREAM, 0);
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        snprintf(a.sun_path, sizeof(a.sun_path), "%s", ep.path);
        unlink(ep.path);
        CHECK(bind(sv.lfd, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(sv.lfd, 4) == 0);
        pthread_t t;
        pthread_create(&t, NULL, serve, &sv);
        char buf[1024], err[200], *body = NULL;
        int st = 0;
        uint64_t t0 = vgpu_now_ns();
        int r = hv_http_request(&ep, "POST", "/v1/workers/w-1/heartbeat", "{}", t0 + 200000000ull,
                                buf, sizeof(buf), &st, &body, err, sizeof(err));
        uint64_t ms = (vgpu_now_ns() - t0) / 1000000;
        if (mode == 0) {
            if (r != 0) fprintf(stderr, "request failed: %s\n", err);
            CHECK_EQ_INT(r, 0);
            CHECK_EQ_INT(st, 200);
            CHECK_STR(body, "{\"seq\": 42}");
            CHECK(strstr(sv.request, "POST /v1/workers/w-1/heartbeat HTTP/1.1\r\n") == sv.request);
            CHECK(strstr(sv.request, "Content-Length: 2\r\n") != NULL);
        } else {
            CHECK_EQ_INT(r, -1);
            if (mode == 1) CHECK(ms >= 190 && ms < 400); /* the deadline, not the server, ends it */
        }
        pthread_join(t, NULL);
        close(sv.lfd);
    }
    unlink(ep.path);
    /* no socket: nothing listens (-2), said at once */
    char buf[256], err[200], *body;
    int st;
    uint64_t t0 = vgpu_now_ns();
    CHECK_EQ_INT(hv_http_request(&ep, "GET", "/healthz", NULL, t0 + 1000000000ull, buf, sizeof(buf),
                                 &st, &body, err, sizeof(err)),
                 -2);
    CHECK((vgpu_now_ns() - t0) < 100000000ull);
    CHECK(strstr(err, "connect") != NULL);

    /* a socket nobody listens on (a daemon that died): refused, -2 */
    int lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", ep.path);
    CHECK(bind(lfd, (struct sockaddr *)&a, sizeof(a)) == 0);
    CHECK_EQ_INT(hv_http_request(&ep, "GET", "/healthz", NULL, vgpu_now_ns() + 1000000000ull, buf,
                                 sizeof(buf), &st, &body, err, sizeof(err)),
                 -2);

    /* a listener whose backlog is full (a daemon busy with a burst): -1, worth another try */
    CHECK(listen(lfd, 0) == 0);
    int fill[64], nfill = 0;
    while (nfill < 64) {
        int c = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
        if (connect(c, (struct sockaddr *)&a, sizeof(a)) != 0) {
            close(c);
            break;
        }
        fill[nfill++] = c;
    }
    CHECK(nfill < 64);
    CHECK_EQ_INT(hv_http_request(&ep, "GET", "/healthz", NULL, vgpu_now_ns() + 200000000ull, buf,
                                 sizeof(buf), &st, &body, err, sizeof(err)),
                 -1);
    while (nfill > 0)
        close(fill[--nfill]);
    close(lfd);
    unlink(ep.path);
}
