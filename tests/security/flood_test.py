#!/usr/bin/env python3
"""flood_test.py - one pod floods the daemon's worker socket with half-sent requests; the
other pods must not notice.

Why this exists: with a thread per connection and only a global cap, about 4000 idle half
requests from one pod took every thread of the daemon, so the GPU processes of all pods on the
node could not register and live workers missed their heartbeats (and were dropped). The
daemon now admits at most max_connections_per_pod connections per pod (503 beyond) and cuts a
connection that does not deliver its request within request_timeout_ms (http_server.h).

The attacker (pod A) and the victim (pod B) are child processes in two cgroups made for the
test, as Kubernetes puts pods in cgroups; the daemon tells pods apart by /proc/PID/cgroup. The
attack runs twice: as root, and as uid 65534. Needs root and a writable cgroup hierarchy;
without them it exits 77 (skipped) and says why. Standard library only.

    flood_test.py --daemon BIN
"""
import argparse
import inspect
import json
import os
import re
import resource
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "hypervisor"))
from hvlib import Daemon, Fail, log, request  # noqa: E402

SKIP = 77
HALF = b"POST /v1/workers HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"
DRIP = b"POST /v1/workers HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"
CAP = 256  # the daemon's default max_connections_per_pod
TIMEOUT_S = 10.0  # the daemon's default request_timeout_ms
NOBODY = 65534
DAEMON_TASKS = 1024  # pids.max of the daemon, when a pids controller is there


# --- cgroups ---------------------------------------------------------------------------------

def make_cgroups(names):
    """Create cgroups `names` in the first hierarchy that takes them: cgroup2, then v1 (pids
    first). Returns (list of paths, None) or (None, why not)."""
    if os.geteuid() != 0:
        return None, "not root (moving processes between cgroups needs it)"
    v2, v1 = [], []
    try:
        with open("/proc/mounts") as f:
            for ln in f:
                parts = ln.split()
                if len(parts) < 4:
                    continue
                if parts[2] == "cgroup2":
                    v2.append(parts[1])
                elif parts[2] == "cgroup" and "pids" in parts[3].split(","):
                    v1.insert(0, parts[1])
                elif parts[2] == "cgroup":
                    v1.append(parts[1])
    except OSError as e:
        return None, "cannot read /proc/mounts: %s" % e
    why = []
    for root in v2 + v1:
        made = []
        try:
            for n in names:
                p = os.path.join(root, n)
                os.mkdir(p)
                made.append(p)
            # can a process be moved in? (a child, so that this test stays where it is)
            probe = subprocess.run([sys.executable, "-c", "import os,sys; open(sys.argv[1], 'w').write(str(os.getpid()))",
                                    os.path.join(made[0], "cgroup.procs")], capture_output=True, text=True)
            if probe.returncode:
                raise OSError(probe.stderr.strip().splitlines()[-1] if probe.stderr.strip() else "cannot join")
            return made, None
        except OSError as e:
            why.append("%s: %s" % (root, e))
            remove_cgroups(made)
    return None, "no writable cgroup hierarchy (%s)" % ("; ".join(why) or "none mounted")


def remove_cgroups(paths):
    for p in paths:
        for _ in range(50):
            try:
                os.rmdir(p)
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.1)  # its last process is still being reaped
        else:
            log("could not remove cgroup %s" % p)


def confine(pid, name, limit):
    """Limit the daemon's tasks as a service manager does (systemd's TasksMax; the node of the
    incident ran out of them): a pids cgroup with pids.max = limit. Returns it, or None when no
    pids controller can be used (the test then runs without)."""
    roots = []
    try:
        with open("/proc/mounts") as f:
            for ln in f:
                parts = ln.split()
                if len(parts) < 4:
                    continue
                if parts[2] == "cgroup" and "pids" in parts[3].split(","):
                    roots.append(parts[1])
                elif parts[2] == "cgroup2":
                    try:
                        with open(os.path.join(parts[1], "cgroup.subtree_control")) as c:
                            if "pids" in c.read().split():
                                roots.append(parts[1])
                    except OSError:
                        pass
    except OSError:
        return None
    for root in roots:
        p = os.path.join(root, name)
        try:
            os.mkdir(p)
        except OSError:
            continue
        try:
            with open(os.path.join(p, "pids.max"), "w") as f:
                f.write(str(limit))
            with open(os.path.join(p, "cgroup.procs"), "w") as f:
                f.write(str(pid))
            return p
        except OSError:
            remove_cgroups([p])
    return None


def join_cgroup(path):
    with open(os.path.join(path, "cgroup.procs"), "w") as f:
        f.write(str(os.getpid()))


