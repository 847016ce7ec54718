/* names.h - the names the daemon accepts from outside: GPU uuids, namespace/pod names, and the
 * names of pods' directories.
 *
 * Why this exists: the same name arrives by several ways (a registration body, an operator's
 * PUT, a URL path, the state file), and a name one of them accepts must mean the same and be
 * accepted by the others: a pod the API can name must load from the state file, and a GPU
 * written as "GPU-5E1A..." must match the GPU the daemon knows as "gpu-5e1a...". One place
 * decides, so that the ways cannot drift apart. Pure functions (jansson only, for its UTF-8
 * check), shared with the fuzz harnesses (tests/fuzz).
 */
#ifndef VGPU_HV_NAMES_H
#define VGPU_HV_NAMES_H

#include <stddef.h>

#include "shm_layout.h" /* VGPU_UUID_LEN, VGPU_MAX_DEVICES: constants only */

/* GPUs one pod may register, as registry.h defines it (the same tokens: a C compiler refuses
 * a macro redefined differently, so a file that includes both keeps them in step). */
#define HV_MAX_GPUS VGPU_MAX_DEVICES

/* Normalise a GPU uuid to the form GPUs are matched by: lower case, "gpu-" prefix, only
 * letters, digits and '-', 5 to VGPU_UUID_LEN - 1 bytes. 0, or -1 (out is then undefined). */
int hv_norm_uuid(const char *in, char *out, size_t outlen);

/* A namespace, pod name or worker id s[0..len): 1 to max-1 bytes, no control bytes, spaces,
 * DEL or '/', not "." or "..", and valid UTF-8 (names go into JSON replies, logs and the state
 * file, and jansson refuses anything else there). 1 when it is acceptable. */
int hv_name_ok(const char *s, size_t len, size_t max);

/* The name of a pod's directory under <shm-dir>/pods (pod_files.h): 1 to HV_DIR_NAME_LEN - 1
 * bytes of [A-Za-z0-9._-], not starting with '.'. 1 when it is acceptable. */
#define HV_DIR_NAME_LEN 96
int hv_dir_name_ok(const char *name);

/* Make s valid UTF-8 in place: the bytes of a broken or invalid character become '?'. For text
 * that quotes a request (cut at byte limits) and goes into a JSON reply, which jansson refuses
 * unless it is UTF-8. */
void hv_utf8_clean(char *s);

#endif
