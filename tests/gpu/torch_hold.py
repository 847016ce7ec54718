"""torch_hold.py MIB [SECONDS] - a PyTorch process that holds MIB of GPU memory.

Prints HELD when it holds it, REFUSED (exit 2) if torch raised OutOfMemoryError.
"""
import sys
import time

import torch

mib = int(sys.argv[1])
try:
    t = torch.empty(mib << 20, dtype=torch.uint8, device="cuda")
    torch.cuda.synchronize()
except torch.cuda.OutOfMemoryError:
    print("REFUSED", flush=True)
    sys.exit(2)
print("HELD", mib, flush=True)
time.sleep(float(sys.argv[2]) if len(sys.argv) > 2 else 0)
