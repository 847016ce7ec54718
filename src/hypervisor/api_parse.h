/* api_parse.h - the request bodies of the daemon's HTTP API, read into plain structs.
 *
 * Why this exists: the bodies come from pods (POST /v1/workers) and from operators
 * (PUT /v1/pods/{ns}/{name}/limits) and are untrusted. Their parsing is kept apart from the
 * routes and the registry (api_worker.c, api_operator.c) as pure functions (jansson, size_parse.h
 * and names.h only), so that a fuzz harness (tests/fuzz/fuzz_api_bodies.c) runs exactly the
 * daemon's code. Every refusal is a message that starts with the field it is about, e.g.
 * "gpus[0].uuid: listed twice"; the routes reply with it as {"error": "..."}.
 */
#ifndef VGPU_HV_API_PARSE_H
#define VGPU_HV_API_PARSE_H

#include <jansson.h>
#include <stddef.h>

#include "hv_config.h" /* struct hv_limits */
#include "names.h"     /* HV_MAX_GPUS, VGPU_UUID_LEN */

/* One GPU of a registration: index, uuid (normalised, hv_norm_uuid) and the limits of the
 * worker's environment for it. */
struct reg_gpu {
    int index;
    char uuid[VGPU_UUID_LEN];
    struct hv_limits env;
};

/* A registration body: every string terminated and never cut (a longer one is refused). */
struct reg_req {
    char pod_id[VGPU_POD_ID_LEN];
    char ns[64], pod[254], pod_uid[64], container[128];
    long pid;
    int ngpu;
    struct reg_gpu gpu[HV_MAX_GPUS];
};

/* The body of POST /v1/workers into q; 0, or -1 with a message in err[n]. */
int parse_registration(json_t *o, struct reg_req *q, char *err, size_t n);

/* The body of PUT /v1/pods/{ns}/{name}/limits: the limits into l and the GPU they are for into
 * gpu_key[keylen] ("all" when the body names none, an index "0".."1023", or a normalised
 * uuid); 0, or -1 with a message in err[n]. A body without any limit is refused. */
int parse_put_limits(json_t *o, struct hv_limits *l, char *gpu_key, size_t keylen, char *err,
                     size_t n);

#endif
