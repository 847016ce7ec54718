"""hv_load.py - a GPU workload for the daemon's GPU tests, with a timeline of what it did.

Why this exists: the daemon tests need to know, to the millisecond, when a process submitted
work (suspend latency), how fast it went in each phase (weighted shares, idle time), and that a
training loop lost no step while the daemon was killed and restarted. Each step is one unit of
GPU work followed by a synchronize (or every --sync-every steps: then the GPU's queue stays
full and the GPU never waits for Python, as in a real training loop).

    hv_load.py matmul --seconds S [--steps-log FILE]   bf16 8192 matmuls; prints rate=<it/s>
    hv_load.py train --seconds S --steps-log FILE      MLP training; prints steps= loss0= loss=
    hv_load.py idle --seconds S                        holds a context, submits nothing
    hv_load.py util --seconds S                        prints "t util" every 100 ms (NVML)

--steps-log writes "step t_start t_end" per step (CLOCK_MONOTONIC seconds). --warmup W runs W
seconds before the measured ones (the rate covers only the measured part); --start-at T starts
the measured part at CLOCK_MONOTONIC T instead, so that several processes measure together.
"""
import argparse
import sys
import time

import torch


def util(seconds):
    import ctypes

    class Util(ctypes.Structure):
        _fields_ = [("gpu", ctypes.c_uint), ("memory", ctypes.c_uint)]

    lib = ctypes.CDLL("libnvidia-ml.so.1")
    assert lib.nvmlInit_v2() == 0
    h = ctypes.c_void_p()
    assert lib.nvmlDeviceGetHandleByIndex_v2(0, ctypes.byref(h)) == 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        u = Util()
        if lib.nvmlDeviceGetUtilizationRates(h, ctypes.byref(u)) == 0:
            print(f"{time.monotonic():.3f} {u.gpu}", flush=True)
        time.sleep(0.1)
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["matmul", "train", "idle", "util"])
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--warmup", type=float, default=0.0)
    ap.add_argument("--start-at", type=float)
    ap.add_argument("--sync-every", type=int, default=1,
                    help="synchronize every N steps (1: each step; more keeps the GPU's queue full)")
    ap.add_argument("--steps-log")
    a = ap.parse_args()
    if a.mode == "util":
        return util(a.seconds)
    dev = "cuda"
    log = open(a.steps_log, "w", buffering=1) if a.steps_log else None
    if a.mode == "idle":
        torch.zeros(1, device=dev)
        torch.cuda.synchronize()
        print("READY", flush=True)
        time.sleep(a.seconds)
        return 0
    if a.mode == "matmul":
        x = torch.randn(8192, 8192, device=dev, dtype=torch.bfloat16)
        y = torch.randn(8192, 8192, device=dev, dtype=torch.bfloat16)

        def step():
            torch.matmul(x, y)
    else:
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(4096, 4096), torch.nn.ReLU(),
                                    torch.nn.Linear(4096, 4096), torch.nn.ReLU(),
                                    torch.nn.Linear(4096, 10)).to(dev)
        opt = torch.optim.SGD(model.parameters(), lr=0.01)
        data = torch.randn(2048, 4096, device=dev)
        target = torch.randint(0, 10, (2048,), device=dev)
        losses = []

        def step():
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(data), target)
            loss.backward()
            opt.step()
            losses.append(loss)
    step()
    torch.cuda.synchronize()
    print(f"READY t={time.monotonic():.3f}", flush=True)
    n, t_begin = 0, time.monotonic()
    measure_from = a.start_at if a.start_at else t_begin + a.warmup
    counted, t_measure = 0, None
    while True:
        t0 = time.monotonic()
        if t0 >= measure_from + a.seconds:
            break
        step()
        if (n + 1) % a.sync_every == 0:
            torch.cuda.synchronize()
        t1 = time.monotonic()
        if log:
            log.write(f"{n} {t0:.6f} {t1:.6f}\n")
        n += 1
        if t0 >= measure_from:
            if t_measure is None:
                t_measure = t0
            counted += 1
    torch.cuda.synchronize()
    elapsed = time.monotonic() - (t_measure or t_begin)
    out = f"steps={n} rate={counted / elapsed:.2f}"
    if a.mode == "train":
        out += f" loss0={losses[0].item():.4f} loss={losses[-1].item():.4f}"
    print(out, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
