#!/usr/bin/env python3
"""hv_test.py - CPU tests of vgpu-hypervisor, one case per invocation (CTest runs each).

Why this exists: the daemon's contract (docs/hypervisor.md) is checked from the outside, the
way the limiter and the CLI use it: real sockets, real processes, real pod regions, the
simulated NVML. Standard library only.

    hv_test.py --daemon BIN --tool HV_SHM_TOOL --build BUILD_DIR CASE
"""
import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hvlib import Daemon, Fail, check, log, pod_dir, request, run_case, shm_show, wait_for  # noqa: E402

UUID0 = "gpu-5e1a0000-0000-0000-0000-000000000001"
UUID1 = "GPU-5E1A0000-0000-0000-0000-000000000002"  # upper case on purpose: normalised
GIB = 1 << 30
MIB = 1 << 20
UNLIMITED = (1 << 64) - 1
A = None  # parsed arguments


def reg(pod_id, gpus=(), **extra):
    body = {"pod_id": pod_id, "gpus": [{"index": i, "uuid": u, "env": env} for i, u, env in gpus]}
    body.update(extra)
    return body


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def err_names(status, body, code, field):
    check(status == code, "expected %d naming '%s', got %s %r" % (code, field, status, body))
    check(isinstance(body, dict) and field in body.get("error", ""),
          "error should name '%s': %r" % (field, body))


# --- cases -----------------------------------------------------------------------------------

def case_register(tmp):
    # a bad configuration stops the daemon at start with a message naming the key
    for text, name in [("[defaults]\ncore_limit = 150\n", "core_limit"), ("[daemon]\nsockett = x\n", "sockett"),
                       ("[daemon]\ntick_ms = fast\n", "tick_ms")]:
        bad = os.path.join(tmp, "bad.ini")
        with open(bad, "w") as f:
            f.write(text)
        r = subprocess.run([A.daemon, "--config", bad, "--socket", os.path.join(tmp, "x.sock")],
                           capture_output=True, text=True, timeout=20)
        check(r.returncode == 2 and name in r.stderr, "bad config %r: %d %r" % (text, r.returncode, r.stderr))
    r = subprocess.run([A.daemon, "--tick-ms", "0"], capture_output=True, text=True, timeout=20)
    check(r.returncode == 2 and "tick-ms" in r.stderr, "bad flag: %r" % r.stderr)
    port = free_port()
    cfg = "[daemon]\ntick_ms = 50\n[defaults]\ncore_limit = 50\nmem_limit = 2GiB\nweight = 2\n"
    d = Daemon(A.daemon, tmp, ["--listen", "127.0.0.1:%d" % port], config=cfg).start()
    try:
        # environment lowers a default (gpu 0) but cannot raise it (gpu 1)
        s, b, _ = request(d.worker, "POST", "/v1/workers", reg("default/p1", [
            (0, UUID0, {"core_limit": 30, "mem_limit": 4 * GIB}),
            (1, UUID1, {"core_limit": 80.0})], pid=4242))
        check(s == 201, "registration: %s %r" % (s, b))
        check(b["host_pid"] == os.getpid(), "host_pid %r != %d" % (b["host_pid"], os.getpid()))
        check(b["pod"] == "default/p1" and b["worker_id"].startswith("w-"), "reply %r" % b)
        check(b["heartbeat_ms"] == 5000 and b["suspended"] is False, "reply %r" % b)
        lim = {x["uuid"]: x for x in b["limits"]}
        g0, g1 = lim[UUID0], lim[UUID1.lower()]
        check(g0["core_limit"] == 30 and g0["mem_limit"] == 2 * GIB and g0["weight"] == 2,
              "gpu0 min(env, default): %r" % g0)
        check(g1["core_limit"] == 50 and g1["mem_limit"] == 2 * GIB, "gpu1 env cannot raise: %r" % g1)
        check(g0["core_effective"] == 30 and g0["soft"] is False, "gpu0 effective %r" % g0)
        p = d.pod("default/p1")
        check(p["source"] == "defaults", "source %r" % p["source"])
        check([w["pid"] for w in p["workers"]] == [4242], "pid in its namespace: %r" % p["workers"])
        # operator beats defaults, per GPU, and may go above the default
        s, b, _ = request(d.op, "PUT", "/v1/pods/default/p1/limits", {"gpu": UUID1, "core_limit": 70})
        check(s == 200 and b["source"] == "operator", "PUT: %s %r" % (s, b))
        s, b, _ = request(d.worker, "POST", "/v1/workers", reg("default/p1", [
            (0, UUID0, {}), (1, UUID1, {"core_limit": 10})]))
        lim = {x["uuid"]: x for x in b["limits"]}
        check(s == 201 and lim[UUID1.lower()]["core_limit"] == 70, "operator wins: %r" % b)
        check(lim[UUID0]["core_limit"] == 30, "gpu0 unchanged by a per-GPU setting: %r" % lim)
        # the same process registering again (kernel pid and start time) replaces its worker
        ws = d.pod("default/p1")["workers"]
        check([w["worker_id"] for w in ws] == [b["worker_id"]], "registered again: %r" % ws)
        # defaults alone
        s, b, _ = request(d.worker, "POST", "/v1/workers", reg("other/p2", [(0, UUID0, None)]))
        check(s == 201 and b["limits"][0]["core_limit"] == 50 and b["limits"][0]["mem_limit"] == 2 * GIB,
              "defaults alone: %r" % b)
        check(b["pod"] == "other/p2", "namespace from pod_id: %r" % b["pod"])
        # TCP: the claimed pid must own the connection
        tcp = ("127.0.0.1", port)
        s, b, _ = request(tcp, "POST", "/v1/workers", reg("default/t1", pid=os.getpid()))
        check(s == 201 and b["host_pid"] == os.getpid(), "TCP registration: %s %r" % (s, b))
        wid = b["worker_id"]
        s, b, _ = request(tcp, "POST", "/v1/workers/%s/heartbeat" % wid, {})
        check(s == 200 and "seq" in b, "TCP heartbeat by the owner: %s %r" % (s, b))
        s, b, _ = request(tcp, "POST", "/v1/workers", reg("default/t1", pid=1))
        err_names(s, b, 403, "pid")
        s, b, _ = request(tcp, "POST", "/v1/workers", reg("default/t1"))
        err_names(s, b, 400, "pid")
        s, b, _ = request(tcp, "POST", "/v1/pods/default/p1/suspend")
        err_names(s, b, 403, "operator")
        # every pod's status is the operator's: a worker sees its own pod at most
        s, b, _ = request(tcp, "GET", "/v1/status")
        err_names(s, b, 403, "operator")
        s, b, _ = request(d.worker, "GET", "/v1/status")
        check(s == 200 and len(b["pods"]) == 1 and "workers" not in b,
              "status on the worker socket shows the caller's pod only: %s %r" % (s, b))
        # p1 (registered twice by this process: one worker), p2, t1
        check(d.status()["workers"] == 3, "workers: %r" % d.status()["workers"])
    finally:
        d.stop()


def case_forbidden(tmp):
    d = Daemon(A.daemon, tmp).start()
    try:
        s, b, _ = request(d.worker, "POST", "/v1/workers", reg("default/f1", [(0, UUID0, {})]))
        check(s == 201, "register %s" % s)
        wid = b["worker_id"]
        for method, path, body in [("PUT", "/v1/pods/default/f1/limits", {"core_limit": 10}),
                                   ("DELETE", "/v1/pods/default/f1/limits", None),
                                   ("POST", "/v1/pods/default/f1/suspend", None),
                                   ("POST", "/v1/pods/default/f1/resume", None)]:
            s, b, _ = request(d.worker, method, path, body)
            err_names(s, b, 403, "operator")
        p = d.pod("default/f1")
        check(not p["suspended"] and p["gpus"][0]["core_limit"] == 0, "403 changed nothing: %r" % p)
        # another process may not act for this worker
        pid = os.fork()
        if pid == 0:
            try:
                codes = [request(d.worker, "POST", "/v1/workers/%s/heartbeat" % wid, {})[0],
                         request(d.worker, "GET", "/v1/workers/%s/commands?timeout=0" % wid)[0],
                         request(d.worker, "POST", "/v1/workers/%s/ack" % wid, {"seq": 0})[0],
                         request(d.worker, "DELETE", "/v1/workers/%s" % wid)[0]]
                os._exit(0 if codes == [403] * 4 else 10 + len([c for c in codes if c != 403]))
            except BaseException:
                os._exit(99)
        _, st = os.waitpid(pid, 0)
        check(os.WEXITSTATUS(st) == 0, "another process got through for %s (exit %d)" % (wid, os.WEXITSTATUS(st)))
        check(len(d.pod("default/f1")["workers"]) == 1, "worker still there")
        s, b, _ = request(d.worker, "POST", "/v1/workers/w-424242/heartbeat", {})
        err_names(s, b, 404, "worker_id")
        s, _, _ = request(d.worker, "DELETE", "/v1/workers/%s" % wid)
        check(s == 204, "owner may unregister: %s" % s)
    finally:
        d.stop()


