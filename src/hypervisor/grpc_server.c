/* grpc_server.c - gRPC server and client calls over gRPC's C core (see grpc_server.h).
 *
 * Why this exists: see grpc_server.h. How the core is driven here:
 *
 *   - One completion queue per server for notifications of new calls (`ncq`, polled by the
 *     server's thread); for every method one call requested ahead (a `slot`), requested again
 *     as soon as it is taken, so calls never wait for a handler to finish.
 *   - Each call gets its own pluck queue, created with its slot, so the thread handling it can
 *     wait for exactly its own operations, each with a deadline, without disturbing any other.
 *   - A stream posts RECV_CLOSE_ON_SERVER first; its completion is how the handler learns that
 *     the peer went away (or that gs_server_stop cancelled the call).
 *
 * Invariants: a slot is owned by the server's thread until it is handed to a handler thread,
 * which frees it; a call's queue is destroyed only after every tag started on it was plucked;
 * `active` counts handler threads, and the server is freed only when it is back to 0.
 */
#define _GNU_SOURCE
#include "grpc_server.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/log.h>
#include <grpc/support/time.h>

#include "hv_log.h"

#define SEND_TIMEOUT_MS 10000  /* a peer that takes no message for this long is cut off */
#define FINISH_TIMEOUT_MS 5000 /* to deliver a reply and its status */

struct gs_method_rt {
    struct gs_method m;
    void *handle; /* grpc_server_register_method */
};

struct gs_server {
    grpc_server *srv;
    grpc_completion_queue *ncq;
    pthread_t thr;
    int nmeth;
    struct gs_method_rt meth[GS_MAX_METHODS];
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int active;  /* handler threads running (mu) */
    int pending; /* slots requested and not yet returned (server thread only) */
    atomic_int stopping;
    int shutdown_tag; /* its address is the tag of grpc_server_shutdown_and_notify */
    char path[108];
};

/* One requested call: what the core fills in when a call arrives, and its own queue. */
struct gs_slot {
    struct gs_server *s;
    int mi; /* index in meth[], -1: any other method (answered UNIMPLEMENTED) */
    grpc_call *call;
    gpr_timespec deadline;
    grpc_metadata_array md;
    grpc_call_details details; /* mi == -1 only */
    grpc_byte_buffer *payload; /* the request message of a registered method (may be NULL) */
    grpc_completion_queue *cq; /* bound to the call; plucked by its handler thread */
};

struct gs_stream {
    struct gs_slot *slot;
    int close_tag, send_tag; /* addresses are tags */
    int close_done;          /* RECV_CLOSE_ON_SERVER completed (the call is over) */
    int ended;               /* no more messages can be sent */
};

/* --- helpers ------------------------------------------------------------------------------- */

static gpr_timespec after_ms(int ms)
{
    return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(ms, GPR_TIMESPAN));
}

/* The flat bytes of a byte buffer, at most `max`: 0 (*out malloc'ed, may be NULL when empty),
 * -1 when too large or out of memory. */
static int bb_read(grpc_byte_buffer *bb, size_t max, uint8_t **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    if (!bb) return 0;
    size_t n = grpc_byte_buffer_length(bb);
    if (n > max) return -1;
    if (!n) return 0;
    grpc_byte_buffer_reader r;
    if (!grpc_byte_buffer_reader_init(&r, bb)) return -1;
    grpc_slice all = grpc_byte_buffer_reader_readall(&r);
    grpc_byte_buffer_reader_destroy(&r);
    size_t got = GRPC_SLICE_LENGTH(all);
    uint8_t *buf = got <= max ? malloc(got ? got : 1) : NULL;
    if (buf) memcpy(buf, GRPC_SLICE_START_PTR(all), got);
    grpc_slice_unref(all);
    if (!buf) return -1;
    *out = buf;
    *len = got;
    return 0;
}

static grpc_byte_buffer *bb_make(const uint8_t *data, size_t len)
{
    grpc_slice sl = grpc_slice_from_copied_buffer((const char *)data, len);
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&sl, 1); /* takes its own reference */
    grpc_slice_unref(sl);
    return bb;
}

/* Wait for `tag` on the call's queue until `ms` have passed; on timeout cancel the call (which
 * completes every operation of it) and wait for the tag for good. The event's success. */
