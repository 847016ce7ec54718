#!/usr/bin/env python3
"""cli_test.py - the `vgpu` CLI against a fake vgpu-hypervisor on a Unix socket.

Why this exists: the CLI's job is to turn commands into the right requests of
docs/hypervisor.md and the answers into readable output and exit codes. A stdlib HTTP server
on a Unix socket records each request and answers from fixtures, so the test can check the
status tables, the --json passthrough, the exact JSON body of `set`, local validation (no
request sent), daemon errors (exit 1) and the message when no daemon runs (exit 2).

Usage: cli_test.py PATH_TO_vgpu
"""
import http.server
import json
import os
import re
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading

STATUS = {
    "node": "node-a",
    "gpus": [
        {"index": 0, "uuid": "GPU-aaaa", "name": "NVIDIA H100 80GB HBM3",
         "mem_total": 85899345920, "mem_used": 6442450944, "util": 37},
        {"index": 1, "uuid": "GPU-bbbb", "name": "NVIDIA H100 80GB HBM3",
         "mem_total": 85899345920, "mem_used": 0, "util": 0},
    ],
    "pods": [
        {"pod": "default/train", "suspended": False, "source": "operator",
         "gpus": [{"uuid": "GPU-aaaa", "index": 0, "mem_limit": 4294967296,
                   "mem_used": 1610612736, "core_limit": 30.0, "core_effective": 45.0,
                   "core_used": 41.25, "weight": 3, "soft": True, "clock_factor": 1.17}],
         "workers": [{"worker_id": "w-1", "host_pid": 4001, "pid": 7, "last_seen_ms": 120,
                      "acked_seq": 5},
                     {"worker_id": "w-2", "host_pid": 4002, "pid": 8, "last_seen_ms": 80,
                      "acked_seq": 5}]},
        {"pod": "ml/infer-server", "suspended": True, "source": "kubernetes",
         "gpus": [{"uuid": "GPU-aaaa", "index": 0, "mem_limit": 0, "mem_used": 2147483648,
                   "core_limit": 20.0, "core_effective": 20.0, "core_used": 0, "weight": 1,
                   "soft": False, "clock_factor": 1.0},
                  {"uuid": "GPU-bbbb", "index": 1, "mem_limit": 1073741824, "mem_used": 0,
                   "core_limit": 100.0, "core_effective": 100.0, "core_used": 0, "weight": 1,
                   "soft": False}],
         "workers": [{"worker_id": "w-3", "host_pid": 4003, "pid": 9, "last_seen_ms": 10,
                      "acked_seq": 6}]},
        {"pod": "batch/free", "suspended": False, "source": "none",
         "gpus": [{"uuid": "GPU-bbbb", "index": 1, "mem_limit": 0, "mem_used": 0,
                   "core_limit": 0, "core_effective": 0, "core_used": 0, "weight": 1,
                   "soft": False, "clock_factor": 1.0}],
         "workers": [{"worker_id": "w-4", "host_pid": 4004, "pid": 10, "last_seen_ms": 10,
                      "acked_seq": 6}], "operator_limits": {}},
        {"pod": "team/later", "suspended": False, "source": "operator", "gpus": [],
         "workers": [], "operator_limits": {
             "all": {"core_limit": 30.0, "mem_limit": 8589934592, "weight": 3, "soft": True},
             "GPU-bbbb": {"mem_limit": 0}}},
    ],
    "unregistered": [{"host_pid": 4242, "gpu": 0, "mem_used": 536870912}],
    "over_cap": ["ml/infer-server"],
}
STATUS_TEXT = json.dumps(STATUS, indent=2)
METRICS = "# HELP vgpu_pods Pods known.\n# TYPE vgpu_pods gauge\nvgpu_pods 2\n"