class Poller(threading.Thread):
    """A worker's command loop: long-poll, record, ack the highest seq."""

    def __init__(self, sock, wid, after):
        super().__init__(daemon=True)
        self.sock, self.wid, self.after = sock, wid, after
        self.cmds = []
        self.stop = False
        self.errors = []

    def run(self):
        while not self.stop:
            try:
                s, b, _ = request(self.sock, "GET", "/v1/workers/%s/commands?after=%d&timeout=2"
                                  % (self.wid, self.after), timeout=10)
                if s != 200:
                    self.errors.append((s, b))
                    return
                if b["commands"]:
                    self.cmds.extend(b["commands"])
                    self.after = max(c["seq"] for c in b["commands"])
                    s, _, _ = request(self.sock, "POST", "/v1/workers/%s/ack" % self.wid,
                                      {"seq": self.after, "ok": True})
                    if s != 200:
                        self.errors.append(("ack", s))
            except OSError as e:
                self.errors.append(repr(e))
                return

    def wait(self, pred, what, timeout=3):
        return wait_for(lambda: [c for c in self.cmds if pred(c)], timeout, what)


def case_commands(tmp):
    d = Daemon(A.daemon, tmp, ["--tick-ms", "50"]).start()
    tool = A.tool
    try:
        s, b, _ = request(d.worker, "POST", "/v1/workers", reg("default/p1", [(0, UUID0, {})]))
        check(s == 201, "register: %s %r" % (s, b))
        wid, seq0 = b["worker_id"], b["seq"]
        r = shm_show(tool, d, "default/p1")
        check(r["pod"] == "default/p1" and r["state"] == 0 and r["suspended"] == 0,
              "the daemon's control region for the pod: %r" % r)
        check(r["devs"][UUID0]["mem_limit"] == UNLIMITED and r["devs"][UUID0]["core_limit"] == 0,
              "no limits yet: %r" % r)
        poller = Poller(d.worker, wid, seq0)
        poller.start()
        time.sleep(0.2)
        # operator limits -> command to the long-polling worker and the region's fields
        s, b, _ = request(d.op, "PUT", "/v1/pods/default/p1/limits", {"core_limit": 40, "mem_limit": "1GiB"})
        check(s == 200 and b["gpus"][0]["core_limit"] == 40 and b["gpus"][0]["mem_limit"] == GIB,
              "PUT reply %r" % b)
        c = poller.wait(lambda c: c["type"] == "limits" and c["limits"][0]["core_limit"] == 40,
                        "limits command for the worker")[0]
        check(c["seq"] > seq0 and c["limits"][0]["mem_limit"] == GIB, "command %r" % c)
        r = shm_show(tool, d, "default/p1")["devs"][UUID0]
        check(r["mem_limit"] == GIB and r["core_limit"] == 4000 and r["core_soft"] == 0 and
              r["core_effective"] == 4000 and r["weight"] == 1, "hard limit in the region: %r" % r)
        # soft: the floor in core_soft, the whole GPU as ceiling, the policy moves core_effective
        s, b, _ = request(d.op, "PUT", "/v1/pods/default/p1/limits", {"gpu": 0, "soft": True, "weight": 3})
        check(s == 200, "PUT soft %s %r" % (s, b))
        r = shm_show(tool, d, "default/p1")["devs"][UUID0]
        check(r["core_soft"] == 4000 and r["core_limit"] == 10000 and r["weight"] == 3,
              "soft limit in the region: %r" % r)
        # idle: its share drops below the limit (and a limits command says so)
        wait_for(lambda: shm_show(tool, d, "default/p1")["devs"][UUID0]["core_effective"] < 4000,
                 3, "idle soft pod's share drops")
        poller.wait(lambda c: c["type"] == "limits" and c["limits"][0]["core_effective"] < 40,
                    "limits command with the lower share")
        # busy and waiting at its gate: it gets the idle GPU
        pdir = pod_dir(d, "default/p1")
        stop = threading.Event()

        def busy():
            while not stop.is_set():
                subprocess.run([tool, "charge", pdir, UUID0, str(40 * 1000 * 1000), "1000"])
                time.sleep(0.04)
        t = threading.Thread(target=busy, daemon=True)
        t.start()
        try:
            wait_for(lambda: shm_show(tool, d, "default/p1")["devs"][UUID0]["core_effective"] > 4000,
                     3, "busy soft pod alone gets more than its floor")
            st = d.pod("default/p1")["gpus"][0]
            check(st["core_used"] > 0, "status core_used: %r" % st)
            # no power figures for a region the limiter did not fill: the full GPU's speed
            check(st.get("clock_factor") == 1.0, "status clock_factor: %r" % st)
        finally:
            stop.set()
            t.join()
        # suspend / resume: commands, flag, acks
        s, b, _ = request(d.op, "POST", "/v1/pods/default/p1/suspend")
        check(s == 200 and b["workers"] == 1 and b["acked"] == 1, "suspend reply %r" % b)
        sseq = b["seq"]
        r = shm_show(tool, d, "default/p1")
        check(r["suspended"] == 1 and r["control_seq"] >= sseq, "suspended in the region: %r" % r)
        check(any(c["type"] == "suspend" and c["seq"] == sseq for c in poller.cmds), "suspend command")
        w = d.pod("default/p1")["workers"][0]
        check(w["acked_seq"] >= sseq, "acked_seq %r" % w)
        s, b, _ = request(d.op, "POST", "/v1/pods/default/p1/resume")
        check(s == 200 and b["acked"] == 1 and b["seq"] > sseq, "resume reply %r" % b)
        check(shm_show(tool, d, "default/p1")["suspended"] == 0, "resumed in the region")
        # back to defaults
        s, b, _ = request(d.op, "DELETE", "/v1/pods/default/p1/limits")
        check(s == 200, "DELETE limits %s" % s)
        r = shm_show(tool, d, "default/p1")["devs"][UUID0]
        check(r["mem_limit"] == UNLIMITED and r["core_limit"] == 0 and r["core_effective"] == 0,
              "limits cleared in the region: %r" % r)
        poller.wait(lambda c: c["type"] == "limits" and c["limits"][0]["core_limit"] == 0, "cleared limits command")
        seqs = [c["seq"] for c in poller.cmds]
        check(seqs == sorted(set(seqs)), "sequence numbers increase: %r" % seqs)
        check(not poller.errors, "poller errors %r" % poller.errors)
        poller.stop = True
        # heartbeat says the newest seq sent to the worker
        s, b, _ = request(d.worker, "POST", "/v1/workers/%s/heartbeat" % wid)
        check(s == 200 and b["seq"] == seqs[-1], "heartbeat seq %r vs %r" % (b, seqs[-1]))
        poller.join(5)
        s, _, _ = request(d.worker, "DELETE", "/v1/workers/%s" % wid)
        check(s == 204, "unregister %s" % s)
        check(d.pod("default/p1") is None, "pod gone with its last worker and no settings")
        check(not os.path.exists(pdir), "its directory removed with it: %s" % pdir)
    finally:
        d.stop()


def case_sse(tmp):
    d = Daemon(A.daemon, tmp).start()
    try:
        s, b, _ = request(d.worker, "POST", "/v1/workers", reg("default/s1", [(0, UUID0, {})]))
        wid, seq0 = b["worker_id"], b["seq"]
        import http.client
        from hvlib import UnixHTTPConnection
        conn = UnixHTTPConnection(d.worker, timeout=10)
        conn.request("GET", "/v1/workers/%s/events?after=%d" % (wid, seq0))
        r = conn.getresponse()
        check(r.status == 200 and r.getheader("Content-Type") == "text/event-stream",
              "events: %s %s" % (r.status, r.getheader("Content-Type")))
        events, cur = [], {}

        def reader():
            try:
                while len(events) < 3:
                    line = r.readline().decode()
                    if not line:
                        return
                    line = line.rstrip("\n")
                    if not line:
                        if "data" in cur:
                            events.append(dict(cur))
                        cur.clear()
                    elif not line.startswith(":"):
                        k, _, v = line.partition(": ")
                        cur[k] = v
            except (OSError, http.client.HTTPException):
                pass
        t = threading.Thread(target=reader, daemon=True)
        t.start()
        time.sleep(0.2)
        request(d.op, "POST", "/v1/pods/default/s1/suspend")
        request(d.op, "POST", "/v1/pods/default/s1/resume")
        request(d.op, "PUT", "/v1/pods/default/s1/limits", {"core_limit": 20})
        t.join(5)
        conn.close()
        check(len(events) == 3, "3 events, got %r" % events)
        got = [(int(e["id"]), e["event"], json.loads(e["data"])) for e in events]
        check([g[2]["type"] for g in got] == ["suspend", "resume", "limits"], "types %r" % got)
        check(all(g[1] == "command" and g[0] == g[2]["seq"] for g in got), "id = seq: %r" % got)
        # the same commands through the long-poll
        s, b, _ = request(d.worker, "GET", "/v1/workers/%s/commands?after=%d&timeout=0" % (wid, seq0))
        check([c["seq"] for c in b["commands"]] == [g[0] for g in got], "long-poll agrees: %r" % b)
        check(b["commands"][2]["limits"][0]["core_limit"] == 20, "limits in the command")
        # Last-Event-ID resumes after what was seen
        s, data, h = request(d.worker, "GET", "/v1/workers/%s/commands?after=%d&timeout=0" % (wid, got[1][0]))
        check([c["type"] for c in data["commands"]] == ["limits"], "after=%d: %r" % (got[1][0], data))
    finally:
        d.stop()