static int pluck_or_cancel(grpc_call *call, grpc_completion_queue *cq, void *tag, int ms)
{
    grpc_event ev = grpc_completion_queue_pluck(cq, tag, after_ms(ms), NULL);
    if (ev.type == GRPC_OP_COMPLETE) return ev.success;
    grpc_call_cancel(call, NULL);
    (void)grpc_completion_queue_pluck(cq, tag, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
    return 0;
}

static void slot_free(struct gs_slot *sl)
{
    if (sl->call) grpc_call_unref(sl->call);
    if (sl->payload) grpc_byte_buffer_destroy(sl->payload);
    grpc_metadata_array_destroy(&sl->md);
    if (sl->mi < 0) grpc_call_details_destroy(&sl->details);
    if (sl->cq) {
        grpc_completion_queue_shutdown(sl->cq);
        grpc_completion_queue_destroy(sl->cq);
    }
    free(sl);
}

/* --- gRPC's own log into ours -------------------------------------------------------------- */

static void grpc_log_hook(gpr_log_func_args *a)
{
    hv_logf(a->severity == GPR_LOG_SEVERITY_ERROR ? HV_WARN : HV_DEBUG, "gRPC", "{s:s, s:s, s:i}",
            "message", a->message ? a->message : "", "file", a->file ? a->file : "", "line",
            a->line);
}

void gs_global_init(void)
{
    gpr_set_log_function(grpc_log_hook);
    gpr_set_log_verbosity(hv_log_enabled(HV_DEBUG) ? GPR_LOG_SEVERITY_INFO
                                                   : GPR_LOG_SEVERITY_ERROR);
    grpc_init();
}

void gs_global_shutdown(void)
{
    grpc_shutdown_blocking();
}

/* --- server -------------------------------------------------------------------------------- */

/* Ask the core for the next call of method `mi` (-1: unregistered methods). 0 or -1. */
static int request_slot(struct gs_server *s, int mi)
{
    struct gs_slot *sl = calloc(1, sizeof(*sl));
    if (!sl) return -1;
    sl->s = s;
    sl->mi = mi;
    grpc_metadata_array_init(&sl->md);
    if (mi < 0) grpc_call_details_init(&sl->details);
    sl->cq = grpc_completion_queue_create_for_pluck(NULL);
    grpc_call_error e;
    if (mi >= 0)
        e = grpc_server_request_registered_call(s->srv, s->meth[mi].handle, &sl->call,
                                                &sl->deadline, &sl->md, &sl->payload, sl->cq,
                                                s->ncq, sl);
    else
        e = grpc_server_request_call(s->srv, &sl->call, &sl->details, &sl->md, sl->cq, s->ncq, sl);
    if (e != GRPC_CALL_OK) {
        slot_free(sl);
        return -1;
    }
    s->pending++;
    return 0;
}

/* Send the reply of a unary call (or just a status) and wait until the call is over. */
static void finish_unary(struct gs_slot *sl, int status, const uint8_t *data, size_t len,
                         const char *msg)
{
    grpc_op ops[4];
    memset(ops, 0, sizeof(ops));
    int n = 0, cancelled = 0;
    ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
    grpc_byte_buffer *bb = NULL;
    if (status == GS_OK) {
        bb = bb_make(data, len);
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n++].data.send_message.send_message = bb;
    }
    grpc_slice details = grpc_slice_from_copied_string(msg ? msg : "");
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.status = (grpc_status_code)status;
    ops[n++].data.send_status_from_server.status_details = msg && *msg ? &details : NULL;
    ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[n++].data.recv_close_on_server.cancelled = &cancelled;
    int tag;
    if (grpc_call_start_batch(sl->call, ops, (size_t)n, &tag, NULL) == GRPC_CALL_OK)
        pluck_or_cancel(sl->call, sl->cq, &tag, FINISH_TIMEOUT_MS);
    grpc_slice_unref(details);
    if (bb) grpc_byte_buffer_destroy(bb);
}

