/* state_parse.h - the state file (--state, state_store.h) checked whole, as a pure function.
 *
 * Why this exists: the state file is written by the daemon but may be edited by hand, so it is
 * untrusted text. Its checking is kept apart from the reading of the file and from the
 * registry (state_store.c) so that a fuzz harness (tests/fuzz/fuzz_state_file.c) runs exactly
 * the daemon's checks. Format:
 *   {"version": 1, "pods": {"ns/name": {"suspended": false,
 *       "limits": {"all": {"core_limit": 30.0, "mem_limit": 4294967296, "weight": 2,
 *                          "soft": true}, "gpu-...": {...}, "0": {...}}}}}
 */
#ifndef VGPU_HV_STATE_PARSE_H
#define VGPU_HV_STATE_PARSE_H

#include <stddef.h>

#include "hv_config.h" /* struct hv_limits */
#include "names.h"     /* HV_MAX_GPUS, VGPU_UUID_LEN */

/* GPU settings one pod may have: one per GPU and "all" (registry.c keeps as many) */
#define STATE_MAX_KEYS (HV_MAX_GPUS + 1)

/* One pod of the file, every value checked. */
struct state_pod {
    char ns[64];    /* 1-63 bytes, hv_name_ok */
    char name[254]; /* 1-253 bytes, hv_name_ok */
    int suspended;  /* 0 / 1 */
    int n;          /* settings in key[] and lim[], distinct keys */
    /* GPU keys: "all", an index "0".."1023" or a normalised uuid "gpu-..." */
    char key[STATE_MAX_KEYS][VGPU_UUID_LEN];
    /* their limits: at least one field each, every one in range */
    struct hv_limits lim[STATE_MAX_KEYS];
};

struct state_doc {
    size_t n_pods;
    struct state_pod *pods; /* in the file's order; malloc'd (state_doc_free) */
};

/* Check the file's text[0..len) whole: 0 with every pod in out (free it with state_doc_free),
 * or -1 with nothing in out and the first problem in err, as "WHERE[.FIELD]: why" (e.g.
 * `pods."team/a".limits."all".core_limit: must be a percentage in (0, 100]`) or "why" for the
 * file as a whole (not JSON, duplicate keys, not an object); the caller names the file. A
 * message of at most 1000 bytes: it fits in err when errlen is 1024. */
int state_parse(const char *text, size_t len, struct state_doc *out, char *err, size_t errlen);
void state_doc_free(struct state_doc *doc);

/* `s` as a JSON string for messages, at most n bytes with the NUL; see state_parse.c. */
void state_quote(char *out, size_t n, const char *s);

#endif
