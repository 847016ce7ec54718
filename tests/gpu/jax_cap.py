"""jax_cap.py - JAX sizes its preallocation from the capped view and computes within it."""
import json
import os
import sys

import jax
import jax.numpy as jnp

cap = int(os.environ["VGPU_EXPECT_CAP"])
d = jax.devices()[0]
stats = d.memory_stats() or {}
limit = stats.get("bytes_limit", 0)
x = jnp.ones((4096, 4096), dtype=jnp.float32)
y = float((x @ x).sum())
res = {"bytes_limit_mib": limit >> 20, "cap_mib": cap >> 20, "result_ok": y == 4096.0 * 4096 * 4096}
res["failed"] = [k for k, v in {"limit_within_cap": 0 < limit <= cap, "computes": res["result_ok"]}.items() if not v]
print(json.dumps(res))
sys.exit(1 if res["failed"] else 0)
