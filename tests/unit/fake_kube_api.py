#!/usr/bin/env python3
"""fake_kube_api.py - a stand-in for the Kubernetes API server, as a node daemon meets it in a
cluster, and the test that runs kube_watch_probe against it.

Why this exists: the daemon's pod watch (src/hypervisor/kube_watch.c) must list, watch, relist
after "410 Gone" (an HTTP status or an ERROR event), resume a watch that ended from the last
resourceVersion (events and bookmarks), relist after a dropped connection without reporting the
half line it got, ask only for its node's pods, verify the server's certificate against the
cluster's CA, send the bearer token (re-read on every connection: projected tokens rotate), treat
malformed vgpu.io/ annotations as absent (and say so), refuse a pod whose name does not fit (and
say so), and stop quickly.

The server speaks as the API server does: HTTPS only (a CA and a server certificate for
127.0.0.1 made with `openssl` at test time), 401 with a Status object unless the request carries
the current token, Pod objects with status, containerStatuses (containerd IDs) and
ownerReferences, PodList bodies (items without kind/apiVersion, as the API server sends them),
and watch streams in chunked HTTP/1.1, one JSON event a line. It filters pods by the request's
fieldSelector as the API server would, so a daemon that forgot it would see another node's pods.
A scripted sequence answers the requests in order; the test then checks the probe's lines, its
stderr, and every request (kind, resourceVersion, query, token).

Usage: fake_kube_api.py PROBE_BINARY
"""
import hashlib
import http.server
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid

NODE = "node-a"
OTHER_NODE = "node-b"
# service account tokens are JWTs; these only need to look like them
TOKEN1 = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImZha2Uta2V5In0.eyJzdWIiOiJ2Z3B1LWZpcnN0In0.c2lnMQ"
TOKEN2 = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImZha2Uta2V5In0.eyJzdWIiOiJ2Z3B1LXJvdGF0ZWQifQ.c2lnMg"
WRONG = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbm90aGVyLWNsdXN0ZXIifQ.bm9wZQ"
stop = threading.Event()


# ---- objects, shaped as the API server returns them ----

def uid_of(ns, name):
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "fake-kube/%s/%s" % (ns, name)))


def container_id(ns, name, c):
    return "containerd://" + hashlib.sha256(("%s/%s/%s" % (ns, name, c)).encode()).hexdigest()


def pod(ns, name, rv, ann=None, node=NODE, owner=None, phase="Running", ip=10, deleted=False):
    """A Pod as a watch event carries it (a list item: the same without kind and apiVersion).
    owner: (kind, name) of the controller, a ReplicaSet or a Job."""
    uid = uid_of(ns, name)
    image = "registry.example.com/ml/%s:1.4.2" % name.split("-")[0]
    md = {"name": name, "namespace": ns, "uid": uid, "resourceVersion": rv,
          "creationTimestamp": "2025-03-04T10:00:00Z",
          "labels": {"app.kubernetes.io/name": name.split("-")[0]},
          "annotations": {"kubectl.kubernetes.io/default-container": "main"},
          "managedFields": [{"manager": "kube-controller-manager", "operation": "Update",
                             "apiVersion": "v1", "time": "2025-03-04T10:00:00Z",
                             "fieldsType": "FieldsV1",
                             "fieldsV1": {"f:metadata": {"f:labels": {".": {}}}}}]}
    if ann is not None:
        md["annotations"].update(ann)
    if owner:
        kind, oname = owner
        md["generateName"] = oname + "-"
        md["labels"]["pod-template-hash" if kind == "ReplicaSet" else "job-name"] = \
            oname.rsplit("-", 1)[-1] if kind == "ReplicaSet" else oname
        md["ownerReferences"] = [{"apiVersion": "apps/v1" if kind == "ReplicaSet" else "batch/v1",
                                  "kind": kind, "name": oname, "uid": uid_of(ns, oname),
                                  "controller": True, "blockOwnerDeletion": True}]
    if deleted:
        md["deletionTimestamp"] = "2025-03-04T11:00:00Z"
        md["deletionGracePeriodSeconds"] = 0
    limits = {"vgpu.io/gpu-memory": "4", "vgpu.io/gpu-cores": "30"}
    spec = {"nodeName": node, "serviceAccountName": "default", "restartPolicy":
            "Never" if owner and owner[0] == "Job" else "Always",
            "schedulerName": "default-scheduler", "terminationGracePeriodSeconds": 30,
            "containers": [{"name": "main", "image": image, "imagePullPolicy": "IfNotPresent",
                            "resources": {"limits": dict(limits), "requests": dict(limits)}}]}
    cs = {"name": "main", "image": image, "ready": phase == "Running", "restartCount": 0,
          "started": phase == "Running", "lastState": {}}
    status = {"phase": phase, "hostIP": "192.168.10.%d" % (2 if node == NODE else 3),
              "qosClass": "Guaranteed", "startTime": "2025-03-04T10:00:01Z"}
    if phase == "Pending":
        cs.update(imageID="", state={"waiting": {"reason": "ContainerCreating"}})
    else:
        cs.update(imageID=image.split(":")[0] + "@sha256:" + hashlib.sha256(image.encode())
                  .hexdigest(), containerID=container_id(ns, name, "main"))
        if phase == "Running":
            cs["state"] = {"running": {"startedAt": "2025-03-04T10:00:05Z"}}
        else:
            cs["state"] = {"terminated": {"exitCode": 0, "reason": "Completed",
                                          "startedAt": "2025-03-04T10:00:05Z",
                                          "finishedAt": "2025-03-04T10:20:00Z",
                                          "containerID": cs["containerID"]}}
        status["podIP"] = "10.244.1.%d" % ip
        status["podIPs"] = [{"ip": status["podIP"]}]
    status["conditions"] = [{"type": "Ready", "status": "True" if phase == "Running" else "False",
                             "lastProbeTime": None,
                             "lastTransitionTime": "2025-03-04T10:00:06Z"}]
    status["containerStatuses"] = [cs]
    return {"kind": "Pod", "apiVersion": "v1", "metadata": md, "spec": spec, "status": status}


