/* command_channel.c - commands to workers: sequence numbers, queues, long-poll, SSE.
 *
 * Why this exists: see command_channel.h. Waiting happens on the registry's condition
 * variable (CLOCK_MONOTONIC) with the registry lock, so a command pushed by any thread wakes
 * every waiter and nobody holds a pointer to a worker across a wait: workers are looked up
 * again by id after every wake-up.
 */
#define _GNU_SOURCE
#include "command_channel.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pod_regions.h"
#include "shm_region.h"

#define KEEPALIVE_NS (10ull * 1000000000ull)

static void queue_add(struct hv_worker *w, uint64_t seq, const char *json)
{
    if (w->qlen == HV_CMD_QUEUE) {
        free(w->q[0].json);
        memmove(&w->q[0], &w->q[1], (HV_CMD_QUEUE - 1) * sizeof(w->q[0]));
        w->qlen--;
    }
    char *copy = strdup(json);
    if (!copy) return;
    w->q[w->qlen].seq = seq;
    w->q[w->qlen].json = copy;
    w->qlen++;
    w->last_cmd_seq = seq;
}

uint64_t cmd_push_pod(struct hv_pod *p, const char *type)
{
    uint64_t seq = ++hv_reg.seq;
    hv_reg.commands++;
    json_t *c = json_pack("{s:I, s:s, s:o}", "seq", (json_int_t)seq, "type", type, "limits",
                          registry_limits_json(p));
    char *text = c ? json_dumps(c, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(c);
    if (text) {
        for (struct hv_worker *w = hv_reg.workers; w; w = w->next)
            if (!strcmp(w->pod_key, p->key)) queue_add(w, seq, text);
        free(text);
    }
    for (int i = 0; i < p->ngpu; i++)
        p->gpu[i].pushed = p->gpu[i].effective;
    region_set_seq(p, seq);
    pthread_cond_broadcast(&hv_reg.cv);
    return seq;
}

static struct timespec abs_mono(uint64_t ns)
{
    return (struct timespec){.tv_sec = (time_t)(ns / 1000000000ull),
                             .tv_nsec = (long)(ns % 1000000000ull)};
}

int cmd_wait(const char *worker_id, uint64_t after, int timeout_s, json_t **out)
{
    uint64_t deadline = vgpu_now_ns() + (uint64_t)timeout_s * 1000000000ull;
    json_t *arr = json_array();
    int ret = 0;
    registry_lock();
    struct hv_worker *w = registry_worker_find(worker_id);
    if (w) w->polling++;
    for (;;) {
        if (!(w = registry_worker_find(worker_id))) {
            ret = -1;
            break;
        }
        w->last_seen_ns = vgpu_now_ns();
        int found = 0;
        for (int i = 0; i < w->qlen; i++)
            if (w->q[i].seq > after) {
                json_t *c = json_loads(w->q[i].json, 0, NULL);
                if (c) json_array_append_new(arr, c);
                found = 1;
            }
        if (found || hv_reg.stopping || vgpu_now_ns() >= deadline) break;
        struct timespec ts = abs_mono(deadline);
        pthread_cond_timedwait(&hv_reg.cv, &hv_reg.mu, &ts);
    }
    if (w) w->polling--;
    registry_unlock();
    if (ret)
        json_decref(arr);
    else
        *out = arr;
    return ret;
}

/* --- Server-Sent Events --------------------------------------------------------------------- */

struct sse {
    char id[24];
    uint64_t last;
    uint64_t next_keepalive;
    char *buf;
    size_t len, off;
};

static void sse_set(struct sse *s, char *text)
{
    free(s->buf);
    s->buf = text;
    s->len = text ? strlen(text) : 0;
    s->off = 0;
}

static ssize_t sse_read(void *cls, uint64_t pos, char *out, size_t max)
{
    (void)pos;
    struct sse *s = cls;
    if (s->off >= s->len) {
        char *text = NULL;
        registry_lock();
        for (;;) {
            struct hv_worker *w = registry_worker_find(s->id);
            if (!w || hv_reg.stopping) {
                registry_unlock();
                return MHD_CONTENT_READER_END_OF_STREAM;
            }
            uint64_t now = vgpu_now_ns();
            w->last_seen_ns = now;
            for (int i = 0; i < w->qlen && !text; i++)
                if (w->q[i].seq > s->last) {
                    if (asprintf(&text, "id: %llu\nevent: command\ndata: %s\n\n",
                                 (unsigned long long)w->q[i].seq, w->q[i].json) < 0)
                        text = NULL;
                    s->last = w->q[i].seq;
                }
            if (text) break;
            if (now >= s->next_keepalive) {
                text = strdup(": keepalive\n\n");
                s->next_keepalive = now + KEEPALIVE_NS;
                break;
            }
            struct timespec ts = abs_mono(s->next_keepalive);
            pthread_cond_timedwait(&hv_reg.cv, &hv_reg.mu, &ts);
        }
        registry_unlock();
        if (!text) return MHD_CONTENT_READER_END_WITH_ERROR;
        sse_set(s, text);
    }
    size_t n = s->len - s->off < max ? s->len - s->off : max;
    memcpy(out, s->buf + s->off, n);
    s->off += n;
    return (ssize_t)n;
}

static void sse_free(void *cls)
{
    struct sse *s = cls;
    registry_lock();
    struct hv_worker *w = registry_worker_find(s->id);
    if (w) w->polling--;
    registry_unlock();
    free(s->buf);
    free(s);
}

struct MHD_Response *cmd_event_stream(const char *worker_id, uint64_t after)
{
    struct sse *s = calloc(1, sizeof(*s));
    if (!s) return NULL;
    snprintf(s->id, sizeof(s->id), "%s", worker_id);
    s->last = after;
    s->next_keepalive = vgpu_now_ns() + KEEPALIVE_NS;
    sse_set(s, strdup(": connected\n\n"));
    registry_lock();
    struct hv_worker *w = registry_worker_find(worker_id);
    if (w) w->polling++;
    registry_unlock();
    if (!w) {
        free(s->buf);
        free(s);
        return NULL;
    }
    struct MHD_Response *r =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, sse_read, s, sse_free);
    if (!r) {
        sse_free(s);
        return NULL;
    }
    MHD_add_response_header(r, "Content-Type", "text/event-stream");
    MHD_add_response_header(r, "Cache-Control", "no-cache");
    return r;
}