static void run_stream(struct gs_slot *sl, const struct gs_method *m, const uint8_t *req,
                       size_t len)
{
    struct gs_stream st = {.slot = sl};
    int cancelled = 0;
    grpc_op op;
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    op.data.recv_close_on_server.cancelled = &cancelled;
    if (grpc_call_start_batch(sl->call, &op, 1, &st.close_tag, NULL) != GRPC_CALL_OK) return;
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_SEND_INITIAL_METADATA;
    if (grpc_call_start_batch(sl->call, &op, 1, &st.send_tag, NULL) != GRPC_CALL_OK ||
        !pluck_or_cancel(sl->call, sl->cq, &st.send_tag, SEND_TIMEOUT_MS))
        st.ended = 1;
    if (!st.ended) m->stream(m->arg, &st, req, len);
    if (!st.close_done && !st.ended) { /* the handler ended it: status OK */
        memset(&op, 0, sizeof(op));
        op.op = GRPC_OP_SEND_STATUS_FROM_SERVER;
        op.data.send_status_from_server.status = GRPC_STATUS_OK;
        if (grpc_call_start_batch(sl->call, &op, 1, &st.send_tag, NULL) == GRPC_CALL_OK)
            pluck_or_cancel(sl->call, sl->cq, &st.send_tag, FINISH_TIMEOUT_MS);
    }
    if (!st.close_done) {
        if (st.ended) grpc_call_cancel(sl->call, NULL); /* the peer is gone or stuck */
        pluck_or_cancel(sl->call, sl->cq, &st.close_tag, FINISH_TIMEOUT_MS);
    }
}

int gs_stream_send(struct gs_stream *st, const uint8_t *data, size_t len)
{
    struct gs_slot *sl = st->slot;
    if (st->ended || st->close_done || atomic_load(&sl->s->stopping)) return -1;
    grpc_byte_buffer *bb = bb_make(data, len);
    grpc_op op;
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_SEND_MESSAGE;
    op.data.send_message.send_message = bb;
    int ok = grpc_call_start_batch(sl->call, &op, 1, &st->send_tag, NULL) == GRPC_CALL_OK &&
             pluck_or_cancel(sl->call, sl->cq, &st->send_tag, SEND_TIMEOUT_MS);
    grpc_byte_buffer_destroy(bb);
    if (!ok) st->ended = 1;
    return ok ? 0 : -1;
}

int gs_stream_wait(struct gs_stream *st, int ms)
{
    struct gs_slot *sl = st->slot;
    if (st->ended || st->close_done || atomic_load(&sl->s->stopping)) return -1;
    grpc_event ev = grpc_completion_queue_pluck(sl->cq, &st->close_tag, after_ms(ms), NULL);
    if (ev.type != GRPC_OP_COMPLETE) return atomic_load(&sl->s->stopping) ? -1 : 0;
    st->close_done = 1;
    st->ended = 1;
    return -1;
}

/* A call, on its own thread: read the request, run the handler, answer, free the slot. */
static void *call_thread(void *arg)
{
    struct gs_slot *sl = arg;
    struct gs_server *s = sl->s;
    uint8_t *req = NULL;
    size_t len = 0;
    if (sl->mi < 0) {
        finish_unary(sl, GS_UNIMPLEMENTED, NULL, 0, "unknown method");
    } else if (bb_read(sl->payload, GS_MAX_MESSAGE, &req, &len) != 0) {
        finish_unary(sl, GS_RESOURCE_EXHAUSTED, NULL, 0, "request too large or out of memory");
    } else {
        const struct gs_method *m = &s->meth[sl->mi].m;
        if (m->stream) {
            run_stream(sl, m, req, len);
        } else {
            struct gs_reply r = {.status = GS_OK};
            m->unary(m->arg, req, len, &r);
            finish_unary(sl, r.status, r.data, r.len, r.status == GS_OK ? NULL : r.msg);
            free(r.data);
        }
    }
    free(req);
    slot_free(sl);
    pthread_mutex_lock(&s->mu);
    s->active--;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu); /* s may be freed from here on: nothing below touches it */
    return NULL;
}

/* Hand a call to a thread of its own, or refuse it when too many are open. */
static void dispatch(struct gs_server *s, struct gs_slot *sl)
{
    pthread_mutex_lock(&s->mu);
    int room = s->active < GS_MAX_ACTIVE && !atomic_load(&s->stopping);
    if (room) s->active++;
    pthread_mutex_unlock(&s->mu);
    if (room) {
        pthread_attr_t a;
        pthread_attr_init(&a);
        pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&a, 256 << 10);
        pthread_t t;
        int e = pthread_create(&t, &a, call_thread, sl);
        pthread_attr_destroy(&a);
        if (e == 0) return;
        pthread_mutex_lock(&s->mu);
        s->active--;
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
    }
    /* refused here, on the server's thread: bounded by FINISH_TIMEOUT_MS */
    finish_unary(sl, atomic_load(&s->stopping) ? GS_UNAVAILABLE : GS_RESOURCE_EXHAUSTED, NULL, 0,
                 "too many calls at once");
    slot_free(sl);
}

