/* api_parse.c - the request bodies of the daemon's HTTP API (api_parse.h).
 *
 * Why this exists: see api_parse.h. Pure functions, apart from the registry and the sockets,
 * so that the fuzz harness (tests/fuzz/fuzz_api_bodies.c) reaches them; every message keeps
 * its reason and is valid UTF-8 (refuse, parse_put_limits).
 */
#include "api_parse.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "size_parse.h"

/* A refusal of limit_from_json: its message quotes the body cut at byte limits (a member's
 * name at 40 or 199 bytes, size_parse.c's reason at 159, the whole at n), which may split a
 * character; the bytes of a broken character become '?'. The message goes into the JSON reply
 * {"error": ...}, and jansson refuses a string that is not UTF-8: the reply would lose it. */
static int refuse(char *err)
{
    hv_utf8_clean(err);
    return -1;
}

/* One limit field from JSON into l; -1 with a message naming `where`. */
static int limit_from_json(struct hv_limits *l, const char *key, json_t *v, const char *where,
                           char *err, size_t n)
{
    char why[160] = "";
    if (!strcmp(key, "core_limit")) {
        double pct = 0;
        if (json_is_number(v))
            pct = json_number_value(v);
        else if (json_is_string(v) &&
                 !vgpu_parse_percent(json_string_value(v), &pct, why, sizeof(why))) {
        } else
            pct = -1;
        if (!(pct > 0 && pct <= 100)) {
            snprintf(err, n, "%s: must be a percentage in (0, 100]%s%s", where, *why ? ": " : "",
                     why);
            return refuse(err);
        }
        l->core = pct;
        l->has |= HV_HAS_CORE;
    } else if (!strcmp(key, "mem_limit")) {
        uint64_t b;
        if (json_is_integer(v) && json_integer_value(v) >= 0)
            b = (uint64_t)json_integer_value(v);
        else if (json_is_string(v) &&
                 !vgpu_parse_size(json_string_value(v), &b, why, sizeof(why))) {
        } else {
            snprintf(
                err, n,
                "%s: must be bytes (an integer >= 0, 0 = no cap) or a size such as \"4GiB\"%s%s",
                where, *why ? ": " : "", why);
            return refuse(err);
        }
        /* replies, commands and the state file carry bytes as JSON integers (int64): more than
         * any GPU holds is no cap, never a negative number the limiter would refuse */
        l->mem = b > (uint64_t)INT64_MAX ? 0 : b;
        l->has |= HV_HAS_MEM;
    } else if (!strcmp(key, "weight")) {
        if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 10000) {
            snprintf(err, n, "%s: must be an integer from 1 to 10000", where);
            return refuse(err);
        }
        l->weight = (uint32_t)json_integer_value(v);
        l->has |= HV_HAS_WEIGHT;
    } else if (!strcmp(key, "soft")) {
        if (!json_is_boolean(v)) {
            snprintf(err, n, "%s: must be true or false", where);
            return refuse(err);
        }
        l->soft = json_is_true(v);
        l->has |= HV_HAS_SOFT;
    } else {
        snprintf(err, n, "%s: unknown field", where);
        return refuse(err);
    }
    return 0;
}

/* Optional string member: -1 (error written) when present but not a string of < max bytes. */
static int opt_string(json_t *o, const char *key, char *out, size_t max, char *err, size_t n)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_string(v) || json_string_length(v) >= max ||
        strlen(json_string_value(v)) != json_string_length(v)) {
        snprintf(err, n, "%s: must be a string shorter than %zu bytes", key, max);
        return -1;
    }
    snprintf(out, max, "%s", json_string_value(v));
    return 0;
}