def status_obj(code, reason, message):
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}


def event(typ, obj):
    return {"type": typ, "object": obj}


def bookmark(rv):
    return {"type": "BOOKMARK", "object": {"kind": "Pod", "apiVersion": "v1",
                                           "metadata": {"resourceVersion": rv}}}


TRAINER = pod("default", "trainer-7d9f8c6b5-x2x4q", "90",
              {"vgpu.io/core-limit": "30", "vgpu.io/mem-limit": "4GiB", "vgpu.io/weight": "3",
               "vgpu.io/soft": "true", "other.io/x": "y"},
              owner=("ReplicaSet", "trainer-7d9f8c6b5"), ip=11)
SERVER = pod("default", "server-5c8d7f9b4-k7p2m", "91", owner=("ReplicaSet", "server-5c8d7f9b4"),
             ip=12)
BATCH = pod("default", "batch-28431720-lq8zt", "92", {"vgpu.io/core-limit": "10%"},
            owner=("Job", "batch-28431720"), phase="Succeeded", ip=13)
ELSEWHERE = pod("default", "elsewhere-6b7c8d9f5-zz9q1", "93", {"vgpu.io/core-limit": "99"},
                node=OTHER_NODE, owner=("ReplicaSet", "elsewhere-6b7c8d9f5"), ip=99)
ELSEWHERE2 = pod("team", "roamer-8c9d7f6b5-q1w2e", "312", {"vgpu.io/weight": "9"},
                 node=OTHER_NODE, owner=("ReplicaSet", "roamer-8c9d7f6b5"), ip=98)
TUNER = pod("team", "tuner-6f7d8c9b5-abcde", "310",
            {"vgpu.io/core-limit": "150", "vgpu.io/weight": "abc", "vgpu.io/mem-limit": "lots",
             "vgpu.io/soft": "false"}, owner=("ReplicaSet", "tuner-6f7d8c9b5"), ip=14)
LONG_NAME = "x" * 254  # longer than Kubernetes allows (253): refused and logged, never cut
LONG = pod("team", LONG_NAME, "315", ip=15)
EVAL = pod("team", "eval-28431800-9xk2p", "205", {"vgpu.io/weight": "7"},
           owner=("Job", "eval-28431800"), ip=16)
INFER_PENDING = pod("team", "infer-74c9b8d6f5-m3n4b", "410", {"vgpu.io/core-limit": "25"},
                    owner=("ReplicaSet", "infer-74c9b8d6f5"), phase="Pending")
INFER_PARTIAL = pod("team", "infer-74c9b8d6f5-m3n4b", "415", {"vgpu.io/core-limit": "77"},
                    owner=("ReplicaSet", "infer-74c9b8d6f5"), ip=17)  # cut mid-line
