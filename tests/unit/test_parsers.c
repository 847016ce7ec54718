/* test_parsers.c - sizes, percentages, booleans and the flat JSON reader accept what users write
 * and refuse everything else with a message. */
#include <math.h>

#include "../../src/limiter/flat_json.h"
#include "../../src/common/size_parse.h"
#include "unit_case.h"

static uint64_t size_ok(const char *s)
{
    uint64_t v = 0;
    char err[256] = "";
    int r = vgpu_parse_size(s, &v, err, sizeof(err));
    if (r != 0) fprintf(stderr, "unexpected error for '%s': %s\n", s, err);
    CHECK(r == 0);
    return v;
}

static void size_bad(const char *s, const char *must_mention)
{
    uint64_t v = 12345;
    char err[256] = "";
    CHECK(vgpu_parse_size(s, &v, err, sizeof(err)) == -1);
    CHECK(v == 12345);
    if (must_mention && !strstr(err, must_mention)) {
        fprintf(stderr, "error for '%s' does not mention '%s': %s\n", s, must_mention, err);
        CHECK(0);
    }
}

struct seen {
    int n;
    char keys[8][64], vals[8][64];
    enum vgpu_json_kind kinds[8];
};

static int collect(void *ctx, const char *key, const char *value, enum vgpu_json_kind kind,
                   char *err, size_t errlen)
{
    struct seen *s = ctx;
    (void)err;
    (void)errlen;
    snprintf(s->keys[s->n], 64, "%s", key);
    snprintf(s->vals[s->n], 64, "%s", value);
    s->kinds[s->n++] = kind;
    return 0;
}

static int json_bad(const char *text)
{
    struct seen s = {0};
    char err[256] = "";
    int r = vgpu_parse_flat_json(text, collect, &s, err, sizeof(err));
    if (r == 0) fprintf(stderr, "accepted bad JSON: %s\n", text);
    CHECK(strlen(err) > 0);
    return r;
}

UNIT_CASE(size_with_units_and_expressions_read)
{
    CHECK_EQ_U64(size_ok("1073741824"), 1073741824ull);
    CHECK_EQ_U64(size_ok("4GiB"), 4ull << 30);
    CHECK_EQ_U64(size_ok("4g"), 4ull << 30);
    CHECK_EQ_U64(size_ok("4G"), 4ull << 30);
    CHECK_EQ_U64(size_ok("4Gi"), 4ull << 30);
    CHECK_EQ_U64(size_ok("512MiB"), 512ull << 20);
    CHECK_EQ_U64(size_ok("512 mib"), 512ull << 20);
    CHECK_EQ_U64(size_ok("1.5GiB"), 3ull << 29);
    CHECK_EQ_U64(size_ok("2GB"), 2000000000ull);
    CHECK_EQ_U64(size_ok("100KB"), 100000ull);
    CHECK_EQ_U64(size_ok("7b"), 7ull);
    CHECK_EQ_U64(size_ok("1t"), 1ull << 40);
    CHECK_EQ_U64(size_ok("(1024 * 1024 * 1024 * 10)"), 10ull << 30);
    CHECK_EQ_U64(size_ok(" 2 * 512MiB "), 1ull << 30);
}

UNIT_CASE(bad_size_refused_saying_why)
{
    size_bad("", "number");
    size_bad("abc", "number");
    size_bad("-1", "number");
    size_bad("4 GiBB", "unit");
    size_bad("4x", "unit");
    size_bad("4GiB junk", "unexpected");
    size_bad("(4GiB", ")");
    size_bad("99999999999T", "too large");
    size_bad("1e9", "unit");
    size_bad(NULL, "missing");
}

UNIT_CASE(percent_in_range_read_else_refused)
{
    double pct;
    char err[256];
    CHECK(vgpu_parse_percent("30", &pct, err, sizeof(err)) == 0 && pct == 30);
    CHECK(vgpu_parse_percent("12.5%", &pct, err, sizeof(err)) == 0 && fabs(pct - 12.5) < 1e-9);
    CHECK(vgpu_parse_percent("100", &pct, err, sizeof(err)) == 0 && pct == 100);
    CHECK(vgpu_parse_percent("0", &pct, err, sizeof(err)) == -1 && strstr(err, "range"));
    CHECK(vgpu_parse_percent("101", &pct, err, sizeof(err)) == -1);
    CHECK(vgpu_parse_percent("half", &pct, err, sizeof(err)) == -1);
    CHECK(vgpu_parse_percent("30 %x", &pct, err, sizeof(err)) == -1);
    CHECK(vgpu_parse_percent("nan", &pct, err, sizeof(err)) == -1);
}

UNIT_CASE(bool_words_read_else_refused)
{
    char err[256];
    int b = -1;
    CHECK(vgpu_parse_bool("TRUE", &b, err, sizeof(err)) == 0 && b == 1);
    CHECK(vgpu_parse_bool("off", &b, err, sizeof(err)) == 0 && b == 0);
    CHECK(vgpu_parse_bool("2", &b, err, sizeof(err)) == -1);
}

UNIT_CASE(size_formatted_for_humans)
{
    char buf[32];
    CHECK_STR(vgpu_format_size(4ull << 30, buf, sizeof(buf)), "4.00 GiB");
    CHECK_STR(vgpu_format_size(17, buf, sizeof(buf)), "17 B");
}

UNIT_CASE(flat_json_object_read_with_kinds)
{
    char err[256];
    struct seen s = {0};
    CHECK(vgpu_parse_flat_json(" { \"0\" : 2147483648, \"GPU-abc\":\"4GiB\", \"x\\\"y\": true, "
                               "\"n\": null, \"f\": -1.5e3 } ",
                               collect, &s, err, sizeof(err)) == 0);
    CHECK_EQ_INT(s.n, 5);
    CHECK_STR(s.keys[0], "0");
    CHECK_STR(s.vals[0], "2147483648");
    CHECK(s.kinds[0] == VGPU_JSON_NUMBER);
    CHECK_STR(s.vals[1], "4GiB");
    CHECK(s.kinds[1] == VGPU_JSON_STRING);
    CHECK_STR(s.keys[2], "x\"y");
    CHECK(s.kinds[2] == VGPU_JSON_BOOL);
    CHECK(s.kinds[3] == VGPU_JSON_NULL);
    CHECK_STR(s.vals[4], "-1.5e3");
    struct seen e = {0};
    CHECK(vgpu_parse_flat_json("{}", collect, &e, err, sizeof(err)) == 0 && e.n == 0);
}

UNIT_CASE(malformed_or_nested_json_refused)
{
    json_bad("");
    json_bad("[1]");
    json_bad("{\"a\":1,}");
    json_bad("{\"a\":1 \"b\":2}");
    json_bad("{\"a\":{\"b\":1}}");
    json_bad("{\"a\":[1]}");
    json_bad("{\"a\":1}x");
    json_bad("{\"a\":01}");
    json_bad("{\"a\":1,\"a\":2}");
    json_bad("{\"a\":\"unterminated}");
    json_bad("{a:1}");
    json_bad("{\"a\":tru}");
    CHECK(json_bad("{\"a\":1,}") == -1);
}