static void *server_thread(void *arg)
{
    struct gs_server *s = arg;
    int shutdown_seen = 0;
    for (;;) {
        grpc_event ev =
            grpc_completion_queue_next(s->ncq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN) break;
        if (ev.type != GRPC_OP_COMPLETE) continue;
        if (ev.tag == &s->shutdown_tag) {
            shutdown_seen = 1;
        } else {
            struct gs_slot *sl = ev.tag;
            s->pending--;
            if (!ev.success || !sl->call) {
                slot_free(sl); /* a request the shutdown cancelled */
            } else {
                if (!atomic_load(&s->stopping) && request_slot(s, sl->mi) != 0)
                    hv_logf(HV_ERROR, "gRPC: cannot wait for the next call", "{s:s}", "socket",
                            s->path);
                dispatch(s, sl);
            }
        }
        if (shutdown_seen && s->pending == 0) break;
    }
    return NULL;
}

/* The core's server for s, with its message and stream limits, and its completion queue. */
static void server_create(struct gs_server *s)
{
    grpc_arg args[2];
    memset(args, 0, sizeof(args));
    args[0].type = GRPC_ARG_INTEGER;
    args[0].key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
    args[0].value.integer = (int)GS_MAX_MESSAGE;
    args[1].type = GRPC_ARG_INTEGER;
    args[1].key = (char *)GRPC_ARG_MAX_CONCURRENT_STREAMS;
    args[1].value.integer = GS_MAX_ACTIVE;
    grpc_channel_args ca = {.num_args = 2, .args = args};
    s->srv = grpc_server_create(&ca, NULL);
    s->ncq = grpc_completion_queue_create_for_next(NULL);
    grpc_server_register_completion_queue(s->srv, s->ncq, NULL);
}

/* Destroy s's core server, then drain and destroy its completion queue (nothing may be left
 * pending in the core: never started, or shut down and served to the end). */
