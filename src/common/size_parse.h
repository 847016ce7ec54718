/* size_parse.h - parse the numbers users write in limits: sizes with units and percentages.
 *
 * Why this exists: every limit arrives as text (environment, CLI, HTTP). One strict parser,
 * shared by limiter, daemon and CLI, means "4GiB" means the same everywhere and anything it
 * cannot read is rejected with a message instead of being taken as 0 or unlimited.
 */
#ifndef VGPU_SIZE_PARSE_H
#define VGPU_SIZE_PARSE_H

#include <stddef.h>
#include <stdint.h>

/* Bytes. Accepts an integer or decimal number with an optional unit, case-insensitive:
 *   b | k m g t | ki mi gi ti | kib mib gib tib  (binary, powers of 1024)
 *   kb mb gb tb                                  (decimal, powers of 1000)
 * and products of such terms, optionally in parentheses, e.g. "(1024 * 1024 * 1024 * 10)"
 * as written in the vcuda-hook README. Returns 0, or -1 with a message in err. */
int vgpu_parse_size(const char *text, uint64_t *out, char *err, size_t errlen);

/* Percentage in (0, 100], with or without a trailing '%'. */
int vgpu_parse_percent(const char *text, double *out, char *err, size_t errlen);

/* Boolean: 1/0, true/false, yes/no, on/off (case-insensitive). */
int vgpu_parse_bool(const char *text, int *out, char *err, size_t errlen);

/* Human-readable size ("4.00 GiB") for messages. */
const char *vgpu_format_size(uint64_t bytes, char *buf, size_t buflen);

#endif
