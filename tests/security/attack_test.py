#!/usr/bin/env python3
"""attack_test.py - a hostile pod against the node daemon and its neighbours, on the simulated GPU.

Why this exists: pods share a node and must not be able to take what belongs to another or to
stall or crash the daemon (docs/security.md). Each case here is an attack that worked before the
shared-memory layout and identity were redone, run once by a pod as root and once as uid 65534
where the user matters. Pods are told apart as Kubernetes tells them apart: by cgroup (the
daemon runs with its default --identity cgroup); each "pod" is a cgroup made for the test.

  attack_test.py --daemon BIN --tool HV_SHM_TOOL --build BUILD_DIR CASE

Needs root and a writable cgroup hierarchy; exits 77 (skipped) without them.
"""
import argparse
import ctypes
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "hypervisor"))
sys.path.insert(0, HERE)
from hvlib import Daemon, Fail, check, log, request, wait_for  # noqa: E402
from flood_test import make_cgroups, remove_cgroups  # noqa: E402

SKIP = 77
NOBODY = 65534
# what runs as uid 65534 must be reachable by it (a python3 under /root is not)
PY = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable
MIB = 1 << 20
GIB = 1 << 30
A = None  # command line


def fnv1a64(data):
    h = 1469598103934665603
    for b in data:
        h = ((h ^ b) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h


def cgroup_path(cg):
    """The path a process in cgroup directory `cg` shows in /proc/PID/cgroup."""
    with open("/proc/mounts") as f:
        roots = [ln.split()[1] for ln in f if ln.split()[2] in ("cgroup", "cgroup2")]
    root = max((r for r in roots if cg.startswith(r + "/")), key=len)
    return cg[len(root):]


class World:
    """A daemon, two pods (cgroups) and the simulated GPU every pod's processes share."""

    def __init__(self, tmp, cgs, config=None, extra=()):
        self.tmp = tmp
        self.victim_cg = cgs[0]
        self.attacker_cgs = {0: cgs[1], NOBODY: cgs[2]}  # one pod per attacking user
        self.sim = os.path.join(A.build, "sim")
        self.probe = os.path.join(A.build, "tests", "integration", "cuda_probe")
        self.lib = os.path.join(A.build, "src", "limiter", "libcuda_limiter.so")
        state = os.path.join(tmp, "sim.state")
        fd = os.open(state, os.O_CREAT | os.O_RDWR, 0o666)
        os.fchmod(fd, 0o666)  # the simulated GPU is every user's
        os.close(fd)
        self.env = {"LD_LIBRARY_PATH": self.sim, "VGPU_SIM_STATE": state, "VGPU_SIM_MEM": "16GiB"}
        self.d = Daemon(A.daemon, tmp, list(extra) + ["--tick-ms", "50"], env=self.env,
                        config=config, identity="cgroup").start()
        self.procs = []

    def attacker(self, uid):
        return self.attacker_cgs[uid]

    def spawn(self, argv, cg, uid=0, env=None, limited=True, out=None):
        """A process of the pod in cgroup `cg`, as `uid`, with the limiter when `limited`."""
        e = dict(os.environ, **self.env)
        for k in ("VGPU_POD_NAME", "VGPU_POD_NAMESPACE", "VGPU_POD_UID", "CUDA_MEM_LIMIT_0",
                  "CUDA_CORE_LIMIT_0", "VGPU_SHM_DIR", "LD_PRELOAD"):
            e.pop(k, None)
        e.update({"VGPU_HYPERVISOR_SOCKET": self.d.worker, "VGPU_SHM_DIR": self.d.shm})
        if limited:
            e["LD_PRELOAD"] = os.environ.get("VGPU_TEST_PRELOAD", "") + self.lib
        e.update(env or {})

        def enter():
            with open(os.path.join(cg, "cgroup.procs"), "w") as f:
                f.write(str(os.getpid()))
            if uid:
                os.setgroups([])
                os.setgid(uid)
                os.setuid(uid)

        p = subprocess.Popen(argv, env=e, preexec_fn=enter, stdout=out or subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
        self.procs.append(p)
        return p

    def run(self, argv, cg, uid=0, env=None, limited=True, timeout=30):
        p = self.spawn(argv, cg, uid, env, limited)
        out, _ = p.communicate(timeout=timeout)
        return p.returncode, out

    def pod_of(self, pid):
        for p in self.d.status()["pods"]:
            if any(w["host_pid"] == pid for w in p["workers"]):
                return p
        return None

    def registered(self, proc, what):
        return wait_for(lambda: self.pod_of(proc.pid), 10, "%s registered" % what)

    def pod_dir(self, pod):
        return os.path.join(self.d.shm, "pods", pod["dir"])

    def show(self, pod):
        out = subprocess.run([A.tool, "show", self.pod_dir(pod)], capture_output=True, text=True,
                             check=True).stdout
        return json.loads(out)

    def tool(self, args, cg, uid=0):
        return self.run([A.tool] + args, cg, uid, limited=False)

    def close(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        self.d.stop(expect_clean=False)


def victim(w, hold_mib=100):
    """The victim: a limiter process of pod V holding memory, with the operator's 1 GiB cap."""
    v = w.spawn([w.probe, "hold", str(hold_mib), "120"], w.victim_cg)
    pod = w.registered(v, "the victim")
    s, b, _ = request(w.d.op, "PUT", "/v1/pods/%s/limits" % pod["pod"], {"mem_limit": "1GiB",
                                                                          "core_limit": 30})
    check(s == 200, "operator sets the victim's limits: %s %r" % (s, b))
    uuid = w.d.pod(pod["pod"])["gpus"][0]["uuid"]
    return v, w.d.pod(pod["pod"]), uuid


def as_name(uid):
    return "root" if uid == 0 else "uid %d" % uid


# --- the attacks ------------------------------------------------------------------------------

def case_forged_registration(w):
    """A registration that names another pod's region and identity in its body: the daemon
    files it under the sender's own pod (its cgroup) and the victim keeps its limits and its
    suspension. The worker socket shows the sender its own pod only."""
    v, vpod, uuid = victim(w)
    s, b, _ = request(w.d.op, "POST", "/v1/pods/%s/suspend" % vpod["pod"])
    check(s == 200, "operator suspends the victim: %s" % s)
    for uid in (0, NOBODY):
        body = {"pod_id": vpod["pod"], "namespace": vpod["namespace"], "pod": vpod["name"],
                "pod_uid": "x", "gpus": [{"index": 0, "uuid": uuid,
                                          "env": {"mem_limit": 0, "core_limit": 100}}]}
        script = ("import json,sys; sys.path.insert(0, %r); from hvlib import request;"
                  "s, b, _ = request(%r, 'POST', '/v1/workers', json.loads(sys.argv[1]));"
                  "s2, b2, _ = request(%r, 'GET', '/v1/status');"
                  "print(json.dumps([s, b, s2, b2]))") % (os.path.join(HERE, "..", "hypervisor"),
                                                         w.d.worker, w.d.worker)
        rc, out = w.run([PY, "-c", script, json.dumps(body)], w.attacker(uid), uid,
                        limited=False)
        s, b, s2, b2 = json.loads(out.strip().splitlines()[-1])
        check(s == 201 and b["pod"] != vpod["pod"],
              "%s: the forged registration went to %r (the victim is %s)" %
              (as_name(uid), b.get("pod"), vpod["pod"]))
        r = w.show(vpod)
        check(r["devs"][uuid]["mem_limit"] == GIB and r["devs"][uuid]["core_limit"] == 3000 and
              r["suspended"] == 1, "%s: the victim's control region changed: %r" % (as_name(uid), r))
        pods = [p["pod"] for p in b2["pods"]]
        check(s2 == 200 and vpod["pod"] not in pods and "unregistered" not in b2,
              "%s: the worker socket shows %r" % (as_name(uid), pods))
        log("%s: forged registration filed under %s; victim still 1 GiB, 30%%, suspended" %
            (as_name(uid), b["pod"]))
    check(w.d.pod(vpod["pod"])["suspended"], "the victim is still suspended in status")


def case_env_identity(w):
    """A process that puts the victim's pod names and UID in its environment is still held to
    its own pod: the daemon's defaults (512 MiB), not the victim's 1 GiB."""
    v, vpod, uuid = victim(w)
    for uid in (0, NOBODY):
        env = {"VGPU_POD_NAME": vpod["name"], "VGPU_POD_NAMESPACE": vpod["namespace"],
               "VGPU_POD_UID": "0f000000-0000-0000-0000-000000000000", "POD_NAME": vpod["name"],
               "POD_NAMESPACE": vpod["namespace"]}
        p = w.spawn([w.probe, "hold", "100", "20"], w.attacker(uid), uid, env)
        apod = w.registered(p, "the attacker")
        check(apod["pod"] != vpod["pod"], "%s: the attacker joined the victim's pod" % as_name(uid))
        rc, out = w.run([w.probe, "try", "700"], w.attacker(uid), uid, env)
        p.kill()
        p.wait()
        check(rc == 2, "%s: 700 MiB under the attacker pod's 512 MiB default: %r" %
              (as_name(uid), out[-300:]))
        check([x["host_pid"] for x in w.d.pod(vpod["pod"])["workers"]] == [v.pid],
              "%s: the victim's pod has other workers" % as_name(uid))
        log("%s: victim's names in the environment: filed under %s, 700 MiB refused" %
            (as_name(uid), apod["pod"]))


def expect_denied(fn, what):
    try:
        fn()
    except OSError as e:
        return e.strerror
    raise Fail("%s: allowed" % what)


def case_precreated_region(w):
    """Files planted where a pod's region will be are never used: other users cannot create
    anything under the daemon's directory, and what root (or a daemon of the old layout) left
    there is replaced."""
    target = os.path.join(w.tmp, "victim-cg")
    name = "cg-%016x" % fnv1a64(cgroup_path(w.victim_cg).encode())
    pod_dir = os.path.join(w.d.shm, "pods", name)
    # uid 65534: not even the directory
    script = "import os,sys; os.makedirs(sys.argv[1] + '/control')"
    rc, out = w.run([PY, "-c", script, pod_dir], w.attacker(NOBODY), NOBODY, limited=False)
    check(rc != 0 and "Permission denied" in out, "uid 65534 made %s: %r" % (pod_dir, out[-200:]))
    # root (or the old world-writable layout): a directory of another user with limits of 100 GiB
    os.makedirs(os.path.join(pod_dir, "control"))
    os.makedirs(os.path.join(pod_dir, "ledger"))
    shutil.copy(os.path.join(w.d.shm, "node", "node.shm"), os.path.join(pod_dir, "ledger", "junk"))
    with open(os.path.join(pod_dir, "control", "control.shm"), "wb") as f:
        f.write(b"\xff" * 4096)
    for root, dirs, files in os.walk(pod_dir):
        for n in dirs + files:
            os.chown(os.path.join(root, n), NOBODY, NOBODY)
    os.chown(pod_dir, NOBODY, NOBODY)
    v, vpod, uuid = victim(w)
    check(vpod["dir"] == name, "the victim's directory is %s, predicted %s" % (vpod["dir"], name))
    st = os.stat(pod_dir)
    check(st.st_uid == 0, "the planted directory is still the attacker's (uid %d)" % st.st_uid)
    r = w.show(vpod)
    check(r["devs"][uuid]["mem_limit"] == GIB, "victim's cap %r" % r["devs"][uuid])
    rc, out = w.run([w.probe, "try", "1500"], w.victim_cg)
    check(rc == 2, "the victim's pod took 1.5 GiB under its 1 GiB cap: %r" % out[-200:])
    log("planted region of uid 65534 replaced; uid 65534 cannot create one (%s)" %
        out.strip().splitlines()[-1] if out.strip() else "")


def case_direct_write(w):
    """No pod writes another pod's files, and a pod that writes limits into its own ledger is
    still held to the daemon's: they live in its control region, which it maps read-only."""
    v, vpod, uuid = victim(w)
    ctl = os.path.join(w.pod_dir(vpod), "control", "control.shm")
    led = os.path.join(w.pod_dir(vpod), "ledger", "ledger.shm")
    script = ("import os,sys\nfor p in sys.argv[1:]:\n"
              "    try:\n        os.open(p, os.O_RDWR); print('OPENED', p)\n"
              "    except OSError as e: print('DENIED', p, e.strerror)")
    rc, out = w.run([PY, "-c", script, ctl, led], w.attacker(NOBODY), NOBODY, limited=False)
    check("OPENED" not in out and out.count("DENIED") == 2,
          "uid 65534 opened the victim's files for writing: %r" % out)
    # the attacker's own pod, as root and as 65534: its ledger forged to "no limits"
    for uid in (0, NOBODY):
        h = w.spawn([w.probe, "hold", "64", "60"], w.attacker(uid), uid)
        apod = w.registered(h, "the attacker")
        s, b, _ = request(w.d.op, "PUT", "/v1/pods/%s/limits" % apod["pod"], {"mem_limit": "512MiB"})
        check(s == 200, "operator caps the attacker: %s" % s)
        adir = w.pod_dir(w.d.pod(apod["pod"]))
        rc, out = w.tool(["forge", adir], w.attacker(uid), uid)
        check(rc == 0, "%s could not write its own ledger: %r" % (as_name(uid), out))
        rc2, out2 = w.run([PY, "-c", script,
                           os.path.join(adir, "control", "control.shm")], w.attacker(uid), uid,
                          limited=False)
        rc, out = w.run([w.probe, "try", "700"], w.attacker(uid), uid)
        check(rc == 2, "%s: 700 MiB after forging its ledger's limits (cap 512 MiB): %r" %
              (as_name(uid), out[-300:]))
        maps = open("/proc/%d/maps" % h.pid).read()
        ctl_maps = [ln for ln in maps.splitlines() if ln.endswith("control/control.shm")]
        check(ctl_maps and all(ln.split()[1] == "r--s" for ln in ctl_maps),
              "%s: the limiter's mapping of its control region: %r" % (as_name(uid), ctl_maps))
        if uid:
            check("DENIED" in out2, "uid 65534 opened its pod's control region for writing: %r" % out2)
        h.kill()
        h.wait()
        wait_for(lambda: not w.d.pod(apod["pod"])["workers"], 5, "the attacker's worker gone")
        log("%s: forged its ledger's limits: 700 MiB still refused; control region mapped r--s%s"
            % (as_name(uid), ", not writable" if uid else ""))
    check(w.show(vpod)["devs"][uuid]["mem_limit"] == GIB, "the victim's cap changed")


def case_node_symlink(w):
    """Before the daemon starts, a symlink at the node region's path (or the directory itself
    world-writable, or a symlink) never makes the daemon write through it."""
    w.d.stop()
    shm = w.d.shm
    target = os.path.join(w.tmp, "precious")
    with open(target, "w") as f:
        f.write("precious\n")
    os.chmod(shm, 0o777)
    os.unlink(os.path.join(shm, "node", "node.shm"))
    os.symlink(target, os.path.join(shm, "node", "node.shm"))
    w.d.start()
    check(open(target).read() == "precious\n", "the daemon wrote through the planted symlink")
    st = os.lstat(os.path.join(shm, "node", "node.shm"))
    check(not os.path.islink(os.path.join(shm, "node", "node.shm")) and st.st_uid == 0 and
          (st.st_mode & 0o777) == 0o644, "node.shm is not the daemon's regular file")
    check((os.stat(shm).st_mode & 0o777) == 0o711, "--shm-dir mode %o" % (os.stat(shm).st_mode & 0o777))
    w.d.stop()
    # --shm-dir itself a symlink to a directory of another user: the daemon refuses to start
    other = os.path.join(w.tmp, "other")
    os.mkdir(other)
    os.chown(other, NOBODY, NOBODY)
    link = os.path.join(w.tmp, "shm-link")
    os.symlink(other, link)
    r = subprocess.run([A.daemon, "--socket", os.path.join(w.tmp, "x", "op.sock"), "--shm-dir", link,
                        "--state", os.path.join(w.tmp, "x.json")], capture_output=True, text=True,
                       timeout=20)
    check(r.returncode == 2 and "--shm-dir" in r.stderr, "daemon with a symlinked --shm-dir: %d %r" %
          (r.returncode, r.stderr[-300:]))
    check(os.listdir(other) == [], "the daemon wrote into the link's target: %r" % os.listdir(other))
    w.d.start()
    log("planted node.shm symlink replaced, target untouched; symlinked --shm-dir refused")


def case_crafted_mutex(w):
    """A pod's own ledger with a crafted lock, then random bytes everywhere: the daemon never
    takes that lock and reads the ledger with checks, so it stays up and serves everyone; the
    pod whose ledger is garbage is marked broken (its processes fail closed)."""
    v, vpod, uuid = victim(w)
    for uid in (0, NOBODY):
        h = w.spawn([w.probe, "hold", "64", "60"], w.attacker(uid), uid)
        apod = w.registered(h, "the attacker")
        adir = w.pod_dir(w.d.pod(apod["pod"]))
        rc, out = w.tool(["scribble", adir, "mutex", "7"], w.attacker(uid), uid)
        check(rc == 0, "%s: scribble mutex: %r" % (as_name(uid), out))
        time.sleep(1.5)  # a second of ticks and a reaping pass over the crafted ledger
        check(w.d.proc.poll() is None, "%s: the daemon died on a crafted mutex" % as_name(uid))
        t0 = time.time()
        st = w.d.status()
        ms = (time.time() - t0) * 1000
        check(ms < 500, "status took %.0f ms" % ms)
        rc, out = w.tool(["scribble", adir, "devs", "11"], w.attacker(uid), uid)
        wait_for(lambda: w.d.pod(apod["pod"])["broken"], 3, "%s: the garbage pod marked broken" %
                 as_name(uid))
        rc, out = w.tool(["scribble", adir, "all", "13"], w.attacker(uid), uid)
        time.sleep(1.5)
        check(w.d.proc.poll() is None, "%s: the daemon died on a garbage ledger" % as_name(uid))
        check(w.show(w.d.pod(apod["pod"]))["state"] == 1, "garbage pod's control region not broken")
        vp = w.d.pod(vpod["pod"])
        check(not vp["broken"] and [x["host_pid"] for x in vp["workers"]] == [v.pid],
              "%s: the victim was affected: %r" % (as_name(uid), vp))
        h.kill()
        h.wait()
        log("%s: crafted mutex and garbage ledger: daemon up, status in %.0f ms, attacker's pod "
            "broken (%s), victim fine" % (as_name(uid), ms, w.d.pod(apod["pod"])["broken"]))
    rc, out = w.run([w.probe, "try", "1500"], w.victim_cg)
    check(rc == 2, "the victim's cap after the attacks: %r" % out[-200:])


def case_fake_records(w):
    """511 fake process records and the ledger's lock held: the daemon's status stays fast
    and the victim's worker stays registered (it used to take 25 s and drop other workers)."""
    v, vpod, uuid = victim(w)
    for uid in (0, NOBODY):
        h = w.spawn([w.probe, "hold", "64", "60"], w.attacker(uid), uid)
        apod = w.registered(h, "the attacker")
        adir = w.pod_dir(w.d.pod(apod["pod"]))
        rc, out = w.tool(["records", adir, "511"], w.attacker(uid), uid)
        check(rc == 0, "%s: records: %r" % (as_name(uid), out))
        lock = w.spawn([A.tool, "hold-lock", adir, "6"], w.attacker(uid), uid, limited=False)
        check("LOCKED" in lock.stdout.readline(), "%s: could not take its own lock" % as_name(uid))
        worst = 0
        t_end = time.time() + 5
        while time.time() < t_end:
            t0 = time.time()
            st = w.d.status()
            worst = max(worst, (time.time() - t0) * 1000)
            check([x["host_pid"] for x in w.d.pod(vpod["pod"])["workers"]] == [v.pid],
                  "%s: the victim's worker was dropped" % as_name(uid))
            time.sleep(0.2)
        check(worst < 500, "%s: status took up to %.0f ms" % (as_name(uid), worst))
        lock.wait()
        h.kill()
        h.wait()
        log("%s: 511 fake records and the lock held for 5 s: status at most %.0f ms, victim "
            "registered throughout" % (as_name(uid), worst))
    check(w.d.proc.poll() is None, "the daemon died")


def case_borrowed_records(w):
    """Records a pod forges in its own ledger to name another pod's live worker (its host PID
    and start time): the daemon's tick skips /proc only for records of the pod's own workers
    it has just seen running, so they change nothing for the victim; once the victim dies,
    each attacker pod is told of its record as of any dead process."""
    v, vpod, uuid = victim(w)
    with open("/proc/%d/stat" % v.pid) as f:
        start = f.read().rsplit(")", 1)[1].split()[19]  # field 22
    apods = []
    for uid in (0, NOBODY):
        h = w.spawn([w.probe, "hold", "1", "60"], w.attacker(uid), uid)
        apod = w.registered(h, "the attacker")
        adir = w.pod_dir(w.d.pod(apod["pod"]))
        rc, out = w.tool(["record-at", adir, "5", "4242", str(v.pid), start], w.attacker(uid), uid)
        check(rc == 0, "%s: record-at: %r" % (as_name(uid), out))
        apods.append(apod["pod"])
    time.sleep(2.5)  # measured: two reaping passes (once a second) with the victim alive
    check([x["host_pid"] for x in w.d.pod(vpod["pod"])["workers"]] == [v.pid],
          "the victim's worker was dropped")
    v.kill()
    v.wait()

    def told(pod):
        pat = re.compile(r'"reported a dead process to its pod".*"pod": ?"%s".*"host_pid": ?%d\b'
                         % (re.escape(pod), v.pid))
        return any(pat.search(line) for line in w.d.logtail(1 << 20).splitlines())
    for pod in apods:
        wait_for(lambda: told(pod), 15, "%s told that the record naming the dead victim is dead" % pod)
    check(w.d.proc.poll() is None, "the daemon died")
    log("records naming another pod's worker: victim kept while alive, both attacker pods told "
        "once it died")


def spin_rate(out):
    """Launches per second of a `cuda_probe spin` after its first second."""
    for tok in out.split():
        if tok.startswith("rates="):
            rates = [float(x) for x in tok[6:].split(",")]
            return sum(rates[2:]) / max(1, len(rates[2:]))
    raise Fail("no rates in %r" % out[-300:])


def case_unusable_region(w):
    """A limiter with a compute limit and no usable shared region gates compute in-process at
    that limit (it used to run at 100%): standalone with a directory another user owns, and
    managed when the pod's region is not reachable (not mounted)."""
    bad = os.path.join(w.tmp, "not-mine")
    os.mkdir(bad)
    os.chown(bad, NOBODY, NOBODY)
    env = {"VGPU_SHM_DIR": bad, "CUDA_CORE_LIMIT_0": "20", "VGPU_HYPERVISOR_SOCKET": "",
           "VGPU_LOG_LEVEL": "info"}
    rc, out = w.run([w.probe, "spin", "4", "1000"], w.attacker(0), env=env)
    r = spin_rate(out)
    check(rc == 0 and 150 <= r <= 250, "standalone, unusable directory, 20%%: %.0f launches/s "
          "(the GPU does 1000/s): %r" % (r, out[-400:]))
    check("on its own" in out, "the limiter did not say it holds itself on its own: %r" % out[-400:])
    log("standalone with another user's directory, 20%%: %.0f launches/s of 1000" % r)
    # managed: the daemon's 20% arrives, but the region cannot be reached from the process
    h = w.spawn([w.probe, "hold", "1", "30"], w.attacker(0))
    apod = w.registered(h, "the attacker")
    s, b, _ = request(w.d.op, "PUT", "/v1/pods/%s/limits" % apod["pod"], {"core_limit": 20})
    check(s == 200, "operator sets 20%%: %s" % s)
    rc, out = w.run([w.probe, "spin", "4", "1000"], w.attacker(0),
                    env={"VGPU_SHM_DIR": os.path.join(w.tmp, "nowhere"), "VGPU_LOG_LEVEL": "info"})
    r = spin_rate(out)
    check(rc == 0 and 150 <= r <= 250, "managed, region unreachable, 20%%: %.0f launches/s: %r" %
          (r, out[-400:]))
    log("managed with the region unreachable, 20%%: %.0f launches/s of 1000" % r)


def case_tiny_limit(w):
    """A limit under 0.005% is never sent or stored as 0 (which means no limit)."""
    v, vpod, uuid = victim(w)
    s, b, _ = request(w.d.op, "PUT", "/v1/pods/%s/limits" % vpod["pod"], {"core_limit": 0.004})
    check(s == 200, "operator sets 0.004%%: %s %r" % (s, b))
    r = w.show(vpod)["devs"][uuid]
    check(r["core_limit"] == 1 and r["core_effective"] == 1, "0.004%% in the control region: %r" % r)
    rc, out = w.run([w.probe, "spin", "3", "1000"], w.victim_cg)
    rate = spin_rate(out)
    check(rate < 20, "the pod ran %.0f launches/s under 0.004%% (1000/s unlimited)" % rate)
    log("0.004%%: stored as 1 (0.01%%); the pod ran %.1f launches/s" % rate)


CASES = {n[5:]: f for n, f in globals().items() if n.startswith("case_")}


def main():
    global A
    ap = argparse.ArgumentParser()
    ap.add_argument("--daemon", required=True)
    ap.add_argument("--tool", required=True)
    ap.add_argument("--build", required=True)
    ap.add_argument("case", choices=sorted(CASES))
    A = ap.parse_args()
    tag = "vgpu-attack-%d" % os.getpid()
    cgs, why = make_cgroups([tag + "-victim", tag + "-attacker-root", tag + "-attacker-nobody"])
    if not cgs:
        log("SKIP security_%s: %s" % (A.case, why))
        return SKIP
    tmp = tempfile.mkdtemp(prefix="vgpu-attack-")
    os.chmod(tmp, 0o755)  # uid 65534 reaches the worker socket, as a pod its mounted one
    w = None
    ok = False
    try:
        config = "[defaults]\nmem_limit = 512MiB\n"
        w = World(tmp, cgs, config=config)
        CASES[A.case](w)
        check(w.d.proc.poll() is None, "the daemon is gone")
        ok = True
    except Fail as e:
        log("FAIL %s: %s" % (A.case, e))
        if w:
            log("--- daemon log (tail) ---\n" + w.d.logtail(3000))
    finally:
        if w:
            try:
                w.close()
            except Fail as e:
                log("stop: %s" % e)
                ok = False
        remove_cgroups(cgs)
        shutil.rmtree(tmp, ignore_errors=True)
    if ok:
        log("PASS %s" % A.case)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
