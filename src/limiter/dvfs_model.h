/* dvfs_model.h - how much faster than on a full GPU a limited pod's work runs, from power.
 *
 * Why this exists: a power-capped GPU clocks up when it is partly idle, so a busy second of a
 * pod held to a share does more work than a busy second of a full GPU (up to about 1.2x for
 * matmuls: bench/results/README.md, clock probe). A pod held to 30% of the GPU's time alone
 * would then do more than 30% of the work of the full GPU, and the same pod next to a
 * neighbour that fills the GPU exactly 30%. A limit is a share of the GPU; the pod should get
 * the same work from it whatever its neighbours do. So the gate charges a limited pod's GPU
 * time times the factor computed here.
 *
 * The factor comes from power, not from a history of clocks: what the GPU draws now (P) at its
 * busy fraction now (b), above its draw with nothing running (Ps), extrapolated to a full GPU,
 * P_full = Ps + (P - Ps) / b. If that stays under the power cap the full GPU would not be slowed,
 * and the factor is 1 (tiny launch-bound kernels draw little: always 1). If it goes over, the
 * full GPU would clock down until it fits, and the work per busy second falls with it; the
 * speed ratio follows (P_full - Ps) / (cap - Ps) to the power VGPU_DVFS_EXPONENT, a fit to
 * bench/clock_probe.py over matmul and graph workloads at duty cycles 0.1-0.9 that is
 * insensitive to the exact Ps (the fit and its error: bench/results/compute-runs.md, fifth
 * run; tests/unit/test_dvfs.c holds cells of it). Device-wide figures on purpose: every pod on the
 * GPU sees the same clock; when the GPU is full (P at the cap, b near 1) the factor is 1 and each
 * pod gets exactly its time share.
 */
#ifndef VGPU_DVFS_MODEL_H
#define VGPU_DVFS_MODEL_H

#include "../common/shm_layout.h"

#define VGPU_DVFS_EXPONENT 0.37
#define VGPU_DVFS_STATIC_FRACTION 0.18 /* Ps / cap: the draw at full clock with nothing running */
#define VGPU_DVFS_CAP_MARGIN 0.985     /* a full GPU settles just under its cap, not at it */
#define VGPU_DVFS_MAX 1.5

/* The factor (>= 1) for the GPU's power now (W), its busy fraction now (0..1) and its
 * enforced power cap (W); 0 when these figures say nothing (too little work to extrapolate
 * from, or figures out of range). */
double vgpu_dvfs_factor(double power_w, double busy, double cap_w);

/* Called by the maintenance thread with the GPU's figures over the last second: moves the pod's
 * dev.gate_dvfs (0: not known yet, 1.0) up to the factor they give at once, and down half-way
 * (smoothing the noise of both readings). Returns the factor before (1024 = 1.0) when this call
 * raised it, else 0: the work of that second was charged at the lower factor. */
uint32_t vgpu_dvfs_tick(struct vgpu_shm_dev *d, double power_w, double busy, double cap_w);

#endif
