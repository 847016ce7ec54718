/* log.c - the limiter's log lines on stderr (see log.h). */
#define _GNU_SOURCE
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

int vgpu_log_level = VGPU_LOG_WARN;

void vgpu_log_write(int level, const char *fmt, ...)
{
    static const char *names[] = {"ERROR", "WARN", "INFO", "DEBUG", "TRACE"};
    char buf[1024];
    int n = snprintf(buf, sizeof(buf), "[vgpu-limiter pid %d] %s: ", (int)getpid(),
                     names[level < 0   ? 0
                           : level > 4 ? 4
                                       : level]);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(buf + n, sizeof(buf) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof(buf) - 2) len = sizeof(buf) - 2;
    buf[len++] = '\n';
    ssize_t w = write(2, buf, len);
    (void)w;
}

int vgpu_log_level_from_name(const char *text)
{
    static const struct {
        const char *name;
        int level;
    } names[] = {{"error", VGPU_LOG_ERROR},  {"fatal", VGPU_LOG_ERROR},  {"warn", VGPU_LOG_WARN},
                 {"warning", VGPU_LOG_WARN}, {"info", VGPU_LOG_INFO},    {"debug", VGPU_LOG_DEBUG},
                 {"trace", VGPU_LOG_TRACE},  {"verbose", VGPU_LOG_TRACE}};
    if (!text || !*text) return -1;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcasecmp(text, names[i].name) == 0) return names[i].level;
    char *end;
    long v = strtol(text, &end, 10);
    if (*end || v < 0 || v > 4) return -1;
    return (int)v;
}

int vgpu_log_level_from_logger_level(const char *text)
{
    /* VGPU-Controller: 0-3 show infos/errors/warnings/fatal, 4 adds verbose, 5 adds details */
    if (!text || !*text) return -1;
    char *end;
    long v = strtol(text, &end, 10);
    if (*end || v < 0 || v > 5) return -1;
    return v <= 3 ? VGPU_LOG_INFO : v == 4 ? VGPU_LOG_DEBUG : VGPU_LOG_TRACE;
}