WORKER_CHILD = r"""
import sys, time
sys.path.insert(0, sys.argv[1])
from hvlib import request
s, b, _ = request(sys.argv[2], "POST", "/v1/workers", {"pod_id": "default/k9", "gpus": []})
print(b["worker_id"], flush=True)
after = b["seq"]
while True:  # a long-polling worker never looks silent
    request(sys.argv[2], "GET", "/v1/workers/%s/commands?after=%d&timeout=5" % (b["worker_id"], after), timeout=10)
"""


def case_kill9(tmp):
    d = Daemon(A.daemon, tmp, ["--heartbeat-ms", "300", "--tick-ms", "50"]).start()
    try:
        here = os.path.dirname(os.path.abspath(__file__))
        child = subprocess.Popen([sys.executable, "-c", WORKER_CHILD, here, d.worker], stdout=subprocess.PIPE, text=True)
        wid = child.stdout.readline().strip()
        check(wid.startswith("w-"), "child registered: %r" % wid)
        # a silent worker (this process, no heartbeat) goes after 3 heartbeats; the polling one stays
        s, b, _ = request(d.worker, "POST", "/v1/workers", {"pod_id": "default/silent"})
        silent = b["worker_id"]
        wait_for(lambda: d.pod("default/silent") is None, 3, "silent worker %s removed" % silent)
        p = d.pod("default/k9")
        check(p and p["workers"][0]["host_pid"] == child.pid, "polling worker kept: %r" % p)
        os.kill(child.pid, signal.SIGKILL)  # not reaped yet: a zombie must count as gone
        t0 = time.time()
        wait_for(lambda: d.pod("default/k9") is None, 2.0, "killed worker removed within 2 s")
        log("killed worker removed after %.2f s" % (time.time() - t0))
        child.wait()
        check('"reason":"process gone"' in d.logtail(20000), "removal logged as process gone")
        check('"reason":"silent for 3 heartbeats"' in d.logtail(20000), "silence logged")
    finally:
        d.stop()


def sim_env(tmp, n):
    """The daemon's environment for n simulated GPUs (UUID0 and UUID1 are the first two)."""
    return {"LD_LIBRARY_PATH": os.path.join(A.build, "sim"),
            "VGPU_SIM_STATE": os.path.join(tmp, "sim.state"), "VGPU_SIM_DEVICES": str(n)}


def case_restart(tmp):
    # two simulated GPUs: a per-GPU setting must name a GPU the node has (case_operator)
    d = Daemon(A.daemon, tmp, env=sim_env(tmp, 2))
    # a stale socket file from a crashed daemon is replaced
    os.makedirs(os.path.dirname(d.op), exist_ok=True)
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(d.op)
    stale.close()
    d.start()
    try:
        s, b, _ = request(d.op, "PUT", "/v1/pods/default/keep/limits",
                          {"core_limit": 25, "mem_limit": "512MiB", "weight": 4})
        check(s == 200, "PUT %s %r" % (s, b))
        s, b, _ = request(d.op, "PUT", "/v1/pods/default/keep/limits", {"gpu": UUID1, "core_limit": 60})
        s, b, _ = request(d.op, "POST", "/v1/pods/default/keep/suspend")
        check(s == 200 and b["workers"] == 0, "suspend without workers: %r" % b)
        check(oct(os.stat(d.op).st_mode & 0o777) == "0o660", "operator socket mode 0660")
        check(oct(os.stat(d.worker).st_mode & 0o777) == "0o666", "worker socket mode 0666")
    finally:
        d.stop()
    st = json.load(open(d.state))
    check(st["pods"]["default/keep"]["suspended"] is True, "state file: %r" % st)
    check(st["pods"]["default/keep"]["limits"]["all"]["mem_limit"] == 512 * MIB, "state file: %r" % st)
    check(not os.path.exists(d.state + ".tmp"), "no temporary state file left")
    d.start()
    try:
        p = d.pod("default/keep")
        check(p and p["suspended"] and p["source"] == "operator", "after restart: %r" % p)
        s, b, _ = request(d.worker, "POST", "/v1/workers", reg("default/keep", [
            (0, UUID0, {"core_limit": 5}), (1, UUID1, {})]))
        lim = {x["uuid"]: x for x in b["limits"]}
        check(s == 201 and b["suspended"] is True, "registration sees suspended: %r" % b)
        check(lim[UUID0]["core_limit"] == 25 and lim[UUID0]["mem_limit"] == 512 * MIB and
              lim[UUID0]["weight"] == 4, "persisted limits: %r" % lim)
        check(lim[UUID1.lower()]["core_limit"] == 60, "persisted per-GPU limit: %r" % lim)
        s, b, _ = request(d.op, "POST", "/v1/pods/default/keep/resume")
        check(s == 200 and b["workers"] == 1, "resume %r" % b)
    finally:
        d.stop()
    check(json.load(open(d.state))["pods"]["default/keep"]["suspended"] is False, "resume persisted")


