/* log.h - the limiter's log lines on stderr.
 *
 * Why this exists: the limiter lives inside someone else's process. Its messages must be
 * recognisable ("[vgpu-limiter pid N] LEVEL: ..."), cheap when disabled, free of stdio locks
 * (one write(2) per line), and follow the log-level variables of all three seeds.
 */
#ifndef VGPU_LIMITER_LOG_H
#define VGPU_LIMITER_LOG_H

enum {
    VGPU_LOG_OFF = -1, /* nothing but the line that says GPU work is refused (limiter.c) */
    VGPU_LOG_ERROR = 0,
    VGPU_LOG_WARN = 1,
    VGPU_LOG_INFO = 2,
    VGPU_LOG_DEBUG = 3,
    VGPU_LOG_TRACE = 4
};

extern int vgpu_log_level;

void vgpu_log_write(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define VLOG(level, ...)                                                                           \
    do {                                                                                           \
        if ((level) <= vgpu_log_level) vgpu_log_write((level), __VA_ARGS__);                       \
    } while (0)
#define VLOG_ERROR(...) VLOG(VGPU_LOG_ERROR, __VA_ARGS__)
#define VLOG_WARN(...) VLOG(VGPU_LOG_WARN, __VA_ARGS__)
#define VLOG_INFO(...) VLOG(VGPU_LOG_INFO, __VA_ARGS__)
#define VLOG_DEBUG(...) VLOG(VGPU_LOG_DEBUG, __VA_ARGS__)
#define VLOG_TRACE(...) VLOG(VGPU_LOG_TRACE, __VA_ARGS__)

/* Level from a name (VGPU_LOG_LEVEL, vcuda-hook's VCUDA_LOG_LEVEL with spdlog's names, vgpu.rs's
 * TF_LOG_LEVEL), case-insensitive: off/none, critical/crit/fatal/error/err, warn/warning, info,
 * debug, trace/verbose, or 0-4 (error..trace). Stores it in *level; returns -1 (level untouched)
 * if `text` is not exactly one of these. */
int vgpu_log_level_from_name(const char *text, int *level);

/* Level from VGPU-Controller's LOGGER_LEVEL, exactly "0".."5": 0-2 show fatal messages only
 * (VGPU-Controller raises anything below 3 to "fatal"), 3 adds errors, warnings and infos, 4
 * verbose (debug here), 5 details (trace here). Returns -1 if `text` is not one of these. */
int vgpu_log_level_from_logger_level(const char *text, int *level);

#endif
