/* flat_json.c - strict reader for one-level JSON objects (see flat_json.h). */
#include "flat_json.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#define MAX_TOKEN 256
#define MAX_KEYS 64

struct reader {
    const char *s, *p;
    char *err;
    size_t errlen;
};

static void ws(struct reader *r)
{
    while (*r->p && isspace((unsigned char)*r->p))
        r->p++;
}

static int fail(struct reader *r, const char *what)
{
    snprintf(r->err, r->errlen, "%s at offset %d", what, (int)(r->p - r->s));
    return -1;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    c = (char)tolower((unsigned char)c);
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

static int read_string(struct reader *r, char *out)
{
    if (*r->p != '"') return fail(r, "expected '\"'");
    r->p++;
    size_t n = 0;
    while (*r->p != '"') {
        char c = *r->p;
        if (!c) return fail(r, "unterminated string");
        if ((unsigned char)c < 0x20) return fail(r, "control character in string");
        if (c == '\\') {
            r->p++;
            switch (*r->p) {
            case '"':
                c = '"';
                break;
            case '\\':
                c = '\\';
                break;
            case '/':
                c = '/';
                break;
            case 'b':
                c = '\b';
                break;
            case 'f':
                c = '\f';
                break;
            case 'n':
                c = '\n';
                break;
            case 'r':
                c = '\r';
                break;
            case 't':
                c = '\t';
                break;
            case 'u': {
                int v = 0;
                for (int i = 1; i <= 4; i++) {
                    int h = hexval(r->p[i]);
                    if (h < 0) return fail(r, "bad \\u escape");
                    v = v * 16 + h;
                }
                if (v == 0 || v > 0x7f) return fail(r, "only ASCII \\u escapes are supported");
                c = (char)v;
                r->p += 4;
                break;
            }
            default:
                return fail(r, "bad escape");
            }
        }
        if (n >= MAX_TOKEN - 1) return fail(r, "string too long");
        out[n++] = c;
        r->p++;
    }
    out[n] = 0;
    r->p++;
    return 0;
}

static int read_number(struct reader *r, char *out)
{
    const char *start = r->p;
    if (*r->p == '-') r->p++;
    if (!isdigit((unsigned char)*r->p)) return fail(r, "expected a value");
    if (*r->p == '0' && isdigit((unsigned char)r->p[1])) return fail(r, "leading zero in number");
    while (isdigit((unsigned char)*r->p))
        r->p++;
    if (*r->p == '.') {
        r->p++;
        if (!isdigit((unsigned char)*r->p)) return fail(r, "bad number");
        while (isdigit((unsigned char)*r->p))
            r->p++;
    }
    if (*r->p == 'e' || *r->p == 'E') {
        r->p++;
        if (*r->p == '+' || *r->p == '-') r->p++;
        if (!isdigit((unsigned char)*r->p)) return fail(r, "bad exponent");
        while (isdigit((unsigned char)*r->p))
            r->p++;
    }
    size_t n = (size_t)(r->p - start);
    if (n >= MAX_TOKEN) return fail(r, "number too long");
    memcpy(out, start, n);
    out[n] = 0;
    return 0;
}

int vgpu_parse_flat_json(const char *text, vgpu_json_member_fn fn, void *ctx, char *err,
                         size_t errlen)
{
    struct reader r = {text, text, err, errlen};
    char keys[MAX_KEYS][MAX_TOKEN];
    int nkeys = 0;
    if (!text) return fail(&r, "missing JSON");
    ws(&r);
    if (*r.p != '{') return fail(&r, "expected a JSON object '{'");
    r.p++;
    ws(&r);
    if (*r.p == '}') {
        r.p++;
        goto end;
    }
    for (;;) {
        char key[MAX_TOKEN], val[MAX_TOKEN];
        enum vgpu_json_kind kind;
        ws(&r);
        if (read_string(&r, key) != 0) return -1;
        for (int i = 0; i < nkeys; i++)
            if (strcmp(keys[i], key) == 0) return fail(&r, "duplicate key");
        if (nkeys >= MAX_KEYS) return fail(&r, "too many keys");
        strcpy(keys[nkeys++], key);
        ws(&r);
        if (*r.p != ':') return fail(&r, "expected ':'");
        r.p++;
        ws(&r);
        if (*r.p == '"') {
            if (read_string(&r, val) != 0) return -1;
            kind = VGPU_JSON_STRING;
        } else if (*r.p == '{' || *r.p == '[') {
            return fail(&r, "nested objects and arrays are not supported");
        } else if (strncmp(r.p, "true", 4) == 0 || strncmp(r.p, "false", 5) == 0) {
            int t = r.p[0] == 't';
            strcpy(val, t ? "true" : "false");
            r.p += t ? 4 : 5;
            kind = VGPU_JSON_BOOL;
        } else if (strncmp(r.p, "null", 4) == 0) {
            strcpy(val, "null");
            r.p += 4;
            kind = VGPU_JSON_NULL;
        } else {
            if (read_number(&r, val) != 0) return -1;
            kind = VGPU_JSON_NUMBER;
        }
        if (fn(ctx, key, val, kind, err, errlen) != 0) return -1;
        ws(&r);
        if (*r.p == ',') {
            r.p++;
            continue;
        }
        if (*r.p == '}') {
            r.p++;
            break;
        }
        return fail(&r, "expected ',' or '}'");
    }
end:
    ws(&r);
    if (*r.p) return fail(&r, "trailing characters after the object");
    return 0;
}
