"""noload.py - what the loaded limiter costs a program it does not limit, as users measure it.

Why this exists: a launch-bound PyTorch loop's own rate moves by 10-30% between runs a few
seconds apart (bench/results, gpu-facts.md), far more than the cost being measured (goal: under
0.5%). So each variant is one long-lived process, and the processes take turns on the GPU in
short bursts, and a variant's ratio in a round is its rate over the baseline's (the first
variant) in that round. With two variants round r runs them in order and round r+1 in reverse
(ABBA); with three or more the order rotates by one each round, so that every variant takes every
place equally often and none runs twice in a row (the last of one round is never the first of
the next: a process that runs two bursts back to back finds its caches, clocks and the GPU's
state warm, which the others do not). A second baseline (a variant with nothing preloaded) shows
what the method itself reads between two identical processes: which process a variant happens
to be (where its memory lies, which CPU it woke on) moves a loop's rate by about as much as the
goal (bench/results/noload-*), so --procs runs each variant as several processes and takes
their mean. --warm runs each burst's first SECS unmeasured (the loop's pace without the
process waking up).
While one process measures the others wait on a pipe (their background threads run, as they do
in a real idle process). Every process is pinned to the same CPUs (--cpus): a first run on the
H200 without pinning had one process steadily 20-35% faster than another whatever it loaded,
which is where the scheduler put it, not what it loaded. Also reported per variant: CPU time
(ms per second, from /proc schedstat) of the process's threads other than the measuring one,
and the measuring thread's involuntary context switches per second.

    noload.py [--workloads add,matmul] [--rounds 12] [--seconds 1] [--warm 0] [--cpus 2,3]
              [--procs 1] [--variant NAME=VAR=VALUE,VAR=VALUE ...]
              (LD_PRELOAD=... names the library)

Without --variant: "base" (nothing preloaded) and "lim" ($VGPU_LIMITER preloaded, no limit).
Prints one line per variant and workload:
  "noload workload=add variant=lim ratio=0.998 min=0.990 max=1.004 ci95=0.994..1.002 rate=123456
   aux_cpu_ms_s=0.4 ics_s=1.0"
ratio is the median of the rounds' ratios, ci95 a bootstrap interval of that median (2000
resamples): with a loop whose rate swings by tens of percent between bursts, the interval, not
the spread, says whether a cost of half a percent could be seen.
"""
import argparse
import os
import random
import statistics
import subprocess
import sys
import time


