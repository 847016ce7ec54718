"""hvlib.py - drive a vgpu-hypervisor from tests: start/stop it, talk HTTP over its sockets.

Why this exists: every daemon test needs the same plumbing (a private directory, a daemon on
its own sockets, HTTP over a Unix socket with the standard library only). Keeping it here
lets hv_test.py read as a list of assertions.
"""
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time


class UnixHTTPConnection(http.client.HTTPConnection):
    """http.client over an AF_UNIX stream socket."""

    def __init__(self, path, timeout=10):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


class Fail(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Fail(what)


def request(where, method, path, body=None, timeout=10, headers=None, raw=False):
    """where: a socket path, or (host, port) for TCP. Returns (status, parsed body, headers)."""
    if isinstance(where, tuple):
        conn = http.client.HTTPConnection(where[0], where[1], timeout=timeout)
    else:
        conn = UnixHTTPConnection(where, timeout=timeout)
    h = dict(headers or {})
    if body is not None and not isinstance(body, (bytes, str)):
        body = json.dumps(body)
        h.setdefault("Content-Type", "application/json")
    try:
        try:
            conn.request(method, path, body=body, headers=h)
        except (BrokenPipeError, ConnectionResetError):
            # a server may answer an oversized body (413) and close before it has all been
            # sent; its answer is still there to read (1 run in about 15 on a loaded runner)
            pass
        r = conn.getresponse()
        data = r.read()
        hdrs = dict(r.getheaders())
        status = r.status
    finally:
        conn.close()
    if raw:
        return status, data, hdrs
    ctype = hdrs.get("Content-Type", "")
    if ctype.startswith("application/json") and data:
        return status, json.loads(data), hdrs
    return status, data.decode(errors="replace"), hdrs


class Daemon:
    def __init__(self, binary, tmp, extra=(), env=None, config=None, identity="env"):
        self.binary = binary
        self.tmp = tmp
        self.op = os.path.join(tmp, "run", "vgpu.sock")
        self.worker = os.path.join(tmp, "run", "worker.sock")
        self.shm = os.path.join(tmp, "shm")
        self.state = os.path.join(tmp, "state.json")
        self.log = os.path.join(tmp, "daemon.log")
        # most tests name their pods in the registration body: the daemon's development mode;
        # the identity tests (tests/security) run it with identity="cgroup"
        self.extra = list(extra) + (["--identity", identity] if identity else [])
        self.env = dict(os.environ, **(env or {}))
        self.config = config
        self.proc = None

    def start(self):
        args = [self.binary, "--socket", self.op, "--shm-dir", self.shm, "--state", self.state,
                "--log-level", "debug"] + self.extra
        if self.config is not None:
            cfg = os.path.join(self.tmp, "hv.ini")
            with open(cfg, "w") as f:
                f.write(self.config)
            args += ["--config", cfg]
        self.logf = open(self.log, "ab")
        self.proc = subprocess.Popen(args, stderr=self.logf, env=self.env)
        deadline = time.time() + 15
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise Fail("daemon exited at start (%d): %s" % (self.proc.returncode, self.logtail()))
            try:
                if request(self.op, "GET", "/healthz", timeout=2)[0] == 200 and \
                        os.path.exists(self.worker):
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        raise Fail("daemon did not answer /healthz: " + self.logtail())

    def stop(self, expect_clean=True):
        if not self.proc:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise Fail("daemon did not stop within 20 s of SIGTERM")
        finally:
            self.logf.close()
            self.proc = None
        if expect_clean:
            check(rc == 0, "daemon exit code %d: %s" % (rc, self.logtail()))
            check(not os.path.exists(self.op) and not os.path.exists(self.worker),
                  "sockets left behind after SIGTERM")

    def logtail(self, n=4000):
        try:
            with open(self.log, "rb") as f:
                return f.read().decode(errors="replace")[-n:]
        except OSError:
            return ""

    def status(self):
        s, body, _ = request(self.op, "GET", "/v1/status")
        check(s == 200, "status: %s" % s)
        return body

    def pod(self, key):
        for p in self.status()["pods"]:
            if p["pod"] == key:
                return p
        return None


def wait_for(fn, timeout, what, step=0.05):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(step)
    raise Fail("%s (waited %.1f s; last: %r)" % (what, timeout, last))


def pod_dir(d, key):
    """The directory of pod `key` under the daemon's --shm-dir (from its status entry)."""
    p = d.pod(key)
    check(p is not None and p.get("dir"), "pod %s has no directory: %r" % (key, p))
    return os.path.join(d.shm, "pods", p["dir"])


def shm_show(tool, d, key):
    """The control region of pod `key` of daemon `d` (hv_shm_tool show)."""
    out = subprocess.run([tool, "show", pod_dir(d, key)], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout)


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def run_case(name, fn, tmp, errors=(Fail,)):
    """Run one test case fn(tmp): PASS or FAIL on stderr (with the tail of tmp/daemon.log on a
    failure), tmp removed either way. Returns the exit code: 0 passed, 1 failed."""
    t0 = time.time()
    try:
        fn(tmp)
    except errors as e:
        log("FAIL %s: %s" % (name, e))
        try:
            log("--- daemon log (tail) ---\n" + open(os.path.join(tmp, "daemon.log")).read()[-6000:])
        except OSError:
            pass
        return 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log("PASS %s (%.1f s)" % (name, time.time() - t0))
    return 0
