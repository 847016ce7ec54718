"""throttle.py - throughput and GPU busy fraction of one workload, phase by phase.

Why this exists: the compute limit must hold on every kind of work. This runs one workload and,
for each phase (a compute limit in percent; 100 sets the limiter's limit off; 0 changes nothing),
settles, then measures for --seconds: iterations per second, the GPU's busy fraction as NVML
reports it and the mean SM clock. busy is the mean of the driver's own utilisation readings over
the measured seconds (nvmlDeviceGetSamples); busy_rates the mean of nvmlDeviceGetUtilizationRates
polled every 50 ms, for comparison. Limits are changed at run time through the pod's shared
memory (cuda_probe set-core), as an operator would.
Prints one line per phase: "phase=<limit> rate=<it/s> busy=<0..1> busy_rates=<0..1> clk=<MHz>".

    throttle.py WORKLOAD --phases 0 or --phases 10,30,50,70,90 [--seconds 3] [--probe PATH]
"""
import argparse
import ctypes
import os
import subprocess
import sys
import threading
import time

import torch


class Nvml:
    """GPU utilisation through NVML (ctypes, no extra package)."""

    def __init__(self):
        lib = ctypes.CDLL("libnvidia-ml.so.1")
        self.lib = lib
        assert lib.nvmlInit_v2() == 0
        self.dev = ctypes.c_void_p()
        assert lib.nvmlDeviceGetHandleByIndex_v2(0, ctypes.byref(self.dev)) == 0

    def util(self):
        class Util(ctypes.Structure):
            _fields_ = [("gpu", ctypes.c_uint), ("memory", ctypes.c_uint)]

        u = Util()
        return u.gpu if self.lib.nvmlDeviceGetUtilizationRates(self.dev, ctypes.byref(u)) == 0 else None

    def now_us(self):
        """the driver's sample clock (microseconds since the epoch)"""
        return int(time.time() * 1e6)

    def busy_since(self, since_us, until_us):
        """mean of the driver's utilisation readings taken in (since_us, until_us], 0..1"""

        class Sample(ctypes.Structure):
            _fields_ = [("ts", ctypes.c_ulonglong), ("val", ctypes.c_ulonglong)]

        vtype, n = ctypes.c_int(), ctypes.c_uint(0)
        f = self.lib.nvmlDeviceGetSamples
        if f(self.dev, 1, ctypes.c_ulonglong(since_us), ctypes.byref(vtype), ctypes.byref(n), None) != 0:
            return None
        buf = (Sample * max(n.value, 1))()
        if f(self.dev, 1, ctypes.c_ulonglong(since_us), ctypes.byref(vtype), ctypes.byref(n), buf) != 0:
            return None
        vals = [buf[i].val & 0xFFFFFFFF for i in range(n.value) if since_us < buf[i].ts <= until_us]
        return sum(vals) / len(vals) / 100 if vals else None

    def sm_clock(self):
        mhz = ctypes.c_uint()
        ok = self.lib.nvmlDeviceGetClockInfo(self.dev, 1, ctypes.byref(mhz)) == 0  # NVML_CLOCK_SM
        return mhz.value if ok else None


class Sampler(threading.Thread):
    def __init__(self, nvml):
        super().__init__(daemon=True)
        self.nvml, self.samples, self.clocks, self.on = nvml, [], [], False

    def run(self):
        while True:
            if self.on:
                u, c = self.nvml.util(), self.nvml.sm_clock()
                if u is not None:
                    self.samples.append(u)
                if c:
                    self.clocks.append(c)
            time.sleep(0.05)


def workload(name):
    """returns (one iteration, iterations between clock checks)"""
    dev = "cuda"
    if name == "matmul_bf16_8192":
        a = torch.randn(8192, 8192, device=dev, dtype=torch.bfloat16)
        b = torch.randn(8192, 8192, device=dev, dtype=torch.bfloat16)
        c = torch.empty_like(a)
        return (lambda: torch.matmul(a, b, out=c)), 1
    if name == "matmul_fp32_2048":
        torch.backends.cuda.matmul.allow_tf32 = True
        a = torch.randn(2048, 2048, device=dev)
        b = torch.randn(2048, 2048, device=dev)
        c = torch.empty_like(a)
        return (lambda: torch.matmul(a, b, out=c)), 20
    if name == "elementwise_loop":
        x = torch.zeros(1024, device=dev)
        return (lambda: x.add_(1.0)), 200
    if name == "graph_50_matmuls":
        a = torch.randn(2048, 2048, device=dev, dtype=torch.bfloat16)
        b = torch.randn(2048, 2048, device=dev, dtype=torch.bfloat16)
        c = torch.empty_like(a)
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            for _ in range(3):
                torch.matmul(a, b, out=c)
        torch.cuda.current_stream().wait_stream(s)
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            for _ in range(50):
                torch.matmul(a, b, out=c)
        return g.replay, 1
    raise SystemExit(f"unknown workload {name}")