static void server_destroy(struct gs_server *s)
{
    grpc_server_destroy(s->srv);
    grpc_completion_queue_shutdown(s->ncq);
    while (grpc_completion_queue_next(s->ncq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
           GRPC_QUEUE_SHUTDOWN)
        ;
    grpc_completion_queue_destroy(s->ncq);
}

struct gs_server *gs_server_start(const char *path, const struct gs_method *methods, int n,
                                  char *err, size_t errlen)
{
    if (n < 1 || n > GS_MAX_METHODS || strlen(path) >= sizeof(((struct gs_server *)0)->path)) {
        snprintf(err, errlen, "gRPC server: bad arguments (%d methods, socket %s)", n, path);
        return NULL;
    }
    struct stat st;
    if (!lstat(path, &st)) { /* a socket left by an earlier run; nothing else is replaced */
        if (!S_ISSOCK(st.st_mode)) {
            snprintf(err, errlen, "%s exists and is not a socket", path);
            return NULL;
        }
        unlink(path);
    }
    struct gs_server *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    snprintf(s->path, sizeof(s->path), "%s", path);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    server_create(s);
    for (int i = 0; i < n; i++) {
        s->meth[i].m = methods[i];
        s->meth[i].handle = grpc_server_register_method(
            s->srv, methods[i].path, NULL, GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
        if (!s->meth[i].handle || !methods[i].unary == !methods[i].stream) {
            snprintf(err, errlen, "gRPC server: cannot register %s", methods[i].path);
            goto fail_unstarted;
        }
    }
    s->nmeth = n;
    char addr[128];
    snprintf(addr, sizeof(addr), "unix:%s", path);
    grpc_server_credentials *cr = grpc_insecure_server_credentials_create();
    int port = grpc_server_add_http2_port(s->srv, addr, cr);
    grpc_server_credentials_release(cr);
    if (!port) {
        snprintf(err, errlen, "gRPC server: cannot listen on %s", path);
        goto fail_unstarted;
    }
    grpc_server_start(s->srv);
    chmod(path, 0600); /* the kubelet's (root) only */
    int ok = request_slot(s, -1) == 0;
    for (int i = 0; ok && i < n; i++)
        ok = request_slot(s, i) == 0;
    if (ok && pthread_create(&s->thr, NULL, server_thread, s) == 0) return s;
    snprintf(err, errlen, "gRPC server: cannot start serving %s", path);
    /* started but not served: shut down and drain here, on this thread */
    atomic_store(&s->stopping, 1);
    grpc_server_shutdown_and_notify(s->srv, s->ncq, &s->shutdown_tag);
    grpc_server_cancel_all_calls(s->srv);
    server_thread(s);
    server_destroy(s);
    goto fail_free;
fail_unstarted:
    /* never started: nothing was requested, so the core has nothing to return */
    server_destroy(s);
fail_free:
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
    return NULL;
}

void gs_server_stop(struct gs_server *s)
{
    if (!s) return;
    atomic_store(&s->stopping, 1);
    grpc_server_shutdown_and_notify(s->srv, s->ncq, &s->shutdown_tag);
    grpc_server_cancel_all_calls(s->srv); /* open streams end now */
    pthread_join(s->thr, NULL);
    pthread_mutex_lock(&s->mu);
    while (s->active > 0)
        pthread_cond_wait(&s->cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
    server_destroy(s);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
}

/* --- client -------------------------------------------------------------------------------- */

int gs_call_unary(const char *path, const char *method, const uint8_t *req, size_t len,
                  int timeout_ms, uint8_t **resp, size_t *resp_len, char *err, size_t errlen)
{
    *resp = NULL;
    *resp_len = 0;
    char target[160];
    if ((size_t)snprintf(target, sizeof(target), "unix:%s", path) >= sizeof(target)) {
        snprintf(err, errlen, "socket path too long: %s", path);
        return -1;
    }
    grpc_channel_credentials *cr = grpc_insecure_credentials_create();
    grpc_channel *ch = grpc_channel_create(target, cr, NULL);
    grpc_channel_credentials_release(cr);
    grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
    gpr_timespec deadline = after_ms(timeout_ms);
    grpc_call *call =
        grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq,
                                 grpc_slice_from_static_string(method), NULL, deadline, NULL);
    grpc_metadata_array init_md, trail_md;
    grpc_metadata_array_init(&init_md);
    grpc_metadata_array_init(&trail_md);
    grpc_byte_buffer *send = bb_make(req, len), *recv = NULL;
    grpc_status_code status = GRPC_STATUS_UNKNOWN;
    grpc_slice details = grpc_empty_slice();
    grpc_op ops[6];
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = send;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &init_md;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &recv;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &trail_md;
    ops[5].data.recv_status_on_client.status = &status;
    ops[5].data.recv_status_on_client.status_details = &details;
    int tag, rc = -1;
    if (!call) {
        snprintf(err, errlen, "cannot create a call to %s", target);
    } else if (grpc_call_start_batch(call, ops, 6, &tag, NULL) != GRPC_CALL_OK) {
        snprintf(err, errlen, "cannot start a call to %s", target);
    } else {
        /* the deadline ends the call with DEADLINE_EXCEEDED; the margin only guards a core
         * that would not */
        pluck_or_cancel(call, cq, &tag, timeout_ms + 2000);
        if (status == GRPC_STATUS_OK) {
            rc = bb_read(recv, GS_MAX_MESSAGE, resp, resp_len) == 0 ? 0 : -1;
            if (rc) snprintf(err, errlen, "reply too large");
        } else {
            rc = (int)status;
            snprintf(err, errlen, "%s: status %d: %.*s", method, (int)status,
                     (int)GRPC_SLICE_LENGTH(details), (const char *)GRPC_SLICE_START_PTR(details));
        }
    }
    grpc_slice_unref(details);
    grpc_metadata_array_destroy(&init_md);
    grpc_metadata_array_destroy(&trail_md);
    grpc_byte_buffer_destroy(send);
    if (recv) grpc_byte_buffer_destroy(recv);
    if (call) grpc_call_unref(call);
    grpc_completion_queue_shutdown(cq);
    grpc_completion_queue_destroy(cq);
    grpc_channel_destroy(ch);
    return rc;
}
