#!/usr/bin/env python3
"""fake_hypervisor.py - a stand-in for vgpu-hypervisor that serves the worker API of
docs/hypervisor.md, so the limiter's client (src/limiter/hv_client.c) can be tested end to end
without the real daemon. Python 3 standard library only.

It follows the document: worker endpoints on the worker socket (operator endpoints answer 403
there), every endpoint on the operator socket, identity from SO_PEERCRED, per-daemon sequence
numbers, long-poll commands, acks, heartbeats (a worker missing 3 intervals or whose PID is gone
is removed), the limit precedence (operator > [defaults] > the worker's environment, where the
environment may only lower a default), pod settings persisted in --state (tmp + rename).

Like the daemon, it owns every pod's region (src/hypervisor/pod_files.h): at a pod's first
registration it makes <--shm-dir>/pods/<name>/ with `hv_shm_tool create` (--tool), the pod's
control region (control/control.shm) and its ledger (ledger/ledger.shm). The pod is named by the
registration body, as in the daemon's `--identity env` development mode; <name> is
"env-<the pod key "ns/name" with every character outside [A-Za-z0-9._-] as '_'>". A region that
is already there (a restarted fake) is reused with its token, read from the file. It writes
every GPU's resolved limits and the pod's suspension into the control region BEFORE it replies
to a registration, and before it pushes a limits / suspend / resume command (control_seq = the
command's seq; a registration writes the limits resolved with its own environment, where the
daemon merges all its workers'); the reply names the region: "region": {"dir": "pods/<name>",
"token": ...}, besides the pod's limits and suspension as before. The limiter maps the control
region read-only and never writes limits: commands only need its ack (or, for a process that
runs on a private ledger, to be applied to that ledger). It has no scheduler (core_effective =
core_limit), no ledger reading and no Kubernetes watch.

For tests the operator socket also serves /test/...: GET /test/log (registrations with their
bodies, region dirs and tokens, control region writes for a command ("control", before its
"push"), acks, deliveries, removals, when it started serving ("ready"), with time.monotonic()
stamps), POST
/test/command (push a raw command to a pod's workers; the region is not written).
--wrong-token makes every registration reply name a token that is not the region's (the limiter
must then refuse to attach the region). --busy N answers the first N registrations 503, as the
daemon does while its pod watch has not seen the pod (logged as "busy").

  fake_hypervisor.py serve --worker-socket W --socket OP --tool HV_SHM_TOOL --shm-dir SHM
                          [--state F] [--chunked] [--wrong-token]
                          [--default-core P] [--default-mem BYTES] [--heartbeat-ms MS]
                          [--busy N]
  fake_hypervisor.py ctl OP_SOCKET METHOD PATH [JSON_BODY]   (prints the reply; exit 1 if not 2xx)
"""
import argparse
import http.client
import json
import os
import re
import signal
import socket
import socketserver
import struct
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler

MAX_BODY = 64 * 1024
# the head of a control region (src/common/ctl_layout.h): magic, version, size,
# pod[VGPU_POD_ID_LEN], token[VGPU_CTL_TOKEN_LEN]; read to reuse a region a restarted fake finds.
# The version is the header's own, so that a layout change cannot leave the fake behind.
CTL_MAGIC = 0x314C544355504756
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "src", "common",
                       "ctl_layout.h")) as _h:
    CTL_VERSION = int(re.search(r"#define VGPU_CTL_VERSION (\d+)u", _h.read()).group(1))
CTL_POD_AT, CTL_POD_LEN, CTL_TOKEN_AT, CTL_TOKEN_LEN = 16, 160, 176, 33
UNITS = {"": 1, "b": 1, "k": 1 << 10, "kb": 1000, "kib": 1 << 10, "m": 1 << 20, "mb": 1000 ** 2,
         "mib": 1 << 20, "g": 1 << 30, "gb": 1000 ** 3, "gib": 1 << 30, "t": 1 << 40, "tib": 1 << 40}