def case_state(tmp):
    """The state file holds the operator's settings: a daemon that cannot apply every one of
    them exactly as written refuses to start (exit 2, naming the file and the entry) and leaves
    the file as it was; a valid file's settings survive restarts."""
    d = Daemon(A.daemon, tmp)
    os.makedirs(d.shm, exist_ok=True)

    def refused(content, entry, raw_text=None, also=""):
        text = raw_text if raw_text is not None else json.dumps(content)
        with open(d.state, "w") as f:
            f.write(text)
        r = subprocess.run([A.daemon, "--socket", d.op, "--shm-dir", d.shm, "--state", d.state,
                            "--identity", "env"], capture_output=True, text=True, timeout=20)
        want = "vgpu-hypervisor: --state %s: %s" % (d.state, entry)
        check(r.returncode == 2 and want in r.stderr and also in r.stderr,
              "state %r: want exit 2 and %r, got %d %r" % (text[:200], want, r.returncode, r.stderr))
        check(open(d.state).read() == text, "the state file was changed: %r" % text[:200])
        check(sorted(os.listdir(tmp)) == ["shm", "state.json"],
              "nothing beside the file (no .bad, no sockets): %r" % os.listdir(tmp))

    def pods(p):
        return {"version": 1, "pods": p}

    def lim(entry, key="all"):
        return pods({"team/a": {"suspended": False, "limits": {key: entry}}})

    A_ = 'pods."team/a"'
    L = A_ + '.limits."all"'
    cases = [
        (None, "line 1 column", '{"version": 1, "pods": {"default/kept": {"suspended": tr'),
        (None, "line 1 column", ""),
        ([], "must be a JSON object", None),
        ({"pods": {}}, "version: must be 1", None),
        ({"version": 2, "pods": {}}, "version: must be 1", None),
        ({"version": "1", "pods": {}}, "version: must be 1", None),
        ({"version": 1, "pods": {}, "extra": 1}, '"extra": unknown field (version, pods)', None),
        ({"version": 1, "pods": []}, "pods: must be an object", None),
        (pods({"noslash": {}}), 'pods."noslash": must be "namespace/name"', None),
        (pods({"/x": {}}), 'pods."/x": the namespace must be 1-63 bytes', None),
        (pods({"n" * 64 + "/x": {}}), 'pods."%s/x": the namespace must be 1-63 bytes' % ("n" * 64), None),
        (pods({"team/": {}}), 'pods."team/": the name must be 1-253 bytes', None),
        (pods({"team/a b": {}}), 'pods."team/a b": the name must be', None),
        (pods({"team/a/b": {}}), 'pods."team/a/b": the name must be', None),
        (pods({"team/..": {}}), 'pods."team/..": the name must be', None),
        (pods({"team/tab\there": {}}), 'pods."team/tab\\u0009here": the name must be', None),
        (pods({"team/" + "x" * 254: {}}), 'pods."team/' + "x" * 50, None),
        (pods({"team/a": []}), A_ + ": must be an object", None),
        (pods({"team/a": {"limits": {}, "color": 1}}), A_ + '."color": unknown field (suspended, limits)', None),
        (pods({"team/a": {"suspended": "yes"}}), A_ + ".suspended: must be true or false", None),
        (pods({"team/a": {"limits": []}}), A_ + ".limits: must be an object", None),
        (lim({"core_limit": 5}, "some"), A_ + '.limits."some": not a GPU', None),
        (lim({"core_limit": 5}, "1024"), A_ + '.limits."1024": not a GPU', None),
        (lim({"core_limit": 5}, "007"), A_ + '.limits."007": not a GPU', None),
        (lim({"core_limit": 5}, "-1"), A_ + '.limits."-1": not a GPU', None),
        (lim([]), L + ": must be an object", None),
        (lim({}), L + ": no limit given", None),
        (lim({"core_limit": 150}), L + ".core_limit: must be a percentage in (0, 100]", None),
        (lim({"core_limit": 0}), L + ".core_limit: must be a percentage in (0, 100]", None),
        (lim({"core_limit": "30"}), L + ".core_limit: must be a percentage in (0, 100]", None),
        (lim({"mem_limit": -1}), L + ".mem_limit: must be bytes", None),
        (lim({"mem_limit": 1.5}), L + ".mem_limit: must be bytes", None),
        (lim({"mem_limit": "4GiB"}), L + ".mem_limit: must be bytes", None),
        (lim({"weight": 0}), L + ".weight: must be an integer from 1 to 10000", None),
        (lim({"weight": 10001}), L + ".weight: must be an integer from 1 to 10000", None),
        (lim({"weight": 2.5}), L + ".weight: must be an integer from 1 to 10000", None),
        (lim({"soft": "true"}), L + ".soft: must be true or false", None),
        (lim({"core_limit": 30, "cores": 1}), L + '."cores": unknown field', None),
    ]
    for content, entry, raw_text in cases:
        refused(content, entry, raw_text)
    # of two settings for one pod one would be lost: duplicate keys are refused
    refused(None, "line 1 column", '{"version": 1, "pods": {"t/a": {"suspended": true}, "t/a": {}}}',
            also="duplicate object key")
    # two spellings of one GPU uuid (either may be named first: the order of keys is a hash's)
    refused(pods({"team/a": {"limits": {UUID1: {"weight": 2}, UUID1.lower(): {"weight": 3}}}}),
            A_ + '.limits."', also='": the same GPU as the key "')
    # one bad entry among good ones: nothing at all is taken (and the file stays)
    refused(pods({"team/good": {"suspended": True, "limits": {"all": {"core_limit": 20}}},
                  "team/a": {"limits": {"0": {"weight": 0}}}}),
            A_ + '.limits."0".weight: must be an integer from 1 to 10000')
    # a path that is not a readable file
    os.remove(d.state)
    os.mkdir(d.state)
    r = subprocess.run([A.daemon, "--socket", d.op, "--shm-dir", d.shm, "--state", d.state],
                       capture_output=True, text=True, timeout=20)
    check(r.returncode == 2 and ("--state %s: " % d.state) in r.stderr and os.path.isdir(d.state),
          "a directory as the state file: %d %r" % (r.returncode, r.stderr))
    os.rmdir(d.state)

    # a valid file written by hand: every setting applies (uuid keys in any case, index keys)
    good = pods({"team/a": {"suspended": True, "limits": {
        "all": {"core_limit": 30, "mem_limit": 512 * MIB, "weight": 4, "soft": False},
        "1": {"core_limit": 60.5},
        UUID1: {"mem_limit": 0, "soft": True}}},
        "team/b": {"limits": {"all": {"weight": 7}}},
        "team/none": {"suspended": False, "limits": {}}})
    with open(d.state, "w") as f:
        json.dump(good, f)
    for round_ in range(2):  # the file as written by hand, then as the daemon rewrote it
        d.start()
        try:
            p = d.pod("team/a")
            check(p and p["suspended"] and p["source"] == "operator", "%d: team/a %r" % (round_, p))
            check(d.pod("team/none") is None, "a pod without settings is not kept: %r" % d.status()["pods"])
            s, b, _ = request(d.worker, "POST", "/v1/workers", reg("team/a", [
                (0, UUID0, {}), (1, UUID1, {"core_limit": 5})]))
            check(s == 201 and b["suspended"] is True, "registration: %s %r" % (s, b))
            got = {x["index"]: (x["core_limit"], x["mem_limit"], x["weight"], x["soft"]) for x in b["limits"]}
            check(got == {0: (30, 512 * MIB, 4, False), 1: (60.5, 0, 4, True)},
                  "%d: settings as written: %r" % (round_, got))
            s, b, _ = request(d.worker, "POST", "/v1/workers", reg("team/b", [(0, UUID0, {})]))
            check(s == 201 and b["limits"][0]["weight"] == 7, "%d: team/b %r" % (round_, b))
            if round_ == 0:  # a change rewrites the file; what it held stays
                s, _, _ = request(d.op, "PUT", "/v1/pods/team/c/limits", {"core_limit": 11})
                check(s == 200, "PUT %s" % s)
        finally:
            d.stop()
        st = json.load(open(d.state))
        check(st["version"] == 1 and st["pods"]["team/c"]["limits"]["all"]["core_limit"] == 11 and
              st["pods"]["team/a"]["limits"][UUID1.lower()] == {"mem_limit": 0, "soft": True},
              "%d: rewritten state: %r" % (round_, st))
        check(not os.path.exists(d.state + ".tmp"), "no temporary state file left")


def raw(path, data, read=True):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(5)
    s.connect(path)
    try:
        s.sendall(data)
        if not read:
            return b""
        s.shutdown(socket.SHUT_WR)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not chunk:
                break
            out += chunk
        return out
    except (BrokenPipeError, ConnectionResetError):
        return b""
    finally:
        s.close()


