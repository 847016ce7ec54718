/* hv_log.c - structured logs of the daemon: one JSON object per line on stderr.
 *
 * Why this exists: see hv_log.h. Lines are written with one fputs under the stream lock so
 * that lines of concurrent request threads never interleave.
 */
#define _GNU_SOURCE
#include "hv_log.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static _Atomic int min_level = HV_INFO;
static const char *const names[] = {"debug", "info", "warn", "error"};

int hv_log_parse_level(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (name && !strcmp(name, names[i])) return i;
    if (name && !strcmp(name, "warning")) return HV_WARN;
    return -1;
}

void hv_log_set_level(int level)
{
    atomic_store(&min_level, level);
}

int hv_log_enabled(int level)
{
    return level >= atomic_load(&min_level);
}

void hv_log(int level, const char *msg, json_t *fields)
{
    if (!hv_log_enabled(level)) {
        json_decref(fields);
        return;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[40];
    size_t n = strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when + n, sizeof(when) - n, ".%03ldZ", ts.tv_nsec / 1000000);

    json_t *line = json_object();
    json_object_set_new(line, "ts", json_string(when));
    json_object_set_new(line, "level", json_string(names[level < 0 ? 0 : level > 3 ? 3 : level]));
    json_object_set_new(line, "msg", json_string(msg ? msg : ""));
    if (json_is_object(fields)) json_object_update_missing(line, fields);
    json_decref(fields);
    char *text = json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(line);
    if (!text) return;
    flockfile(stderr);
    fputs(text, stderr);
    fputc('\n', stderr);
    funlockfile(stderr);
    fflush(stderr);
    free(text);
}
