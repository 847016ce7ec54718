/* fuzz_size_parse.c - libFuzzer harness for the shared parsers of sizes, percentages and
 * booleans (src/common/size_parse.c). Every limit a user writes (environment, INI file, HTTP,
 * CLI, Kubernetes annotations) goes through them, so beyond memory safety they must agree with
 * themselves:
 *   - a size read back from its byte count (and with a "B" unit) is the same number; one
 *     written without parentheses reads the same in parentheses and multiplied by 1;
 *   - a percentage is finite, in (0, 100], and reads back from "%.17g" (with or without '%');
 *   - a boolean is 0 or 1 and does not depend on letter case;
 *   - a refusal always comes with a message, and a tiny message buffer changes nothing but
 *     the message.
 */
#include <ctype.h>
#include <math.h>

#include "fuzz_util.h"
#include "size_parse.h"

static void check_size(const char *text)
{
    char err[200] = "", tiny[6] = "";
    uint64_t v = 0, w = 0;
    int r = vgpu_parse_size(text, &v, err, sizeof(err));
    FUZZ_CHECK(r == 0 || r == -1, "vgpu_parse_size returned %d", r);
    FUZZ_CHECK(r == 0 || err[0], "'%s' refused without a message", text);
    int r2 = vgpu_parse_size(text, &w, tiny, sizeof(tiny));
    FUZZ_CHECK(r2 == r && (r || w == v), "a small error buffer changed the result");
    FUZZ_CHECK(fuzz_terminated(tiny, sizeof(tiny)), "message not terminated");
    if (r) return;

    char buf[64], more[4200];
    snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);
    FUZZ_CHECK(vgpu_parse_size(buf, &w, err, sizeof(err)) == 0 && w == v,
               "'%s' -> %s does not read back (%s)", text, buf, err);
    snprintf(buf, sizeof(buf), "%lluB", (unsigned long long)v);
    FUZZ_CHECK(vgpu_parse_size(buf, &w, err, sizeof(err)) == 0 && w == v,
               "'%s' -> %s does not read back (%s)", text, buf, err);
    char fmt[32];
    vgpu_format_size(v, fmt, sizeof(fmt));
    FUZZ_CHECK(fuzz_terminated(fmt, sizeof(fmt)) && fmt[0], "format of %s", buf);

    if (!strchr(text, '(') && strlen(text) < 4096) {
        snprintf(more, sizeof(more), "(%s)", text);
        FUZZ_CHECK(vgpu_parse_size(more, &w, err, sizeof(err)) == 0 && w == v,
                   "'%s' = %llu but '%s' reads %llu (%s)", text, (unsigned long long)v, more,
                   (unsigned long long)w, err);
        snprintf(more, sizeof(more), "%s * 1", text);
        FUZZ_CHECK(vgpu_parse_size(more, &w, err, sizeof(err)) == 0 && w == v,
                   "'%s' = %llu but '%s' reads %llu (%s)", text, (unsigned long long)v, more,
                   (unsigned long long)w, err);
    }
}

static void check_percent(const char *text)
{
    char err[200] = "", tiny[6] = "", buf[64];
    double v = 0, w = 0;
    int r = vgpu_parse_percent(text, &v, err, sizeof(err));
    FUZZ_CHECK(r == 0 || r == -1, "vgpu_parse_percent returned %d", r);
    FUZZ_CHECK(r == 0 || err[0], "'%s' refused without a message", text);
    int r2 = vgpu_parse_percent(text, &w, tiny, sizeof(tiny));
    FUZZ_CHECK(r2 == r && (r || w == v), "a small error buffer changed the result");
    if (r) return;
    FUZZ_CHECK(isfinite(v) && v > 0 && v <= 100, "'%s' read as %.17g", text, v);
    snprintf(buf, sizeof(buf), "%.17g", v);
    FUZZ_CHECK(vgpu_parse_percent(buf, &w, err, sizeof(err)) == 0 && w == v,
               "'%s' -> '%s' does not read back", text, buf);
    snprintf(buf, sizeof(buf), "%.17g%%", v);
    FUZZ_CHECK(vgpu_parse_percent(buf, &w, err, sizeof(err)) == 0 && w == v,
               "'%s' -> '%s' does not read back", text, buf);
}

static void check_bool(const char *text)
{
    char err[200] = "";
    int v = -1, w = -1;
    int r = vgpu_parse_bool(text, &v, err, sizeof(err));
    FUZZ_CHECK(r == 0 || r == -1, "vgpu_parse_bool returned %d", r);
    FUZZ_CHECK(r == 0 || err[0], "'%s' refused without a message", text);
    FUZZ_CHECK(r || v == 0 || v == 1, "'%s' read as %d", text, v);
    char *up = strdup(text);
    for (char *p = up; *p; p++)
        *p = (char)toupper((unsigned char)*p);
    int r2 = vgpu_parse_bool(up, &w, err, sizeof(err));
    FUZZ_CHECK(r2 == r && (r || w == v), "'%s' and '%s' differ", text, up);
    free(up);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_cstr(data, size);
    check_size(text);
    check_percent(text);
    check_bool(text);
    free(text);
    return 0;
}