def case_malformed(tmp):
    d = Daemon(A.daemon, tmp).start()
    W, O = d.worker, d.op
    try:
        s, b, _ = request(W, "POST", "/v1/workers", reg("default/m1", [(0, UUID0, {})]))
        wid = b["worker_id"]
        big = json.dumps({"pod_id": "x", "pad": "a" * 70000})
        cases = [
            (W, "POST", "/v1/workers", '{"pod_id": "x"', 400, "body"),
            # the parser's own message quotes bytes that are not UTF-8: still a 400 naming it
            (W, "POST", "/v1/workers", b'{"pod_id": "t/\\u0\xd0', 400, "body"),
            (W, "POST", "/v1/workers", "[]", 400, "body"),
            (W, "POST", "/v1/workers", "", 400, "body"),
            (W, "POST", "/v1/workers", "{}", 400, "pod_id"),
            (W, "POST", "/v1/workers", '{"pod_id": 5}', 400, "pod_id"),
            (W, "POST", "/v1/workers", '{"pod_id": "a", "pod_id": "b"}', 400, "body"),
            (W, "POST", "/v1/workers", '{"pod_id": "a", "gpus": {}}', 400, "gpus"),
            (W, "POST", "/v1/workers", '{"pod_id": "a", "gpus": [{"index": "0", "uuid": "GPU-1a"}]}', 400, "gpus[0].index"),
            (W, "POST", "/v1/workers", '{"pod_id": "a", "gpus": [{"index": 0, "uuid": "nope"}]}', 400, "gpus[0].uuid"),
            (W, "POST", "/v1/workers", '{"pod_id": "a", "gpus": [{"index": 0, "uuid": "GPU-1a", "env": {"core_limit": 150}}]}', 400, "gpus[0].env.core_limit"),
            (W, "POST", "/v1/workers", '{"pod_id": "a", "gpus": [{"index": 0, "uuid": "GPU-1a", "env": {"mem_limit": "lots"}}]}', 400, "gpus[0].env.mem_limit"),
            (W, "POST", "/v1/workers", '{"pod_id": "a", "gpus": [{"index": 0, "uuid": "GPU-1a", "env": {"soft": 1}}]}', 400, "gpus[0].env.soft"),
            (W, "POST", "/v1/workers", '{"pod_id": "a", "pid": -3}', 400, "pid"),
            (W, "POST", "/v1/workers", '{"pod_id": "a", "namespace": ["x"]}', 400, "namespace"),
            (W, "POST", "/v1/workers", big, 413, "body"),
            (O, "PUT", "/v1/pods/ns/p/limits", '{"core_limit": "abc"}', 400, "core_limit"),
            (O, "PUT", "/v1/pods/ns/p/limits", '{"core_limit": 0}', 400, "core_limit"),
            (O, "PUT", "/v1/pods/ns/p/limits", '{"mem_limit": -1}', 400, "mem_limit"),
            (O, "PUT", "/v1/pods/ns/p/limits", '{"weight": 0}', 400, "weight"),
            (O, "PUT", "/v1/pods/ns/p/limits", '{"weight": 2.5}', 400, "weight"),
            (O, "PUT", "/v1/pods/ns/p/limits", '{"soft": "yes"}', 400, "soft"),
            (O, "PUT", "/v1/pods/ns/p/limits", '{"gpu": -1, "core_limit": 5}', 400, "gpu"),
            (O, "PUT", "/v1/pods/ns/p/limits", '{"gpu": "some", "core_limit": 5}', 400, "gpu"),
            (O, "PUT", "/v1/pods/ns/p/limits", '{"bogus": 1}', 400, "bogus"),
            (O, "PUT", "/v1/pods/ns/p/limits", "{}", 400, "body"),
            (O, "PUT", "/v1/pods/ns/p/limits", "nonsense", 400, "body"),
            (O, "GET", "/nope", None, 404, "path"),
            (O, "GET", "/v1/pods/ns/p/frobnicate", None, 404, "path"),
            (O, "DELETE", "/v1/status", None, 405, "method"),
            (O, "GET", "/v1/workers", None, 405, "method"),
            (O, "PATCH", "/v1/pods/ns/p/limits", "{}", 405, "method"),
            (O, "DELETE", "/v1/pods/ns/unknown/limits", None, 404, "pod"),
            (W, "GET", "/v1/workers/w-999/commands", None, 404, "worker_id"),
            (W, "GET", "/v1/workers/%s/commands?timeout=abc" % wid, None, 400, "timeout"),
            (W, "GET", "/v1/workers/%s/commands?timeout=61" % wid, None, 400, "timeout"),
            (W, "GET", "/v1/workers/%s/commands?after=-1" % wid, None, 400, "after"),
            (W, "POST", "/v1/workers/%s/ack" % wid, '{"seq": "x"}', 400, "seq"),
            (W, "POST", "/v1/workers/%s/ack" % wid, '{"seq": 1000000}', 400, "seq"),
            (W, "POST", "/v1/workers/%s/ack" % wid, '{"seq": 0, "ok": "no"}', 400, "ok"),
            (W, "POST", "/v1/workers/%s/heartbeat" % wid, "[1]", 400, "body"),
        ]
        for where, method, path, body, code, field in cases:
            s, b, _ = request(where, method, path, body, headers={"Content-Type": "application/json"})
            try:
                err_names(s, b, code, field)
            except Fail as e:
                raise Fail("%s %s %r: %s" % (method, path, (body or "")[:60], e))
        # a body over 64 KiB without Content-Length (chunked)
        chunk = b"a" * 8192
        req = b"POST /v1/workers HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        req += (b"%x\r\n" % len(chunk) + chunk + b"\r\n") * 10 + b"0\r\n\r\n"
        out = raw(W, req)
        check(out.startswith(b"HTTP/1.1 413") and b'"error":"body' in out, "chunked 100 KiB: %r" % out[:200])
        # garbage on the socket
        for junk in [b"\x00\xff\xfe garbage\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n", b"\r\n" * 5000,
                     b"GET /healthz HTTP/1.1\r\nX: " + b"y" * 200000 + b"\r\n\r\n",
                     bytes(range(256)) * 400, b"POST /v1/workers HTTP/1.1\r\nContent-Length: 50\r\n\r\n{"]:
            out = raw(W, junk)
            check(out == b"" or re.match(rb"HTTP/1\.[01] [45]\d\d", out), "junk answered %r" % out[:100])
        # a client that sends half a request and vanishes
        raw(W, b"POST /v1/workers HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"po", read=False)
        for sock in (W, O):
            s, b, _ = request(sock, "GET", "/healthz")
            check(s == 200 and b == "ok\n", "healthz after abuse: %s %r" % (s, b))
        check(d.pod("default/m1") is not None, "registered worker survived")
        check(d.proc.poll() is None, "daemon alive")
    finally:
        d.stop()


def case_inputs(tmp):
    """Values at the edges of what the API accepts never reach workers or the state file broken."""
    d = Daemon(A.daemon, tmp)
    d.start()  # (an unreadable state file stops the daemon: case_state)
    try:
        # a size past int64 is no cap: never a negative mem_limit in replies, commands or state
        s, b, _ = request(d.op, "PUT", "/v1/pods/default/huge/limits", {"mem_limit": "8589934592GiB"})
        check(s == 200, "PUT huge size: %s %r" % (s, b))
        s, b, _ = request(d.worker, "POST", "/v1/workers", reg("default/huge", [(0, UUID0, {})]))
        check(s == 201 and b["limits"][0]["mem_limit"] == 0, "huge size is no cap: %s %r" % (s, b))
        st = json.load(open(d.state))
        check(st["pods"]["default/huge"]["limits"]["all"].get("mem_limit", 0) >= 0, "state: %r" % st)
        # path segments that are not names: refused, nothing created (a pod named with invalid
        # UTF-8 could not be listed, logged or persisted)
        for method, path, field in [("PUT", "/v1/pods/default/%FF/limits", "pod"),
                                    ("POST", "/v1/pods/%C3/x/suspend", "namespace"),
                                    ("PUT", "/v1/pods/default/../limits", "pod"),
                                    ("POST", "/v1/pods/./x/suspend", "namespace")]:
            s, b, _ = request(d.op, method, path, {"core_limit": 10} if method == "PUT" else None)
            err_names(s, b, 400, field)
        st = d.status()
        check([p["pod"] for p in st["pods"]] == ["default/huge"], "no pod made by a bad path: %r" % st["pods"])
        # query numbers are digits only: " -1" is not 2^64-1 (a long-poll that never sees a command)
        wid = d.pod("default/huge")["workers"][0]["worker_id"]
        for q, field in [("after=%20-1&timeout=0", "after"), ("after=%2B1&timeout=0", "after"),
                         ("timeout=%20-1", "timeout")]:
            s, b, _ = request(d.worker, "GET", "/v1/workers/%s/commands?%s" % (wid, q))
            err_names(s, b, 400, field)
    finally:
        d.stop()

def case_concurrent(tmp):
    n = 200
    d = Daemon(A.daemon, tmp, ["--heartbeat-ms", "20000"]).start()
    go_r, go_w = os.pipe()
    res_r, res_w = os.pipe()
    stop_r, stop_w = os.pipe()
    kids = []
    try:
        for i in range(n):
            pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    os.close(go_w)
                    os.close(stop_w)
                    os.read(go_r, 1)  # all start together when the parent closes go_w
                    s, b, _ = request(d.worker, "POST", "/v1/workers",
                                      reg("load/p%d" % (i % 20), [(0, UUID0, {"core_limit": 10})]), timeout=60)
                    line = "%d %s %d\n" % (s, b.get("worker_id", "-"), b.get("host_pid", 0))
                    os.write(res_w, line.encode())
                    os.read(stop_r, 1)  # stay alive until told
                    code = 0
                finally:
                    os._exit(code)
            kids.append(pid)
        os.close(go_w)
        t0 = time.time()
        buf = b""
        while buf.count(b"\n") < n and time.time() - t0 < 45:
            chunk = os.read(res_r, 65536)
            if not chunk:
                break
            buf += chunk
        elapsed = time.time() - t0
        lines = [x.split() for x in buf.decode().splitlines()]
        check(len(lines) == n, "%d of %d registrations answered" % (len(lines), n))
        check(all(x[0] == "201" for x in lines), "all 201: %r" % [x for x in lines if x[0] != "201"][:5])
        check({int(x[2]) for x in lines} == set(kids), "host_pid = each registering process")
        check(len({x[1] for x in lines}) == n, "distinct worker ids")
        st = d.status()
        check(st["workers"] == n, "status workers %d" % st["workers"])
        pids = {w["host_pid"] for p in st["pods"] for w in p["workers"]}
        check(pids == set(kids), "every worker in status")
        log("%d concurrent registrations in %.2f s" % (n, elapsed))
    finally:
        os.close(stop_w)
        for pid in kids:
            os.waitpid(pid, 0)
    wait_for(lambda: d.status()["workers"] == 0, 5, "exited workers reaped")
    d.stop()


LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:\\.|[^"\\])*"'
                  r'(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:\\.|[^"\\])*")*\})? '
                  r'(-?[0-9.]+(?:[eE][-+]?[0-9]+)?|NaN|[+-]Inf)$')


def parse_metrics(text):
    typed, samples = set(), {}
    for ln in text.splitlines():
        if ln.startswith("# HELP ") or ln.startswith("# TYPE "):
            parts = ln.split(" ", 3)
            check(len(parts) == 4, "comment line %r" % ln)
            if parts[1] == "TYPE":
                check(parts[3] in ("gauge", "counter", "untyped", "histogram", "summary"), "type %r" % ln)
                check(parts[2] not in typed, "family %s typed twice" % parts[2])
                typed.add(parts[2])
            continue
        check(not ln.startswith("#") and ln, "stray line %r" % ln)
        m = LINE.match(ln)
        check(m, "not a sample line: %r" % ln)
        check(m.group(1) in typed, "sample before its TYPE: %r" % ln)
        samples[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return samples


def case_metrics(tmp):
    d = Daemon(A.daemon, tmp).start()
    try:
        request(d.worker, "POST", "/v1/workers", reg("default/m1", [(0, UUID0, {"core_limit": 40})]))
        request(d.op, "PUT", "/v1/pods/default/we%22i%5Crd/limits", {"mem_limit": 3 * GIB})
        request(d.op, "POST", "/v1/pods/default/we%22i%5Crd/suspend")
        s, b, _ = request(d.worker, "GET", "/metrics")
        err_names(s, b, 403, "operator")
        s, text, h = request(d.op, "GET", "/metrics")
        check(s == 200 and h["Content-Type"].startswith("text/plain; version=0.0.4"), "metrics %s %r" % (s, h))
        m = parse_metrics(text)
        check(m.get("vgpu_workers") == 1 and m.get("vgpu_up") == 1, "vgpu_workers: %r" % m)
        key = 'vgpu_pod_core_limit_percent{namespace="default",pod="m1",gpu="0",uuid="%s"}' % UUID0
        check(m.get(key) == 40, "pod core limit sample %s in %r" % (key, list(m)[:40]))
        key = 'vgpu_pod_clock_factor{namespace="default",pod="m1",gpu="0",uuid="%s"}' % UUID0
        check(m.get(key) == 1, "pod clock factor sample %s: %r" % (key, m.get(key)))
        check(m.get('vgpu_pod_suspended{namespace="default",pod="we\\"i\\\\rd"}') == 1, "escaped label: %r" %
              [k for k in m if "suspended" in k])
        check(m.get("vgpu_commands_total", 0) >= 1, "commands counted")
        check(isinstance(m.get("process_cpu_seconds_total"), (int, float)) and m["process_cpu_seconds_total"] > 0,
              "the daemon's CPU time: %r" % m.get("process_cpu_seconds_total"))
    finally:
        d.stop()


def case_nvml(tmp):
    sim = os.path.join(A.build, "sim")
    probe = os.path.join(A.build, "tests", "integration", "cuda_probe")
    env = {"LD_LIBRARY_PATH": sim, "VGPU_SIM_STATE": os.path.join(tmp, "sim.state"), "VGPU_SIM_MEM": "16GiB"}
    penv = dict(os.environ, **env)
    d = Daemon(A.daemon, tmp, ["--tick-ms", "50"], env=env).start()
    holders = []
    try:
        st = d.status()
        check(len(st["gpus"]) >= 1 and st["gpus"][0]["mem_total"] == 16 * GIB and "simulated" in st["gpus"][0]["name"],
              "GPUs from NVML: %r" % st["gpus"])
        uuid = st["gpus"][0]["uuid"]
        check(uuid.startswith("gpu-"), "uuid normalised: %r" % uuid)
        m = parse_metrics(request(d.op, "GET", "/metrics")[1])
        check(0 <= m.get("vgpu_nvml_sample_seconds", -1) < 1, "NVML pass time: %r" % m.get("vgpu_nvml_sample_seconds"))
        calls = {k: v for k, v in m.items() if k.startswith("vgpu_nvml_call_seconds{")}
        check(len(calls) == 5 and 0 <= sum(calls.values()) <= m["vgpu_nvml_sample_seconds"] + 5e-6,  # printed to 1 us
              "NVML pass time by call, within the pass: %r" % calls)
        tick = {k: v for k, v in m.items() if k.startswith("vgpu_tick_cpu_seconds_total{")}
        check(set(tick) == {'vgpu_tick_cpu_seconds_total{part="nvml"}', 'vgpu_tick_cpu_seconds_total{part="pods"}'}
              and 0 < sum(tick.values()) <= m["process_cpu_seconds_total"] + 1e-3,
              "tick thread CPU by part, within the process's: %r" % tick)
        # a process with no limiter and no registration
        out = open(os.path.join(tmp, "h1"), "w+")
        h1 = subprocess.Popen([probe, "hold", "256", "30"], stdout=out, env=penv)
        holders.append(h1)
        wait_for(lambda: [u for u in d.status()["unregistered"] if u["host_pid"] == h1.pid and u["mem_used"] >= 256 * MIB],
                 4, "unregistered holder in status")
        m = parse_metrics(request(d.op, "GET", "/metrics")[1])
        check(m.get('vgpu_unregistered_processes{gpu="0"}') == 1, "metrics unregistered: %r" %
              {k: v for k, v in m.items() if "unreg" in k})
        # a registered process above its pod's cap: register, then become the GPU program (same pid)
        child = r"""
import os, sys
sys.path.insert(0, sys.argv[1])
from hvlib import request
s, b, _ = request(sys.argv[2], "POST", "/v1/workers", {"pod_id": "default/oc", "gpus": [{"index": 0, "uuid": sys.argv[3]}]})
assert s == 201, (s, b)
os.execv(sys.argv[4], [sys.argv[4], "hold", "512", "30"])
"""
        out2 = open(os.path.join(tmp, "h2"), "w+")
        h2 = subprocess.Popen([sys.executable, "-c", child, os.path.dirname(os.path.abspath(__file__)),
                               d.worker, uuid, probe], stdout=out2, env=penv)
        holders.append(h2)
        wait_for(lambda: open(out2.name).read().startswith("HELD"), 5, "registered holder holds")
        s, b, _ = request(d.op, "PUT", "/v1/pods/default/oc/limits", {"mem_limit": "100MiB"})
        check(s == 200, "PUT %s" % s)
        wait_for(lambda: "default/oc" in d.status()["over_cap"], 4, "pod over its cap (NVML)")
        st = d.status()
        check(all(u["host_pid"] != h2.pid for u in st["unregistered"]), "registered holder is not unregistered")
        m = parse_metrics(request(d.op, "GET", "/metrics")[1])
        check(m.get('vgpu_pod_over_cap{namespace="default",pod="oc"}') == 1, "metrics over_cap")
        check(m.get('vgpu_pod_nvml_memory_bytes{namespace="default",pod="oc",gpu="0",uuid="%s"}' % uuid, 0) >= 512 * MIB,
              "NVML memory of the pod")
        time.sleep(1.2)
        logs = d.logtail(200000)
        check(logs.count('"msg":"unregistered process on a GPU","host_pid":%d' % h1.pid) == 1,
              "unregistered process logged once")
        check(logs.count('"msg":"pod above its memory cap (NVML)","pod":"default/oc"') == 1, "over cap logged once")
    finally:
        for h in holders:
            h.kill()
            h.wait()
        d.stop()


def kube_pod(ns, name, uid, rv, ann):
    return {"kind": "Pod", "metadata": {"namespace": ns, "name": name, "uid": uid,
                                        "resourceVersion": rv, "annotations": ann},
            "spec": {"nodeName": "n1"}}


def case_kube(tmp):
    """Annotations from a (fake) Kubernetes API of a trusted namespace: between the operator and
    the environment (an untrusted namespace's: case_annotations)."""
    import http.server
    listed, modify, stop = threading.Event(), threading.Event(), threading.Event()
    ann = {"vgpu.io/core-limit": "35", "vgpu.io/mem-limit": "3GiB", "vgpu.io/weight": "5"}

    class H(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            if "watch=1" not in self.path:
                self.wfile.write(json.dumps({"kind": "PodList", "metadata": {"resourceVersion": "10"},
                                             "items": [kube_pod("team", "anno", "uid-1", "10", ann)]}).encode())
                listed.set()
                return
            while not stop.is_set() and not modify.wait(0.1):
                pass
            if modify.is_set():
                ev = {"type": "MODIFIED", "object": kube_pod("team", "anno", "uid-1", "11",
                                                             dict(ann, **{"vgpu.io/mem-limit": "1GiB"}))}
                self.wfile.write((json.dumps(ev) + "\n").encode())
                self.wfile.flush()
            stop.wait(30)

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    api = "http://127.0.0.1:%d" % srv.server_address[1]
    d = Daemon(A.daemon, tmp, ["--kube-api", api, "--node-name", "n1", "--trusted-namespaces", "team"],
               env={"NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"})
    d.start()
    try:
        check(listed.wait(5), "the daemon listed pods")
        time.sleep(0.3)
        s, b, _ = request(d.worker, "POST", "/v1/workers", reg("team/anno", [(0, UUID0, {"core_limit": 20})]))
        g = b["limits"][0]
        check(s == 201 and g["core_limit"] == 35 and g["mem_limit"] == 3 * GIB and g["weight"] == 5,
              "annotations beat the environment: %r" % b)
        check(d.pod("team/anno")["source"] == "kubernetes", "source kubernetes")
        s, b, _ = request(d.op, "PUT", "/v1/pods/team/anno/limits", {"core_limit": 60})
        g = b["gpus"][0]
        check(g["core_limit"] == 60 and g["mem_limit"] == 3 * GIB, "operator beats annotations per field: %r" % g)
        wid = d.pod("team/anno")["workers"][0]["worker_id"]
        seq = request(d.worker, "POST", "/v1/workers/%s/heartbeat" % wid)[1]["seq"]
        modify.set()  # the annotation changes: a limits command and the region follow
        wait_for(lambda: shm_show(A.tool, d, "team/anno")["devs"][UUID0]["mem_limit"] == GIB, 3,
                 "annotation change reaches the region")
        s, b, _ = request(d.worker, "GET", "/v1/workers/%s/commands?after=%d&timeout=2" % (wid, seq))
        check(b["commands"] and b["commands"][-1]["limits"][0]["mem_limit"] == GIB and
              b["commands"][-1]["limits"][0]["core_limit"] == 60, "limits command after the change: %r" % b)
    finally:
        stop.set()
        d.stop()
        srv.shutdown()


def fake_kube_api(items):
    """A Kubernetes API server that lists `items` (pods of node n1) and then keeps the watch
    open without events. Returns (server, its URL, an Event set once a list was served)."""
    import http.server
    listed, stop = threading.Event(), threading.Event()

    class H(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            if "watch=1" not in self.path:
                self.wfile.write(json.dumps({"kind": "PodList", "metadata": {"resourceVersion": "10"},
                                             "items": items}).encode())
                listed.set()
                return
            stop.wait(30)

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    srv.daemon_threads = True
    srv.stop_watches = stop
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, "http://127.0.0.1:%d" % srv.server_address[1], listed


def case_annotations(tmp):
    """A pod's annotations are its tenant's words: outside a trusted namespace they may only
    lower what [defaults] give (core, memory, weight, soft each), never raise it."""
    greedy = {"vgpu.io/core-limit": "90", "vgpu.io/mem-limit": "8GiB", "vgpu.io/weight": "50",
              "vgpu.io/soft": "true"}
    modest = {"vgpu.io/core-limit": "10", "vgpu.io/mem-limit": "1GiB", "vgpu.io/weight": "1",
              "vgpu.io/soft": "false"}
    items = [kube_pod("tenant", "greedy", "uid-g", "10", greedy),
             kube_pod("tenant", "lowcore", "uid-l", "10", {"vgpu.io/core-limit": "15"}),
             kube_pod("ops", "vip", "uid-v", "10", greedy),
             kube_pod("tenant", "modest", "uid-m", "10", modest)]  # last: once it shows, all did
    srv, api, listed = fake_kube_api(items)
    kenv = {"NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"}

    def gpu(d, key):
        p = d.pod(key)
        check(p is not None and len(p["gpus"]) == 1, "pod %s: %r" % (key, p))
        g = p["gpus"][0]
        return (g["core_limit"], g["mem_limit"], g["weight"], g["soft"]), p["source"]

    def run(config, extra, expect):
        d = Daemon(A.daemon, tmp, ["--kube-api", api, "--node-name", "n1"] + extra, env=kenv,
                   config=config).start()
        try:
            check(listed.wait(5), "the daemon listed pods")
            for key in ("tenant/greedy", "tenant/lowcore", "ops/vip", "tenant/modest"):
                s, b, _ = request(d.worker, "POST", "/v1/workers", reg(key, [(0, UUID0, {})]))
                check(s == 201, "register %s: %s %r" % (key, s, b))
            # annotations reach pods already registered too: wait for the last listed pod's
            wait_for(lambda: gpu(d, "tenant/modest")[0][0] == 10, 5, "annotations applied")
            for key, want in expect.items():
                got = gpu(d, key)
                check(got == want, "%s: got %r, want %r (defaults %r)" % (key, got, want, config))
            return d
        except BaseException:
            d.stop()
            raise

    # a hard default (core_limit without soft): soft=true in an untrusted namespace is refused;
    # the trusted list given over two lines (a continuation line adds to it)
    hard = ("[defaults]\ncore_limit = 40\nmem_limit = 2GiB\nweight = 2\n"
            "[kubernetes]\n; the operator's own\ntrusted_namespaces = other-ns,\n  ops\n")
    d = run(hard, [], {
        "tenant/greedy": ((40, 2 * GIB, 2, False), "defaults"),        # asked more: the defaults
        "tenant/modest": ((10, GIB, 1, False), "kubernetes"),          # asked less: gets less
        "tenant/lowcore": ((15, 2 * GIB, 2, False), "kubernetes"),     # per field: core only
        "ops/vip": ((90, 8 * GIB, 50, True), "kubernetes")})           # trusted: what it asks
    try:
        # the environment lowers further still; a soft default is not needed to stay hard
        s, b, _ = request(d.worker, "POST", "/v1/workers", reg("tenant/greedy", [(0, UUID0, {"core_limit": 20})]))
        g = b["limits"][0]
        check(s == 201 and (g["core_limit"], g["mem_limit"], g["soft"]) == (20, 2 * GIB, False),
              "min(defaults, annotations, environment): %s %r" % (s, b))
    finally:
        d.stop()
    # a soft default: an untrusted pod may keep it soft, or make itself hard (lower); the flag's
    # list replaces the file's (tenant is not trusted here, ops is)
    soft = ("[defaults]\ncore_limit = 40\nmem_limit = 2GiB\nweight = 2\nsoft = true\n"
            "[kubernetes]\ntrusted_namespaces = tenant\n")
    d = run(soft, ["--trusted-namespaces", "ops"], {
        "tenant/greedy": ((40, 2 * GIB, 2, True), "defaults"),
        "tenant/modest": ((10, GIB, 1, False), "kubernetes"),
        "ops/vip": ((90, 8 * GIB, 50, True), "kubernetes")})
    d.stop()
    # nothing trusted, no defaults: an untrusted annotation is the only limit there is
    d = run(None, [], {"tenant/greedy": ((90, 8 * GIB, 50, True), "kubernetes"),
                       "tenant/lowcore": ((15, 0, 1, False), "kubernetes")})
    try:
        # the operator's core limit without a word on soft is hard: the tenant's soft=true
        # annotation does not make it soft (soft lends idle time, more than the limit)
        s, b, _ = request(d.op, "PUT", "/v1/pods/tenant/greedy/limits", {"core_limit": 30})
        check(s == 200, "PUT %s %r" % (s, b))
        check(gpu(d, "tenant/greedy")[0][0] == 30 and gpu(d, "tenant/greedy")[0][3] is False,
              "the operator's 30%% made soft by the annotation: %r" % (gpu(d, "tenant/greedy"),))
    finally:
        d.stop()
    srv.stop_watches.set()
    srv.shutdown()
    # a trusted namespace that is not a namespace name stops the daemon, naming it
    sock = ["--socket", os.path.join(tmp, "x.sock"), "--state", os.path.join(tmp, "none.json")]
    key = "[kubernetes] trusted_namespaces: invalid namespace "
    for text, flag, want in [
            ("[kubernetes]\ntrusted_namespaces = ops, Bad_NS\n", None, key + "'Bad_NS'"),
            ("[kubernetes]\ntrusted_namespaces = ops -lead\n", None, key + "'-lead'"),
            ("[kubernetes]\ntrusted_namespaces = ops\n  trail-\n", None, "line 3: " + key + "'trail-'"),
            ("[kubernetes]\ntrusted_namespaces = " + "a" * 64 + "\n", None, key + "'" + "a" * 64 + "'"),
            ("[kubernetes]\ntrusted_namespace = ops\n", None, "[kubernetes] unknown key 'trusted_namespace'"),
            (None, "ops,team.a", "--trusted-namespaces: invalid namespace 'team.a'"),
            (None, "x/y", "--trusted-namespaces: invalid namespace 'x/y'")]:
        args = [A.daemon] + sock
        if text is not None:
            cfg = os.path.join(tmp, "bad.ini")
            with open(cfg, "w") as f:
                f.write(text)
            args += ["--config", cfg]
        else:
            args += ["--trusted-namespaces", flag]
        r = subprocess.run(args, capture_output=True, text=True, timeout=20)
        check(r.returncode == 2 and want in r.stderr,
              "bad trusted namespace %r / %r: exit %d, %r" % (text, flag, r.returncode, r.stderr))


def case_limiter(tmp):
    """The real limiter (src/limiter/hv_client.c) preloaded into a simulated GPU program."""
    sim = os.path.join(A.build, "sim")
    probe = os.path.join(A.build, "tests", "integration", "cuda_probe")
    lim = os.path.join(A.build, "src", "limiter", "libcuda_limiter.so")
    env = {"LD_LIBRARY_PATH": sim, "VGPU_SIM_STATE": os.path.join(tmp, "sim.state"), "VGPU_SIM_MEM": "16GiB"}
    # a short heartbeat: the limiter sends none while its long poll waits, and must stay
    d = Daemon(A.daemon, tmp, ["--tick-ms", "50", "--heartbeat-ms", "200"], env=env).start()
    penv = dict(os.environ, **env)
    penv.update({"VGPU_SHM_DIR": d.shm, "VGPU_POD_NAME": "e2e", "VGPU_POD_NAMESPACE": "team",
                 "VGPU_HYPERVISOR_SOCKET": d.worker, "CUDA_MEM_LIMIT_0": "2GiB",
                 "LD_PRELOAD": os.environ.get("VGPU_TEST_PRELOAD", "") + lim})
    out = open(os.path.join(tmp, "holder"), "w+")
    h = subprocess.Popen([probe, "hold", "100", "30"], stdout=out, stderr=subprocess.STDOUT, env=penv)
    try:
        p = wait_for(lambda: d.pod("team/e2e"), 8, "the limiter registered pod team/e2e")
        check([w["host_pid"] for w in p["workers"]] == [h.pid], "worker is the probe: %r" % p["workers"])
        wait_for(lambda: d.pod("team/e2e")["region"], 3, "daemon mapped the pod region")
        time.sleep(1.0)  # 5 heartbeat intervals without a heartbeat, waiting in its long poll
        kept = d.pod("team/e2e")
        check(kept and [w["worker_id"] for w in kept["workers"]] == [w["worker_id"] for w in p["workers"]],
              "the polling worker stayed registered without heartbeats: %r" % kept)
        check("silent for 3 heartbeats" not in d.logtail(100000), "no worker removed as silent")
        check(p["gpus"] and p["gpus"][0]["mem_limit"] == 2 * GIB and p["source"] == "env",
              "env limit reported: %r" % p)
        s, b, _ = request(d.op, "PUT", "/v1/pods/team/e2e/limits", {"mem_limit": "1GiB", "core_limit": 25})
        check(s == 200, "PUT %s %r" % (s, b))
        uuid = p["gpus"][0]["uuid"]
        r = shm_show(A.tool, d, "team/e2e")
        check(r["state"] == 0 and r["devs"][uuid]["mem_limit"] == GIB and r["devs"][uuid]["core_limit"] == 2500,
              "region after PUT: %r" % r)
        s, b, _ = request(d.op, "POST", "/v1/pods/team/e2e/suspend")
        check(s == 200 and b == {"seq": b["seq"], "acked": 1, "workers": 1}, "the limiter acked suspend: %r" % b)
        check(shm_show(A.tool, d, "team/e2e")["suspended"] == 1, "suspended in the region")
        s, b, _ = request(d.op, "POST", "/v1/pods/team/e2e/resume")
        check(s == 200 and b["acked"] == 1, "the limiter acked resume: %r" % b)
        h.kill()
        t0 = time.time()
        wait_for(lambda: d.pod("team/e2e") is None or not d.pod("team/e2e")["workers"], 2,
                 "killed limiter process removed")
        log("limiter worker removed %.2f s after kill -9" % (time.time() - t0))
        # an environment cap past int64 (no cap, in effect) must not cost the registration: the
        # daemon's JSON parser refuses integers that large
        henv = dict(penv, VGPU_POD_NAME="huge", CUDA_MEM_LIMIT_0="9000000TiB")
        r = subprocess.run([probe, "try", "1"], env=henv, capture_output=True, text=True, timeout=30)
        check(r.returncode == 0, "probe with a huge env cap: %d %s" % (r.returncode, r.stderr[-500:]))
        check('"pod":"team/huge"' in d.logtail(100000) and "worker registered" in d.logtail(100000),
              "the limiter with a huge env cap registered: %s" % r.stderr[-500:])
    finally:
        if h.poll() is None:
            h.kill()
        h.wait()
        d.stop()


def case_operator(tmp):
    """Operator requests about pods and GPUs that do not exist are refused, naming them; settings
    for a pod that has not started are remembered and shown."""
    d = Daemon(A.daemon, tmp, env=sim_env(tmp, 2)).start()
    try:
        # suspend / resume of a pod nobody knows: 404 naming it, nothing made or persisted
        for op in ("suspend", "resume"):
            s, b, _ = request(d.op, "POST", "/v1/pods/no/such-pod/%s" % op)
            err_names(s, b, 404, "no/such-pod")
        check(d.status()["pods"] == [], "no pod made by a refused suspend: %r" % d.status()["pods"])
        check(not os.path.exists(d.state), "nothing persisted for a refused suspend")
        # a GPU the node does not have: 400 naming it and listing the two it has
        uuid_gone = "gpu-5e1a0000-0000-0000-0000-000000000009"
        for gpu, named in [(7, "GPU 7"), (2, "GPU 2"), (uuid_gone, uuid_gone),
                           (uuid_gone.upper(), uuid_gone)]:
            s, b, _ = request(d.op, "PUT", "/v1/pods/team/a/limits", {"gpu": gpu, "core_limit": 30})
            err_names(s, b, 400, named)
            check("0 " + UUID0 in b["error"] and "1 " + UUID1.lower() in b["error"],
                  "the refusal lists the node's GPUs: %r" % b)
        check(d.status()["pods"] == [], "no pod made by a refused PUT: %r" % d.status()["pods"])
        # settings for a pod that has not started: kept, shown in its status entry
        s, b, _ = request(d.op, "PUT", "/v1/pods/team/a/limits",
                          {"core_limit": 30, "mem_limit": "8GiB", "weight": 3, "soft": True})
        check(s == 200 and b["workers"] == [] and b["gpus"] == [] and
              b["operator_limits"] == {"all": {"core_limit": 30, "mem_limit": 8 * GIB, "weight": 3,
                                               "soft": True}}, "PUT before the pod: %s %r" % (s, b))
        for gpu, key in [(1, "1"), (UUID1, UUID1.lower())]:
            s, b, _ = request(d.op, "PUT", "/v1/pods/team/a/limits", {"gpu": gpu, "mem_limit": GIB})
            check(s == 200 and b["operator_limits"].get(key) == {"mem_limit": GIB},
                  "PUT for GPU %r: %s %r" % (gpu, s, b))
        # a pod with settings is known: it may be suspended before it starts, and resumed
        s, b, _ = request(d.op, "POST", "/v1/pods/team/a/suspend")
        check(s == 200 and b["workers"] == 0 and d.pod("team/a")["suspended"], "suspend: %s %r" % (s, b))
        s, b, _ = request(d.op, "POST", "/v1/pods/team/a/resume")
        check(s == 200 and not d.pod("team/a")["suspended"], "resume: %s %r" % (s, b))
        # when it registers, the settings are its limits, per GPU
        s, b, _ = request(d.worker, "POST", "/v1/workers", reg("team/a", [(0, UUID0, {}), (1, UUID1, {})]))
        lim = {x["uuid"]: x for x in b["limits"]}
        check(s == 201 and lim[UUID0]["core_limit"] == 30 and lim[UUID0]["mem_limit"] == 8 * GIB and
              lim[UUID1.lower()]["mem_limit"] == GIB and lim[UUID1.lower()]["weight"] == 3,
              "registration gets the remembered settings: %s %r" % (s, b))
    finally:
        d.stop()
    # without NVML the daemon knows only the GPUs workers registered
    d = Daemon(A.daemon, tmp).start()
    try:
        s, b, _ = request(d.op, "PUT", "/v1/pods/team/b/limits", {"gpu": 0, "core_limit": 30})
        err_names(s, b, 400, "GPU 0")
        check("NVML is unavailable" in b["error"], "says why it knows no GPU: %r" % b)
        s, b, _ = request(d.worker, "POST", "/v1/workers", reg("team/c", [(0, UUID0, {})]))
        check(s == 201, "register: %s %r" % (s, b))
        for gpu in (0, UUID0):
            s, b, _ = request(d.op, "PUT", "/v1/pods/team/b/limits", {"gpu": gpu, "core_limit": 30})
            check(s == 200, "a GPU a worker registered: %r %s %r" % (gpu, s, b))
        s, b, _ = request(d.op, "PUT", "/v1/pods/team/b/limits", {"gpu": 1, "core_limit": 30})
        err_names(s, b, 400, "GPU 1")
        check("0 " + UUID0 in b["error"], "lists the registered GPU: %r" % b)
    finally:
        d.stop()


CASES = {n[5:]: f for n, f in globals().items() if n.startswith("case_")}


def main():
    global A
    ap = argparse.ArgumentParser()
    ap.add_argument("--daemon", required=True)
    ap.add_argument("--tool", required=True)
    ap.add_argument("--build", required=True)
    ap.add_argument("case", choices=sorted(CASES))
    A = ap.parse_args()
    return run_case(A.case, CASES[A.case], tempfile.mkdtemp(prefix="vgpu-hv-"))


if __name__ == "__main__":
    sys.exit(main())
