/* config_env.c - reading variables and reporting errors and notes for the configuration's
 * readers (see config_env.h), and the UUID form every reader compares. */
#define _GNU_SOURCE
#include "config_env.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

const char *vgpu_env_get(char *const *envp, const char *name)
{
    size_t n = strlen(name);
    for (char *const *e = envp; e && *e; e++)
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=') return *e + n + 1;
    return NULL;
}

void vgpu_config_error(struct vgpu_config *cfg, const char *fmt, const char *var,
                       const char *detail)
{
    if (cfg->error++) return; /* keep the first message; the count says there were more */
    snprintf(cfg->error_msg, sizeof(cfg->error_msg), fmt, var, detail);
}

void vgpu_config_note(struct vgpu_config *cfg, int level, const char *fmt, ...)
{
    if (cfg->n_notes >= VGPU_CFG_MAX_NOTES) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cfg->notes[cfg->n_notes].text, sizeof(cfg->notes[0].text), fmt, ap);
    va_end(ap);
    cfg->notes[cfg->n_notes++].level = level;
}

void vgpu_config_log_notes(const struct vgpu_config *cfg)
{
    for (int i = 0; i < cfg->n_notes; i++)
        VLOG(cfg->notes[i].level, "%s", cfg->notes[i].text);
}

int vgpu_plain_decimal(const char *s, int pct)
{
    const char *p = s;
    if (!isdigit((unsigned char)*p)) return 0;
    while (isdigit((unsigned char)*p))
        p++;
    if (*p == '.') {
        p++;
        if (!isdigit((unsigned char)*p)) return 0;
        while (isdigit((unsigned char)*p))
            p++;
    }
    if (pct && *p == '%') p++;
    return *p == 0;
}

/* a size as written in a variable: no blank around it (the parser allows blanks inside) */
int vgpu_blank_edges(const char *s)
{
    size_t n = strlen(s);
    return n && (isspace((unsigned char)s[0]) || isspace((unsigned char)s[n - 1]));
}

int vgpu_normalize_uuid(const char *in, char *out, unsigned outlen)
{
    const char *p = in;
    const char *prefix = "gpu-";
    while (*p && isspace((unsigned char)*p))
        p++;
    if (strncasecmp(p, "GPU-", 4) == 0) {
        p += 4;
    } else if (strncasecmp(p, "MIG-", 4) == 0) {
        p += 4;
        prefix = "mig-";
    }
    static const int groups[] = {8, 4, 4, 4, 12};
    char body[40];
    size_t n = 0;
    for (int g = 0; g < 5; g++) {
        for (int i = 0; i < groups[g]; i++, p++) {
            if (!isxdigit((unsigned char)*p)) return -1;
            body[n++] = (char)tolower((unsigned char)*p);
        }
        if (g < 4) {
            if (*p != '-') return -1;
            body[n++] = '-';
            p++;
        }
    }
    body[n] = 0;
    while (*p && isspace((unsigned char)*p))
        p++;
    if (*p) return -1;
    if (snprintf(out, outlen, "%s%s", prefix, body) >= (int)outlen) return -1;
    return 0;
}

/* "0".."15" exactly as written (no leading zero, sign or blank) -> index, else -1 */
