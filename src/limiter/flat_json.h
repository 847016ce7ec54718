/* flat_json.h - a strict reader for flat JSON objects such as {"0": 2147483648, "gpu-...": "4GiB"}.
 *
 * Why this exists: the limiter is injected into programs we do not control and may depend on
 * libc only, so it cannot link a JSON library; its configuration (TENSOR_FUSION_CUDA_*_LIMIT)
 * is a one-level map. This reader accepts exactly that and rejects everything else with a
 * message that says where. The daemon and CLI use a real JSON library instead.
 */
#ifndef VGPU_FLAT_JSON_H
#define VGPU_FLAT_JSON_H

#include <stddef.h>

enum vgpu_json_kind { VGPU_JSON_NUMBER, VGPU_JSON_STRING, VGPU_JSON_BOOL, VGPU_JSON_NULL };

/* Called once per member; return non-zero (after writing err) to stop with an error. */
typedef int (*vgpu_json_member_fn)(void *ctx, const char *key, const char *value,
                                   enum vgpu_json_kind kind, char *err, size_t errlen);

/* Parse `text`; returns 0, or -1 with a message in err. Keys and string values are unescaped
 * (\" \\ \/ \b \f \n \r \t and \u00XX); at most 255 bytes each. Duplicate keys are an error. */
int vgpu_parse_flat_json(const char *text, vgpu_json_member_fn fn, void *ctx, char *err,
                         size_t errlen);

#endif