INFER = pod("team", "infer-74c9b8d6f5-m3n4b", "420", {"vgpu.io/core-limit": "25"},
            owner=("ReplicaSet", "infer-74c9b8d6f5"), ip=17)
INFER_55 = pod("team", "infer-74c9b8d6f5-m3n4b", "510", {"vgpu.io/core-limit": "55"},
               owner=("ReplicaSet", "infer-74c9b8d6f5"), ip=17)
TRAINER_50 = pod("default", TRAINER["metadata"]["name"], "320",
                 {"vgpu.io/core-limit": "50", "vgpu.io/weight": "2"},
                 owner=("ReplicaSet", "trainer-7d9f8c6b5"), ip=11)
TRAINER_60 = pod("default", TRAINER["metadata"]["name"], "380", {"vgpu.io/core-limit": "60.5"},
                 owner=("ReplicaSet", "trainer-7d9f8c6b5"), ip=11)
SERVER_GONE = pod("default", SERVER["metadata"]["name"], "360",
                  owner=("ReplicaSet", "server-5c8d7f9b4"), ip=12, deleted=True)


def line(p, deleted=0, core="-", mem="-", weight="-", soft="-"):
    md = p["metadata"]
    return "POD %s/%s uid=%s deleted=%d core=%s mem=%s weight=%s soft=%s" % (
        md["namespace"], md["name"], md["uid"], deleted, core, mem, weight, soft)


# ---- the server ----