class HttpError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


def parse_size(v, field):
    if isinstance(v, bool):
        raise HttpError(400, f"{field}: must be a number of bytes or a size string")
    if isinstance(v, int):
        if v < 0:
            raise HttpError(400, f"{field}: must not be negative")
        return v
    if isinstance(v, str):
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", v)
        if m and m.group(2).lower() in UNITS:
            return int(float(m.group(1)) * UNITS[m.group(2).lower()])
    raise HttpError(400, f"{field}: '{v}' is not a size")


def pct100(pct):
    """a percentage as the region holds it: hundredths, clamped to [0, 10000] (vgpu_hv_percent)"""
    if not pct or pct <= 0:
        return 0
    if pct >= 100:
        return 10000
    return max(1, int(pct * 100 + 0.5))


class State:
    def __init__(self, args):
        self.args = args
        self.cv = threading.Condition()
        self.seq = 0
        self.next_worker = 1
        self.workers = {}        # id -> dict
        self.commands = []       # (seq, pod, cmd)
        self.pods = {}           # pod -> {"suspended": bool, "gpus": {key: settings}} (operator)
        self.log = []
        self.busy_left = args.busy
        self.regions = {}        # pod -> {"name", "dir" (relative), "path", "token"}
        self.load()

    # --- persistence of operator settings -------------------------------------------------
    def load(self):
        if self.args.state and os.path.exists(self.args.state):
            with open(self.args.state) as f:
                self.pods = json.load(f).get("pods", {})

    def save(self):
        if not self.args.state:
            return
        tmp = self.args.state + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"pods": self.pods}, f)
        os.replace(tmp, self.args.state)

    # --- the pods' regions, written as the daemon writes them (src/hypervisor/pod_regions.c) ---
    def tool(self, *argv):
        argv = [str(a) for a in argv]
        try:
            r = subprocess.run([self.args.tool] + argv, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise HttpError(503, f"region: hv_shm_tool {argv[0]}: {e}")
        if r.returncode != 0:
            raise HttpError(503, f"region: hv_shm_tool {' '.join(argv)}: exit {r.returncode}: {r.stderr.strip()}")
        return r.stdout

    def region(self, pod):
        """caller holds cv: the pod's region, made when missing, reused (with its token) when a
        region of the same pod is already there"""
        reg = self.regions.get(pod)
        if reg:
            return reg
        name = "env-" + re.sub(r"[^A-Za-z0-9._-]", "_", pod)
        path = os.path.join(self.args.shm_dir, "pods", name)
        ctl = os.path.join(path, "control", "control.shm")
        if os.path.exists(ctl):
            with open(ctl, "rb") as f:
                head = f.read(CTL_TOKEN_AT + CTL_TOKEN_LEN)
            if len(head) < CTL_TOKEN_AT + CTL_TOKEN_LEN or struct.unpack_from("<QI", head) != (CTL_MAGIC, CTL_VERSION):
                raise HttpError(503, f"region: {ctl} is not a control region of version {CTL_VERSION}")
            owner = head[CTL_POD_AT:CTL_POD_AT + CTL_POD_LEN].split(b"\0")[0].decode(errors="replace")
            if owner != pod:
                raise HttpError(409, f"region: pods/{name} belongs to pod {owner}, not {pod}")
            token = head[CTL_TOKEN_AT:CTL_TOKEN_AT + CTL_TOKEN_LEN].split(b"\0")[0].decode()
        else:
            token = self.tool("create", self.args.shm_dir, name, pod).strip()
        reg = {"name": name, "dir": f"pods/{name}", "path": path, "token": token}
        self.regions[pod] = reg
        self.note("region", pod=pod, dir=reg["dir"], token=token)
        return reg

    def write_limits(self, reg, limits):
        """every GPU's resolved limits into the control region, in the region's encoding:
        hard L -> core_limit L, core_soft 0; soft L -> core_soft L, core_limit 100%; none -> 0, 0"""
        for l in limits:
            core = pct100(l["core_limit"])
            hard, soft = (10000, core) if l["soft"] and core else (core, 0)
            argv = ["set", reg["path"], l["uuid"].lower(), l["mem_limit"] or 0, hard, soft,
                    pct100(l["core_effective"]), l["weight"]]
            try:
                self.tool(*argv)
            except HttpError as e:
                # hv_shm_tool's `set` (as of this writing) takes its 7 operands only with an 8th
                # (it checks argc == 10): give it a spare one, which it ignores
                if "unknown command set" not in e.message:
                    raise
                self.tool(*argv, 0)

    def write_pod(self, pod, seq=None, limits=True):
        """caller holds cv: the pod's limits (all its workers' GPUs), suspension and control_seq
        into its control region, if it has one; before the command of `seq` is pushed"""
        reg = self.regions.get(pod)
        if not reg:
            return
        self.note("control", pod=pod, seq=seq)  # from here on the region may say what `seq` will
        if limits:
            self.write_limits(reg, self.pod_limits(pod))
        suspended = 1 if self.pods.get(pod, {}).get("suspended", False) else 0
        self.tool("suspend", reg["path"], suspended, *([] if seq is None else [seq]))

    def note(self, kind, **kw):
        kw.update(kind=kind, t=time.monotonic())
        self.log.append(kw)

    # --- limits: operator > defaults > environment (which may only lower a default) ---------
    def limits_for(self, pod, gpu):
        op = self.pods.get(pod, {}).get("gpus", {})
        mine = dict(op.get("all", {}))
        for key in (str(gpu["index"]), gpu["uuid"]):
            mine.update(op.get(key, {}))
        env = gpu.get("env", {}) or {}
        d = self.args

        def pick(field, default, env_value):
            if field in mine:
                return mine[field]
            if default is None:
                return env_value
            if env_value is None:
                return default
            return min(default, env_value)
        mem = pick("mem_limit", d.default_mem, env.get("mem_limit"))
        core = pick("core_limit", d.default_core, env.get("core_limit"))
        soft = mine["soft"] if "soft" in mine else bool(env.get("soft", False))
        weight = mine.get("weight", 1)
        core = 0.0 if core is None else float(core)  # 0: no compute limit
        return {"uuid": gpu["uuid"], "index": gpu["index"], "mem_limit": mem or 0, "core_limit": core,
                "core_effective": core, "soft": soft, "weight": weight}

    def pod_limits(self, pod):
        seen, out = set(), []
        for w in self.workers.values():
            if w["pod"] != pod:
                continue
            for g in w["gpus"]:
                if g["uuid"] not in seen:
                    seen.add(g["uuid"])
                    out.append(self.limits_for(pod, g))
        return out

    def push(self, pod, cmd):
        """caller holds cv"""
        self.seq += 1
        cmd = dict(cmd, seq=self.seq)
        self.commands.append((self.seq, pod, cmd))
        self.note("push", pod=pod, seq=self.seq, type=cmd["type"])
        self.cv.notify_all()
        return self.seq

    def reap(self):
        with self.cv:
            now = time.monotonic()
            for wid, w in list(self.workers.items()):
                gone = not os.path.exists(f"/proc/{w['host_pid']}")
                late = now - w["last_seen"] > 3 * self.args.heartbeat_ms / 1000.0
                if gone or late:
                    del self.workers[wid]
                    self.note("removed", worker_id=wid, why="pid gone" if gone else "missed heartbeats")
                    self.cv.notify_all()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-vgpu-hypervisor"

    def log_message(self, fmt, *args):
        if os.environ.get("FAKE_HV_VERBOSE"):
            sys.stderr.write("fake-hv: " + (fmt % args) + "\n")

    @property
    def st(self):
        return self.server.state

    def peer_pid(self):
        creds = self.request.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        return struct.unpack("3i", creds)[0]

    def send_json(self, status, obj):
        if status == 204:
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        if self.server.state.args.chunked:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(0, len(data), 7):  # small chunks: the client must join them
                piece = data[i:i + 7]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n > MAX_BODY:
            raise HttpError(413, "body larger than 64 KiB")
        raw = self.rfile.read(n) if n else b""
        if not raw:
            return {}
        try:
            body = json.loads(raw)
        except ValueError as e:
            raise HttpError(400, f"malformed JSON: {e}")
        if not isinstance(body, dict):
            raise HttpError(400, "the body must be a JSON object")
        return body

    def handle_any(self, method):
        try:
            path, _, query = self.path.partition("?")
            q = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
            self.route(method, path, q)
        except HttpError as e:
            self.send_json(e.status, {"error": e.message})
        except (BrokenPipeError, ConnectionResetError):
            pass

    def do_GET(self):
        self.handle_any("GET")

    def do_POST(self):
        self.handle_any("POST")

    def do_PUT(self):
        self.handle_any("PUT")

    def do_DELETE(self):
        self.handle_any("DELETE")

    # --- routing ---------------------------------------------------------------------------
    def route(self, method, path, q):
        operator = self.server.operator
        st = self.st
        if path == "/healthz" and method == "GET":
            data = b"ok"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(data)
            return
        if path == "/v1/status" and method == "GET":
            return self.send_json(200, self.status())
        if path == "/v1/workers":
            if method != "POST":
                raise HttpError(405, "use POST")
            return self.register(self.read_body())
        m = re.fullmatch(r"/v1/workers/([^/]+)(/[a-z]+)?", path)
        if m:
            return self.worker(method, m.group(1), m.group(2) or "", q)
        m = re.fullmatch(r"/v1/pods/([^/]+)/([^/]+)/(limits|suspend|resume)", path)
        if m:
            if not operator:
                raise HttpError(403, "operator endpoints are not served on the worker socket")
            return self.pod_op(method, m.group(1) + "/" + m.group(2), m.group(3))
        if path.startswith("/test/"):
            if not operator:
                raise HttpError(403, "test endpoints are on the operator socket")
            if path == "/test/log" and method == "GET":
                with st.cv:
                    return self.send_json(200, {"log": st.log, "seq": st.seq})
            if path == "/test/command" and method == "POST":
                b = self.read_body()
                with st.cv:
                    seq = st.push(b["pod"], b["command"])
                return self.send_json(200, {"seq": seq})
        raise HttpError(404, f"no such endpoint: {path}")

    def register(self, b):
        st = self.st
        for field, kind in (("pod_id", str), ("pid", int), ("gpus", list)):
            if not isinstance(b.get(field), kind) or isinstance(b.get(field), bool):
                raise HttpError(400, f"{field}: missing or of the wrong type")
        gpus = []
        for i, g in enumerate(b["gpus"]):
            if not isinstance(g, dict) or not isinstance(g.get("index"), int) or not isinstance(g.get("uuid"), str):
                raise HttpError(400, f"gpus[{i}]: needs index (integer) and uuid (string)")
            env = g.get("env", {})
            if not isinstance(env, dict):
                raise HttpError(400, f"gpus[{i}].env: must be an object")
            if "mem_limit" in env:
                env["mem_limit"] = parse_size(env["mem_limit"], f"gpus[{i}].env.mem_limit")
            if "core_limit" in env and (not isinstance(env["core_limit"], (int, float)) or not 0 < env["core_limit"] <= 100):
                raise HttpError(400, f"gpus[{i}].env.core_limit: must be a percentage in (0, 100]")
            gpus.append(g)
        if b.get("pod"):
            pod = f"{b.get('namespace') or 'default'}/{b['pod']}"
        elif "/" in b["pod_id"]:
            pod = b["pod_id"]
        else:
            pod = f"{b.get('namespace') or 'default'}/{b['pod_id']}"
        host_pid = self.peer_pid()
        with st.cv:
            if st.busy_left > 0:  # as the daemon while its pod watch has not seen the pod
                st.busy_left -= 1
                st.note("busy", host_pid=host_pid)
                raise HttpError(503, "pod: not known to the daemon yet (register again)")
            # the region holds the limits before the worker hears of it
            reg = st.region(pod)
            limits = [st.limits_for(pod, g) for g in gpus]
            suspended = st.pods.get(pod, {}).get("suspended", False)
            st.write_limits(reg, limits)
            st.tool("suspend", reg["path"], 1 if suspended else 0)
            token = reg["token"]
            if st.args.wrong_token:  # not the region's: the limiter must not attach it
                token = token[:-1] + ("0" if token[-1:] != "0" else "1")
            wid = f"w-{st.next_worker}"
            st.next_worker += 1
            st.workers[wid] = {"worker_id": wid, "host_pid": host_pid, "pid": b["pid"], "pod": pod, "gpus": gpus,
                               "last_seen": time.monotonic(), "acked_seq": 0, "pod_id": b["pod_id"],
                               "reg_seq": st.seq, "sent_seq": 0}
            st.note("register", worker_id=wid, host_pid=host_pid, body=b, pod=pod, dir=reg["dir"],
                    token=token)
            reply = {"worker_id": wid, "host_pid": host_pid, "pod": pod,
                     "region": {"dir": reg["dir"], "token": token}, "seq": st.seq,
                     "suspended": suspended, "heartbeat_ms": st.args.heartbeat_ms, "limits": limits}
        self.send_json(201, reply)

    def worker(self, method, wid, what, q):
        st = self.st
        with st.cv:
            w = st.workers.get(wid)
            if not w:
                raise HttpError(404, f"no worker {wid}")
            if w["host_pid"] != self.peer_pid():
                raise HttpError(403, f"worker {wid} is not yours")
            w["last_seen"] = time.monotonic()
        if what == "" and method == "DELETE":
            with st.cv:
                st.workers.pop(wid, None)
                st.note("delete", worker_id=wid)
                st.cv.notify_all()
            return self.send_json(204, None)
        if what == "/heartbeat" and method == "POST":
            self.read_body()
            with st.cv:
                st.note("heartbeat", worker_id=wid)
                mine = [s for s, p, c in st.commands if p == w["pod"]]
                return self.send_json(200, {"seq": max(mine + [w["reg_seq"]])})
        if what == "/ack" and method == "POST":
            b = self.read_body()
            if not isinstance(b.get("seq"), int) or not isinstance(b.get("ok"), bool):
                raise HttpError(400, "seq (integer) and ok (boolean) are required")
            with st.cv:
                if b["seq"] > w["sent_seq"]:
                    raise HttpError(400, f"seq: {b['seq']} was never sent to worker {wid}")
                w["acked_seq"] = max(w["acked_seq"], b["seq"])
                st.note("ack", worker_id=wid, seq=b["seq"], ok=b["ok"], error=b.get("error"))
                st.cv.notify_all()
                return self.send_json(200, {"acked_seq": w["acked_seq"]})
        if what == "/commands" and method == "GET":
            try:
                after = int(q.get("after", "0"))
                timeout = float(q.get("timeout", "25"))
            except ValueError:
                raise HttpError(400, "after and timeout must be numbers")
            if not 0 <= timeout <= 60:
                raise HttpError(400, "timeout: at most 60")
            deadline = time.monotonic() + timeout
            with st.cv:
                while True:
                    w["last_seen"] = time.monotonic()  # a worker in a long poll is heard from
                    cmds = [c for s, p, c in st.commands if s > after and p == w["pod"]]
                    if cmds or wid not in st.workers or self.server.stopping:
                        break
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    st.cv.wait(min(left, 0.5))
                if cmds:
                    w["sent_seq"] = max(w["sent_seq"], cmds[-1]["seq"])
                    st.note("deliver", worker_id=wid, seqs=[c["seq"] for c in cmds])
            return self.send_json(200, {"commands": cmds})
        if what == "/events" and method == "GET":
            return self.events(w, int(self.headers.get("Last-Event-ID") or q.get("after", "0")))
        raise HttpError(405, f"{method} not allowed on {what or 'the worker'}")

    def events(self, w, after):
        st = self.st
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        self.close_connection = True
        self.wfile.write(b": connected\n\n")
        last_keepalive = time.monotonic()
        while not self.server.stopping:
            with st.cv:
                cmds = [c for s, p, c in st.commands if s > after and p == w["pod"]]
                if not cmds:
                    st.cv.wait(1.0)
            for c in cmds:
                with st.cv:
                    w["sent_seq"] = max(w["sent_seq"], c["seq"])
                self.wfile.write(f"id: {c['seq']}\nevent: command\ndata: {json.dumps(c)}\n\n".encode())
                after = c["seq"]
            if time.monotonic() - last_keepalive >= 10:
                self.wfile.write(b": keepalive\n\n")
                last_keepalive = time.monotonic()
            self.wfile.flush()

    def pod_op(self, method, pod, op):
        st = self.st
        if op == "limits" and method == "PUT":
            b = self.read_body()
            unknown = set(b) - {"gpu", "core_limit", "mem_limit", "weight", "soft"}
            if unknown:
                raise HttpError(400, f"unknown field: {sorted(unknown)[0]}")
            gpu = b.get("gpu", "all")
            if isinstance(gpu, bool) or not isinstance(gpu, (int, str)):
                raise HttpError(400, "gpu: an index, a UUID or \"all\"")
            s = {}
            if "core_limit" in b:
                c = b["core_limit"]
                if isinstance(c, bool) or not isinstance(c, (int, float)) or not 0 < c <= 100:
                    raise HttpError(400, "core_limit: a percentage in (0, 100]")
                s["core_limit"] = float(c)
            if "mem_limit" in b:
                s["mem_limit"] = parse_size(b["mem_limit"], "mem_limit")
            if "weight" in b:
                if isinstance(b["weight"], bool) or not isinstance(b["weight"], int) or not 1 <= b["weight"] <= 10000:
                    raise HttpError(400, "weight: an integer 1..10000")
                s["weight"] = b["weight"]
            if "soft" in b:
                if not isinstance(b["soft"], bool):
                    raise HttpError(400, "soft: a boolean")
                s["soft"] = b["soft"]
            with st.cv:
                p = st.pods.setdefault(pod, {"suspended": False, "gpus": {}})
                p["gpus"].setdefault(str(gpu), {}).update(s)
                st.save()
                st.write_pod(pod, st.seq + 1)
                st.push(pod, {"type": "limits", "limits": st.pod_limits(pod)})
                return self.send_json(200, self.pod_status(pod))
        if op == "limits" and method == "DELETE":
            with st.cv:
                if pod not in st.pods and not any(w["pod"] == pod for w in st.workers.values()):
                    raise HttpError(404, f"no pod {pod}")
                st.pods.setdefault(pod, {"suspended": False, "gpus": {}})["gpus"] = {}
                st.save()
                st.write_pod(pod, st.seq + 1)
                st.push(pod, {"type": "limits", "limits": st.pod_limits(pod)})
                return self.send_json(200, self.pod_status(pod))
        if op in ("suspend", "resume") and method == "POST":
            with st.cv:
                st.pods.setdefault(pod, {"suspended": False, "gpus": {}})["suspended"] = op == "suspend"
                st.save()
                st.write_pod(pod, st.seq + 1, limits=False)
                seq = st.push(pod, {"type": op})
                deadline = time.monotonic() + 1.0
                while True:
                    ws = [w for w in st.workers.values() if w["pod"] == pod]
                    acked = sum(1 for w in ws if w["acked_seq"] >= seq)
                    if acked == len(ws) or time.monotonic() >= deadline:
                        break
                    st.cv.wait(deadline - time.monotonic())
            return self.send_json(200, {"seq": seq, "acked": acked, "workers": len(ws)})
        raise HttpError(405, f"{method} not allowed on {op}")

    def pod_status(self, pod):
        st = self.st
        ws = [w for w in st.workers.values() if w["pod"] == pod]
        return {"pod": pod, "dir": st.regions.get(pod, {}).get("dir"),
                "suspended": st.pods.get(pod, {}).get("suspended", False), "source": "operator",
                "gpus": st.pod_limits(pod),
                "workers": [{"worker_id": w["worker_id"], "host_pid": w["host_pid"], "pid": w["pid"],
                             "last_seen_ms": int((time.monotonic() - w["last_seen"]) * 1000),
                             "acked_seq": w["acked_seq"]} for w in ws]}

    def status(self):
        st = self.st
        with st.cv:
            pods = sorted({w["pod"] for w in st.workers.values()} | set(st.pods))
            return {"node": socket.gethostname(), "gpus": [], "pods": [self.pod_status(p) for p in pods],
                    "unregistered": [], "over_cap": []}


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, path, state, operator, mode):
        if os.path.exists(path):
            os.unlink(path)
        super().__init__(path, Handler)
        os.chmod(path, mode)
        self.state = state
        self.operator = operator
        self.stopping = False

    def get_request(self):
        conn, _ = self.socket.accept()
        return conn, ("unix", 0)  # BaseHTTPRequestHandler wants an address it can print