def drop_to(uid):
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)


# --- roles (child processes) -----------------------------------------------------------------

def classify(socks, wait):
    """Sockets -> (still open, answered 503 with a connections error, closed otherwise, other
    answers). A socket is still open when the daemon has neither answered nor closed it."""
    p = select.poll()
    for s in socks:
        p.register(s.fileno(), select.POLLIN)
    ready = {fd for fd, _ in p.poll(int(wait * 1000))}
    time.sleep(0.2)  # answers come in full, but let the last ones arrive
    ready |= {fd for fd, _ in p.poll(0)}
    open_, r503, closed, other = [], 0, 0, []
    for s in socks:
        if s.fileno() not in ready:
            open_.append(s)
            continue
        data = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        except (BlockingIOError, ConnectionResetError, OSError):
            pass
        head, _, body = data.partition(b"\r\n\r\n")
        if head.startswith(b"HTTP/1.1 503"):
            try:
                err = json.loads(body)["error"]
            except (ValueError, KeyError, TypeError):
                err = ""
            if err.startswith("connections: ") and b"Content-Type: application/json" in head:
                r503 += 1
            else:
                other.append(data[:200].decode(errors="replace"))
        elif not data:
            closed += 1
        else:
            other.append(data[:200].decode(errors="replace"))
    return open_, r503, closed, other


def role_attacker(a):
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    join_cgroup(a.cgroup)
    if a.uid:
        drop_to(a.uid)
    count = min(a.count, hard - 64)
    socks, connect_failed, since = [], 0, {}
    t0 = time.time()
    for _ in range(count):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.setblocking(False)
        give_up = time.time() + 5
        while True:
            try:
                s.connect(a.socket)
                break
            except BlockingIOError:  # the daemon's backlog is full: try again, as a pod would
                if time.time() > give_up:
                    break
                time.sleep(0.001)
            except OSError:
                break
        try:
            s.getpeername()
        except OSError:
            connect_failed += 1
            s.close()
            continue
        since[s.fileno()] = time.time()
        try:
            s.send(HALF)
        except OSError:
            pass  # refused and closed already: its answer may still be there to read
        socks.append(s)
    connect_s = time.time() - t0
    open_, r503, closed, other = classify(socks, 1.0)
    print(json.dumps({"uid": os.getuid(), "count": count, "connect_s": round(connect_s, 2),
                      "admitted": len(open_), "refused_503": r503, "closed": closed,
                      "connect_failed": connect_failed, "other": len(other), "other_sample": other[:3]}),
          flush=True)
    sys.stdin.readline()  # hold the connections until told
    # then: was each admitted connection closed within the deadline (+ 2 s) of its start?
    left, closed_after = {s.fileno(): s for s in open_}, []
    p = select.poll()
    for fd in left:
        p.register(fd, select.POLLIN)
    give_up = max([since[fd] for fd in left] or [0]) + TIMEOUT_S + 2
    while left and time.time() < give_up:
        for fd, _ in p.poll(100):
            p.unregister(fd)
            del left[fd]
            closed_after.append(time.time() - since[fd])
    print(json.dumps({"still_open": len(left),
                      "closed_after_s": [round(min(closed_after), 2), round(max(closed_after), 2)] if closed_after
                      else None}), flush=True)
    for s in socks:
        s.close()


def role_victim(a):
    join_cgroup(a.cgroup)
    out = {"register": None, "register_s": None, "heartbeats": 0, "ok": 0, "max_s": 0.0, "bad": []}
    t = time.time()
    try:
        s, b, _ = request(a.socket, "POST", "/v1/workers", {"pod_id": "victim/p", "gpus": []}, timeout=5)
        out["register"] = s
    except OSError as e:
        out["register"] = "error: %s" % e
        b = {}
    out["register_s"] = round(time.time() - t, 3)
    wid = b.get("worker_id") if isinstance(b, dict) else None
    end = time.time() + 3.0
    while wid and time.time() < end:
        t = time.time()
        try:
            s, b, _ = request(a.socket, "POST", "/v1/workers/%s/heartbeat" % wid, {}, timeout=5)
        except OSError as e:
            s = "error: %s" % e
        took = time.time() - t
        out["heartbeats"] += 1
        out["max_s"] = max(out["max_s"], round(took, 3))
        if s == 200 and took <= 1.0:
            out["ok"] += 1
        else:
            out["bad"].append([s, round(took, 3)])
        time.sleep(max(0.0, 0.1 - took))
    print(json.dumps(out), flush=True)


# --- the test --------------------------------------------------------------------------------

def threads(pid):
    try:
        return len(os.listdir("/proc/%d/task" % pid))
    except OSError:
        return -1