/* gpus[i] of a registration into q->gpu[q->ngpu++]. 0, or -1 with a message naming the field. */
static int parse_reg_gpu(json_t *g, size_t i, struct reg_req *q, char *err, size_t n)
{
    json_t *v;
    struct reg_gpu *rg = &q->gpu[q->ngpu++];
    if (!json_is_object(g)) {
        snprintf(err, n, "gpus[%zu]: must be an object", i);
        return -1;
    }
    v = json_object_get(g, "index");
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 1023) {
        snprintf(err, n, "gpus[%zu].index: must be an integer from 0 to 1023", i);
        return -1;
    }
    rg->index = (int)json_integer_value(v);
    v = json_object_get(g, "uuid");
    if (!json_is_string(v) || hv_norm_uuid(json_string_value(v), rg->uuid, sizeof(rg->uuid))) {
        snprintf(err, n, "gpus[%zu].uuid: must be a GPU uuid such as \"GPU-5e1a...\"", i);
        return -1;
    }
    for (int k = 0; k < q->ngpu - 1; k++)
        if (!strcmp(q->gpu[k].uuid, rg->uuid)) {
            snprintf(err, n, "gpus[%zu].uuid: listed twice", i);
            return -1;
        }
    json_t *env = json_object_get(g, "env");
    if (env && !json_is_null(env)) {
        if (!json_is_object(env)) {
            snprintf(err, n, "gpus[%zu].env: must be an object", i);
            return -1;
        }
        const char *key;
        json_t *ev;
        json_object_foreach(env, key, ev)
        {
            char where[96];
            snprintf(where, sizeof(where), "gpus[%zu].env.%.40s", i, key);
            if (json_is_null(ev)) continue;
            if (limit_from_json(&rg->env, key, ev, where, err, n)) return -1;
        }
    }
    return 0;
}

int parse_registration(json_t *o, struct reg_req *q, char *err, size_t n)
{
    memset(q, 0, sizeof(*q));
    /* what a worker says of its pod is read (and checked) but decides nothing unless the
     * daemon runs in development mode (--identity env) */
    json_t *v = json_object_get(o, "pod_id");
    if (v && !json_is_null(v) &&
        (!json_is_string(v) || !json_string_length(v) || json_string_length(v) >= VGPU_POD_ID_LEN ||
         strlen(json_string_value(v)) != json_string_length(v))) {
        snprintf(err, n, "pod_id: must be a non-empty string shorter than %d bytes",
                 VGPU_POD_ID_LEN);
        return -1;
    }
    if (v && json_is_string(v)) snprintf(q->pod_id, sizeof(q->pod_id), "%s", json_string_value(v));
    if (opt_string(o, "namespace", q->ns, sizeof(q->ns), err, n) ||
        opt_string(o, "pod", q->pod, sizeof(q->pod), err, n) ||
        opt_string(o, "pod_uid", q->pod_uid, sizeof(q->pod_uid), err, n) ||
        opt_string(o, "container", q->container, sizeof(q->container), err, n))
        return -1;
    if (strchr(q->ns, '/') || strchr(q->pod, '/')) {
        snprintf(err, n, "%s: must not contain '/'", strchr(q->ns, '/') ? "namespace" : "pod");
        return -1;
    }
    v = json_object_get(o, "pid");
    if (v && !json_is_null(v)) {
        if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > INT_MAX) {
            snprintf(err, n, "pid: must be a positive integer");
            return -1;
        }
        q->pid = (long)json_integer_value(v);
    }
    json_t *gpus = json_object_get(o, "gpus");
    if (gpus && !json_is_null(gpus)) {
        if (!json_is_array(gpus) || json_array_size(gpus) > HV_MAX_GPUS) {
            snprintf(err, n, "gpus: must be an array of at most %d GPUs", HV_MAX_GPUS);
            return -1;
        }
        size_t i;
        json_t *g;
        json_array_foreach(gpus, i, g)
        {
            if (parse_reg_gpu(g, i, q, err, n)) return -1;
        }
    }
    return 0;
}

int parse_put_limits(json_t *o, struct hv_limits *l, char *gpu_key, size_t keylen, char *err,
                     size_t n)
{
    memset(l, 0, sizeof(*l));
    snprintf(gpu_key, keylen, "all");
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        if (!strcmp(k, "gpu")) {
            if (json_is_integer(v) && json_integer_value(v) >= 0 && json_integer_value(v) < 1024)
                snprintf(gpu_key, keylen, "%d", (int)json_integer_value(v));
            else if (json_is_string(v) && !strcmp(json_string_value(v), "all"))
                snprintf(gpu_key, keylen, "all");
            else if (!json_is_string(v) || hv_norm_uuid(json_string_value(v), gpu_key, keylen)) {
                snprintf(err, n, "gpu: must be an index, a GPU uuid or \"all\"");
                return -1;
            }
        } else {
            /* the member's name, cut so that the reason still fits (the 256 bytes of
             * api_op_put_limits) */
            char where[200];
            snprintf(where, sizeof(where), "%s", k);
            if (limit_from_json(l, k, v, where, err, n)) return -1;
        }
    }
    if (!l->has) {
        snprintf(err, n, "body: no limit given (core_limit, mem_limit, weight, soft)");
        return -1;
    }
    return 0;
}
