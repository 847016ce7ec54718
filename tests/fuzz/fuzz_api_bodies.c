/* fuzz_api_bodies.c - the daemon's reading of HTTP request bodies (src/hypervisor/api_parse.c):
 * a worker's registration (POST /v1/workers, parse_registration), sent by any pod, and an
 * operator's limits (PUT /v1/pods/{ns}/{name}/limits, parse_put_limits). The input is the body;
 * it is loaded as api_reply.c loads it (JSON_REJECT_DUPLICATES, an object) and given to both.
 *
 * Invariants: an accepted registration has every string terminated, within its field and
 * exactly the body's (never cut), no '/' in namespace or pod, a pid 0..INT_MAX, at most
 * HV_MAX_GPUS GPUs (as many as the body lists), indexes 0..1023, uuids the body's in their
 * normal form ("gpu-" and [a-z0-9-], lower case) and none twice, environment limits in range
 * (core (0, 100], weight 1..10000, soft 0/1, mem <= INT64_MAX); accepted limits have at least
 * one field, all in range, and a GPU key "all", an index the body gave or its uuid normalised.
 * A refusal is a terminated UTF-8 message (it is sent as a JSON string) that starts with the
 * field it is about ("gpus[1].uuid:", "body:", a member of the body) and then says why.
 */
#include <ctype.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <strings.h>

#include "api_parse.h"
#include "fuzz_util.h"

static void check_limits(const struct hv_limits *l, const char *what)
{
    FUZZ_CHECK(!(l->has & ~15u), "%s: has 0x%x", what, l->has);
    if (l->has & HV_HAS_CORE)
        FUZZ_CHECK(isfinite(l->core) && l->core > 0 && l->core <= 100, "%s: core %g", what,
                   l->core);
    if (l->has & HV_HAS_MEM)
        FUZZ_CHECK(l->mem <= (uint64_t)INT64_MAX, "%s: mem %llu", what, (unsigned long long)l->mem);
    if (l->has & HV_HAS_WEIGHT)
        FUZZ_CHECK(l->weight >= 1 && l->weight <= 10000, "%s: weight %u", what, l->weight);
    if (l->has & HV_HAS_SOFT)
        FUZZ_CHECK(l->soft == 0 || l->soft == 1, "%s: soft %d", what, l->soft);
}

/* a uuid in its normal form, and the same as `from` but for case */
static void check_uuid(const char *u, size_t cap, const char *from)
{
    FUZZ_CHECK(fuzz_terminated(u, cap), "uuid not terminated");
    size_t n = strlen(u);
    FUZZ_CHECK(n >= 5 && n < VGPU_UUID_LEN && !strncmp(u, "gpu-", 4), "uuid '%s'", u);
    for (size_t i = 0; i < n; i++)
        FUZZ_CHECK(islower((unsigned char)u[i]) || isdigit((unsigned char)u[i]) || u[i] == '-',
                   "uuid '%s'", u);
    FUZZ_CHECK(from && strlen(from) == n && !strncasecmp(u, from, n), "uuid '%s' from '%s'", u,
               from ? from : "(none)");
}

/* the message starts with `field` (when `field` is not NULL: any of the body's members), ": "
 * and a reason */
static int names(const char *err, const char *field)
{
    size_t n = strlen(field);
    return !strncmp(err, field, n) && err[n] == ':' && err[n + 1] == ' ' && err[n + 2];
}

/* the same for a long name cut in the message: at least its first 150 bytes, where the bytes of
 * a character cut in two may read '?' */
static int names_cut(const char *err, const char *field)
{
    size_t len = strlen(field);
    for (const char *sep = strstr(err, ": "); sep; sep = strstr(sep + 1, ": ")) {
        size_t n = (size_t)(sep - err), m = n;
        if (n < 150 || n >= len) continue;
        while (n - m < 3 && err[m - 1] == '?' && (unsigned char)field[m - 1] >= 0x80)
            m--;
        if (!strncmp(err, field, m) && sep[2]) return 1;
    }
    return 0;
}

static void check_refusal(const char *err, size_t cap, json_t *o, int put)
{
    FUZZ_CHECK(fuzz_terminated(err, cap), "message not terminated");
    FUZZ_CHECK(err[0], "a refusal without a message");
    json_t *utf8 = json_string(err); /* api_reply.c replies {"error": err}: JSON needs UTF-8 */
    FUZZ_CHECK(utf8, "the refusal '%s' is not UTF-8", err);
    json_decref(utf8);
    int ok = 0;
    if (put) {
        ok = names(err, "gpu") || names(err, "body");
        const char *k;
        json_t *v;
        json_object_foreach(o, k, v) ok |= names(err, k) || names_cut(err, k);
    } else {
        static const char *const fields[] = {"pod_id",    "namespace", "pod", "pod_uid",
                                             "container", "pid",       "gpus"};
        for (size_t i = 0; i < sizeof(fields) / sizeof(*fields); i++)
            ok |= names(err, fields[i]);
        /* gpus[N]: or gpus[N].FIELD...: then a reason */
        const char *sep = strstr(err, ": ");
        ok |= !strncmp(err, "gpus[", 5) && isdigit((unsigned char)err[5]) && sep && sep[2];
    }
    FUZZ_CHECK(ok, "the refusal '%s' names no field of the %s body", err,
               put ? "limits" : "registration");
}

