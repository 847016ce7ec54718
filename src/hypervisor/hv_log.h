/* hv_log.h - structured logs of the daemon: one JSON object per line on stderr.
 *
 * Why this exists: the daemon runs under systemd / in a DaemonSet where logs are collected and
 * searched by field. Every line carries ts, level, msg and the event's own fields, built with
 * jansson so that names and messages from requests are always escaped correctly.
 */
#ifndef VGPU_HV_LOG_H
#define VGPU_HV_LOG_H

#include <jansson.h>

enum { HV_DEBUG = 0, HV_INFO = 1, HV_WARN = 2, HV_ERROR = 3 };

/* "debug" | "info" | "warn" | "error" -> level; -1 when unknown. */
int hv_log_parse_level(const char *name);
void hv_log_set_level(int level);
int hv_log_enabled(int level);
/* Log msg with the members of `fields` (a JSON object, stolen; may be NULL). */
void hv_log(int level, const char *msg, json_t *fields);

/* hv_logf(HV_INFO, "worker registered", "{s:s, s:i}", "worker", id, "pid", pid) */
#define hv_logf(level, msg, ...)                                                                   \
    do {                                                                                           \
        if (hv_log_enabled(level)) hv_log(level, msg, json_pack(__VA_ARGS__));                     \
    } while (0)

#endif