NO_GPU_7 = 'gpu: this node has no GPU 7; its GPUs: 0 gpu-aaaa, 1 gpu-bbbb; or "all"'
requests = []
lock = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, fmt, *args):
        pass

    def reply(self, code, body, ctype="application/json"):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def handle_any(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n).decode() if n else ""
        with lock:
            requests.append((self.command, self.path, body,
                             self.headers.get("Content-Type")))
        parts = self.path.split("/")
        if self.command == "GET" and self.path == "/v1/status":
            self.reply(200, STATUS_TEXT)
        elif self.command == "GET" and self.path == "/metrics":
            self.reply(200, METRICS, "text/plain; version=0.0.4")
        elif len(parts) == 6 and parts[1:3] == ["v1", "pods"]:
            pod = parts[3] + "/" + parts[4]
            entry = [p for p in STATUS["pods"] if p["pod"] == pod]
            if not entry:
                self.reply(404, json.dumps({"error": "pod %s is not known on this node" % pod}))
            elif self.command == "PUT" and parts[5] == "limits" and \
                    json.loads(body or "{}").get("gpu") == 7:
                self.reply(400, json.dumps({"error": NO_GPU_7}))
            elif self.command == "PUT" and parts[5] == "limits":
                self.reply(200, json.dumps(entry[0]))
            elif self.command == "DELETE" and parts[5] == "limits":
                self.reply(204, "")
            elif self.command == "POST" and parts[5] in ("suspend", "resume"):
                self.reply(200, json.dumps({"seq": 7, "acked": 1, "workers": 2}))
            else:
                self.reply(405, json.dumps({"error": "method not allowed"}))
        else:
            self.reply(404, json.dumps({"error": "no such endpoint " + self.path}))

    do_GET = do_PUT = do_POST = do_DELETE = handle_any


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


failures = []


def check(cond, what):
    if not cond:
        failures.append(what)


