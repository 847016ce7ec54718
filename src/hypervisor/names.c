/* names.c - GPU uuids and namespace/pod names as the daemon accepts them (names.h).
 *
 * Why this exists: the API (http_api.c, api_parse.c) and the state file (state_parse.c) had
 * each their own copy of these checks, kept in step by hand; now both call these.
 */
#include "names.h"

#include <ctype.h>
#include <jansson.h>
#include <string.h>

int hv_norm_uuid(const char *in, char *out, size_t outlen)
{
    size_t n = strlen(in);
    if (n < 5 || n + 1 > outlen || n + 1 > VGPU_UUID_LEN) return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)in[i];
        if (!isalnum(ch) && ch != '-') return -1;
        out[i] = (char)tolower(ch);
    }
    out[n] = 0;
    return strncmp(out, "gpu-", 4) ? -1 : 0;
}

/* One check for both callers, the stricter of what each needs: the URL path's segments
 * (http_api.c) must be valid UTF-8, the state file's pod keys (state_parse.c) must hold no '/'.
 * Neither caller sees a difference: a URL segment is split at '/' and never holds one, and a
 * state file key is valid UTF-8 (jansson refuses anything else) and stays so when cut at the
 * ASCII '/'. */
int hv_name_ok(const char *s, size_t len, size_t max)
{
    if (!len || len >= max || (len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.'))
        return 0;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x21 || s[i] == 0x7f || s[i] == '/') return 0;
    json_t *utf8 = json_stringn(s, len); /* NULL unless valid UTF-8 */
    json_decref(utf8);
    return utf8 != NULL;
}

/* The length of the valid UTF-8 character at s (as jansson checks it: no overlong forms,
 * surrogates or code points past U+10FFFF), or 0. */
static size_t utf8_char(const unsigned char *s)
{
    unsigned c = s[0], cp;
    size_t n;
    if (c < 0x80) return 1;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef)
        n = 3, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4)
        n = 4, cp = c & 0x07;
    else
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0; /* also the terminating NUL */
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

void hv_utf8_clean(char *s)
{
    for (unsigned char *p = (unsigned char *)s; *p;) {
        size_t n = utf8_char(p);
        if (n)
            p += n;
        else
            *p++ = '?';
    }
}

int hv_dir_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (!n || n >= HV_DIR_NAME_LEN || name[0] == '.') return 0;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_' || *p == '.'))
            return 0;
    return 1;
}
