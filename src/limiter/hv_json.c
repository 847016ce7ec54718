/* hv_json.c - strict in-place JSON reader for the daemon's replies (see hv_json.h). No strtod:
 * the application may have set a locale whose decimal point is not '.'. */
#include "hv_json.h"

#include <stdio.h>
#include <string.h>

static const char *ws(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    return p;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int hex4(const char *p, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(p[i]);
        if (h < 0) return -1;
        v = v * 16 + (unsigned)h;
    }
    *out = v;
    return 0;
}

/* p at '"': the end of the string (after the closing quote), NULL if malformed. If out is not
 * NULL the unescaped text goes there (UTF-8); *too_long set when it did not fit. */
/* `cp` in UTF-8 into enc; returns the number of bytes (1 to 4) */
static int utf8_encode(unsigned cp, char *enc)
{
    if (cp < 0x80) {
        enc[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        enc[0] = (char)(0xc0 | (cp >> 6));
        enc[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        enc[0] = (char)(0xe0 | (cp >> 12));
        enc[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        enc[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    enc[0] = (char)(0xf0 | (cp >> 18));
    enc[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    enc[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    enc[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* A \u escape, `p` at the 'u': its UTF-8 bytes into enc (*k of them); returns the last
 * character of the escape (of the pair's second half for a surrogate pair), NULL if invalid */
static const char *unicode_at(const char *p, char *enc, int *k)
{
    unsigned cp;
    if (hex4(p + 1, &cp) != 0) return NULL;
    p += 4;
    if (cp >= 0xd800 && cp <= 0xdbff) { /* a surrogate pair */
        unsigned lo;
        if (p[1] != '\\' || p[2] != 'u' || hex4(p + 3, &lo) != 0 || lo < 0xdc00 || lo > 0xdfff)
            return NULL;
        p += 6;
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
    } else if (cp >= 0xdc00 && cp <= 0xdfff) {
        return NULL;
    }
    if (cp == 0) return NULL; /* would cut the string */
    *k = utf8_encode(cp, enc);
    return p;
}

/* An escape, `p` at the character after the backslash: its bytes into enc (*k of them);
 * returns the escape's last character, NULL if invalid */
static const char *escape_at(const char *p, char *enc, int *k)
{
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    if (*p == 'u') return unicode_at(p, enc, k);
    for (size_t i = 0; i < sizeof(from) - 1; i++)
        if (*p == from[i]) {
            enc[0] = to[i];
            *k = 1;
            return p;
        }
    return NULL;
}

static const char *string_at(const char *p, char *out, size_t outlen, int *too_long)
{
    if (*p != '"') return NULL;
    p++;
    size_t n = 0;
    char enc[4];
    for (;;) {
        unsigned char c = (unsigned char)*p;
        int k = 0;
        if (c == '"') break;
        if (c < 0x20) return NULL; /* also the terminating NUL */
        if (c != '\\') {
            enc[k++] = (char)c;
            p++;
        } else {
            p = escape_at(p + 1, enc, &k);
            if (!p) return NULL;
            p++;
        }
        if (out) {
            if (n + (size_t)k >= outlen) {
                *too_long = 1;
            } else {
                memcpy(out + n, enc, (size_t)k);
                n += (size_t)k;
            }
        }
    }
    if (out && outlen) out[n] = 0;
    return p + 1;
}

static const char *number_at(const char *p)
{
    if (*p == '-') p++;
    if (*p < '0' || *p > '9') return NULL;
    if (*p == '0' && p[1] >= '0' && p[1] <= '9') return NULL;
    while (*p >= '0' && *p <= '9')
        p++;
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9') return NULL;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-') p++;
        if (*p < '0' || *p > '9') return NULL;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    return p;
}

/* p at a value: the end of it, NULL if malformed */
static const char *skip_value(const char *p, int depth)
{
    if (depth > HV_JSON_MAX_DEPTH) return NULL;
    p = ws(p);
    switch (*p) {
    case '{':
        p = ws(p + 1);
        if (*p == '}') return p + 1;
        for (;;) {
            p = string_at(ws(p), NULL, 0, NULL);
            if (!p) return NULL;
            p = ws(p);
            if (*p != ':') return NULL;
            p = skip_value(p + 1, depth + 1);
            if (!p) return NULL;
            p = ws(p);
            if (*p == '}') return p + 1;
            if (*p != ',') return NULL;
            p++;
        }
    case '[':
        p = ws(p + 1);
        if (*p == ']') return p + 1;
        for (;;) {
            p = skip_value(p, depth + 1);
            if (!p) return NULL;
            p = ws(p);
            if (*p == ']') return p + 1;
            if (*p != ',') return NULL;
            p++;
        }
    case '"':
        return string_at(p, NULL, 0, NULL);
    case 't':
        return strncmp(p, "true", 4) == 0 ? p + 4 : NULL;
    case 'f':
        return strncmp(p, "false", 5) == 0 ? p + 5 : NULL;
    case 'n':
        return strncmp(p, "null", 4) == 0 ? p + 4 : NULL;
    default:
        return number_at(p);
    }
}

int hv_json_valid(const char *text)
{
    if (!text) return 0;
    const char *end = skip_value(text, 0);
    return end && *ws(end) == 0;
}

const char *hv_json_get(const char *obj, const char *key)
{
    if (!obj) return NULL;
    const char *p = ws(obj);
    if (*p != '{') return NULL;
    p = ws(p + 1);
    if (*p == '}') return NULL;
    for (;;) {
        char k[128];
        int too_long = 0;
        p = string_at(ws(p), k, sizeof(k), &too_long);
        if (!p) return NULL;
        p = ws(p);
        if (*p != ':') return NULL;
        const char *v = ws(p + 1);
        if (!too_long && strcmp(k, key) == 0) return v;
        p = skip_value(v, 1);
        if (!p) return NULL;
        p = ws(p);
        if (*p != ',') return NULL;
        p++;
    }
}

const char *hv_json_next(const char **it)
{
    if (!it || !*it) return NULL;
    const char *p = ws(*it);
    if (*p == '[' || *p == ',') {
        p = ws(p + 1);
        if (*p == ']' || !*p) {
            *it = p;
            return NULL;
        }
        const char *end = skip_value(p, 1);
        if (!end) {
            *it = NULL;
            return NULL;
        }
        *it = end;
        return p;
    }
    return NULL; /* ']' or not an array */
}

int hv_json_is_null(const char *v)
{
    return v && strncmp(ws(v), "null", 4) == 0;
}

int hv_json_bool(const char *v, int *out)
{
    if (!v) return -1;
    v = ws(v);
    if (strncmp(v, "true", 4) == 0)
        *out = 1;
    else if (strncmp(v, "false", 5) == 0)
        *out = 0;
    else
        return -1;
    return 0;
}

int hv_json_string(const char *v, char *out, size_t outlen)
{
    int too_long = 0;
    if (!v || !outlen) return -1;
    if (!string_at(ws(v), out, outlen, &too_long) || too_long) return -1;
    return 0;
}

int hv_json_double(const char *v, double *out)
{
    if (!v) return -1;
    const char *p = ws(v);
    if (!number_at(p)) return -1;
    int neg = *p == '-';
    if (neg) p++;
    double x = 0;
    while (*p >= '0' && *p <= '9')
        x = x * 10 + (*p++ - '0');
    if (*p == '.') {
        double scale = 0.1;
        for (p++; *p >= '0' && *p <= '9'; p++, scale /= 10)
            x += (*p - '0') * scale;
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        int eneg = *p == '-';
        if (*p == '+' || *p == '-') p++;
        int e = 0;
        while (*p >= '0' && *p <= '9') {
            if (e < 400) e = e * 10 + (*p - '0');
            p++;
        }
        for (int i = 0; i < e && x != 0; i++)
            x = eneg ? x / 10 : x * 10;
    }
    *out = neg ? -x : x;
    return 0;
}

int hv_json_u64(const char *v, uint64_t *out)
{
    if (!v) return -1;
    const char *p = ws(v), *end = number_at(p);
    if (!end || *p == '-') return -1;
    uint64_t x = 0;
    const char *q = p;
    for (; *q >= '0' && *q <= '9'; q++) {
        unsigned d = (unsigned)(*q - '0');
        if (x > (UINT64_MAX - d) / 10) return -1;
        x = x * 10 + d;
    }
    if (q != end) {
        /* a fraction or an exponent: accept only an exact integer that fits */
        double dv;
        if (hv_json_double(p, &dv) != 0 || dv < 0 || dv >= 18446744073709551616.0 ||
            dv != (double)(uint64_t)dv)
            return -1;
        x = (uint64_t)dv;
    }
    *out = x;
    return 0;
}

int hv_json_put_string(char *out, size_t cap, size_t *len, const char *in)
{
    size_t n = *len;
    int ok = 1;
#define PUT(c)                                                                                     \
    do {                                                                                           \
        if (n + 1 < cap)                                                                           \
            out[n++] = (c);                                                                        \
        else                                                                                       \
            ok = 0;                                                                                \
    } while (0)
    PUT('"');
    for (const unsigned char *p = (const unsigned char *)in; *p && ok; p++) {
        if (*p == '"' || *p == '\\') {
            PUT('\\');
            PUT((char)*p);
        } else if (*p < 0x20) {
            char esc[8];
            snprintf(esc, sizeof(esc), "\\u%04x", *p);
            for (char *e = esc; *e; e++)
                PUT(*e);
        } else {
            PUT((char)*p);
        }
    }
    PUT('"');
#undef PUT
    if (cap) out[n < cap ? n : cap - 1] = 0;
    *len = n;
    return ok ? 0 : -1;
}
