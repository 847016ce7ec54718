/* metrics.h - the daemon's Prometheus endpoint (GET /metrics).
 *
 * Why this exists: node monitoring scrapes every daemon; per GPU, per pod and backstop numbers
 * in the text exposition format 0.0.4, named vgpu_* with gpu/pod/namespace labels.
 */
#ifndef VGPU_HV_METRICS_H
#define VGPU_HV_METRICS_H

/* The page (malloc'ed, NUL-terminated). Takes the registry lock. */
char *metrics_render(void);

#endif
