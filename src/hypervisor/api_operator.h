/* api_operator.h - the routes of the node's operator: /v1/pods/{ns}/{name}/{op}.
 *
 * Why this exists: the operator side of the API (docs/hypervisor.md), served on the operator
 * socket only (http_api.c checks the listener before calling these).
 */
#ifndef VGPU_HV_API_OPERATOR_H
#define VGPU_HV_API_OPERATOR_H

#include <microhttpd.h>

#include "api_reply.h"

/* PUT /v1/pods/{ns}/{name}/limits: merge the operator's limits; 200 with the pod's status. */
enum MHD_Result api_op_put_limits(struct MHD_Connection *c, const char *ns, const char *name,
                                  const struct api_req *r);
/* DELETE /v1/pods/{ns}/{name}/limits: drop the operator's limits of the pod. */
enum MHD_Result api_op_delete_limits(struct MHD_Connection *c, const char *ns, const char *name);
/* POST /v1/pods/{ns}/{name}/suspend (suspend = 1) or .../resume (0): waits up to 1 s for the
 * workers' acks. */
enum MHD_Result api_op_suspend(struct MHD_Connection *c, const char *ns, const char *name,
                               int suspend);

#endif
