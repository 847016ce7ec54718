/* fuzz_hv_json.c - libFuzzer harness for the limiter's JSON reader of the node daemon's replies
 * (src/limiter/hv_json.c). A daemon (or anything listening on its socket) can send any bytes.
 *
 * For a text hv_json_valid accepts, the harness walks it the way the limiter's client does:
 * the members the client reads (worker_id, seq, limits, commands, ...) and the first member of
 * every object, array elements with hv_json_next, and every typed read. Invariants: walking a
 * valid document never reports it malformed (hv_json_next does not end with NULL); an object's
 * first key is found by hv_json_get; a u64 is also a double of the same value; a string read
 * into a small buffer fails rather than truncates, and re-encoded with hv_json_put_string it
 * reads back the same. Independently, any input string survives put_string + hv_json_string.
 */
#include <math.h>

#include "fuzz_util.h"
#include "hv_json.h"

static const char *keys[] = {
    "worker_id",      "host_pid", "pod",  "seq",   "suspended", "heartbeat_ms", "limits",
    "commands",       "type",     "uuid", "index", "mem_limit", "core_limit",   "core_soft",
    "core_effective", "weight",   "soft", "error", "acked_seq"};

static int known_key(const char *k)
{
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (!strcmp(keys[i], k)) return 1;
    return 0;
}

static const char *ws(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    return p;
}

static void check_string_roundtrip(const char *s)
{
    size_t n = strlen(s), cap = 6 * n + 3, len = 0;
    char *enc = malloc(cap), *back = malloc(n + 1);
    if (!enc || !back) abort();
    FUZZ_CHECK(hv_json_put_string(enc, cap, &len, s) == 0 && len < cap && enc[len] == 0,
               "put_string into %zu bytes", cap);
    FUZZ_CHECK(hv_json_valid(enc), "put_string wrote invalid JSON: %s", enc);
    FUZZ_CHECK(hv_json_string(enc, back, n + 1) == 0 && !strcmp(back, s),
               "put_string/string round trip");
    /* too small a buffer: refused, still terminated inside it */
    size_t small = (n % 7) + 1, l2 = 0;
    int r = hv_json_put_string(enc, small, &l2, s);
    FUZZ_CHECK(l2 < small && enc[l2] == 0, "put_string into %zu bytes wrote %zu", small, l2);
    FUZZ_CHECK(r == 0 || r == -1, "put_string returned %d", r);
    free(enc);
    free(back);
}

static void typed_reads(const char *v)
{
    uint64_t u;
    double d;
    int b;
    char small[8], big[4096];
    if (hv_json_u64(v, &u) == 0) {
        FUZZ_CHECK(*ws(v) != '-', "u64 of a negative number");
        FUZZ_CHECK(hv_json_double(v, &d) == 0 && d >= 0, "a u64 that is not a double");
        FUZZ_CHECK(fabs(d - (double)u) <= 1e-9 * (double)u + 0.5, "u64 %llu vs double %.17g",
                   (unsigned long long)u, d);
    }
    if (hv_json_double(v, &d) == 0) FUZZ_CHECK(!isnan(d), "NaN from a number");
    if (hv_json_bool(v, &b) == 0) FUZZ_CHECK(b == 0 || b == 1, "bool %d", b);
    (void)hv_json_is_null(v);
    int rs = hv_json_string(v, small, sizeof(small));
    int rb = hv_json_string(v, big, sizeof(big));
    FUZZ_CHECK(rs != 0 || (rb == 0 && !strcmp(small, big)), "a short read differs");
    if (rs == 0 || rb == 0) FUZZ_CHECK(*ws(v) == '"', "a string that does not start with '\"'");
    if (rb == 0) check_string_roundtrip(big);
}

static void walk(const char *v, int depth)
{
    FUZZ_CHECK(depth <= HV_JSON_MAX_DEPTH + 1, "deeper than HV_JSON_MAX_DEPTH");
    typed_reads(v);
    const char *p = ws(v);
    if (*p == '[') {
        const char *it = p, *e;
        while ((e = hv_json_next(&it)) != NULL)
            walk(e, depth + 1);
        FUZZ_CHECK(it != NULL, "hv_json_next reported a valid array malformed");
    } else if (*p == '{') {
        for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
            const char *m = hv_json_get(p, keys[i]);
            if (m) walk(m, depth + 1);
        }
        /* the first member too, unless a key above reached it already (each value is walked
         * once, or nesting would make the walk exponential) */
        char first[128];
        const char *k = ws(p + 1);
        if (*k == '"' && hv_json_string(k, first, sizeof(first)) == 0 && strlen(first) < 127) {
            const char *m = hv_json_get(p, first);
            FUZZ_CHECK(m, "the first key '%s' is not found", first);
            if (!known_key(first)) walk(m, depth + 1);
        }
        FUZZ_CHECK(hv_json_next(&p) == NULL, "an object iterated as an array");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_cstr(data, size);
    if (hv_json_valid(text)) {
        walk(text, 0);
    } else {
        /* typed reads stop at a NUL whatever they are given */
        typed_reads(text);
    }
    check_string_roundtrip(text);
    free(text);
    return 0;
}