def metrics(d):
    try:
        s, text, _ = request(d.op, "GET", "/metrics", timeout=10)
    except OSError as e:  # the daemon before the fix, out of threads: even for the operator
        s, text = repr(e), ""
    out = {}
    for name in ("vgpu_http_connections_open", "vgpu_http_refused_total", "vgpu_http_deadline_cut_total"):
        m = re.search(r'^%s\{listener="worker"\} (\S+)$' % name, text if s == 200 else "", re.M)
        out[name] = float(m.group(1)) if m else None
    return out


def slow_drip(path, res):
    """One byte of a request every 2 s; how long until the daemon closes the connection."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    t0 = time.time()
    res["closed_after_s"] = None
    for i in range(len(DRIP)):
        try:
            s.send(DRIP[i:i + 1])
        except OSError:
            res["closed_after_s"] = round(time.time() - t0, 2)
            break
        r, _, _ = select.select([s], [], [], 2.0)
        if r:
            try:
                data = s.recv(4096)
            except OSError:
                data = b""
            if not data:
                res["closed_after_s"] = round(time.time() - t0, 2)
                break
            res["answer"] = data[:120].decode(errors="replace")
        if time.time() - t0 > 25:
            break
    s.close()


def attack(d, me, cg_a, cg_b, uid, problems, numbers):
    tag = "uid %d" % uid
    before = metrics(d)
    base_threads = threads(d.proc.pid)
    drip = {}
    dt = threading.Thread(target=slow_drip, args=(d.worker, drip), daemon=True)
    atk = subprocess.Popen([sys.executable, me, "--role", "attacker", "--socket", d.worker, "--cgroup", cg_a,
                            "--uid", str(uid), "--count", "4000"],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    peak = [base_threads]
    sampling = [True]

    def sample():
        while sampling[0]:
            peak[0] = max(peak[0], threads(d.proc.pid))
            time.sleep(0.05)
    st = threading.Thread(target=sample)
    st.start()
    dt.start()
    try:
        line = atk.stdout.readline()
        if not line:
            raise Fail("%s: the attacker died: rc %s" % (tag, atk.wait()))
        a = json.loads(line)
        during = metrics(d)
        try:
            vic = subprocess.run([sys.executable, me, "--role", "victim", "--socket", d.worker, "--cgroup", cg_b],
                                 capture_output=True, text=True, timeout=60)
        except subprocess.TimeoutExpired:
            raise Fail("%s: the victim did not finish within 60 s" % tag)
        try:
            v = json.loads(vic.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise Fail("%s: victim said nothing: rc %d %s" % (tag, vic.returncode, vic.stderr[-2000:]))
        dt.join(timeout=40)
        atk.stdin.write("exit\n")
        atk.stdin.flush()
        line = atk.stdout.readline()
        end = json.loads(line) if line else {}
        still = end.get("still_open")
        atk.wait(timeout=30)
    finally:
        sampling[0] = False
        st.join()
        if atk.poll() is None:
            atk.kill()
            atk.wait()
    # after the attacker: nothing of it may stay
    t0 = time.time()
    after = metrics(d)
    while after["vgpu_http_connections_open"] not in (None, 0.0) and time.time() - t0 < 5:
        time.sleep(0.1)
        after = metrics(d)
    end_threads = threads(d.proc.pid)
    while end_threads > base_threads and time.time() - t0 < 5:
        time.sleep(0.1)
        end_threads = threads(d.proc.pid)

    def delta(name):
        if during.get(name) is None or before.get(name) is None:
            return None
        return during[name] - before[name]
    n = {"attacker": a, "still_open_after_deadline": still, "attacker_cut_after_s": end.get("closed_after_s"),
         "victim": v, "threads_base": base_threads,
         "threads_peak": peak[0], "threads_after": end_threads, "drip_closed_after_s": drip.get("closed_after_s"),
         "metrics_during": during, "metrics_after": after, "refused_delta": delta("vgpu_http_refused_total")}
    numbers[tag] = n
    log("%s: %s" % (tag, json.dumps(n)))

    def need(cond, what):
        if not cond:
            problems.append("%s: %s" % (tag, what))
    need(a["admitted"] <= CAP, "attacker got %d connections admitted (cap %d)" % (a["admitted"], CAP))
    need(a["admitted"] + a["refused_503"] + a["closed"] + a["connect_failed"] == a["count"] and a["other"] == 0,
         "attacker's connections neither admitted nor refused with the connections error: %r" % a["other_sample"])
    need(a["refused_503"] > 0, "no connection was answered 503 {\"error\": \"connections: ...\"}")
    need(peak[0] <= CAP + 40, "daemon threads peaked at %d (cap %d + 40)" % (peak[0], CAP))
    need(v["register"] == 201, "victim registration: %r in %s s" % (v["register"], v["register_s"]))
    need(v["heartbeats"] >= 20 and v["ok"] == v["heartbeats"],
         "victim heartbeats: %d of %d answered 200 within 1 s (slowest %.3f s): %r" %
         (v["ok"], v["heartbeats"], v["max_s"], v["bad"][:5]))
    need(drip.get("closed_after_s") is not None and drip["closed_after_s"] <= TIMEOUT_S + 2,
         "slow-drip connection closed after %r s (deadline %.0f s + 2)" % (drip.get("closed_after_s"), TIMEOUT_S))
    need(still == 0, "%r of the attacker's admitted connections still open %.0f s after they were made" %
         (still, TIMEOUT_S + 2))
    need(during["vgpu_http_connections_open"] is not None and during["vgpu_http_connections_open"] <= CAP + 4,
         "worker connections open during the attack: %r" % during["vgpu_http_connections_open"])
    need(after["vgpu_http_connections_open"] == 0, "worker connections open after the attack: %r" %
         after["vgpu_http_connections_open"])
    need(after["vgpu_http_deadline_cut_total"] is not None and before["vgpu_http_deadline_cut_total"] is not None and
         after["vgpu_http_deadline_cut_total"] > before["vgpu_http_deadline_cut_total"],
         "deadline cuts not counted: %r -> %r" % (before["vgpu_http_deadline_cut_total"],
                                                  after["vgpu_http_deadline_cut_total"]))
    need(n["refused_delta"] is not None and n["refused_delta"] >= a["refused_503"],
         "refusals not counted: %r for %d answered 503" % (n["refused_delta"], a["refused_503"]))
    need(end_threads <= base_threads, "daemon threads after the attack %d, before %d" % (end_threads, base_threads))


def make_daemon(binary, tmp):
    """hvlib's Daemon, told not to pass --identity to a daemon that does not know it (the one
    before the fix, for comparison)."""
    kw = {}
    if "identity" in inspect.signature(Daemon.__init__).parameters:
        r = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=20)
        if "--identity" not in r.stdout:
            kw["identity"] = None
    return Daemon(binary, tmp, **kw)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--daemon")
    ap.add_argument("--role", choices=["attacker", "victim"])
    ap.add_argument("--socket")
    ap.add_argument("--cgroup")
    ap.add_argument("--uid", type=int, default=0)
    ap.add_argument("--count", type=int, default=4000)
    a = ap.parse_args()
    if a.role == "attacker":
        return role_attacker(a)
    if a.role == "victim":
        return role_victim(a)
    if not a.daemon:
        ap.error("--daemon is required")
    tag = "vgpu-flood-%d" % os.getpid()
    cgs, why = make_cgroups([tag + "-podA", tag + "-podB"])
    if not cgs:
        log("SKIP security_flood: %s" % why)
        return SKIP
    tmp = tempfile.mkdtemp(prefix="vgpu-flood-")
    # mkdtemp makes the directory 0700: uid 65534 must reach the worker socket inside (0666 in
    # a 0755 directory the daemon makes), as a pod reaches its mounted socket
    os.chmod(tmp, 0o755)
    problems, numbers = [], {}
    d = None
    t0 = time.time()
    try:
        d = make_daemon(a.daemon, tmp).start()
        dcg = confine(d.proc.pid, tag + "-daemon", DAEMON_TASKS)
        if dcg:
            cgs.append(dcg)
        log("cgroups %s, %s; daemon pid %d, %d threads, tasks limited to %s" %
            (cgs[0], cgs[1], d.proc.pid, threads(d.proc.pid), "%d (%s)" % (DAEMON_TASKS, dcg) if dcg else "nothing"))
        for uid in (0, NOBODY):
            attack(d, os.path.abspath(__file__), cgs[0], cgs[1], uid, problems, numbers)
        d.stop()
        d = None
    except Fail as e:
        problems.append(str(e))
    finally:
        if d is not None:
            try:
                d.stop(expect_clean=False)
            except Fail as e:
                problems.append(str(e))
        remove_cgroups(cgs)
        if problems:
            try:
                log("--- daemon log (tail) ---\n" + open(os.path.join(tmp, "daemon.log")).read()[-3000:])
            except OSError:
                pass
        shutil.rmtree(tmp, ignore_errors=True)
    if problems:
        log("FAIL security_flood:\n  " + "\n  ".join(problems))
        return 1
    log("PASS security_flood (%.1f s)" % (time.time() - t0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
