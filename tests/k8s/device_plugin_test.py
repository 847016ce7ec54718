#!/usr/bin/env python3
"""device_plugin_test.py - the daemon's Kubernetes device plugin against a fake kubelet.

Why this exists: the plugin is what keeps the kube-scheduler from promising more GPU than a
node has, and what a container gets to reach its GPU and its limits. Without a cluster, the
daemon runs on the simulated NVML (tests/sim) with --device-plugin-dir, and fake_kubelet.py
plays the kubelet over real gRPC with messages generated from the daemon's own .proto. One case
per invocation (CTest runs each):

    device_plugin_test.py --daemon BIN --tool HV_SHM_TOOL --build BUILD_DIR --proto PROTO CASE

Exit 77 (skipped) when python3-grpcio, python3-protobuf or protoc is missing.
"""
import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "hypervisor"))
sys.path.insert(0, HERE)
from hvlib import Daemon, Fail, check, log, run_case, wait_for  # noqa: E402

try:
    import grpc  # noqa: E402
    import fake_kubelet  # noqa: E402
except ImportError as e:  # python3-grpcio missing
    print("SKIP: %s" % e, file=sys.stderr)
    sys.exit(77)

GIB = 1 << 30
UNLIMITED = (1 << 64) - 1
MEM = "vgpu.io/gpu-memory"
CORES = "vgpu.io/gpu-cores"
LIB_DIR = "/opt/vgpu-test/lib"
A = None


def sim_env(tmp, gpus=1, mem="16GiB"):
    return {"LD_LIBRARY_PATH": os.path.join(A.build, "sim"),
            "VGPU_SIM_STATE": os.path.join(tmp, "sim.state"), "VGPU_SIM_MEM": mem,
            "VGPU_SIM_DEVICES": str(gpus)}


def start_daemon(tmp, gpus=1, extra=(), config=None, mem="16GiB", lib_dir=LIB_DIR,
                 identity="env"):
    args = ["--tick-ms", "50", "--lib-dir", lib_dir] + list(extra)
    if config is None:
        args += ["--device-plugin-dir", os.path.join(tmp, "dp")]
    return Daemon(A.daemon, tmp, args, env=sim_env(tmp, gpus, mem), config=config,
                  identity=identity).start()


def gpu_uuids(d, n):
    gpus = wait_for(lambda: len(d.status()["gpus"]) >= n and d.status()["gpus"], 5,
                    "%d simulated GPUs" % n)
    return [g["uuid"] for g in sorted(gpus, key=lambda g: g["index"])]


def ids(uuid, kind, n):
    return ["%s-%s%d" % (uuid, kind, k) for k in range(n)]


def all_healthy(expect):
    return lambda devs: set(devs) == set(expect) and all(h == "Healthy" for h in devs.values())


def rpc_error(fn, *a):
    try:
        fn(*a)
    except grpc.RpcError as e:
        return e
    raise Fail("call succeeded where it should have been refused")


