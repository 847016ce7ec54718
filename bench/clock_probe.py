"""clock_probe.py - how the GPU's SM clock and power follow the duty cycle of a workload.

Why this exists: on a power-capped GPU a workload that keeps the GPU busy only part of the time
runs at a higher clock than when it fills the GPU, so a share of GPU time is not the same share of
throughput. This runs each workload at duty cycles 1.0 .. 0.1 (bursts of about 5 ms of GPU work,
then sleep), with no limiter, and prints per cell: rate, busy (NVML samples), mean SM clock, mean
power, the power limit and the clock-event reasons seen. The compute gate's clock model is fitted
to these numbers.
    clock_probe.py [--seconds 3] [--duties 1,0.9,0.7,0.5,0.3,0.1] [--workloads a,b]
"""
import argparse
import ctypes
import sys
import threading
import time

import torch

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from throttle import Nvml, workload  # noqa: E402


class Probe(threading.Thread):
    def __init__(self, nvml):
        super().__init__(daemon=True)
        self.nvml, self.on, self.rows = nvml, False, []

    def read(self):
        lib, dev = self.nvml.lib, self.nvml.dev
        mw, mhz, why = ctypes.c_uint(), ctypes.c_uint(), ctypes.c_ulonglong()
        lib.nvmlDeviceGetPowerUsage(dev, ctypes.byref(mw))
        lib.nvmlDeviceGetClockInfo(dev, 1, ctypes.byref(mhz))
        lib.nvmlDeviceGetCurrentClocksEventReasons(dev, ctypes.byref(why))
        return mw.value / 1000.0, mhz.value, why.value

    def run(self):
        while True:
            if self.on:
                self.rows.append(self.read())
            time.sleep(0.05)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--duties", default="1,0.9,0.7,0.5,0.3,0.1")
    ap.add_argument("--workloads", default="matmul_bf16_8192,matmul_fp32_2048,graph_50_matmuls")
    args = ap.parse_args()
    nvml = Nvml()
    lim = ctypes.c_uint()
    nvml.lib.nvmlDeviceGetEnforcedPowerLimit(nvml.dev, ctypes.byref(lim))
    maxc = ctypes.c_uint()
    nvml.lib.nvmlDeviceGetMaxClockInfo(nvml.dev, 1, ctypes.byref(maxc))
    p = Probe(nvml)
    p.start()
    p.on = True
    time.sleep(2)
    p.on = False
    idle = p.rows
    print(f"power_limit_w={lim.value / 1000:.0f} max_sm_mhz={maxc.value} idle_w={sum(r[0] for r in idle) / len(idle):.1f} idle_mhz={sum(r[1] for r in idle) / len(idle):.0f}", flush=True)
    for name in args.workloads.split(","):
        step, _ = workload(name)
        for _ in range(20):
            step()
        torch.cuda.synchronize()
        # GPU time of one step, measured alone
        e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        e0.record()
        for _ in range(20):
            step()
        e1.record()
        torch.cuda.synchronize()
        per = e0.elapsed_time(e1) / 20 / 1000.0
        burst = max(1, int(0.005 / per))
        for duty in [float(d) for d in args.duties.split(",")]:
            def run_for(secs):
                n, end = 0, time.monotonic() + secs
                while time.monotonic() < end:
                    t0 = time.monotonic()
                    for _ in range(burst):
                        step()
                    if duty < 1:
                        torch.cuda.synchronize()
                        took = time.monotonic() - t0
                        time.sleep(max(0.0, took * (1 - duty) / duty))
                    n += burst
                torch.cuda.synchronize()
                return n
            run_for(1.5)
            p.rows, p.on = [], True
            t0, ts0 = time.monotonic(), nvml.now_us()
            n = run_for(args.seconds)
            el = time.monotonic() - t0
            p.on = False
            time.sleep(0.25)
            busy = nvml.busy_since(ts0, ts0 + int(el * 1e6)) or -1
            rows = p.rows
            w = sum(r[0] for r in rows) / len(rows)
            c = sum(r[1] for r in rows) / len(rows)
            why = 0
            for r in rows:
                why |= r[2]
            print(f"workload={name} duty={duty} rate={n / el:.2f} busy={busy:.3f} clk={c:.0f} power_w={w:.1f} reasons=0x{why:x} step_ms={per * 1000:.3f}", flush=True)
        del step
        torch.cuda.empty_cache()


if __name__ == "__main__":
    sys.exit(main())