def gate_counters(probe):
    """the limiter's own view: GPU time charged, launches, time waited (cuda_probe gate)"""
    if not probe:
        return None
    out = subprocess.run([probe, "gate"], capture_output=True, text=True).stdout
    f = dict(kv.split("=") for kv in out.split() if "=" in kv)
    return {k: int(f.get(k, 0)) for k in ("charged_ns", "launches", "waited_ns", "scale", "fb_ratio", "dvfs")} if f else None


def run_for(step, check_every, secs):
    n, t0 = 0, time.monotonic()
    end = t0 + secs
    while time.monotonic() < end:
        for _ in range(check_every):
            step()
        n += check_every
    torch.cuda.synchronize()
    return n, time.monotonic() - t0


def interleaved(args, step, check_every, nvml, sampler):
    """For work whose own pace drifts by more than the tolerance within seconds (a launch-bound
    Python loop: 91k-157k it/s in phases a few seconds apart), and that queues almost nothing
    (so the limit can change every second without carrying work across): per limit, after the
    settling time, --interleave pairs of --slice seconds, limit off then on, then on then off,
    and so on, each after --lead seconds. Prints the off slices as
    one phase 100 line and the on slices as the limit's line. A slice's busy fraction takes the
    driver's readings from --lead after it began (a reading covers up to 200 ms before it)."""
    slice_s, lead_s = args.slice, args.lead
    lead_us = int(lead_s * 1e6)
    for phase in [int(p) for p in args.phases.split(",") if int(p) < 100]:
        subprocess.run([args.probe, "set-core", str(phase)], check=True)
        run_for(step, check_every, args.settle)
        g0 = gate_counters(args.probe)
        acc = {100: [0, 0.0, [], []], phase: [0, 0.0, [], []]}  # n, seconds, busy, clocks
        pending = None
        for k in range(2 * args.interleave):
            # off-on, on-off, off-on, ...: a pace that drifts steadily through the cell weighs
            # on both sides alike (with off always first, the limited slices were the faster in
            # 8 of 11 cells on an H200)
            lim = 100 if (k % 2 == 0) == ((k // 2) % 2 == 0) else phase
            subprocess.run([args.probe, "set-core", str(lim)], check=True)
            run_for(step, check_every, lead_s)  # the other slice's queue drains, its readings land
            if pending:
                acc[pending[0]][2].append(nvml.busy_since(pending[1], pending[2]))
            sampler.clocks, sampler.on = [], True
            ts0 = nvml.now_us()
            n, el = run_for(step, check_every, slice_s)
            sampler.on = False
            acc[lim][0] += n
            acc[lim][1] += el
            acc[lim][3] += sampler.clocks
            pending = (lim, ts0 + lead_us, ts0 + int(el * 1e6))
        subprocess.run([args.probe, "set-core", "100"], check=True)
        time.sleep(max(lead_s, 0.25))
        acc[pending[0]][2].append(nvml.busy_since(pending[1], pending[2]))
        g1 = gate_counters(args.probe)
        for lim in (100, phase):
            n, el, busy, clocks = acc[lim]
            busy = [b for b in busy if b is not None]
            line = (f"phase={lim} rate={n / el:.2f} busy={sum(busy) / max(len(busy), 1):.3f}"
                    f" busy_rates=-1 clk={sum(clocks) / max(len(clocks), 1):.0f}")
            if lim == phase and g0 and g1:
                d = {k: g1[k] - g0[k] for k in ("charged_ns", "launches", "waited_ns")}
                line += (f" charged=- cost_us={d['charged_ns'] / 1e3 / max(d['launches'], 1):.2f}"
                         f" waited_s={d['waited_ns'] / 1e9:.2f}"
                         f" scale={(g1['scale'] or 1024) / 1024:.3f} last_ratio={g1['fb_ratio'] / 1024:.3f}"
                         f" clock_factor={(g1['dvfs'] or 1024) / 1024:.3f} interleaved={args.interleave}x{slice_s:g}s")
            print(line, flush=True)
    return 0


def together(spec):
    """Wait until COUNT processes named FILE (spec FILE:COUNT) are here: processes measured
    together must measure the same seconds. Started together, two processes reach their 20th
    step up to a second apart, and the first would otherwise measure a second alone."""
    path, _, count = spec.rpartition(":")
    with open(path, "a") as f:
        f.write(f"{os.getpid()}\n")
    end = time.monotonic() + 120
    while time.monotonic() < end:
        with open(path) as f:
            if len(f.readlines()) >= int(count):
                return
        time.sleep(0.001)
    sys.exit(f"throttle: {count} processes did not meet at {path}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("workload")
    ap.add_argument("--phases", default="0")
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--settle", type=float, default=1.0)
    ap.add_argument("--settle-off", type=float, default=1.0, help="settling time of a phase 100")
    ap.add_argument("--probe", default=os.environ.get("VGPU_PROBE", ""))
    ap.add_argument("--gate", action="store_true",
                    help="report the gate's counters for phase 0 too (a process limited from its start)")
    ap.add_argument("--together", default="",
                    help="FILE:COUNT: start measuring when COUNT processes have reached FILE")
    ap.add_argument("--interleave", type=int, default=0,
                    help="measure each limit in this many pairs of slices, limit off and on")
    ap.add_argument("--slice", type=float, default=1.0, help="seconds of an interleaved slice")
    ap.add_argument("--lead", type=float, default=0.2,
                    help="seconds run before each slice is measured (queue drained, readings landed)")
    args = ap.parse_args()
    step, check_every = workload(args.workload)
    nvml = Nvml()
    sampler = Sampler(nvml)
    sampler.start()
    for _ in range(20):  # warm up: kernels loaded, the limiter's costs learned
        step()
    torch.cuda.synchronize()
    if args.together:
        together(args.together)
    if args.interleave:
        return interleaved(args, step, check_every, nvml, sampler)
    for phase in [int(p) for p in args.phases.split(",")]:
        if phase and args.probe:
            subprocess.run([args.probe, "set-core", str(phase)], check=True)
        end = time.monotonic() + (args.settle_off if phase >= 100 else args.settle)
        while time.monotonic() < end:
            for _ in range(check_every):
                step()
        torch.cuda.synchronize()
        g0 = gate_counters(args.probe) if phase or args.gate else None
        sampler.samples, sampler.clocks, sampler.on = [], [], True
        n, t0, ts0 = 0, time.monotonic(), nvml.now_us()
        end = t0 + args.seconds
        while time.monotonic() < end:
            for _ in range(check_every):
                step()
            n += check_every
        torch.cuda.synchronize()
        elapsed = time.monotonic() - t0
        sampler.on = False
        rates = sum(sampler.samples) / len(sampler.samples) / 100 if sampler.samples else -1
        time.sleep(0.2)  # the driver files its last reading of the window
        busy = nvml.busy_since(ts0, ts0 + int(elapsed * 1e6))
        busy = rates if busy is None else busy
        clk = sum(sampler.clocks) / len(sampler.clocks) if sampler.clocks else 0
        line = f"phase={phase} rate={n / elapsed:.2f} busy={busy:.3f} busy_rates={rates:.3f} clk={clk:.0f}"
        g1 = gate_counters(args.probe) if phase or args.gate else None
        if g0 and g1:
            d = {k: g1[k] - g0[k] for k in ("charged_ns", "launches", "waited_ns")}
            # the closed loop's state at the end of the cell: the cost scale it applies (1.0 =
            # the events' figures) and the last measured/modelled ratio it saw
            line += (f" charged={d['charged_ns'] / 1e9 / elapsed:.3f}"
                     f" cost_us={d['charged_ns'] / 1e3 / max(d['launches'], 1):.2f}"
                     f" waited_s={d['waited_ns'] / 1e9:.2f}"
                     f" scale={(g1['scale'] or 1024) / 1024:.3f} last_ratio={g1['fb_ratio'] / 1024:.3f}"
                     f" clock_factor={(g1['dvfs'] or 1024) / 1024:.3f}")
        print(line, flush=True)


if __name__ == "__main__":
    sys.exit(main())