def region(d, dir_rel):
    p = os.path.join(d.shm, dir_rel)
    check(os.path.isdir(p), "region directory %s missing" % p)
    out = subprocess.run([A.tool, "show", p], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def check_answer(d, resp, uuid, limit_var, limit_value):
    """Every env var and mount of an Allocate answer; returns the region's directory."""
    check(len(resp.container_responses) == 1, "one answer per container: %r" % resp)
    c = resp.container_responses[0]
    env = dict(c.envs)
    want = {"NVIDIA_VISIBLE_DEVICES": "GPU-" + uuid[4:],
            "LD_PRELOAD": LIB_DIR + "/libcuda_limiter.so",
            "VGPU_HYPERVISOR_SOCKET": "/run/vgpu/worker.sock", "VGPU_SHM_DIR": d.shm,
            limit_var: limit_value}
    check(env == want, "envs %r, want %r" % (env, want))
    mounts = {m.container_path: (m.host_path, m.read_only) for m in c.mounts}
    ctl = [p for p in mounts if p.endswith("/control")]
    check(len(ctl) == 1, "one control mount: %r" % mounts)
    rdir = os.path.dirname(ctl[0])
    rel = os.path.relpath(rdir, d.shm)
    check(rel.startswith("pods/a-") and len(rel) == len("pods/a-") + 16,
          "region directory name %r" % rel)
    want_m = {LIB_DIR: (LIB_DIR, True), "/run/vgpu/worker.sock": (d.worker, False),
              d.shm + "/node": (d.shm + "/node", True), rdir + "/control": (rdir + "/control", True),
              rdir + "/ledger": (rdir + "/ledger", False)}
    check(mounts == want_m, "mounts %r, want %r" % (mounts, want_m))
    check(not c.devices and not c.annotations, "no device nodes or annotations: %r" % c)
    for p in (rdir + "/control/control.shm", rdir + "/ledger/ledger.shm", d.shm + "/node"):
        check(os.path.exists(p), "%s missing" % p)
    return rel


# --- cases -----------------------------------------------------------------------------------

def case_register(tmp):
    # flags and keys that cannot be used stop the daemon with a message naming them
    for args, word in [(["--memory-unit", "1KiB"], "memory-unit"),
                       (["--memory-unit", "lots"], "memory-unit"),
                       (["--device-plugin-dir", "dp"], "device-plugin-dir"),
                       (["--device-plugin-dir", tmp, "--lib-dir", "lib"], "lib-dir"),
                       (["--device-plugin-dir", tmp, "--shm-dir", "shm"], "shm-dir")]:
        r = subprocess.run([A.daemon, "--socket", os.path.join(tmp, "x.sock")] + args,
                           capture_output=True, text=True, timeout=10)
        check(r.returncode == 2 and word in r.stderr, "%s: %d %r" % (args, r.returncode, r.stderr))
    bad = os.path.join(tmp, "bad.ini")
    with open(bad, "w") as f:
        f.write("[daemon]\nmemory_unit = 0\n")
    r = subprocess.run([A.daemon, "--config", bad], capture_output=True, text=True, timeout=10)
    check(r.returncode == 2 and "memory_unit" in r.stderr, "ini: %d %r" % (r.returncode, r.stderr))

    dpdir = os.path.join(tmp, "dp")
    k = fake_kubelet.FakeKubelet(dpdir).start()
    d = start_daemon(tmp)
    try:
        uuid = gpu_uuids(d, 1)[0]
        pm = k.wait_plugin(MEM, 5)
        pc = k.wait_plugin(CORES, 5)
        regs = {req.resource_name: req for _, req in k.registrations}
        check(set(regs) == {MEM, CORES} and not k.refused, "registrations %r" % regs)
        for res, ep in ((MEM, "vgpu-memory.sock"), (CORES, "vgpu-cores.sock")):
            req = regs[res]
            check(req.version == "v1beta1" and req.endpoint == ep, "%s: %r" % (res, req))
            check(req.options.get_preferred_allocation_available and
                  not req.options.pre_start_required, "%s options %r" % (res, req.options))
            check(os.path.exists(os.path.join(dpdir, ep)), "endpoint socket %s" % ep)
        mem = pm.wait_list(all_healthy(ids(uuid, "m", 16)), 5, "16 healthy memory devices")
        cores = pc.wait_list(all_healthy(ids(uuid, "c", 100)), 5, "100 healthy core devices")
        log("memory: %s; cores: %s" % (fake_kubelet.summary(mem), fake_kubelet.summary(cores)))
        for p in (pm, pc):
            o = p.served_options
            check(o is not None and o.get_preferred_allocation_available and
                  not o.pre_start_required, "GetDevicePluginOptions: %r" % o)
        check(pm.prestart(ids(uuid, "m", 2)) == fake_kubelet.pb.PreStartContainerResponse(),
              "PreStartContainer answers an empty response")
        e = rpc_error(pm.call, "/v1beta1.DevicePlugin/NoSuchMethod", fake_kubelet.pb.Empty(),
                      fake_kubelet.pb.Empty)
        check(e.code() == grpc.StatusCode.UNIMPLEMENTED, "unknown method: %s" % e.code())
        # garbage for a message is refused, not taken
        e = rpc_error(pm.call, "/v1beta1.DevicePlugin/Allocate", b"\xff" * 12,
                      fake_kubelet.pb.AllocateResponse)
        check(e.code() == grpc.StatusCode.INVALID_ARGUMENT and "malformed" in e.details(),
              "garbage: %s %s" % (e.code(), e.details()))
        logtext = d.logtail(200000)
        check(logtext.count("registered with the kubelet") == 2, "one log line per registration")
        d.stop()
        for ep in ("vgpu-memory.sock", "vgpu-cores.sock"):
            check(not os.path.exists(os.path.join(dpdir, ep)), "%s left behind" % ep)
        # the INI file's keys, and another memory unit: 4 devices of 4 GiB
        d = start_daemon(tmp, config="[daemon]\ndevice_plugin_dir = %s\nmemory_unit = 4GiB\n"
                         % dpdir)
        pm2 = k.wait_plugin(MEM, 5, after=pm.seq)
        pm2.wait_list(all_healthy(ids(uuid, "m", 4)), 5, "4 devices of 4 GiB")
        resp = pm2.allocate_ids(ids(uuid, "m", 3))
        check(dict(resp.container_responses[0].envs)["CUDA_MEM_LIMIT_0"] == str(12 * GIB),
              "3 units of 4 GiB")
    finally:
        d.stop()
        k.stop()


def case_allocate(tmp):
    k = fake_kubelet.FakeKubelet(os.path.join(tmp, "dp")).start()
    d = start_daemon(tmp, gpus=2)
    try:
        u0, u1 = gpu_uuids(d, 2)
        pm, pc = k.wait_plugin(MEM, 5), k.wait_plugin(CORES, 5)
        every = ids(u0, "m", 16) + ids(u1, "m", 16)
        pm.wait_list(all_healthy(every), 5, "32 memory devices on two GPUs")
        pc.wait_list(all_healthy(ids(u0, "c", 100) + ids(u1, "c", 100)), 5, "200 core devices")

        # preferred allocations stay on one GPU
        p = pm.preferred(every, [], 12)
        check(len(p) == 12 and len({i.rsplit("-", 1)[0] for i in p}) == 1, "preferred 12: %r" % p)
        p = pm.preferred(every, [u1 + "-m3"], 4)
        check(p[0] == u1 + "-m3" and len(p) == 4 and all(i.startswith(u1) for i in p),
              "must-include fixes the GPU: %r" % p)
        p = pm.preferred(ids(u0, "m", 5) + ids(u1, "m", 9), [], 6)
        check(len(p) == 6 and all(i.startswith(u1) for i in p), "the GPU that fits: %r" % p)
        p = pm.preferred(every, [], 20)
        check(len(p) == 16 and len({i.rsplit("-", 1)[0] for i in p}) == 1,
              "none fits: what one GPU has: %r" % p)

        # more units than one GPU has: the kubelet fills up from the other GPU, Allocate refuses
        try:
            k.allocate(MEM, 20)
            raise Fail("20 units across two 16-unit GPUs were allocated")
        except grpc.RpcError as e:
            msg = e.details()
            log("refused: %s: %s" % (e.code(), msg))
            check(e.code() == grpc.StatusCode.FAILED_PRECONDITION and
                  msg.startswith(MEM + ": 20 units requested across GPUs ") and u0 in msg and
                  u1 in msg and "a container's units must be on one GPU" in msg,
                  "message: %s" % msg)

        # 12 GiB on one GPU, through the kubelet's flow
        chosen, _, resp = k.allocate(MEM, 12)
        g = chosen[0].rsplit("-", 1)[0]
        check(all(i.startswith(g + "-m") for i in chosen), "one GPU: %r" % chosen)
        rel = check_answer(d, resp, g, "CUDA_MEM_LIMIT_0", str(12 * GIB))
        ctl = region(d, rel)
        check(ctl["devs"].get(g, {}).get("mem_limit") == 12 * GIB and
              ctl["devs"][g]["core_limit"] == 0, "region holds the memory cap: %r" % ctl)

        # cores of the same container: the GPU its memory was just given
        chosen_c, _, resp = k.allocate(CORES, 30)
        check(all(i.startswith(g + "-c") for i in chosen_c), "cores with the memory: %r" % chosen_c)
        rel_c = check_answer(d, resp, g, "CUDA_CORE_LIMIT_0", "30")
        ctl = region(d, rel_c)
        check(ctl["devs"][g]["core_limit"] == 3000 and ctl["devs"][g]["core_effective"] == 3000
              and ctl["devs"][g]["mem_limit"] == UNLIMITED, "region holds 30%%: %r" % ctl)
        check(rel_c != rel, "a region per allocation")

        # 8 more units: only the other GPU has them
        other = u1 if g == u0 else u0
        chosen2, _, _ = k.allocate(MEM, 8)
        check(all(i.startswith(other + "-m") for i in chosen2), "the GPU with room: %r" % chosen2)

        # refused outright: across GPUs, unknown devices, twice the same, bad sizes
        e = rpc_error(pm.allocate_ids, ids(u0, "m", 6) + ids(u1, "m", 6))
        check(e.code() == grpc.StatusCode.FAILED_PRECONDITION and
              e.details().startswith(MEM + ": 12 units requested across GPUs %s, %s; a container's "
                                     "units must be on one GPU" % (u0, u1)), e.details())
        for bad, word in [([u0 + "-m16"], "unknown device"), (["gpu-nope-m1"], "unknown device"),
                          ([u0 + "-c1"], "unknown device"), ([u0 + "-m01"], "unknown device"),
                          ([u0 + "-m1", u0 + "-m1"], "listed twice"), ([], "units requested")]:
            e = rpc_error(pm.allocate_ids, bad)
            check(e.code() == grpc.StatusCode.INVALID_ARGUMENT and word in e.details(),
                  "%r: %s %s" % (bad, e.code(), e.details()))
        e = rpc_error(pc.allocate_ids, ids(u0, "c", 50) + ids(u1, "c", 50))
        check(e.details().startswith(CORES + ": 100 units requested across GPUs"), e.details())
        # two containers in one call: each its own answer and region
        resp = pm.allocate_ids(ids(u0, "m", 1), ids(u1, "m", 2))
        envs = [dict(c.envs) for c in resp.container_responses]
        check([e["CUDA_MEM_LIMIT_0"] for e in envs] == [str(GIB), str(2 * GIB)] and
              [e["NVIDIA_VISIBLE_DEVICES"] for e in envs] == ["GPU-" + u0[4:], "GPU-" + u1[4:]],
              "two containers: %r" % envs)
        text = d.logtail(400000)
        check(text.count("device plugin: allocated") >= 5, "a log line per allocation")
    finally:
        d.stop()
        k.stop()


def case_restart(tmp):
    dpdir = os.path.join(tmp, "dp")
    os.makedirs(dpdir)
    # the daemon first, no kubelet yet: it registers once one appears
    d = start_daemon(tmp)
    k = None
    try:
        uuid = gpu_uuids(d, 1)[0]
        time.sleep(1)
        k = fake_kubelet.FakeKubelet(dpdir).start()
        t0 = time.time()
        pm, pc = k.wait_plugin(MEM, 3), k.wait_plugin(CORES, 3)
        log("registered %.2f s after the kubelet started" % (time.time() - t0))
        pm.wait_list(all_healthy(ids(uuid, "m", 16)), 5, "memory devices")
        for remove in (True, False):
            # a kubelet restart: kubelet.sock made anew (and, as the kubelet does, every plugin
            # socket removed; the second time the plugin's sockets are left in place)
            seq = max(pm.seq, pc.seq)
            t0 = time.time()
            k.restart(remove_plugin_sockets=remove)
            pm, pc = k.wait_plugin(MEM, 3, after=seq), k.wait_plugin(CORES, 3, after=seq)
            log("registered again %.2f s after the restart (plugin sockets %s)" % (
                time.time() - t0, "removed" if remove else "kept"))
            pm.wait_list(all_healthy(ids(uuid, "m", 16)), 5, "memory devices after the restart")
            pc.wait_list(all_healthy(ids(uuid, "c", 100)), 5, "core devices after the restart")
            chosen, _, resp = k.allocate(MEM, 2)
            check_answer(d, resp, uuid, "CUDA_MEM_LIMIT_0", str(2 * GIB))
        # the kubelet gone for a while, then back
        seq = max(pm.seq, pc.seq)
        k.stop()
        time.sleep(1.5)
        k.start()
        k.wait_plugin(MEM, 3, after=seq)
        k.wait_plugin(CORES, 3, after=seq)
        check(not [p for p in k.plugins.values() if p.error], "stream errors: %r" % [
            p.error for p in k.plugins.values()])
    finally:
        d.stop()
        if k:
            k.stop()


def set_sim_gpus(tmp, n):
    """How many GPUs the simulated NVML reports (struct sim_state: magic u64, layout u32, ndev
    u32 at offset 12; tests/sim/sim_state.h). Fewer: the others are lost to NVML."""
    with open(os.path.join(tmp, "sim.state"), "r+b") as f:
        f.seek(12)
        f.write(struct.pack("<I", n))


def case_unhealthy(tmp):
    k = fake_kubelet.FakeKubelet(os.path.join(tmp, "dp")).start()
    d = start_daemon(tmp, gpus=2)
    try:
        u0, u1 = gpu_uuids(d, 2)
        pm, pc = k.wait_plugin(MEM, 5), k.wait_plugin(CORES, 5)
        pm.wait_list(all_healthy(ids(u0, "m", 16) + ids(u1, "m", 16)), 5, "two healthy GPUs")
        t0 = time.time()
        set_sim_gpus(tmp, 1)  # NVML loses the second GPU

        def lost(devs):
            return len(devs) == 32 and all(devs[i] == "Healthy" for i in ids(u0, "m", 16)) and \
                all(devs[i] == "Unhealthy" for i in ids(u1, "m", 16))
        pm.wait_list(lost, 5, "the lost GPU's devices Unhealthy")
        log("Unhealthy in ListAndWatch %.2f s after NVML lost the GPU" % (time.time() - t0))
        pc.wait_list(lambda devs: all(devs[i] == "Unhealthy" for i in ids(u1, "c", 100)) and
                     all(devs[i] == "Healthy" for i in ids(u0, "c", 100)), 5, "cores too")
        e = rpc_error(pm.allocate_ids, ids(u1, "m", 2))
        check(e.code() == grpc.StatusCode.FAILED_PRECONDITION and "unhealthy" in e.details(),
              "allocation on a lost GPU: %s" % e.details())
        p = pm.preferred(ids(u0, "m", 16) + ids(u1, "m", 16), [], 4)
        check(all(i.startswith(u0) for i in p), "preferred avoids the lost GPU: %r" % p)
        set_sim_gpus(tmp, 2)  # back
        pm.wait_list(all_healthy(ids(u0, "m", 16) + ids(u1, "m", 16)), 5, "healthy again")
    finally:
        d.stop()
        k.stop()


def container(d, tmp, responses, cg, argv, env=None, gpu_env=None):
    """A process started as the kubelet starts a container with these Allocate answers: in its
    own mount namespace with every allocation's region mounted (control/ read-only, ledger/
    read-write: what the container's mounts make of the daemon's tmpfs), in the pod's cgroup,
    with the answers' environment. The node's GPU is the simulated one (or what gpu_env says:
    {} for the real one); the worker socket and the limiter are reached where they are (no
    other root filesystem)."""
    binds = []
    e = dict(os.environ, **(sim_env(tmp, 2) if gpu_env is None else gpu_env))
    for r in responses:
        c = r.container_responses[0]
        e.update(dict(c.envs))
        for m in c.mounts:
            if m.host_path.startswith(d.shm + "/pods/"):
                binds.append("mount --bind %s %s%s" % (m.host_path, m.container_path,
                                                       " && mount -o remount,bind,ro %s" %
                                                       m.container_path if m.read_only else ""))
    e["VGPU_HYPERVISOR_SOCKET"] = d.worker
    e.update(env or {})
    if "LD_PRELOAD" in e:  # a sanitized build's runtimes come before its limiter
        e["LD_PRELOAD"] = os.environ.get("VGPU_TEST_PRELOAD", "") + e["LD_PRELOAD"]

    def enter():
        with open(os.path.join(cg, "cgroup.procs"), "w") as f:
            f.write(str(os.getpid()))

    script = " && ".join(binds + ['exec "$@"'])
    return subprocess.Popen(["unshare", "-m", "--propagation", "private", "sh", "-c", script,
                             "container"] + argv, env=e, preexec_fn=enter, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


class Node:
    """What the end-to-end cases run on: mount namespaces (or exit 77), cgroups `names` (or exit
    77), a fake kubelet and the daemon with its device plugin, cgroup identity and the build's
    limiter. close() ends the containers started and removes it all."""

    def __init__(self, tmp, names, gpus):
        sys.path.insert(0, os.path.join(HERE, "..", "security"))
        from flood_test import make_cgroups, remove_cgroups
        self.remove_cgroups = remove_cgroups
        if subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode:
            log("SKIP: no mount namespaces here (unshare -m)")
            sys.exit(77)
        self.cgs, why = make_cgroups(names)
        if not self.cgs:
            log("SKIP: %s" % why)
            sys.exit(77)
        self.k = fake_kubelet.FakeKubelet(os.path.join(tmp, "dp")).start()
        self.d = start_daemon(tmp, gpus=gpus, lib_dir=os.path.join(A.build, "src", "limiter"),
                              identity="cgroup")
        self.probe = os.path.join(A.build, "tests", "integration", "cuda_probe")
        self.procs = []

    def close(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        self.d.stop()
        self.k.stop()
        self.remove_cgroups(list(reversed(self.cgs)))  # children before their parents


def case_e2e(tmp):
    """Twenty pods started with exactly what Allocate answered get what they asked, whatever
    their environment says; the daemon tells them apart by their mounts and cgroups. A pod
    deleted gives back its region and, to the kubelet, its units."""
    node = Node(tmp, ["vgpu-e2e-%d-%02d" % (os.getpid(), i) for i in range(20)], gpus=2)
    cgs, k, d, probe, procs = node.cgs, node.k, node.d, node.probe, node.procs

    def pod_of(pid):
        return next((p for p in d.status()["pods"]
                     if any(w["host_pid"] == pid for w in p["workers"])), None)

    def start_pod(i, units, cores, env=None):
        """Allocate as the kubelet does for one container, start it, wait for it to register."""
        ids, answers = {}, []
        for res, n in ((MEM, units), (CORES, cores)):
            if n:
                chosen, _, resp = k.allocate(res, n)
                ids[res] = chosen
                answers.append(resp)
        h = container(d, tmp, answers, cgs[i], [probe, "hold", "64", "120"], env)
        procs.append(h)
        p = wait_for(lambda: pod_of(h.pid), 10, "pod %d's process registered" % i)
        return h, p, answers, ids

    def run(i, answers, argv, env=None):
        c = container(d, tmp, answers, cgs[i], argv, env)
        out, _ = c.communicate(timeout=60)
        return c.returncode, out

    try:
        u0, u1 = gpu_uuids(d, 2)
        k.wait_plugin(MEM, 5).wait_list(all_healthy(ids(u0, "m", 16) + ids(u1, "m", 16)), 5,
                                        "32 memory devices on two GPUs")
        k.wait_plugin(CORES, 5).wait_list(all_healthy(ids(u0, "c", 100) + ids(u1, "c", 100)), 5,
                                          "200 core devices")
        # pod 0: 4 GiB and 30% of one GPU
        h, pa, ma, ida = start_pod(0, 4, 30)
        mem_dir = [m.host_path for m in ma[0].container_responses[0].mounts
                   if m.host_path.endswith("/control")][0].split("/")[-2]
        g = pa["gpus"][0]
        check(pa["dir"] == mem_dir, "pod 0's region is its memory allocation's: %s, not %s" %
              (pa["dir"], mem_dir))
        check(g["mem_limit"] == 4 * GIB and g["core_limit"] == 30 and not g["soft"] and
              pa["source"] == "allocation", "pod 0's limits: %r" % pa)
        for size, want in ((5000, 2), (3000, 0)):
            rc, out = run(0, ma, [probe, "try", str(size)])
            check(rc == want, "pod 0, %d MiB under its 4 GiB: rc %d (%s)" % (size, rc, out[-300:]))
        rc, out = run(0, ma, [probe, "spin", "4", "1000"])
        rates = [float(x) for x in out.split("rates=")[1].split()[0].split(",")]
        rate = sum(rates[2:]) / len(rates[2:])
        check(240 <= rate <= 360, "pod 0 at 30%%: %.0f launches/s of 1000" % rate)
        # pod 1: 2 GiB, with pod 0's names (and an unknown UID) in its environment
        fake = {"VGPU_POD_NAME": pa["name"], "VGPU_POD_NAMESPACE": pa["namespace"],
                "POD_NAME": pa["name"], "POD_NAMESPACE": pa["namespace"],
                "VGPU_POD_UID": "0f000000-0000-0000-0000-000000000000"}
        hb, pb, mb, _ = start_pod(1, 2, 0, fake)
        check(pb["pod"] != pa["pod"] and pb["gpus"][0]["mem_limit"] == 2 * GIB,
              "pod 1 with pod 0's names: %r" % pb)
        rc, out = run(1, mb, [probe, "try", "3000"], fake)
        check(rc == 2, "pod 1, 3000 MiB under its 2 GiB: rc %d (%s)" % (rc, out[-300:]))
        # 18 more: 1 GiB and 5% each, spread over the two GPUs by the kubelet's choices
        others = [start_pod(i, 1, 5) for i in range(2, 20)]
        for i, (hx, px, _, _) in enumerate(others, 2):
            gx = px["gpus"][0]
            check(gx["mem_limit"] == GIB and gx["core_limit"] == 5 and
                  [w["host_pid"] for w in px["workers"]] == [hx.pid],
                  "pod %d: %r" % (i, px))
        st = d.status()
        check(len({p["dir"] for p in st["pods"]}) == 20 and st["workers"] == 20,
              "20 pods, 20 regions, 20 workers: %d, %d" % (len(st["pods"]), st["workers"]))
        check([w["host_pid"] for w in d.pod(pa["pod"])["workers"]] == [h.pid],
              "pod 0's workers: %r" % d.pod(pa["pod"])["workers"])
        # pod 0's container exits and is started again with the same answers (the kubelet
        # calls Allocate once per container): its region is still there, with its limits
        h.kill()
        h.wait()
        path = os.path.join(d.shm, "pods", mem_dir)
        wait_for(lambda: not d.pod(pa["pod"]), 5, "pod 0 gone from status after its process")
        check(os.path.isdir(os.path.join(path, "control")), "pod 0's region kept for a restart")
        for size, want in ((5000, 2), (3000, 0)):
            rc, out = run(0, ma, [probe, "try", str(size)])
            check(rc == want, "restarted pod 0, %d MiB under its 4 GiB: rc %d (%s)" % (
                size, rc, out[-300:]))
        # pod 0 deleted: the kubelet gives its units to a new pod, and only then is its region
        # retired (the units of the other 19 pods' regions are not touched)
        for res, chosen in ida.items():
            k.release(res, chosen)
        dirs_before = set(os.listdir(os.path.join(d.shm, "pods")))
        _, _, again = k.allocate(MEM, 4, must=ida[MEM][:1])
        check(again.container_responses, "4 units again after pod 0 went")
        wait_for(lambda: not os.path.exists(path), 5, "pod 0's region retired")
        dirs_after = set(os.listdir(os.path.join(d.shm, "pods")))
        check(dirs_before - dirs_after == {mem_dir} and len(dirs_after - dirs_before) == 1,
              "only pod 0's memory region retired: gone %r, new %r" % (
                  dirs_before - dirs_after, dirs_after - dirs_before))
        # a kubelet that gives pod 1's unit again while pod 1 still runs (it never should): its
        # region stays while it runs, so that its limits stay in force, and goes after
        mb_dir = [m.host_path for m in mb[0].container_responses[0].mounts
                  if m.host_path.endswith("/control")][0].split("/")[-2]
        k.release(MEM, [x for x in k.allocated[MEM]])  # forget everything: any unit is free
        b_unit = json.load(open(os.path.join(d.shm, "pods", mb_dir, "grant.json")))["units"][0]
        b_gpu = pb["gpus"][0]["uuid"]
        k.allocate(MEM, 1, must=["%s-m%d" % (b_gpu, b_unit)])
        check(hb.poll() is None and os.path.isdir(os.path.join(d.shm, "pods", mb_dir, "control")),
              "pod 1's region kept while it runs")
        check("units given again while their pod still runs" in d.logtail(20000),
              "the daemon reported the reuse")
        hb.kill()
        hb.wait()
        wait_for(lambda: not os.path.exists(os.path.join(d.shm, "pods", mb_dir)), 5,
                 "pod 1's region gone with its process")
        log("e2e: 20 pods; pod 0 %s (4 GiB, 30%%: %.0f launches/s of 1000), pod 1 %s (2 GiB) "
            "with pod 0's names, 18 of 1 GiB and 5%%; pod 0's region kept for its restart, "
            "retired when its units were given again; pod 1's at its end" % (pa["pod"], rate, pb["pod"]))
    finally:
        node.close()


def case_containers(tmp):
    """A Kubernetes pod whose two containers each got an allocation of their own: each container
    is held to its own allocation (an entry "<pod>:<dir>" for the second), the pod's suspension
    reaches both, and a container started after it starts suspended."""
    from hvlib import request
    uid = "82531d30-6cfe-472d-8419-fa7fc32579%02d" % (os.getpid() % 100)
    top = "vgpu-kp-%d" % os.getpid()
    pod = "%s/pod%s" % (top, uid)  # as the cgroupfs driver names a pod's cgroup
    node = Node(tmp, [top, pod, pod + "/c1", pod + "/c2", pod + "/c3"], gpus=1)
    cgs, k, d, probe, procs = node.cgs, node.k, node.d, node.probe, node.procs

    def entries():
        return {p["pod"]: p for p in d.status()["pods"] if p["workers"]}

    try:
        u0 = gpu_uuids(d, 1)[0]
        k.wait_plugin(MEM, 5).wait_list(all_healthy(ids(u0, "m", 16)), 5, "16 memory devices")
        a1, a2, a3 = (k.allocate(MEM, n)[2] for n in (2, 3, 1))
        for i, a in ((2, a1), (3, a2)):
            procs.append(container(d, tmp, [a], cgs[i], [probe, "hold", "64", "120"]))
        key = "k8s/" + uid
        got = wait_for(lambda: len(entries()) == 2 and entries(), 10, "two entries of the pod")
        def region_of(a):
            return [m.host_path for m in a.container_responses[0].mounts
                    if m.host_path.endswith("/control")][0].split("/")[-2]
        # whichever container registered first is the pod's entry, the other "<pod>:<dir>"
        dirs = {region_of(a1): 2 * GIB, region_of(a2): 3 * GIB}
        check(key in got and len(got) == 2 and
              [n for n in got if n != key] == [key + ":" + got[[n for n in got if n != key][0]]
                                                  ["dir"]], "entries %r" % sorted(got))
        check({e["dir"]: e["gpus"][0]["mem_limit"] for e in got.values()} == dirs,
              "each container's own region and cap: %r" % {
                  n: (e["dir"], e["gpus"][0]["mem_limit"]) for n, e in got.items()})
        for i, a, size, want in ((2, a1, 2500, 2), (3, a2, 2500, 0), (3, a2, 3500, 2)):
            c = container(d, tmp, [a], cgs[i], [probe, "try", str(size)])
            out, _ = c.communicate(timeout=60)
            check(c.returncode == want, "container %d, %d MiB: rc %d (%s)" % (
                i - 1, size, c.returncode, out[-300:]))
        st, body, _ = request(d.op, "POST", "/v1/pods/%s/suspend" % key)
        check(st == 200 and body["workers"] == 2 and body["acked"] == 2,
              "suspend reached both containers' workers: %s %r" % (st, body))
        got = entries()
        check(all(e["suspended"] for e in got.values()), "both suspended: %r" % {
            n: e["suspended"] for n, e in got.items()})
        # a third container, started while the pod is suspended, starts suspended
        procs.append(container(d, tmp, [a3], cgs[4], [probe, "hold", "64", "120"]))
        got = wait_for(lambda: len(entries()) == 3 and entries(), 10, "three entries")
        check(all(e["suspended"] for e in got.values()), "the third starts suspended: %r" % {
            n: e["suspended"] for n, e in got.items()})
        st, body, _ = request(d.op, "POST", "/v1/pods/%s/resume" % key)
        check(st == 200 and not any(e["suspended"] for e in entries().values()),
              "resumed: %s %r" % (st, body))
        log("containers: pod %s, entries %s; caps 2 and 3 GiB held apart, suspend and resume "
            "reached all three" % (key, sorted(entries())))
    finally:
        node.close()


CASES = {"register": case_register, "allocate": case_allocate, "restart": case_restart,
         "unhealthy": case_unhealthy, "e2e": case_e2e, "containers": case_containers}


def main():
    global A
    ap = argparse.ArgumentParser()
    ap.add_argument("--daemon", required=True)
    ap.add_argument("--tool", required=True)
    ap.add_argument("--build", required=True)
    ap.add_argument("--proto", required=True)
    ap.add_argument("case", choices=sorted(CASES))
    A = ap.parse_args()
    if not shutil.which("protoc"):
        log("SKIP: protoc (protobuf-compiler) not installed")
        return 77
    # short: Unix socket paths must fit in 108 bytes
    tmp = tempfile.mkdtemp(prefix="vgpu-k8s-", dir="/tmp")
    try:
        fake_kubelet.load_messages(A.proto, tmp)
    except ImportError as e:  # python3-protobuf missing
        log("SKIP: %s" % e)
        shutil.rmtree(tmp, ignore_errors=True)
        return 77
    return run_case(A.case, CASES[A.case], tmp, errors=(Fail, TimeoutError))


if __name__ == "__main__":
    sys.exit(main())
