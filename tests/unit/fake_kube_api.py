#!/usr/bin/env python3
"""fake_kube_api.py - a tiny stand-in for the Kubernetes API server, and the test that runs
kube_watch_probe against it.

Why this exists: the daemon's pod watch (src/hypervisor/kube_watch.c) must list, watch, relist
after "410 Gone", resume a closed watch from the last resourceVersion, send the bearer token,
treat malformed vgpu.io/ annotations as absent (and say so), refuse a pod whose name does not
fit (and say so), and stop quickly. This serves a scripted sequence of lists and watch streams
and checks the probe's lines and stderr.

Usage: fake_kube_api.py PROBE_BINARY
"""
import http.server
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

TOKEN = "secret-token"
NODE = "node-a"
stop = threading.Event()
requests = []  # (kind, query dict)
lock = threading.Lock()


def pod(ns, name, uid, rv, ann=None):
    md = {"namespace": ns, "name": name, "uid": uid, "resourceVersion": rv}
    if ann is not None:
        md["annotations"] = ann
    return {"kind": "Pod", "metadata": md, "spec": {"nodeName": NODE}}


A = pod("default", "a", "uid-a", "90", {"vgpu.io/core-limit": "30", "vgpu.io/mem-limit": "4GiB",
                                        "vgpu.io/weight": "3", "vgpu.io/soft": "true",
                                        "other.io/x": "y"})
B = pod("default", "b", "uid-b", "91")
GONE = pod("default", "gone", "uid-gone", "92", {"vgpu.io/core-limit": "10%"})
LONG_NAME = "x" * 254

LISTS = [
    {"kind": "PodList", "metadata": {"resourceVersion": "100"}, "items": [A, B, GONE]},
    {"kind": "PodList", "metadata": {"resourceVersion": "200"}, "items": [A, B]},
]

WATCHES = {
    # the first watch: our version is too old
    "100": [{"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Expired",
                                         "message": "too old resource version"}}],
    # after the relist: events, then the server closes the stream
    "200": [
        {"type": "ADDED", "object": pod("team", "c", "uid-c", "210", {
            "vgpu.io/core-limit": "150", "vgpu.io/weight": "abc",
            "vgpu.io/mem-limit": "lots", "vgpu.io/soft": "false"})},
        # a name longer than Kubernetes allows (253): refused and logged, never cut
        {"type": "ADDED", "object": pod("team", LONG_NAME, "uid-long", "215")},
        {"type": "MODIFIED", "object": pod("default", "a", "uid-a", "220",
                                           {"vgpu.io/core-limit": "50", "vgpu.io/weight": "2"})},
        {"type": "BOOKMARK", "object": {"kind": "Pod", "metadata": {"resourceVersion": "250"}}},
        {"type": "DELETED", "object": pod("default", "b", "uid-b", "260")},
        {"type": "BOOKMARK", "object": {"kind": "Pod", "metadata": {"resourceVersion": "270"}}},
    ],
    # resumed from the last bookmark: one event, then the stream stays open
    "270": [{"type": "MODIFIED", "object": pod("default", "a", "uid-a", "280",
                                               {"vgpu.io/core-limit": "60.5"})}],
}
HOLD_OPEN = {"270"}

