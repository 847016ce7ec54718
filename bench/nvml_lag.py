"""nvml_lag.py - how late the driver's utilisation readings describe a change of load.

Why this exists: the limiter's closed loop compares its model with NVML's utilisation over the
last second; if the readings arrive late, a window just after a change of limit still holds the
old load, and the loop corrects the model for work it did not model. This runs a bf16 matmul
loop (the GPU busy), stops it (the GPU idle), starts it again, and polls
nvmlDeviceGetSamples every 20 ms. It prints, for each change, when the first reading showing the
new load was stamped and when it could first be read (both after the change, in ms), and the
driver's sample period.
    nvml_lag.py [--seconds 2]
"""
import argparse
import ctypes
import threading
import time

import torch


class Sample(ctypes.Structure):
    _fields_ = [("ts", ctypes.c_ulonglong), ("val", ctypes.c_ulonglong)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=2.0)
    args = ap.parse_args()
    lib = ctypes.CDLL("libnvidia-ml.so.1")
    assert lib.nvmlInit_v2() == 0
    dev = ctypes.c_void_p()
    assert lib.nvmlDeviceGetHandleByIndex_v2(0, ctypes.byref(dev)) == 0
    seen = {}  # sample timestamp (us) -> (value, first time it could be read, us)
    stop = False

    def poll():
        buf = (Sample * 512)()
        while not stop:
            vtype, n = ctypes.c_int(), ctypes.c_uint(512)
            since = int(time.time() * 1e6) - 5_000_000
            if lib.nvmlDeviceGetSamples(dev, 1, ctypes.c_ulonglong(since), ctypes.byref(vtype), ctypes.byref(n), buf) == 0:
                now = int(time.time() * 1e6)
                for i in range(n.value):
                    seen.setdefault(buf[i].ts, (buf[i].val & 0xFFFFFFFF, now))
            time.sleep(0.02)

    th = threading.Thread(target=poll, daemon=True)
    th.start()
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    c = torch.empty_like(a)
    changes = []
    for phase in ("busy", "idle", "busy", "idle"):
        t = int(time.time() * 1e6)
        changes.append((phase, t))
        end = time.monotonic() + args.seconds
        if phase == "busy":
            while time.monotonic() < end:
                for _ in range(4):
                    torch.matmul(a, a, out=c)
                torch.cuda.synchronize()
        else:
            time.sleep(args.seconds)
    time.sleep(2.0)
    stop = True
    th.join()
    ts = sorted(seen)
    gaps = [b - a for a, b in zip(ts, ts[1:]) if b - a < 1_000_000]
    print(f"sample period {sorted(gaps)[len(gaps) // 2] / 1000:.0f} ms (median of {len(gaps)})" if gaps else "no samples")
    for phase, t in changes[1:]:
        want = (lambda v: v >= 50) if phase == "busy" else (lambda v: v < 50)
        first = next((s for s in ts if s > t and want(seen[s][0])), None)
        if first is None:
            print(f"to {phase}: no reading showed it")
            continue
        print(f"to {phase}: first reading stamped {(first - t) / 1000:.0f} ms after the change, "
              f"readable {(seen[first][1] - t) / 1000:.0f} ms after it (value {seen[first][0]}%)")
        # readings stamped after the change that still showed the old load
        stale = [s for s in ts if t < s < first]
        if stale:
            print(f"   {len(stale)} reading(s) stamped after the change still showed the old load, "
                  f"the last {(stale[-1] - t) / 1000:.0f} ms after it")


if __name__ == "__main__":
    main()