def serve(args):
    state = State(args)
    worker = Server(args.worker_socket, state, False, 0o666)
    op = Server(args.socket, state, True, 0o660)
    for s in (worker, op):
        threading.Thread(target=s.serve_forever, daemon=True).start()

    def reaper():
        while True:
            time.sleep(0.25)
            state.reap()
    threading.Thread(target=reaper, daemon=True).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    state.note("ready")
    print("READY", flush=True)
    while not stop.wait(0.2):  # the signal may land on another thread: poll, do not block
        pass
    for s in (worker, op):
        s.stopping = True
        s.shutdown()
        s.server_close()
    for p in (args.worker_socket, args.socket):
        if os.path.exists(p):
            os.unlink(p)


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=10):
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


def ctl(args):
    c = UnixConnection(args.sock)
    body = args.body.encode() if args.body is not None else None
    headers = {"Content-Type": "application/json"} if body is not None else {}
    c.request(args.method, args.path, body=body, headers=headers)
    r = c.getresponse()
    sys.stdout.write(r.read().decode() + "\n")
    return 0 if 200 <= r.status < 300 else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--worker-socket", required=True)
    s.add_argument("--socket", required=True)
    s.add_argument("--tool", required=True, help="hv_shm_tool, which makes and writes the pods' regions")
    s.add_argument("--shm-dir", default=os.environ.get("VGPU_SHM_DIR"),
                   help="the daemon's --shm-dir, the limiters' VGPU_SHM_DIR (default: $VGPU_SHM_DIR)")
    s.add_argument("--wrong-token", action="store_true",
                   help="reply with a token that is not the region's (the limiter must refuse it)")
    s.add_argument("--state")
    s.add_argument("--chunked", action="store_true", help="send every JSON reply chunked")
    s.add_argument("--default-core", type=float)
    s.add_argument("--default-mem", type=int)
    s.add_argument("--heartbeat-ms", type=int, default=1000)
    s.add_argument("--busy", type=int, default=0, help="answer the first N registrations 503")
    c = sub.add_parser("ctl")
    c.add_argument("sock")
    c.add_argument("method")
    c.add_argument("path")
    c.add_argument("body", nargs="?")
    args = ap.parse_args()
    if args.cmd == "serve" and not args.shm_dir:
        ap.error("serve: --shm-dir (or VGPU_SHM_DIR) is required")
    sys.exit(serve(args) if args.cmd == "serve" else ctl(args))


if __name__ == "__main__":
    main()