EXPECTED = [
    "POD default/a uid=uid-a deleted=0 core=30.00 mem=4294967296 weight=3 soft=1",
    "POD default/b uid=uid-b deleted=0 core=- mem=- weight=- soft=-",
    "POD default/gone uid=uid-gone deleted=0 core=10.00 mem=- weight=- soft=-",
    # relist after 410
    "POD default/a uid=uid-a deleted=0 core=30.00 mem=4294967296 weight=3 soft=1",
    "POD default/b uid=uid-b deleted=0 core=- mem=- weight=- soft=-",
    "POD default/gone uid=uid-gone deleted=1 core=- mem=- weight=- soft=-",
    # watch from 200
    "POD team/c uid=uid-c deleted=0 core=- mem=- weight=- soft=0",
    "POD default/a uid=uid-a deleted=0 core=50.00 mem=- weight=2 soft=-",
    "POD default/b uid=uid-b deleted=1 core=- mem=- weight=- soft=-",
    # watch resumed from 270
    "POD default/a uid=uid-a deleted=0 core=60.50 mem=- weight=- soft=-",
]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, fmt, *args):
        pass

    def send_json(self, code, obj):
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(url.query))
        if self.headers.get("Authorization") != "Bearer " + TOKEN:
            self.send_json(401, {"kind": "Status", "code": 401, "message": "Unauthorized"})
            return
        if url.path != "/api/v1/pods" or q.get("fieldSelector") != "spec.nodeName=" + NODE:
            self.send_json(404, {"kind": "Status", "code": 404, "message": "bad path " + self.path})
            return
        if q.get("watch") != "1":
            with lock:
                n = sum(1 for r in requests if r[0] == "list")
                requests.append(("list", q))
            self.send_json(200, LISTS[min(n, len(LISTS) - 1)])
            return
        rv = q.get("resourceVersion", "")
        with lock:
            requests.append(("watch", q))
        if rv not in WATCHES:
            self.send_json(200, {})  # unexpected: the check on requests reports it
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        for ev in WATCHES[rv]:
            self.wfile.write((json.dumps(ev) + "\n").encode())
            self.wfile.flush()
            time.sleep(0.05)
        if rv in HOLD_OPEN:
            while not stop.is_set():
                time.sleep(0.05)


def main():
    probe = sys.argv[1]
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    api = "http://127.0.0.1:%d" % srv.server_address[1]
    failures = []
    with tempfile.TemporaryDirectory() as d:
        tok = os.path.join(d, "token")
        with open(tok, "w") as f:
            f.write(TOKEN + "\n")
        # stop while the last watch idles, so only the progress callback can end it
        env = dict(os.environ, PROBE_DELAY_MS="1300", NO_PROXY="127.0.0.1",
                   no_proxy="127.0.0.1")
        p = subprocess.run([probe, api, NODE, tok, str(len(EXPECTED)), "20"],
                           capture_output=True, text=True, timeout=60, env=env)
    stop.set()
    srv.shutdown()
    out = p.stdout.splitlines()
    sys.stdout.write(p.stdout)
    sys.stderr.write(p.stderr)
    if p.returncode != 0:
        failures.append("probe exit status %d" % p.returncode)
    if not out or not out[0].startswith("REFUSED kube watch: API address 'ftp://x'"):
        failures.append("an ftp:// URL was not refused with a message")
    pods = [l for l in out if l.startswith("POD ")]
    if pods != EXPECTED:
        failures.append("callbacks differ:\n  got:\n    %s\n  expected:\n    %s"
                        % ("\n    ".join(pods), "\n    ".join(EXPECTED)))
    stopped = [l for l in out if l.startswith("STOPPED ms=")]
    if not stopped:
        failures.append("no STOPPED line")
    elif int(stopped[0].split("=")[1]) > 2000:
        failures.append("stopping took %s ms (more than 2 s)" % stopped[0].split("=")[1])
    for ann in ("vgpu.io/core-limit", "vgpu.io/weight", "vgpu.io/mem-limit"):
        if not any("team/c" in l and ann in l for l in p.stderr.splitlines()):
            failures.append("no stderr line naming pod team/c and %s" % ann)
    if not any("team/" + LONG_NAME in l and "metadata.name" in l for l in p.stderr.splitlines()):
        failures.append("no stderr line naming the pod with a 254-byte name and the field")
    if any("vgpu.io/soft" in l for l in p.stderr.splitlines()):
        failures.append("a valid vgpu.io/soft was reported as malformed")
    kinds = [(k, q.get("resourceVersion")) for k, q in requests]
    want = [("list", None), ("watch", "100"), ("list", None), ("watch", "200"), ("watch", "270")]
    if kinds != want:
        failures.append("requests %s, expected %s" % (kinds, want))
    for k, q in requests:
        if k == "watch" and q.get("allowWatchBookmarks") != "true":
            failures.append("watch without allowWatchBookmarks=true")
    if failures:
        print("FAILED:\n" + "\n".join(failures))
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
