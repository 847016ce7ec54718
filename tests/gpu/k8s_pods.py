#!/usr/bin/env python3
"""k8s_pods.py - two "pods" started from the device plugin's Allocate answers, on the real GPU.

Why this exists: the CPU tests (tests/k8s) prove that a container started with exactly what
Allocate answered gets its region and its limits on the simulated GPU; this proves that the
same answers hold a real GPU's memory and compute. The daemon runs with its device plugin and
cgroup identity, fake_kubelet.py plays the kubelet over real gRPC, and each pod is a process in
its own cgroup and mount namespace with its allocation's directories mounted, as a container
runtime would start it. Pod A asks for 4 GiB and 25 cores, pod B for 8 GiB and 50 cores with
pod A's names in its environment. Each must see its own cap in PyTorch (tests/gpu/torch_cap.py),
and running a saturating bf16 matmul together they must get 25% and 50% of what one process
alone gets, within 5 points.

    k8s_pods.py --daemon BIN --build BUILD_DIR --proto PROTO --out DIR

Prints "DETAIL ..." last; exit 0 only if every check held.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
for d in ("../k8s", "../hypervisor", "../security"):
    sys.path.insert(0, os.path.join(HERE, d))
import device_plugin_test as dpt  # noqa: E402
import fake_kubelet  # noqa: E402
from flood_test import make_cgroups, remove_cgroups  # noqa: E402
from hvlib import Daemon, Fail, check, log, wait_for  # noqa: E402

GIB = 1 << 30
MEM, CORES = dpt.MEM, dpt.CORES
PODS = (("a", 4, 25), ("b", 8, 50))  # name, GiB, cores


def cgroups(names, tmp):
    """Cgroups for the pods: in a mounted hierarchy, or in one this test mounts (a sandbox such
    as gVisor may mount none, yet let root mount one)."""
    made, why = make_cgroups(names)
    if made:
        return made, None
    for fs, opts in (("cgroup2", []), ("cgroup", ["-o", "pids"]), ("cgroup", ["-o", "cpu"])):
        root = os.path.join(tmp, "cg-" + fs + "".join(opts[1:]))
        os.makedirs(root, exist_ok=True)
        r = subprocess.run(["mount", "-t", fs] + opts + ["vgpu-test", root], capture_output=True,
                           text=True)
        if r.returncode:
            why += "; mount -t %s %s: %s" % (fs, " ".join(opts), r.stderr.strip())
            continue
        made = []
        try:
            for n in names:
                made.append(os.path.join(root, n))
                os.mkdir(made[-1])
            return made, None
        except OSError as e:
            why += "; %s: %s" % (root, e)
            remove_cgroups(made)
            subprocess.run(["umount", root])
    return None, why


def rate(out):
    for tok in out.split():
        if tok.startswith("rate="):
            return float(tok[5:])
    raise Fail("no rate in: %s" % out[-400:])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--daemon", required=True)
    ap.add_argument("--build", required=True)
    ap.add_argument("--proto", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    py = sys.executable
    load = os.path.join(HERE, "hv_load.py")
    tmp = tempfile.mkdtemp(prefix="vgpu-k8s-", dir="/tmp")
    fake_kubelet.load_messages(a.proto, tmp)
    check(subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode == 0,
          "no mount namespaces here (unshare -m)")
    cgs, why = cgroups(["vgpu-gpu-pod-%s-%d" % (n, os.getpid()) for n, _, _ in PODS], tmp)
    check(cgs, "no cgroups for the pods: %s" % why)
    k = fake_kubelet.FakeKubelet(os.path.join(tmp, "dp")).start()
    lim = os.path.abspath(os.path.join(a.build, "src", "limiter"))
    d = Daemon(a.daemon, tmp, ["--tick-ms", "100", "--lib-dir", lim, "--device-plugin-dir",
                               os.path.join(tmp, "dp")], identity="cgroup").start()
    procs = []
    res = {}
    try:
        uuid = wait_for(lambda: d.status()["gpus"], 10, "the GPU in the daemon's status")[0]["uuid"]
        pm = k.wait_plugin(MEM, 10)
        pm.wait_list(lambda devs: len(devs) >= 16 and all(h == "Healthy" for h in devs.values()),
                     10, "memory devices")
        k.wait_plugin(CORES, 10).wait_list(dpt.all_healthy(dpt.ids(uuid, "c", 100)), 10,
                                           "100 core devices")
        units = len(pm.devices())
        # what one process alone gets, with no limiter
        solo = rate(subprocess.run([py, load, "matmul", "--sync-every", "20", "--warmup", "2",
                                    "--seconds", "5"], capture_output=True, text=True,
                                   check=True).stdout)
        answers, env = {}, {}
        for i, (name, gib, cores) in enumerate(PODS):
            answers[name] = [k.allocate(MEM, gib)[2], k.allocate(CORES, cores)[2]]
            if i:  # pod B claims pod A's names
                env[name] = {"VGPU_POD_NAME": "pod-a", "POD_NAME": "pod-a",
                             "VGPU_POD_NAMESPACE": "gpu", "POD_NAMESPACE": "gpu"}

        def start(i, name, argv):
            p = dpt.container(d, tmp, answers[name], cgs[i], argv, env.get(name), gpu_env={})
            procs.append(p)
            return p

        # caps: what PyTorch sees and can allocate in each pod
        for i, (name, gib, _) in enumerate(PODS):
            c = start(i, name, ["env", "VGPU_EXPECT_CAP=%d" % (gib * GIB), py,
                                os.path.join(HERE, "torch_cap.py")])
            out, _ = c.communicate(timeout=240)
            line = [ln for ln in out.splitlines() if ln.startswith("{")]
            log("pod %s torch_cap: rc %d %s" % (name, c.returncode, out[-600:]))
            check(c.returncode == 0 and line, "pod %s under its %d GiB: rc %d" % (
                name, gib, c.returncode))
            res[name] = json.loads(line[-1])
        # shares: both saturating the GPU together
        t0 = time.monotonic() + 25
        runs = [start(i, name, [py, load, "matmul", "--sync-every", "20", "--start-at",
                                "%.3f" % t0, "--seconds", "8"]) for i, (name, _, _) in enumerate(PODS)]
        time.sleep(max(0, t0 - time.monotonic()) + 3)
        st = d.status()
        with open(os.path.join(a.out, "k8s-pods-status.json"), "w") as f:
            json.dump(st, f, indent=1)
        for r, (name, gib, cores) in zip(runs, PODS):
            out, _ = r.communicate(timeout=120)
            check(r.returncode == 0, "pod %s matmul: rc %d %s" % (name, r.returncode, out[-400:]))
            res[name]["share"] = rate(out) / solo
        pods = [p for p in st["pods"] if p["workers"]]
        check(len(pods) == 2, "two pods in the daemon's status: %r" % [p["pod"] for p in pods])
        for p in pods:
            g = p["gpus"][0]
            log("daemon: %s dir %s source %s mem %d core %s" % (
                p["pod"], p["dir"], p.get("source"), g["mem_limit"], g["core_limit"]))
            check(p.get("source") == "allocation" and p["dir"].startswith("a-"),
                  "pod %s not from its allocation: %r" % (p["pod"], p))
        got = sorted((p["gpus"][0]["mem_limit"], p["gpus"][0]["core_limit"]) for p in pods)
        check(got == [(4 * GIB, 25), (8 * GIB, 50)], "the daemon's limits: %r" % got)
        rows = []
        ok = True
        for name, gib, cores in PODS:
            r = res[name]
            good = (r["total_mib"] == gib * 1024 and r["oom"] == "OutOfMemoryError" and
                    abs(r["share"] - cores / 100) <= 0.05)
            ok &= good
            rows.append("pod %s (%d GiB, %d cores): torch total %d MiB, %d MiB allocated before "
                        "OOM, %.3f of solo" % (name, gib, cores, r["total_mib"],
                                               r["allocated_mib"], r["share"]))
        print("node: %d memory devices, 100 core devices; solo %.1f it/s" % (units, solo))
        print("DETAIL " + "; ".join(rows))
        return 0 if ok else 1
    except (Fail, TimeoutError, subprocess.SubprocessError) as e:
        print("FAIL: %s\n--- daemon log ---\n%s" % (e, d.logtail(3000)))
        print("DETAIL %s" % str(e)[:300])
        return 1
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        d.stop(expect_clean=False)
        k.stop()
        remove_cgroups(cgs)
        subprocess.run("umount %s/cg-* 2>/dev/null" % tmp, shell=True)


if __name__ == "__main__":
    sys.exit(main())