/* the member `key` of o as a string that a char[cap] field holds exactly, or "" */
static void check_string(json_t *o, const char *key, const char *got, size_t cap)
{
    FUZZ_CHECK(fuzz_terminated(got, cap), "%s not terminated", key);
    json_t *v = json_object_get(o, key);
    const char *want = json_is_string(v) ? json_string_value(v) : "";
    FUZZ_CHECK(!strcmp(got, want), "%s '%s' read as '%s'", key, want, got);
}

static void registration(json_t *o)
{
    static struct reg_req q;
    char err[1024]; /* as api_worker_register */
    memset(err, 0x55, sizeof(err));
    if (parse_registration(o, &q, err, sizeof(err))) {
        check_refusal(err, sizeof(err), o, 0);
        return;
    }
    check_string(o, "pod_id", q.pod_id, sizeof(q.pod_id));
    check_string(o, "namespace", q.ns, sizeof(q.ns));
    check_string(o, "pod", q.pod, sizeof(q.pod));
    check_string(o, "pod_uid", q.pod_uid, sizeof(q.pod_uid));
    check_string(o, "container", q.container, sizeof(q.container));
    FUZZ_CHECK(!strchr(q.ns, '/') && !strchr(q.pod, '/'), "'/' in '%s' '%s'", q.ns, q.pod);
    json_t *v = json_object_get(o, "pid");
    FUZZ_CHECK(q.pid >= 0 && q.pid <= INT_MAX, "pid %ld", q.pid);
    FUZZ_CHECK(q.pid == (json_is_integer(v) ? (long)json_integer_value(v) : 0), "pid %ld", q.pid);
    json_t *gpus = json_object_get(o, "gpus");
    FUZZ_CHECK(q.ngpu >= 0 && q.ngpu <= HV_MAX_GPUS, "%d GPUs", q.ngpu);
    FUZZ_CHECK((size_t)q.ngpu == json_array_size(gpus), "%d GPUs of %zu", q.ngpu,
               json_array_size(gpus));
    for (int i = 0; i < q.ngpu; i++) {
        const struct reg_gpu *g = &q.gpu[i];
        json_t *jg = json_array_get(gpus, (size_t)i);
        FUZZ_CHECK(g->index >= 0 && g->index <= 1023 &&
                       g->index == json_integer_value(json_object_get(jg, "index")),
                   "gpus[%d].index %d", i, g->index);
        check_uuid(g->uuid, sizeof(g->uuid), json_string_value(json_object_get(jg, "uuid")));
        for (int k = 0; k < i; k++)
            FUZZ_CHECK(strcmp(q.gpu[k].uuid, g->uuid), "uuid %s twice", g->uuid);
        check_limits(&g->env, "env");
    }
}

static void put_limits(json_t *o)
{
    struct hv_limits l;
    char key[VGPU_UUID_LEN], err[256]; /* as api_op_put_limits */
    memset(err, 0x55, sizeof(err));
    if (parse_put_limits(o, &l, key, sizeof(key), err, sizeof(err))) {
        check_refusal(err, sizeof(err), o, 1);
        return;
    }
    FUZZ_CHECK(l.has, "limits accepted without a field");
    check_limits(&l, "limits");
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        FUZZ_CHECK(!strcmp(k, "gpu") || !strcmp(k, "core_limit") || !strcmp(k, "mem_limit") ||
                       !strcmp(k, "weight") || !strcmp(k, "soft"),
                   "member '%s' accepted", k);
    }
    FUZZ_CHECK(fuzz_terminated(key, sizeof(key)), "GPU key not terminated");
    json_t *gpu = json_object_get(o, "gpu");
    if (!gpu || (json_is_string(gpu) && !strcmp(json_string_value(gpu), "all"))) {
        FUZZ_CHECK(!strcmp(key, "all"), "GPU key '%s' for all", key);
    } else if (json_is_integer(gpu)) {
        char want[32];
        snprintf(want, sizeof(want), "%lld", (long long)json_integer_value(gpu));
        FUZZ_CHECK(json_integer_value(gpu) >= 0 && json_integer_value(gpu) <= 1023 &&
                       !strcmp(key, want),
                   "GPU key '%s' for %s", key, want);
    } else {
        check_uuid(key, sizeof(key), json_string_value(gpu));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* as api_reply.c api_body_object: duplicate keys refused, an object only */
    json_t *o = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    if (json_is_object(o)) {
        registration(o);
        put_limits(o);
    }
    json_decref(o);
    return 0;
}
