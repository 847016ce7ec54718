/* config_env.h - what the readers of the limiter's configuration share (config.c,
 * config_limits.c): reading a variable from the environment given to vgpu_config_load, and
 * recording an error or a note in the configuration.
 *
 * Why this exists: the configuration is read from several groups of variables in two files;
 * every one of them must report a bad value the same way (the first error is kept and names
 * the variable, the process then fails closed), so the reporting lives here once.
 */
#ifndef VGPU_CONFIG_ENV_H
#define VGPU_CONFIG_ENV_H

#include "config.h"

/* The value of `name` in `envp`, NULL if absent. */
const char *vgpu_env_get(char *const *envp, const char *name);

/* Record a configuration error: `fmt` takes `var` (the variable) and `detail`, in that order.
 * Only the first is kept; the count tells whether there were more. */
void vgpu_config_error(struct vgpu_config *cfg, const char *fmt, const char *var,
                       const char *detail);

/* Record a note to log once logging is set up (vgpu_config_log_notes). */
void vgpu_config_note(struct vgpu_config *cfg, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* digits, optionally '.' and digits, optionally '%' when `pct`: no sign, blank, exponent or
 * hexadecimal, which strtod would take */
int vgpu_plain_decimal(const char *s, int pct);

/* Surrounding blanks (which a value must not have). */
int vgpu_blank_edges(const char *s);

/* The per-GPU limits (TENSOR_FUSION_*, CUDA_*_LIMIT*, VCUDA_*; config.h) into cfg, in the order
 * vgpu_config_load has always read them. */
void vgpu_config_load_limits(struct vgpu_config *cfg, char *const *envp);

#endif