def worker(workloads, cpus):
    if cpus:
        os.sched_setaffinity(0, cpus)
    import torch

    tid = str(os.getpid())
    x = torch.ones(1 << 20, device="cuda")
    a = torch.randn(4096, 4096, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(4096, 4096, device="cuda", dtype=torch.bfloat16)

    def run(w, secs):
        n, t0 = 0, time.perf_counter()
        end = t0 + secs
        if w == "add":  # about 8 us of Python per launch: launch-bound
            while True:
                for _ in range(256):
                    x.add_(1.0)
                n += 256
                if time.perf_counter() >= end:
                    break
        else:  # ~0.2 ms matmuls, a few queued at a time: GPU-bound
            while True:
                for _ in range(16):
                    torch.matmul(a, b)
                torch.cuda.synchronize()
                n += 16
                if time.perf_counter() >= end:
                    break
        torch.cuda.synchronize()
        return n / (time.perf_counter() - t0)

    def others_cpu_ms():
        """CPU time (ms) of every thread but this one"""
        tot = 0
        for t in os.listdir("/proc/self/task"):
            if t == tid:
                continue
            try:
                with open(f"/proc/self/task/{t}/schedstat") as f:
                    tot += int(f.read().split()[0])  # ns on the CPU
            except (OSError, ValueError, IndexError):
                pass
        return tot / 1e6

    def ics():
        with open(f"/proc/self/task/{tid}/status") as f:
            for line in f:
                if line.startswith("nonvoluntary_ctxt_switches"):
                    return int(line.split()[1])
        return 0

    for w in workloads:
        run(w, 1.0)  # warm up
    print("ready", flush=True)
    for line in sys.stdin:
        w, secs, warm = line.split()
        if float(warm) > 0:
            run(w, float(warm))
        c0, i0, t0 = others_cpu_ms(), ics(), time.perf_counter()
        r = run(w, float(secs))
        dt = time.perf_counter() - t0
        print(f"{r:.1f} {(others_cpu_ms() - c0) / dt:.3f} {(ics() - i0) / dt:.2f}", flush=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--workloads", default="add,matmul")
    p.add_argument("--rounds", type=int, default=12)
    p.add_argument("--cpus", default="2,3", help="CPUs every process runs on ('' = any)")
    p.add_argument("--seconds", type=float, default=1.0)
    p.add_argument("--warm", type=float, default=0.0, help="unmeasured seconds before each burst")
    p.add_argument("--variant", action="append", default=[])
    p.add_argument("--procs", type=int, default=1,
                   help="processes per variant: a variant's figure in a round is their mean")
    p.add_argument("--worker", action="store_true")
    a = p.parse_args()
    workloads = a.workloads.split(",")
    cpus = {int(c) for c in a.cpus.split(",") if c.strip()}
    if a.worker:
        return worker(workloads, cpus)
    lim = os.environ.get("VGPU_LIMITER", "")
    specs = a.variant or ["base=", f"lim=LD_PRELOAD={lim}"]
    variants = []  # (name, process): --procs processes per variant, in turn
    for s in specs:
        name, _, env = s.partition("=")
        e = dict(os.environ)
        e.pop("LD_PRELOAD", None)
        for kv in filter(None, env.split(",")):
            k, _, v = kv.partition("=")
            e[k] = v
        for _ in range(a.procs):
            pr = subprocess.Popen([sys.executable, __file__, "--worker", "--workloads", a.workloads,
                                   "--cpus", a.cpus],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=e)
            variants.append((name, pr))
    names = list(dict.fromkeys(name for name, _ in variants))
    for name, pr in variants:
        if pr.stdout.readline().strip() != "ready":
            sys.exit(f"noload: variant {name} did not start")
    for w in workloads:
        res = {name: [] for name in names}  # per round: [(rate, aux, ics)] of the variant's processes
        for r in range(a.rounds):
            if len(variants) < 3:
                order = variants if r % 2 == 0 else variants[::-1]
            else:
                k = r % len(variants)
                order = variants[k:] + variants[:k]
            got = {name: [] for name in names}
            for name, pr in order:
                pr.stdin.write(f"{w} {a.seconds} {a.warm}\n")
                pr.stdin.flush()
                got[name].append(tuple(map(float, pr.stdout.readline().split())))
            for name in names:  # a variant's figure in a round: the mean over its processes
                res[name].append(tuple(statistics.mean(v[i] for v in got[name]) for i in range(3)))
        base = res[names[0]]
        for name in names:
            ratios = [v[0] / b[0] for v, b in zip(res[name], base)]
            rng = random.Random(1)
            meds = sorted(statistics.median(rng.choices(ratios, k=len(ratios))) for _ in range(2000))
            print(f"noload workload={w} variant={name} ratio={statistics.median(ratios):.4f} "
                  f"min={min(ratios):.4f} max={max(ratios):.4f} "
                  f"ci95={meds[50]:.4f}..{meds[1949]:.4f} "
                  f"rate={statistics.median(v[0] for v in res[name]):.0f} "
                  f"aux_cpu_ms_s={statistics.median(v[1] for v in res[name]):.2f} "
                  f"ics_s={statistics.median(v[2] for v in res[name]):.1f}", flush=True)
            print(f"  rates {name}: " + " ".join(f"{v[0]:.0f}" for v in res[name]), flush=True)
    for _, pr in variants:
        pr.stdin.close()
        pr.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
