/* hv_json.h - a small strict JSON reader for the node daemon's replies, and a string escaper.
 *
 * Why this exists: the limiter is injected into programs we do not control and may depend on
 * libc only, so it cannot link a JSON library; flat_json.c reads one-level maps only, while the
 * daemon's replies (docs/hypervisor.md) nest arrays of objects. This reader works in place on a
 * NUL-terminated text: validate the whole document once (hv_json_valid), then walk it with
 * pointers to values. Depth is bounded; nothing is allocated.
 */
#ifndef VGPU_HV_JSON_H
#define VGPU_HV_JSON_H

#include <stddef.h>
#include <stdint.h>

#define HV_JSON_MAX_DEPTH 32

/* 1 if `text` is exactly one well-formed JSON value (surrounding white space allowed). */
int hv_json_valid(const char *text);

/* Value of member `key` of the object at `obj` (white space before it allowed), or NULL when
 * `obj` is not an object or has no such member. The text must have passed hv_json_valid. */
const char *hv_json_get(const char *obj, const char *key);

/* Iterate an array: `*it` starts at the array ('['); each call returns the next element or
 * NULL at the end (or if it is not an array). */
const char *hv_json_next(const char **it);

/* Typed reads of the value at `v` (NULL allowed): 0 on success, -1 on a wrong type or range. */
int hv_json_u64(const char *v, uint64_t *out);  /* non-negative integer, no fraction */
int hv_json_double(const char *v, double *out); /* any number */
int hv_json_bool(const char *v, int *out);
int hv_json_string(const char *v, char *out, size_t outlen); /* unescaped; -1 if too long */
int hv_json_is_null(const char *v);

/* Append `in` as a JSON string (quotes included) to out[*len..cap); returns -1 if it does not
 * fit (out stays NUL-terminated). */
int hv_json_put_string(char *out, size_t cap, size_t *len, const char *in);

#endif