def main():
    vgpu = sys.argv[1]
    tmp = tempfile.mkdtemp()
    sock = os.path.join(tmp, "vgpu.sock")
    srv = Server(sock, Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()

    def run(*args, env_socket=None, use_flag=True):
        env = dict(os.environ)
        env.pop("VGPU_SOCKET", None)
        if env_socket:
            env["VGPU_SOCKET"] = env_socket
        argv = [vgpu] + (["--socket", sock] if use_flag else []) + list(args)
        with lock:
            requests.clear()
        p = subprocess.run(argv, capture_output=True, text=True, timeout=30, env=env)
        with lock:
            reqs = list(requests)
        return p, reqs

    # --- status as tables
    p, reqs = run("status")
    out = p.stdout
    check(p.returncode == 0, "status: exit %d (%s)" % (p.returncode, p.stderr))
    check(reqs and reqs[0][:2] == ("GET", "/v1/status"), "status: request %s" % reqs)
    for s in ("node-a", "NVIDIA H100 80GB HBM3", "6.00 GiB / 80.00 GiB", "37%",
              "default/train", "1.50 GiB / 4.00 GiB", "30% / 45% / 41.2% (x1.17 clock)", "soft", "running",
              "ml/infer-server", "2.00 GiB / no cap", "hard", "suspended",
              "UNREGISTERED", "4242", "512.00 MiB", "OVER CAP"):
        check(s in out, "status: '%s' missing from:\n%s" % (s, out))
    check(out.count("clock)") == 1, "status: the clock factor shown only where it is above 1:\n" + out)
    lines = out.splitlines()
    head = [l for l in lines if l.startswith("POD ")]
    rows = [l for l in lines if l.startswith("default/train") or l.startswith("ml/infer-server")]
    check(len(head) == 1 and len(rows) == 3, "status: one header, 3 pod rows:\n" + out)
    col_w = head[0].index("WEIGHT") if head else 0
    if head and len(rows) == 3:
        col_w = head[0].index("WEIGHT")
        col_state = head[0].index("STATE")
        col_workers = head[0].index("WORKERS")
        check(rows[0][col_w:].startswith("3 "), "status: weight column misaligned:\n" + out)
        check(rows[0][col_state:].startswith("running"), "status: state misaligned:\n" + out)
        check(rows[0][col_workers:].strip() == "2", "status: 2 workers for default/train")
        check(rows[1][col_state:].startswith("suspended"), "status: infer-server suspended")
        check(rows[2][col_workers:].strip() == "1", "status: 1 worker for infer-server")
        check(rows[1].split()[1] == "0" and rows[2].split()[1] == "1",
              "status: infer-server has rows for GPU 0 and 1:\n" + out)
    # no limit is a word, never "0%" (which reads as "no compute allowed")
    free = [l for l in lines if l.startswith("batch/free")]
    check(len(free) == 1 and "unlimited / unlimited / 0%" in free[0] and "no cap" in free[0],
          "status: unlimited compute as a word:\n" + out)
    check(not re.search(r"(^|\s)0% /", out), "status: a limit of 0 printed as 0%:\n" + out)
    # a pod without processes: the operator's settings it will get, one row per GPU key
    later = [l for l in lines if l.startswith("team/later")]
    check(len(later) == 2, "status: one row per operator GPU key of team/later:\n" + out)
    if len(later) == 2 and head:
        c = head[0].index("COMPUTE")
        check(later[0].split()[1] == "all" and "- / 8.00 GiB" in later[0] and
              later[0][c:].startswith("30% / - / -") and later[0][col_w:].startswith("3 ")
              and " soft " in later[0], "status: team/later's 'all' settings:\n" + out)
        check(later[1].split()[1] == "GPU-bbbb" and "- / no cap" in later[1] and
              later[1][c:].startswith("- / - / -"), "status: team/later's GPU-bbbb row:\n" + out)
    oc = [l for l in lines if l.startswith("OVER CAP")]
    check(oc and oc[0].endswith(" ml/infer-server"), "status: over_cap line %s" % oc)

    # --- status --json is the daemon's JSON, unchanged
    p, _ = run("status", "--json")
    check(p.returncode == 0 and p.stdout.rstrip("\n") == STATUS_TEXT,
          "status --json is not the daemon's text:\n" + p.stdout)

    # --- VGPU_SOCKET is used without --socket
    p, reqs = run("status", "--json", env_socket=sock, use_flag=False)
    check(p.returncode == 0 and len(reqs) == 1, "VGPU_SOCKET not used: %s" % p.stderr)

    # --- set sends the right body
    p, reqs = run("set", "default/train", "--gpu", "0", "--core-limit", "50",
                  "--mem-limit", "4GiB", "--weight=3", "--soft")
    check(p.returncode == 0, "set: exit %d (%s)" % (p.returncode, p.stderr))
    check(len(reqs) == 1 and reqs[0][:2] == ("PUT", "/v1/pods/default/train/limits"),
          "set: request %s" % reqs)
    if reqs:
        body = json.loads(reqs[0][2] or "null")
        check(body == {"gpu": 0, "core_limit": 50, "mem_limit": 4294967296, "weight": 3,
                       "soft": True}, "set: body %s" % reqs[0][2])
        check(reqs[0][3] == "application/json", "set: content type %s" % reqs[0][3])
    check("default/train" in p.stdout and "50%" not in p.stdout and "30% / 45%" in p.stdout,
          "set: prints the pod entry the daemon returned:\n" + p.stdout)

    p, reqs = run("set", "team/later", "--core-limit", "30")
    check(p.returncode == 0 and "team/later  all" in p.stdout and "30% / - / -" in p.stdout and
          "no process of team/later has registered yet" in p.stdout,
          "set on a pod without processes: %r" % p.stdout)
    p, reqs = run("set", "default/train", "--weight", "2")
    check("registered yet" not in p.stdout, "set on a running pod: no 'not yet' note %r" % p.stdout)
    p, reqs = run("set", "ml/infer-server", "--gpu", "GPU-bbbb", "--hard", "--mem-limit", "none")
    check(p.returncode == 0 and reqs and json.loads(reqs[0][2]) ==
          {"gpu": "GPU-bbbb", "soft": False, "mem_limit": 0}, "set --hard: %s" % reqs)
    p, reqs = run("set", "ml/infer-server", "--gpu=all", "--core-limit", "12.5%")
    check(p.returncode == 0 and reqs and json.loads(reqs[0][2]) ==
          {"gpu": "all", "core_limit": 12.5}, "set --gpu=all: %s" % reqs)

    # --- validation happens locally: exit 64, a message naming the option, no request
    bad = [
        (["set", "default/train", "--core-limit", "120"],
         "vgpu: --core-limit: '120' is not a percentage in (0, 100]"),
        (["set", "default/train", "--core-limit", "0"], "--core-limit: '0'"),
        (["set", "default/train", "--mem-limit", "lots"], "--mem-limit: 'lots' is not a size"),
        (["set", "default/train", "--weight", "0"],
         "vgpu: --weight: '0' is not an integer in 1..10000"),
        (["set", "default/train", "--weight", "10001"], "--weight: '10001'"),
        (["set", "default/train", "--gpu", "x y"], "--gpu: 'x y'"),
        (["set", "default/train", "--soft", "--hard"], "--soft and --hard"),
        (["set", "default/train", "--core-limit"], "--core-limit needs a value"),
        (["set", "default/train", "--gpu", "0"], "nothing to set"),
        (["set", "train", "--weight", "2"], "'train' is not a pod"),
        (["set", "default/train", "--bogus"], "unknown argument '--bogus'"),
        (["frobnicate"], "unknown command 'frobnicate'"),
    ]
    for args, msg in bad:
        p, reqs = run(*args)
        check(p.returncode == 64, "%s: exit %d, expected 64" % (args, p.returncode))
        check(msg in p.stderr, "%s: stderr %r lacks %r" % (args, p.stderr, msg))
        check(not reqs, "%s: a request was sent although the input is invalid" % args)
    p, _ = run("set", "default/train", "--core-limit", "120")
    check(p.stderr == "vgpu: --core-limit: '120' is not a percentage in (0, 100]\n",
          "--core-limit message exactly: %r" % p.stderr)

    # --- the daemon says no: its message, exit 1
    p, reqs = run("set", "default/missing", "--weight", "2")
    check(p.returncode == 1, "daemon 404: exit %d" % p.returncode)
    check(p.stderr == "vgpu: pod default/missing is not known on this node\n",
          "daemon 404: stderr %r" % p.stderr)

    p, reqs = run("suspend", "no/such-pod")
    check(p.returncode == 1 and p.stdout == "" and
          p.stderr == "vgpu: pod no/such-pod is not known on this node\n",
          "suspend of an unknown pod fails: %d %r %r" % (p.returncode, p.stdout, p.stderr))
    p, reqs = run("set", "default/train", "--gpu", "7", "--weight", "2")
    check(p.returncode == 1 and p.stdout == "" and p.stderr == "vgpu: %s\n" % NO_GPU_7,
          "set --gpu 7 refused with the daemon's list: %d %r" % (p.returncode, p.stderr))

    # --- reset, suspend, resume, metrics
    p, reqs = run("reset", "default/train")
    check(p.returncode == 0 and reqs and reqs[0][:2] == ("DELETE",
                                                         "/v1/pods/default/train/limits"),
          "reset: %s %s" % (reqs, p.stderr))
    p, reqs = run("suspend", "default/train")
    check(p.returncode == 0 and reqs and reqs[0][:2] == ("POST",
                                                         "/v1/pods/default/train/suspend"),
          "suspend: %s" % reqs)
    check("suspended" in p.stdout and "seq 7" in p.stdout and "1 of 2 workers acked" in p.stdout,
          "suspend output: %r" % p.stdout)
    check("did not acknowledge" in p.stderr, "suspend: missing ack warning %r" % p.stderr)
    p, reqs = run("resume", "default/train")
    check(p.returncode == 0 and reqs and reqs[0][1] == "/v1/pods/default/train/resume"
          and "resumed" in p.stdout, "resume: %s %r" % (reqs, p.stdout))
    p, _ = run("metrics")
    check(p.returncode == 0 and p.stdout == METRICS, "metrics: %r" % p.stdout)

    # --- help and version
    p, _ = run("--help", use_flag=False)
    check(p.returncode == 0 and "set NS/NAME" in p.stdout
          and "--socket PATH" in p.stdout, "--help: %r" % p.stdout)
    p, _ = run("--version", use_flag=False)
    check(p.returncode == 0 and p.stdout.startswith("vgpu "), "--version: %r" % p.stdout)

    srv.shutdown()
    srv.server_close()

    # --- no daemon: a missing socket, then one nobody listens on
    missing = os.path.join(tmp, "missing.sock")
    p, _ = run("status", env_socket=missing, use_flag=False)
    check(p.returncode == 2, "not running: exit %d" % p.returncode)
    check(p.stderr == "vgpu: cannot reach vgpu-hypervisor at %s: No such file or directory "
          "(is the daemon running? --socket / VGPU_SOCKET)\n" % missing,
          "not running: %r" % p.stderr)
    dead = os.path.join(tmp, "dead.sock")
    s = socket.socket(socket.AF_UNIX)
    s.bind(dead)
    s.close()  # the file stays, nobody listens
    p, _ = run("set", "default/train", "--weight", "2", env_socket=dead, use_flag=False)
    check(p.returncode == 2 and "Connection refused" in p.stderr and dead in p.stderr,
          "dead socket: %d %r" % (p.returncode, p.stderr))

    for f in (sock, dead):
        if os.path.exists(f):
            os.unlink(f)
    os.rmdir(tmp)
    if failures:
        print("FAILED:\n  " + "\n  ".join(failures))
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
