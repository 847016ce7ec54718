/* command_channel.h - commands from the daemon to its workers: sequence numbers, per-worker
 * queues, long-polls and the Server-Sent Events stream.
 *
 * Why this exists: a worker inside a pod cannot be called; it asks. A command (suspend,
 * resume, limits) gets the daemon's next sequence number and waits in the queue of each worker
 * of the pod until the worker's long-poll (or event stream) picks it up.
 */
#ifndef VGPU_HV_COMMAND_CHANNEL_H
#define VGPU_HV_COMMAND_CHANNEL_H

#include <jansson.h>
#include <microhttpd.h>
#include <stdint.h>

#include "registry.h"

/* Queue a command of `type` ("suspend" | "resume" | "limits", with the pod's limits) for every
 * worker of the pod; wakes waiters. Lock held. Returns its sequence number. */
uint64_t cmd_push_pod(struct hv_pod *p, const char *type);
/* Long-poll: wait up to timeout_s for commands newer than `after`; *out = JSON array.
 * Takes the lock. Returns 0, or -1 when the worker is (or became) unknown. */
int cmd_wait(const char *worker_id, uint64_t after, int timeout_s, json_t **out);
/* A text/event-stream response delivering the worker's commands newer than `after`, with a
 * keepalive comment every 10 s. NULL when the worker is unknown. */
struct MHD_Response *cmd_event_stream(const char *worker_id, uint64_t after);

#endif
