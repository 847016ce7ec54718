/* fuzz_flat_json.c - libFuzzer harness for the limiter's one-level JSON reader
 * (src/limiter/flat_json.c), which reads TENSOR_FUSION_CUDA_*_LIMIT from the environment.
 *
 * Invariants: members arrive with unique keys and tokens under 256 bytes; a value's kind
 * matches its text (a number is a JSON number, a bool "true"/"false", null "null"); a refusal
 * has a message. And a differential check against the limiter's other JSON reader
 * (src/limiter/hv_json.c): a text flat_json accepts (without \v or \f, which only flat_json
 * counts as white space) is valid JSON to hv_json too, and hv_json finds every member with the
 * same value.
 */
#include "flat_json.h"
#include "fuzz_util.h"
#include "hv_json.h"

#define MAX_MEMBERS 64

struct member {
    char key[256], value[256];
    enum vgpu_json_kind kind;
};

struct members {
    struct member m[MAX_MEMBERS];
    int n;
    int stop_at; /* the callback refuses member number stop_at (-1: none) */
};

static int is_number(const char *s)
{
    /* hv_json's grammar for a whole value; a number starts with '-' or a digit */
    return (s[0] == '-' || (s[0] >= '0' && s[0] <= '9')) && hv_json_valid(s);
}

static int on_member(void *ctx, const char *key, const char *value, enum vgpu_json_kind kind,
                     char *err, size_t errlen)
{
    struct members *ms = ctx;
    FUZZ_CHECK(strlen(key) < 256 && strlen(value) < 256, "token too long");
    for (int i = 0; i < ms->n; i++)
        FUZZ_CHECK(strcmp(ms->m[i].key, key) != 0, "duplicate key '%s' passed on", key);
    FUZZ_CHECK(ms->n < MAX_MEMBERS, "more than %d members", MAX_MEMBERS);
    switch (kind) {
    case VGPU_JSON_NUMBER:
        FUZZ_CHECK(is_number(value), "number '%s'", value);
        break;
    case VGPU_JSON_BOOL:
        FUZZ_CHECK(!strcmp(value, "true") || !strcmp(value, "false"), "bool '%s'", value);
        break;
    case VGPU_JSON_NULL:
        FUZZ_CHECK(!strcmp(value, "null"), "null '%s'", value);
        break;
    case VGPU_JSON_STRING:
        break;
    default:
        FUZZ_CHECK(0, "kind %d", (int)kind);
    }
    if (ms->n == ms->stop_at) {
        snprintf(err, errlen, "refused by the caller");
        return -1;
    }
    struct member *m = &ms->m[ms->n++];
    memcpy(m->key, key, strlen(key) + 1);
    memcpy(m->value, value, strlen(value) + 1);
    m->kind = kind;
    return 0;
}

static void differential(const char *text, const struct members *ms)
{
    if (strpbrk(text, "\v\f")) return;
    FUZZ_CHECK(hv_json_valid(text), "flat_json accepts what hv_json refuses");
    for (int i = 0; i < ms->n; i++) {
        const struct member *m = &ms->m[i];
        if (strlen(m->key) >= 127) continue; /* hv_json compares keys up to 126 bytes */
        const char *v = hv_json_get(text, m->key);
        FUZZ_CHECK(v, "hv_json does not find key '%s'", m->key);
        char s[256];
        double d;
        int b;
        switch (m->kind) {
        case VGPU_JSON_STRING:
            FUZZ_CHECK(hv_json_string(v, s, sizeof(s)) == 0 && !strcmp(s, m->value),
                       "key '%s': '%s' vs '%s'", m->key, m->value, s);
            break;
        case VGPU_JSON_NUMBER:
            FUZZ_CHECK(hv_json_double(v, &d) == 0, "key '%s': number %s", m->key, m->value);
            break;
        case VGPU_JSON_BOOL:
            FUZZ_CHECK(hv_json_bool(v, &b) == 0 && b == (m->value[0] == 't'), "key '%s': bool",
                       m->key);
            break;
        case VGPU_JSON_NULL:
            FUZZ_CHECK(hv_json_is_null(v), "key '%s': null", m->key);
            break;
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct members ms;
    char *text = fuzz_cstr(data, size);
    char err[200] = "";
    ms.n = 0;
    ms.stop_at = -1;
    int r = vgpu_parse_flat_json(text, on_member, &ms, err, sizeof(err));
    FUZZ_CHECK(r == 0 || r == -1, "returned %d", r);
    FUZZ_CHECK(r == 0 || err[0], "refused without a message");
    if (r == 0) {
        differential(text, &ms);
        /* a caller that refuses a member stops the parse with its own message */
        if (ms.n > 0) {
            int n = ms.n;
            ms.stop_at = (int)(size % (size_t)n);
            ms.n = 0;
            r = vgpu_parse_flat_json(text, on_member, &ms, err, sizeof(err));
            FUZZ_CHECK(r == -1 && !strcmp(err, "refused by the caller") && ms.n == ms.stop_at,
                       "a refusing callback: r=%d err='%s' after %d of %d", r, err, ms.n, n);
        }
    }
    free(text);
    return 0;
}
