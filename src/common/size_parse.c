/* size_parse.c - sizes with units, percentages and booleans as users write them. */
#include "size_parse.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *skip_ws(const char *p)
{
    while (*p && isspace((unsigned char)*p))
        p++;
    return p;
}

/* one term: number [unit]; advances *pp */
static int parse_term(const char **pp, long double *out, char *err, size_t errlen, const char *text)
{
    const char *p = skip_ws(*pp);
    const char *start = p;
    long double v = 0;
    int digits = 0;
    while (isdigit((unsigned char)*p)) {
        v = v * 10 + (*p - '0');
        p++;
        digits++;
    }
    if (*p == '.') {
        p++;
        long double scale = 0.1L;
        while (isdigit((unsigned char)*p)) {
            v += (*p - '0') * scale;
            scale /= 10;
            p++;
            digits++;
        }
    }
    if (!digits) {
        snprintf(err, errlen, "'%s' is not a size: expected a number at '%s'", text, start);
        return -1;
    }
    char unit[8] = {0};
    size_t n = 0;
    p = skip_ws(p);
    while (isalpha((unsigned char)*p)) {
        if (n >= sizeof(unit) - 1) {
            snprintf(err, errlen, "'%s' has an unknown unit", text);
            return -1;
        }
        unit[n++] = (char)tolower((unsigned char)*p++);
    }
    static const struct {
        const char *name;
        long double mult;
    } units[] = {
        {"", 1},
        {"b", 1},
        {"k", 1024.0L},
        {"ki", 1024.0L},
        {"kib", 1024.0L},
        {"kb", 1e3L},
        {"m", 1048576.0L},
        {"mi", 1048576.0L},
        {"mib", 1048576.0L},
        {"mb", 1e6L},
        {"g", 1073741824.0L},
        {"gi", 1073741824.0L},
        {"gib", 1073741824.0L},
        {"gb", 1e9L},
        {"t", 1099511627776.0L},
        {"ti", 1099511627776.0L},
        {"tib", 1099511627776.0L},
        {"tb", 1e12L},
    };
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(unit, units[i].name) == 0) {
            *out = v * units[i].mult;
            *pp = p;
            return 0;
        }
    }
    snprintf(
        err, errlen,
        "'%s' has an unknown unit '%s' (use B, KiB, MiB, GiB, TiB, k, m, g, t, KB, MB, GB, TB)",
        text, unit);
    return -1;
}

int vgpu_parse_size(const char *text, uint64_t *out, char *err, size_t errlen)
{
    if (!text) {
        snprintf(err, errlen, "missing size");
        return -1;
    }
    const char *p = skip_ws(text);
    int paren = 0;
    if (*p == '(') {
        paren = 1;
        p++;
    }
    long double total = 1;
    for (;;) {
        long double term;
        if (parse_term(&p, &term, err, errlen, text) != 0) return -1;
        total *= term;
        p = skip_ws(p);
        if (*p == '*') {
            p++;
            continue;
        }
        break;
    }
    if (paren) {
        if (*p != ')') {
            snprintf(err, errlen, "'%s' is not a size: missing ')'", text);
            return -1;
        }
        p = skip_ws(p + 1);
    }
    if (*p) {
        snprintf(err, errlen, "'%s' is not a size: unexpected '%s'", text, p);
        return -1;
    }
    if (!(total < 18446744073709551615.0L)) {
        snprintf(err, errlen, "'%s' is too large", text);
        return -1;
    }
    *out = (uint64_t)(total + 0.5L);
    return 0;
}

int vgpu_parse_percent(const char *text, double *out, char *err, size_t errlen)
{
    if (!text) {
        snprintf(err, errlen, "missing percentage");
        return -1;
    }
    const char *p = skip_ws(text);
    char *end = NULL;
    double v = strtod(p, &end);
    if (end == p) {
        snprintf(err, errlen, "'%s' is not a percentage", text);
        return -1;
    }
    end = (char *)skip_ws(end);
    if (*end == '%') end = (char *)skip_ws(end + 1);
    if (*end || !isfinite(v)) {
        snprintf(err, errlen, "'%s' is not a percentage", text);
        return -1;
    }
    if (!(v > 0 && v <= 100)) {
        snprintf(err, errlen, "'%s' is out of range: a percentage must be above 0 and at most 100",
                 text);
        return -1;
    }
    *out = v;
    return 0;
}

int vgpu_parse_bool(const char *text, int *out, char *err, size_t errlen)
{
    static const char *yes[] = {"1", "true", "yes", "on"};
    static const char *no[] = {"0", "false", "no", "off"};
    if (text) {
        for (int i = 0; i < 4; i++) {
            if (strcasecmp(text, yes[i]) == 0) {
                *out = 1;
                return 0;
            }
            if (strcasecmp(text, no[i]) == 0) {
                *out = 0;
                return 0;
            }
        }
    }
    snprintf(err, errlen, "'%s' is not a boolean (use 1/0, true/false, yes/no, on/off)",
             text ? text : "");
    return -1;
}

const char *vgpu_format_size(uint64_t bytes, char *buf, size_t buflen)
{
    static const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    double v = (double)bytes;
    int i = 0;
    while (v >= 1024 && i < 6) {
        v /= 1024;
        i++;
    }
    if (i == 0)
        snprintf(buf, buflen, "%llu B", (unsigned long long)bytes);
    else
        snprintf(buf, buflen, "%.2f %s", v, u[i]);
    return buf;
}