def selected(q, obj):
    """Whether the request's fieldSelector selects this pod (None: a selector the fake does not
    know, answered 400)."""
    sel = q.get("fieldSelector")
    if sel is None:
        return True
    field, _, value = sel.partition("=")
    if field != "spec.nodeName":
        return None
    return obj.get("spec", {}).get("nodeName") == value


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, ctx, script, token, token_file):
        super().__init__(("127.0.0.1", 0), Handler)
        self.ctx, self.script, self.token, self.token_file = ctx, script, token, token_file
        self.requests = []  # {"kind", "path", "query", "auth", "t"}
        self.errors = []  # exceptions of handler threads (a refused TLS handshake among them)
        self.lock = threading.Lock()

    def handle_error(self, request, client_address):
        self.errors.append(repr(sys.exc_info()[1]))

    def write_token(self, token):
        """Rotate the token as the kubelet does: the file is replaced whole."""
        tmp = self.token_file + ".new"
        with open(tmp, "w") as f:
            f.write(token + "\n")
        os.replace(tmp, self.token_file)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def setup(self):
        self.request.settimeout(10)
        self.request = self.server.ctx.wrap_socket(self.request, server_side=True)  # HTTPS only
        super().setup()

    def send_json(self, code, obj):
        data = json.dumps(obj, separators=(",", ":")).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def do_GET(self):
        srv = self.server
        url = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(url.query))
        auth = self.headers.get("Authorization")
        kind = "watch" if q.get("watch") in ("1", "true") else "list"
        with srv.lock:
            step = srv.script[len(srv.requests)] if len(srv.requests) < len(srv.script) else None
            srv.requests.append({"kind": kind, "path": url.path, "query": q, "auth": auth,
                                 "t": time.monotonic()})
            ok = auth == "Bearer " + srv.token
        if step and "before" in step:
            step["before"](srv)
        if not ok:
            self.send_json(401, status_obj(401, "Unauthorized", "Unauthorized"))
            return
        if url.path != "/api/v1/pods":
            self.send_json(404, status_obj(404, "NotFound", "the server could not find the "
                                           "requested resource"))
            return
        if selected(q, {}) is None:
            self.send_json(400, status_obj(400, "BadRequest", "field label not supported: %s"
                                           % q.get("fieldSelector")))
            return
        if step is None or step["kind"] != kind:
            self.send_json(500, status_obj(500, "InternalError", "the fake API server's script "
                                           "expected %s here" % (step and step["kind"])))
            return
        if "status" in step:
            self.send_json(step["status"][0], step["status"][1])
            return
        if kind == "list":
            items = []
            for p in step["items"]:
                if selected(q, p):
                    item = dict(p)  # a PodList's items carry no kind or apiVersion
                    del item["kind"], item["apiVersion"]
                    items.append(item)
            self.send_json(200, {"kind": "PodList", "apiVersion": "v1",
                                 "metadata": {"resourceVersion": step["rv"]}, "items": items})
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for item in step["events"]:
                if callable(item):
                    item(srv)
                    continue
                if isinstance(item, tuple):  # ("split", event): one line in two chunks
                    data = (json.dumps(item[1]) + "\n").encode()
                    self.chunk(data[:len(data) // 2])
                    time.sleep(0.1)
                    self.chunk(data[len(data) // 2:])
                    continue
                obj = item["object"]
                if item["type"] in ("ADDED", "MODIFIED", "DELETED") and not selected(q, obj):
                    continue
                self.chunk((json.dumps(item) + "\n").encode())
                time.sleep(0.03)
            end = step["end"]
            if end == "timeout":  # timeoutSeconds elapsed: the stream ends cleanly
                self.chunk(b"")
            elif end == "hold":
                while not stop.is_set():
                    time.sleep(0.05)
                self.chunk(b"")
            else:  # ("drop", event): half of its line, then the socket closes under it
                data = (json.dumps(end[1]) + "\n").encode()
                self.chunk(data[:len(data) // 2])
                time.sleep(0.2)
                self.connection.shutdown(socket.SHUT_RDWR)  # no close_notify, no last chunk
                self.close_connection = True
        except OSError:  # the client went away (it ends a watch on an ERROR event)
            self.close_connection = True


def unauthorized_then_write(token):
    """A 401 step: before it is answered, the token file becomes `token`."""
    return {"kind": "list", "before": lambda srv: srv.write_token(token)}


def rotate(srv):
    srv.token = TOKEN2
    srv.write_token(TOKEN2)


SCRIPT = [
    # 1, 2: no token file yet, then another cluster's token: 401 until the right one appears
    # (the daemon backs off 1 s, then 2 s: its backoff is 4 s from here until a watch ends well)
    unauthorized_then_write(WRONG),
    unauthorized_then_write(TOKEN1),
    # 3: the list (another node's pod is there for a request without the fieldSelector)
    {"kind": "list", "rv": "100", "items": [TRAINER, SERVER, ELSEWHERE, BATCH]},
    # 4: our version is too old, said by the HTTP status of the watch request: relist at once
    {"kind": "watch", "gone": True,
     "status": (410, status_obj(410, "Expired", "too old resource version: 100 (180)"))},
    # 5: the relist: the Job's pod went away meanwhile
    {"kind": "list", "rv": "200", "items": [ELSEWHERE, TRAINER, SERVER]},
    # 6: an event, then "410" as an ERROR event inside the stream: relist at once
    {"kind": "watch", "gone": True, "events": [
        event("ADDED", EVAL),
        event("ERROR", status_obj(410, "Expired", "too old resource version: 200 (250)")),
    ], "end": "timeout"},
    # 7: the relist: the pod of the event went away meanwhile
    {"kind": "list", "rv": "300", "items": [TRAINER, ELSEWHERE, SERVER]},
    # 8: events, bookmarks, then the server's timeoutSeconds ends the stream
    {"kind": "watch", "events": [
        event("ADDED", TUNER),
        event("ADDED", LONG),
        event("ADDED", ELSEWHERE2),
        ("split", event("MODIFIED", TRAINER_50)),
        bookmark("350"),
        event("DELETED", SERVER_GONE),
        bookmark("370"),
    ], "end": "timeout"},
    # 9: resumed from the last bookmark; the token rotates before this stream ends
    {"kind": "watch", "events": [event("MODIFIED", TRAINER_60), bookmark("390"), rotate],
     "end": "timeout"},
    # 10: from the bookmark, with the new token: an event, then the connection drops after
    # half a line
    {"kind": "watch", "events": [event("ADDED", INFER_PENDING)],
     "end": ("drop", event("MODIFIED", INFER_PARTIAL))},
    # 11: the list after the error
    {"kind": "list", "rv": "500", "items": [TRAINER_60, TUNER, ELSEWHERE, INFER]},
    # 12: one event, then the stream stays open until the probe stops
    {"kind": "watch", "events": [event("MODIFIED", INFER_55)], "end": "hold"},
]

# (kind, resourceVersion of a watch, token) of each request the script expects
WANT_REQUESTS = [("list", None, None), ("list", None, WRONG), ("list", None, TOKEN1),
                 ("watch", "100", TOKEN1), ("list", None, TOKEN1), ("watch", "200", TOKEN1),
                 ("list", None, TOKEN1), ("watch", "300", TOKEN1), ("watch", "370", TOKEN1),
                 ("watch", "390", TOKEN2), ("list", None, TOKEN2), ("watch", "500", TOKEN2)]
# after a 410 the daemon lists again at once: its backoff (4 s there) would take longer
GONE_RELIST_S = 2.0

TRAINER_ANN = dict(core="30.00", mem="4294967296", weight="3", soft="1")
EXPECTED = [
    line(TRAINER, **TRAINER_ANN), line(SERVER), line(BATCH, core="10.00"),
    # the relist after the HTTP 410
    line(TRAINER, **TRAINER_ANN), line(SERVER), line(BATCH, deleted=1),
    # the watch from 200, until the ERROR event
    line(EVAL, weight="7"),
    # the relist after it
    line(TRAINER, **TRAINER_ANN), line(SERVER), line(EVAL, deleted=1),
    # the watch from 300
    line(TUNER, soft="0"), line(TRAINER, core="50.00", weight="2"), line(SERVER, deleted=1),
    # resumed from the bookmark 370
    line(TRAINER, core="60.50"),
    # resumed from the bookmark 390, until the connection drops
    line(INFER, core="25.00"),
    # the relist after the drop, and the watch from 500
    line(TRAINER, core="60.50"), line(TUNER, soft="0"), line(INFER, core="25.00"),
    line(INFER, core="55.00"),
]


# ---- certificates ----

def openssl(*args):
    subprocess.run(["openssl"] + list(args), check=True, capture_output=True, timeout=30)


def make_ca(d, name):
    """A CA: (cert, key) paths."""
    cnf = os.path.join(d, name + ".cnf")
    with open(cnf, "w") as f:
        f.write("[req]\ndistinguished_name = dn\nprompt = no\nx509_extensions = v3_ca\n"
                "[dn]\nCN = %s\n[v3_ca]\nbasicConstraints = critical,CA:TRUE\n"
                "keyUsage = critical,keyCertSign,cRLSign\nsubjectKeyIdentifier = hash\n" % name)
    crt, key = os.path.join(d, name + ".crt"), os.path.join(d, name + ".key")
    openssl("req", "-x509", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", key, "-out", crt, "-days", "2", "-config", cnf)
    return crt, key


def make_server_cert(d, name, ca):
    """The API server's certificate for 127.0.0.1, signed by ca: (cert, key) paths."""
    cnf = os.path.join(d, name + ".cnf")
    with open(cnf, "w") as f:
        f.write("[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = kube-apiserver\n"
                "[v3_srv]\nbasicConstraints = critical,CA:FALSE\n"
                "keyUsage = critical,digitalSignature,keyEncipherment\n"
                "extendedKeyUsage = serverAuth\n"
                "subjectAltName = IP:127.0.0.1,DNS:kubernetes.default.svc\n"
                "authorityKeyIdentifier = keyid\n")
    crt, key, csr = (os.path.join(d, name + ext) for ext in (".crt", ".key", ".csr"))
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", key, "-out", csr, "-config", cnf)
    openssl("x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1], "-set_serial", "2",
            "-days", "2", "-out", crt, "-extfile", cnf, "-extensions", "v3_srv")
    return crt, key


def tls_context(cert):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert[0], cert[1])
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def start(ctx, script, token, token_file):
    srv = Server(ctx, script, token, token_file)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, "https://127.0.0.1:%d" % srv.server_address[1]


# ---- the test ----

def main():
    probe = sys.argv[1]
    if not shutil.which("openssl"):
        print("FAILED: the openssl command is needed to make the test's CA (scripts/install-deps)")
        return 1
    failures = []
    env = dict(os.environ, NO_PROXY="127.0.0.1", no_proxy="127.0.0.1")
    for k in ("CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR"):
        env.pop(k, None)
    with tempfile.TemporaryDirectory() as d:
        ca = make_ca(d, "cluster-ca")
        other_ca = make_ca(d, "other-ca")
        tok = os.path.join(d, "token")  # absent at first
        srv, api = start(tls_context(make_server_cert(d, "apiserver", ca)), SCRIPT, TOKEN1, tok)
        # stop while the last watch idles, so only the progress callback can end it
        p = subprocess.run([probe, api, NODE, tok, str(len(EXPECTED)), "30", ca[0]],
                           capture_output=True, text=True, timeout=90,
                           env=dict(env, PROBE_DELAY_MS="1300"))
        stop.set()
        srv.shutdown()

        # a server whose certificate another CA signed: nothing reaches it
        with open(tok, "w") as f:
            f.write(TOKEN1 + "\n")
        bad, bad_api = start(tls_context(make_server_cert(d, "impostor", other_ca)),
                             [{"kind": "list", "rv": "1", "items": [TRAINER]}], TOKEN1, tok)
        p2 = subprocess.run([probe, bad_api, NODE, tok, "1", "3", ca[0]], capture_output=True,
                            text=True, timeout=60, env=env)
        bad.shutdown()

    out = p.stdout.splitlines()
    err = p.stderr.splitlines()
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
    for other in (ELSEWHERE, ELSEWHERE2):
        if any(other["metadata"]["name"] in l for l in pods):
            failures.append("a pod of another node was reported: %s" % other["metadata"]["name"])
    if any("core=77.00" in l for l in pods):
        failures.append("the half line of a dropped connection was reported")
    stopped = [l for l in out if l.startswith("STOPPED ms=")]
    if not stopped:
        failures.append("no STOPPED line")
    elif int(stopped[0].split("=")[1]) > 2000:
        failures.append("stopping took %s ms (more than 2 s)" % stopped[0].split("=")[1])
    tuner = "team/" + TUNER["metadata"]["name"]
    for ann in ("vgpu.io/core-limit", "vgpu.io/weight", "vgpu.io/mem-limit"):
        if not any(tuner in l and ann in l for l in err):
            failures.append("no stderr line naming pod %s and %s" % (tuner, ann))
    if not any("team/" + LONG_NAME in l and "metadata.name" in l for l in err):
        failures.append("no stderr line naming the pod with a 254-byte name and the field")
    if any("vgpu.io/soft" in l for l in err):
        failures.append("a valid vgpu.io/soft was reported as malformed")
    if not any("401" in l and "Unauthorized" in l for l in err):
        failures.append("no stderr line saying the API server answered 401 Unauthorized")
    if not any("watching pods" in l for l in err):
        failures.append("no stderr line about the dropped watch connection")

    reqs = srv.requests
    got = [(r["kind"], r["query"].get("resourceVersion") if r["kind"] == "watch" else None,
            r["auth"][len("Bearer "):] if r["auth"] and r["auth"].startswith("Bearer ") else
            r["auth"]) for r in reqs]
    if got != WANT_REQUESTS:
        failures.append("requests (kind, resourceVersion, token):\n    %s\n  expected:\n    %s"
                        % ("\n    ".join(map(str, got)), "\n    ".join(map(str, WANT_REQUESTS))))
    for i, step in enumerate(SCRIPT[:len(reqs) - 1]):
        if step.get("gone"):
            dt = reqs[i + 1]["t"] - reqs[i]["t"]
            if dt > GONE_RELIST_S:
                failures.append("the relist after the 410 of request %d came %.1f s later (more "
                                "than %.0f s: a backoff)" % (i + 1, dt, GONE_RELIST_S))
    for r in reqs:
        q = r["query"]
        if r["path"] != "/api/v1/pods":
            failures.append("request for %s" % r["path"])
        if q.get("fieldSelector") != "spec.nodeName=" + NODE:
            failures.append("%s without fieldSelector=spec.nodeName=%s: %s" % (r["kind"], NODE, q))
        if r["kind"] == "watch" and q.get("allowWatchBookmarks") != "true":
            failures.append("watch without allowWatchBookmarks=true: %s" % q)
        if r["kind"] == "watch" and not q.get("timeoutSeconds", "").isdigit():
            failures.append("watch without timeoutSeconds: %s" % q)
        if r["kind"] == "list" and "resourceVersion" in q and q["resourceVersion"] != "":
            failures.append("a list asked for resourceVersion %s" % q["resourceVersion"])

    # the impostor
    sys.stdout.write(p2.stdout)
    sys.stderr.write(p2.stderr)
    if p2.returncode != 0 or not any(l.startswith("STOPPED") for l in p2.stdout.splitlines()):
        failures.append("probe against a certificate of another CA: exit %d, no STOPPED line"
                        % p2.returncode)
    if any(l.startswith("POD ") for l in p2.stdout.splitlines()):
        failures.append("a pod was reported by a server whose certificate another CA signed")
    if bad.requests:
        failures.append("%d requests reached the server whose certificate another CA signed"
                        % len(bad.requests))
    if not any("listing pods" in l and "certificate" in l for l in p2.stderr.splitlines()):
        failures.append("no stderr line saying the server's certificate was refused")

    if failures:
        print("FAILED:\n" + "\n".join(failures))
        if srv.errors or bad.errors:
            print("server errors: %s / %s" % (srv.errors, bad.errors))
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
