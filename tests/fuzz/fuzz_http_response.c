/* fuzz_http_response.c - libFuzzer harness for the limiter's HTTP reply parser
 * (hv_http_parse, src/limiter/hv_http.c), which hv_http_recv calls on every growing prefix of
 * what the socket delivered. The peer may send any bytes.
 *
 * Invariants: a complete reply has a status 200-999 and a NUL-terminated body inside the
 * buffer (none for 204/304); at the end of the stream the parser always decides (never "need
 * more", which would make hv_http_recv spin); a reply complete before the end of the stream
 * is the same at its end. And the outcome does not depend on how the bytes arrive: if a prefix
 * is already malformed the whole is too, and if a prefix is already a complete reply the whole
 * gives the same reply.
 */
#include "fuzz_util.h"
#include "hv_http.h"

#define MAX_HEADER 16384 /* hv_http.c: a header that has not ended by then is refused */

struct reply {
    int r, status;
    size_t len;
    char *body;
};

static struct reply parse(const uint8_t *data, size_t len, int eof)
{
    struct reply out = {0};
    char *buf = malloc(len + 1); /* the contract: room for exactly one more byte */
    if (!buf) abort();
    memcpy(buf, data, len);
    int status = -1;
    char *body = NULL;
    size_t blen = (size_t)-1;
    out.r = hv_http_parse(buf, len, eof, &status, &body, &blen);
    FUZZ_CHECK(out.r >= -1 && out.r <= 1, "returned %d", out.r);
    if (out.r == 1) {
        FUZZ_CHECK(status >= 200 && status <= 999, "status %d", status);
        FUZZ_CHECK(body >= buf && blen <= len && body + blen <= buf + len, "body outside");
        FUZZ_CHECK(body[blen] == 0, "body not terminated");
        if (status == 204 || status == 304) FUZZ_CHECK(blen == 0, "a body with %d", status);
        out.status = status;
        out.len = blen;
        out.body = malloc(blen + 1);
        if (!out.body) abort();
        memcpy(out.body, body, blen + 1);
    }
    free(buf);
    return out;
}

static int same(const struct reply *a, const struct reply *b)
{
    return a->r == b->r && a->status == b->status && a->len == b->len &&
           (a->r != 1 || !memcmp(a->body, b->body, a->len));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct reply open = parse(data, size, 0), closed = parse(data, size, 1);
    FUZZ_CHECK(closed.r != 0, "undecided at the end of the stream");
    if (open.r == 1) FUZZ_CHECK(same(&open, &closed), "the end of the stream changed a reply");
    if (open.r == -1) FUZZ_CHECK(closed.r == -1, "malformed only while the stream is open");

    /* prefixes, as the bytes may arrive: every one for short inputs, some for long ones */
    size_t step = size <= 128 ? 1 : size / 61 + 1;
    for (size_t k = 0; k < size; k += step) {
        struct reply pre = parse(data, k, 0);
        if (pre.r == -1 && k <= MAX_HEADER)
            FUZZ_CHECK(open.r == -1, "the first %zu of %zu bytes are malformed, all are not", k,
                       size);
        if (pre.r == 1)
            FUZZ_CHECK(same(&pre, &open), "the first %zu of %zu bytes give another reply", k, size);
        free(pre.body);
    }
    free(open.body);
    free(closed.body);
    return 0;
}
