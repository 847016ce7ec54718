/* hv_config.h - the daemon's settings: command-line flags, environment and the INI file.
 *
 * Why this exists: every other module reads one settled configuration; the precedence
 * (flags > environment > --config file > built-in defaults) is decided here once. What each
 * setting is (struct hv_config's field, option, INI key, environment variable, type, range,
 * default, --help text) is hv_settings.h's: a new setting is a field and a row there.
 */
#ifndef VGPU_HV_CONFIG_H
#define VGPU_HV_CONFIG_H

#include <stddef.h>

#include "hv_settings.h" /* struct hv_config, hv_limits and their value parsers */

/* Fill `c` from defaults, the --config file, the environment and argv. Returns 0, 1 when the
 * program should exit successfully (--help, --version), or -1 with a message in err. */
int hv_config_load(struct hv_config *c, int argc, char **argv, char *err, size_t errlen);

/* Apply INI text in the --config file's format ([daemon], [defaults], [kubernetes]) to c, over what
 * it holds, with the same checks as the file. Returns 0, or -1 with "line N: message" in err. */
int hv_config_parse_ini(struct hv_config *c, const char *text, char *err, size_t errlen);

#endif
