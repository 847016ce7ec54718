/* log.c - the limiter's log lines on stderr (see log.h). */
#define _GNU_SOURCE
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
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

int vgpu_log_level_from_name(const char *text, int *level)
{
    static const struct {
        const char *name;
        int level;
    } names[] = {
        {"off", VGPU_LOG_OFF},       {"none", VGPU_LOG_OFF},    {"critical", VGPU_LOG_ERROR},
        {"crit", VGPU_LOG_ERROR},    {"fatal", VGPU_LOG_ERROR}, {"error", VGPU_LOG_ERROR},
        {"err", VGPU_LOG_ERROR},     {"warn", VGPU_LOG_WARN},   {"warning", VGPU_LOG_WARN},
        {"info", VGPU_LOG_INFO},     {"debug", VGPU_LOG_DEBUG}, {"trace", VGPU_LOG_TRACE},
        {"verbose", VGPU_LOG_TRACE}, {"0", VGPU_LOG_ERROR},     {"1", VGPU_LOG_WARN},
        {"2", VGPU_LOG_INFO},        {"3", VGPU_LOG_DEBUG},     {"4", VGPU_LOG_TRACE},
    };
    if (!text) return -1;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcasecmp(text, names[i].name) == 0) {
            *level = names[i].level;
            return 0;
        }
    return -1;
}

int vgpu_log_level_from_logger_level(const char *text, int *level)
{
    /* VGPU-Controller's levels: FATAL 0, ERROR 1, WARNING 2, INFO 3, VERBOSE 4, DETAIL 5; a
     * message shows when its level <= LOGGER_LEVEL, and a LOGGER_LEVEL below INFO is raised
     * to FATAL. Its fatal messages are our errors (the configuration refuses GPU work). */
    static const int map[] = {VGPU_LOG_ERROR, VGPU_LOG_ERROR, VGPU_LOG_ERROR,
                              VGPU_LOG_INFO,  VGPU_LOG_DEBUG, VGPU_LOG_TRACE};
    if (!text || text[0] < '0' || text[0] > '5' || text[1]) return -1;
    *level = map[text[0] - '0'];
    return 0;
}
