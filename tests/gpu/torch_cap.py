"""torch_cap.py - PyTorch under a memory cap: what users of each allocator see.

Run with libcuda_limiter.so preloaded and a cap; prints one JSON line of facts and exits 0
only if: mem_get_info's total is the cap, allocating past it raises torch's OutOfMemoryError
with no more than the cap reserved, most of the cap was usable, and a small model trains.
"""
import json
import os
import sys

import torch

cap = int(os.environ["VGPU_EXPECT_CAP"])
MIB = 1 << 20
res = {"alloc_conf": os.environ.get("PYTORCH_CUDA_ALLOC_CONF", "default")}
free, total = torch.cuda.mem_get_info()
res["total_mib"] = total // MIB
res["props_total_mib"] = torch.cuda.get_device_properties(0).total_memory // MIB

blocks, oom = [], None
try:
    while len(blocks) < 100000:
        blocks.append(torch.empty(64 * MIB, dtype=torch.uint8, device="cuda"))
except torch.cuda.OutOfMemoryError:
    oom = "OutOfMemoryError"
except Exception as e:  # anything else is a failure: report what it was
    oom = f"{type(e).__name__}: {e}"[:200]
res["oom"] = oom
res["allocated_mib"] = len(blocks) * 64
res["reserved_at_oom_mib"] = torch.cuda.memory_reserved() // MIB
del blocks
torch.cuda.empty_cache()

torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(1024, 4096), torch.nn.GELU(), torch.nn.Linear(4096, 1024)).cuda()
opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
x = torch.randn(1024, 1024, device="cuda")
y = torch.sin(x)
losses = []
for _ in range(300):
    loss = torch.nn.functional.mse_loss(model(x), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    losses.append(loss.item())
res["loss_first"], res["loss_last"] = round(losses[0], 4), round(losses[-1], 4)
res["max_reserved_mib"] = torch.cuda.max_memory_reserved() // MIB

checks = {
    "total_is_cap": total == cap,
    "props_total_is_cap": torch.cuda.get_device_properties(0).total_memory == cap,
    "oom_is_torch_oom": oom == "OutOfMemoryError",
    "reserved_within_cap": res["reserved_at_oom_mib"] * MIB <= cap and res["max_reserved_mib"] * MIB <= cap,
    "most_of_cap_usable": res["allocated_mib"] * MIB >= cap - 1024 * MIB,
    "trains": losses[-1] < 0.5 * losses[0],
}
res["failed"] = [k for k, v in checks.items() if not v]
print(json.dumps(res))
sys.exit(1 if res["failed"] else 0)
