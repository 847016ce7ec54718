/* hv_settings.h - the one table of the daemon's settings.
 *
 * Why this exists: a setting is named in four places (its INI key, its environment variable,
 * its command-line option and its --help line); one row per setting names all of them, with
 * its type, range, default and the field of struct hv_config it fills, so that adding a
 * setting is adding a row, and the four can never disagree. hv_config.c decides the order in
 * which the sources apply; this file parses one value of one setting.
 */
#ifndef VGPU_HV_SETTINGS_H
#define VGPU_HV_SETTINGS_H

#include <stddef.h>
#include <stdio.h>

#include "hv_config.h"

enum hv_setting_type {
    HV_SET_TEXT,      /* a string field; refused when it does not fit, never cut */
    HV_SET_INT,       /* an int field in [lo, hi] */
    HV_SET_SIZE,      /* a uint64_t of bytes ("1GiB") in [lo, hi] */
    HV_SET_LOG_LEVEL, /* debug|info|warn|error */
    HV_SET_IDENTITY,  /* cgroup|env into identity_env */
    HV_SET_NS_LIST,   /* trusted namespaces, added to the list */
    HV_SET_LIMIT,     /* one [defaults] field (hv_limits_parse_field) */
    HV_SET_FLAG,      /* an option without a value (--help, --version: hv_config.c) */
};

struct hv_setting {
    const char *option;  /* long option without "--", or NULL (INI only) */
    const char *section; /* INI section, or NULL (option only) */
    const char *key;     /* INI key in that section */
    const char *env;     /* environment variable, or NULL */
    int env_if_unset;    /* the variable applies only when the INI file left the field empty */
    enum hv_setting_type type;
    long long lo, hi;  /* HV_SET_INT, HV_SET_SIZE */
    const char *range; /* the range as the messages and --help show it */
    size_t off, size;  /* the field in struct hv_config */
    const char *def;   /* the built-in default, parsed as any value is; NULL: none */
    const char *arg;   /* --help: what the option's value is ("PATH", "N") */
    const char *help;  /* --help: what it does */
};

#define HV_MAX_SETTINGS 64 /* rows at most */

extern const struct hv_setting hv_settings[];
extern const size_t hv_n_settings;

/* The setting of INI `section` and `key`, or NULL. *known_section: 1 when some setting is in
 * that section. */
const struct hv_setting *hv_setting_by_key(const char *section, const char *key,
                                           int *known_section);
/* Set s's field of c from `value`. `who` names the source in messages ("--tick-ms",
 * "[daemon] tick_ms", "VGPU_SOCKET"). 0, or -1 with a message naming who and the value. */
int hv_setting_apply(struct hv_config *c, const struct hv_setting *s, const char *value,
                     const char *who, char *err, size_t errlen);
/* "--tick-ms" / "[daemon] tick_ms" for s into buf. */
const char *hv_setting_option_name(const struct hv_setting *s, char *buf, size_t n);
const char *hv_setting_key_name(const struct hv_setting *s, char *buf, size_t n);
/* The --help text, every setting with its option, INI key, environment and default. */
void hv_settings_usage(FILE *f);

#endif
