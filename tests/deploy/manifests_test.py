#!/usr/bin/env python3
"""manifests_test.py - deploy/kubernetes checked against itself and against the daemon (CTest
deploy_manifests).

Why this exists: the manifests are not exercised by any other test, and a cluster is where a
mistake would show: a ConfigMap key the daemon refuses (the DaemonSet crash-loops on every
node), a host path the INI names but the DaemonSet does not mount (the daemon makes its
sockets inside the container, where neither pods nor the kubelet see them), an RBAC rule that
lacks what kube_watch.c asks for, an example pod that needs more than the two resources. So:

  - every manifest loads (PyYAML), starts with a comment, and the kustomization lists every
    one of them except example-pod.yaml (and lists nothing that is not there);
  - RBAC grants on pods exactly the verbs of the requests the daemon's sources make;
  - the DaemonSet: image tag = the project's version, hostPID, not privileged, capabilities
    dropped and each one added commented, NVML through the nvidia runtime, the agent's command
    line, the readiness probe on the INI's socket, every path of the INI on a hostPath mount
    at the same path (lib_dir: the agent's --host-lib-dir), resources, GPU toleration;
  - the daemon, built from this tree, runs with the ConfigMap's INI (its paths moved into a
    temporary directory), the DaemonSet's arguments and, as root, only the DaemonSet's
    capabilities, until /healthz answers on both sockets, the device plugin's endpoints appear
    and `vgpu status` (the readiness probe) succeeds, then stops on SIGTERM; the same INI with
    an unknown key is refused (so this check can fail);
  - the example pod asks for vgpu.io/gpu-memory and vgpu.io/gpu-cores only, with no
    LD_PRELOAD, mounts or other vgpu settings.

  manifests_test.py --source ROOT --daemon PATH [--cli PATH] [--no-device-plugin]
"""
import argparse
import configparser
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

try:
    import yaml
except ImportError:
    print("FAIL: PyYAML is missing (Debian: python3-yaml; scripts/install-deps installs it)")
    sys.exit(1)

FAILS = []


def check(cond, what, detail=""):
    if cond:
        print("ok   " + what)
    else:
        FAILS.append(what)
        print("FAIL " + what + (": " + str(detail) if detail != "" else ""))
    return cond


def load_docs(path):
    with open(path) as f:
        text = f.read()
    return text, [d for d in yaml.safe_load_all(text) if d is not None]


def project_version(root):
    with open(os.path.join(root, "CMakeLists.txt")) as f:
        m = re.search(r"project\(\s*vgpu\s+VERSION\s+([0-9][0-9A-Za-z.+-]*)", f.read())
    return m.group(1) if m else None


def parse_ini(path):
    """The INI as libinih reads it here: ';'/'#' comment lines, 'key = value', no interpolation."""
    cp = configparser.RawConfigParser(comment_prefixes=(";", "#"), inline_comment_prefixes=None,
                                      strict=True, empty_lines_in_values=False)
    cp.optionxform = str
    with open(path) as f:
        cp.read_file(f)
    return cp


def mount_for(container, volumes, path):
    """The volume mount of `container` holding `path` (longest mountPath prefix), and its volume."""
    best = None
    for m in container.get("volumeMounts", []):
        mp = m["mountPath"].rstrip("/")
        if path == mp or path.startswith(mp + "/"):
            if best is None or len(mp) > len(best["mountPath"].rstrip("/")):
                best = m
    if best is None:
        return None, None
    return best, volumes.get(best["name"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--source", required=True)
    ap.add_argument("--daemon", required=True)
    ap.add_argument("--cli")
    ap.add_argument("--no-device-plugin", action="store_true",
                    help="the daemon was built without the device plugin: run it without "
                    "device_plugin_dir")
    a = ap.parse_args()
    root = os.path.abspath(a.source)
    kdir = os.path.join(root, "deploy", "kubernetes")
    version = project_version(root)
    check(version is not None, "CMakeLists.txt project() names a version", version)

    # --- every manifest loads; the kustomization lists them all, except the example ---------
    files = sorted(f for f in os.listdir(kdir) if f.endswith((".yaml", ".yml")))
    objs = {}  # (kind, name) -> object
    for f in files:
        try:
            text, docs = load_docs(os.path.join(kdir, f))
        except yaml.YAMLError as e:
            check(False, f"{f} is YAML", e)
            continue
        check(text.startswith("#"), f"{f} starts with a comment saying why it exists")
        for d in docs:
            ok = isinstance(d, dict) and d.get("apiVersion") and d.get("kind") and \
                (d.get("metadata") or {}).get("name") or d.get("kind") == "Kustomization"
            check(bool(ok), f"{f}: {d.get('kind')} has apiVersion, kind and metadata.name")
            if f != "kustomization.yaml":
                objs[(d["kind"], d["metadata"]["name"])] = (f, d)
    check(not [f for f in os.listdir(kdir) if f.endswith(".yml")], "no .yml files (one spelling)")
    _, (kust,) = load_docs(os.path.join(kdir, "kustomization.yaml"))
    listed = list(kust.get("resources", []))
    want = sorted(f for f in files if f not in ("kustomization.yaml", "example-pod.yaml"))
    check(sorted(listed) == want, "the kustomization lists every manifest but example-pod.yaml",
          f"listed {listed}, present {want}")
    check("example-pod.yaml" not in listed, "example-pod.yaml is not part of the install")
    check(kust.get("namespace") == "vgpu-system", "the kustomization's namespace is vgpu-system")
    gens = kust.get("configMapGenerator", [])
    check(len(gens) == 1 and gens[0].get("files") == ["vgpu.ini"],
          "one ConfigMap, generated from vgpu.ini", gens)
    cm_name = gens[0]["name"] if gens else None
    ini_path = os.path.join(kdir, "vgpu.ini")
    check(os.path.isfile(ini_path), "vgpu.ini exists")
    with open(ini_path) as f:
        check(f.read().startswith(";"), "vgpu.ini starts with a comment saying why it exists")
    gen_files = [x for g in gens for x in g.get("files", [])]
    stray = sorted(f for f in os.listdir(kdir) if f not in listed + gen_files +
                   ["kustomization.yaml", "example-pod.yaml"])
    check(not stray, "every file in deploy/kubernetes is the kustomization's, or the example",
          stray)

    # the kustomize build itself, where kubectl is installed (it is not a build dependency)
    kubectl = shutil.which("kubectl")
    if kubectl:
        r = subprocess.run([kubectl, "kustomize", kdir], capture_output=True, text=True)
        if check(r.returncode == 0, "kubectl kustomize deploy/kubernetes builds", r.stderr[-500:]):
            built = [d for d in yaml.safe_load_all(r.stdout) if d]
            kinds = sorted(d["kind"] for d in built)
            check(kinds == sorted(["Namespace", "ServiceAccount", "ClusterRole",
                                   "ClusterRoleBinding", "ConfigMap", "DaemonSet"]),
                  "the build holds Namespace, ServiceAccount, ClusterRole(Binding), ConfigMap, "
                  "DaemonSet", kinds)
            cms = [d for d in built if d["kind"] == "ConfigMap"]
            dss = [d for d in built if d["kind"] == "DaemonSet"]
            if cms and dss:
                vols = {v["name"]: v for v in dss[0]["spec"]["template"]["spec"]["volumes"]}
                refs = [v["configMap"]["name"] for v in vols.values() if "configMap" in v]
                check(refs == [cms[0]["metadata"]["name"]] and
                      cms[0]["metadata"]["name"].startswith(cm_name + "-"),
                      "the DaemonSet mounts the generated ConfigMap under its hashed name",
                      (refs, cms[0]["metadata"]["name"]))
                check(all(d["metadata"].get("namespace") == "vgpu-system" for d in built
                          if d["kind"] not in ("Namespace", "ClusterRole", "ClusterRoleBinding")),
                      "every namespaced object is in vgpu-system")
    else:
        print("note kubectl not found: the kustomize build itself is not checked")

    # --- namespace and RBAC ------------------------------------------------------------------
    check(("Namespace", "vgpu-system") in objs, "Namespace vgpu-system")
    sas = [d for (k, _), (_, d) in objs.items() if k == "ServiceAccount"]
    roles = [d for (k, _), (_, d) in objs.items() if k == "ClusterRole"]
    binds = [d for (k, _), (_, d) in objs.items() if k == "ClusterRoleBinding"]
    check(len(sas) == 1 and len(roles) == 1 and len(binds) == 1,
          "one ServiceAccount, ClusterRole and ClusterRoleBinding")
    sa = sas[0] if sas else {"metadata": {"name": "?"}}
    if roles and binds:
        b = binds[0]
        check(b["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                               "name": roles[0]["metadata"]["name"]},
              "the binding refers to the ClusterRole", b["roleRef"])
        check(b.get("subjects") == [{"kind": "ServiceAccount", "name": sa["metadata"]["name"],
                                     "namespace": "vgpu-system"}],
              "the binding's only subject is the daemon's ServiceAccount", b.get("subjects"))
        # what the daemon asks the API server: every "/api..." path in its sources
        reqs = set()
        srcdir = os.path.join(root, "src", "hypervisor")
        for f in sorted(os.listdir(srcdir)):
            if f.endswith(".c"):
                with open(os.path.join(srcdir, f)) as fh:
                    for m in re.finditer(r'"[^"\n]*(/apis?/[^"\n]*)"', fh.read()):
                        reqs.add((f, m.group(1)))
        resources = set()
        for f, path in sorted(reqs):
            m = re.match(r"/api/v1/([a-z]+)", path)
            check(m is not None, f"{f} asks the API server for core resources only", path)
            if m:
                resources.add(m.group(1))
        check(resources == {"pods"}, "the daemon's sources ask the API server about pods only",
              sorted(reqs))
        with open(os.path.join(srcdir, "kube_watch.c")) as fh:
            kw = fh.read()
        verbs = {"list"} | ({"watch"} if "watch=1" in kw else set())
        check(roles[0].get("rules") == [{"apiGroups": [""], "resources": ["pods"],
                                         "verbs": sorted(verbs)}],
              f"the ClusterRole grants exactly {sorted(verbs)} on pods (what kube_watch.c does)",
              roles[0].get("rules"))

    # --- the DaemonSet -------------------------------------------------------------------------
    dss = [(f, d) for (k, _), (f, d) in objs.items() if k == "DaemonSet"]
    if not check(len(dss) == 1, "one DaemonSet"):
        return finish()
    ds_file, ds = dss[0]
    with open(os.path.join(kdir, ds_file)) as fh:
        ds_text = fh.read()
    pod = ds["spec"]["template"]["spec"]
    check(ds["metadata"].get("namespace") == "vgpu-system", "the DaemonSet is in vgpu-system")
    check(ds["spec"]["selector"]["matchLabels"].items() <=
          ds["spec"]["template"]["metadata"]["labels"].items(), "its selector matches its pods")
    check(pod.get("serviceAccountName") == sa["metadata"]["name"],
          "it runs as the ServiceAccount the ClusterRole is bound to")
    check(pod.get("hostPID") is True, "hostPID: true")
    check(pod.get("runtimeClassName") == "nvidia", "runtimeClassName: nvidia (NVML)")
    check(any(t.get("key") == "nvidia.com/gpu" and t.get("operator") == "Exists"
              for t in pod.get("tolerations", [])), "it tolerates GPU nodes' nvidia.com/gpu taint")
    cs = pod.get("containers", [])
    if not check(len(cs) == 1, "one container"):
        return finish()
    c = cs[0]
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    check(c.get("image") == f"vgpu/node:{version}", f"image vgpu/node:{version} (CMakeLists.txt)",
          c.get("image"))
    env = {e["name"]: e for e in c.get("env", [])}
    check(env.get("NVIDIA_VISIBLE_DEVICES", {}).get("value") == "all" and
          env.get("NVIDIA_DRIVER_CAPABILITIES", {}).get("value") == "utility",
          "NVIDIA_VISIBLE_DEVICES=all, NVIDIA_DRIVER_CAPABILITIES=utility")
    check(env.get("NODE_NAME", {}).get("valueFrom") == {"fieldRef": {"fieldPath": "spec.nodeName"}},
          "NODE_NAME from spec.nodeName")
    sc = c.get("securityContext", {})
    check(sc.get("privileged") is False, "privileged: false")
    check(sc.get("allowPrivilegeEscalation") is False, "allowPrivilegeEscalation: false")
    caps = sc.get("capabilities", {})
    check(caps.get("drop") == ["ALL"], "every capability dropped first", caps.get("drop"))
    added = caps.get("add", [])
    allowed = {"CHOWN", "FOWNER", "DAC_READ_SEARCH", "SYS_PTRACE", "DAC_OVERRIDE"}
    check(set(added) <= allowed, f"only capabilities the daemon has a use for ({sorted(allowed)})",
          added)
    lines = ds_text.splitlines()
    for cap in added:
        i = next((n for n, l in enumerate(lines) if l.strip() == f"- {cap}"), None)
        check(i is not None and lines[i - 1].strip().startswith("#"),
              f"capability {cap} has a comment saying why")

    # the command: the agent, then the daemon with its arguments
    cmd = list(c.get("command", [])) + list(c.get("args", []))
    ok = len(cmd) >= 5 and cmd[0] == "vgpu-node-agent" and "--" in cmd
    check(ok, "the container runs vgpu-node-agent ... -- vgpu-hypervisor ...", cmd)
    if not ok:
        return finish()
    sep = cmd.index("--")
    agent_args, daemon_cmd = cmd[1:sep], cmd[sep + 1:]
    check(daemon_cmd[:1] == ["vgpu-hypervisor"], "the agent execs vgpu-hypervisor", daemon_cmd)
    host_lib_dir = None
    if "--host-lib-dir" in agent_args:
        host_lib_dir = agent_args[agent_args.index("--host-lib-dir") + 1]
    check(host_lib_dir == "/host/usr/local/vgpu", "--host-lib-dir /host/usr/local/vgpu", agent_args)
    daemon_args = daemon_cmd[1:]
    cfg_in_ctr = daemon_args[daemon_args.index("--config") + 1] if "--config" in daemon_args else None
    check(cfg_in_ctr is not None, "the daemon is given --config", daemon_args)
    m, vol = mount_for(c, volumes, cfg_in_ctr or "/")
    check(vol is not None and vol.get("configMap", {}).get("name") == cm_name and
          cfg_in_ctr == m["mountPath"].rstrip("/") + "/vgpu.ini",
          f"--config {cfg_in_ctr} is vgpu.ini of the ConfigMap {cm_name}", (m, vol))

    # the INI's paths are host paths mounted at the same place
    ini = parse_ini(ini_path)
    check(ini.sections() == ["daemon", "defaults", "kubernetes"],
          "vgpu.ini has [daemon], [defaults], [kubernetes]", ini.sections())
    d = ini["daemon"] if ini.has_section("daemon") else {}
    check("node_name" not in d, "vgpu.ini leaves node_name to NODE_NAME")
    check(ini.has_section("kubernetes") and ini["kubernetes"].get("trusted_namespaces") == "",
          "[kubernetes] trusted_namespaces is empty")
    want_ini = {"socket": "/run/vgpu/vgpu.sock", "worker_socket": "/run/vgpu/worker.sock",
                "shm_dir": "/run/vgpu/shm", "device_plugin_dir": "/var/lib/kubelet/device-plugins",
                "lib_dir": "/usr/local/vgpu/lib"}
    for k, v in want_ini.items():
        check(d.get(k) == v, f"[daemon] {k} = {v}", d.get(k))
    # paths the daemon itself opens: directory of a socket/file, or the directory
    in_ctr = {"socket": os.path.dirname, "worker_socket": os.path.dirname, "state": os.path.dirname,
              "shm_dir": str, "device_plugin_dir": str}
    for k, fn in in_ctr.items():
        if k not in d:
            continue
        p = fn(d[k])
        m, vol = mount_for(c, volumes, p)
        hp = (vol or {}).get("hostPath", {}).get("path")
        check(vol is not None and hp is not None and hp.rstrip("/") == m["mountPath"].rstrip("/")
              and not m.get("readOnly"),
              f"[daemon] {k} ({d[k]}): on a writable hostPath mount at the same path",
              (m, vol))
    check(volumes.get("run", {}).get("hostPath", {}).get("type") == "DirectoryOrCreate",
          "/run/vgpu is DirectoryOrCreate")
    # lib_dir is a host path handed to the kubelet: the agent writes it through its mount
    lib = d.get("lib_dir", "")
    hv = [(n, v) for n, v in volumes.items() if "hostPath" in v and
          lib.startswith(v["hostPath"]["path"].rstrip("/") + "/")]
    ok = len(hv) == 1 and lib == hv[0][1]["hostPath"]["path"].rstrip("/") + "/lib"
    if check(ok, f"lib_dir {lib} is <a hostPath volume>/lib", hv):
        mnts = [mm for mm in c.get("volumeMounts", []) if mm["name"] == hv[0][0]]
        check(len(mnts) == 1 and mnts[0]["mountPath"] == host_lib_dir and not mnts[0].get("readOnly"),
              "that volume is mounted writable where the agent installs (--host-lib-dir)", mnts)
    if "listen" in d and d["listen"]:
        check("SYS_PTRACE" in added, "[daemon] listen is set: SYS_PTRACE is added (TCP identity)")
    else:
        check("SYS_PTRACE" not in added, "no [daemon] listen: no SYS_PTRACE")
    for mm in c.get("volumeMounts", []):
        check(mm["name"] in volumes, f"volume mount {mm['name']} has a volume")

    # readiness: `vgpu status` on the INI's operator socket
    probe = c.get("readinessProbe", {}).get("exec", {}).get("command", [])
    check(probe[:1] == ["vgpu"] and "status" in probe and
          (probe[probe.index("--socket") + 1] if "--socket" in probe else "/run/vgpu/vgpu.sock")
          == d.get("socket"), "readiness probe: vgpu status on the INI's operator socket", probe)
    res = c.get("resources", {})
    check(res.get("requests", {}).get("cpu") and res.get("requests", {}).get("memory") and
          res.get("limits", {}).get("memory"), "resources: requests and a memory limit", res)

    # --- the daemon accepts this configuration ---------------------------------------------------
    run_daemon(a, ini_path, daemon_args, cfg_in_ctr, d, added)

    # --- the example pod ----------------------------------------------------------------------
    ex = [(k, dd) for (k, _), (f, dd) in objs.items() if f == "example-pod.yaml"]
    if check(len(ex) == 1 and ex[0][0] == "Pod", "example-pod.yaml holds one Pod"):
        p = ex[0][1]
        spec = p["spec"]
        ann = (p["metadata"].get("annotations") or {})
        check(not [k for k in ann if "vgpu" in k], "no vgpu annotations", ann)
        check(not spec.get("volumes"), "no volumes (Allocate mounts what is needed)")
        check(not spec.get("hostPID") and not spec.get("hostIPC"), "no host namespaces")
        for ct in spec.get("containers", []) + spec.get("initContainers", []):
            lim = (ct.get("resources") or {}).get("limits") or {}
            req = (ct.get("resources") or {}).get("requests") or {}
            check(lim == {"vgpu.io/gpu-memory": 4, "vgpu.io/gpu-cores": 30},
                  f"container {ct['name']}: limits vgpu.io/gpu-memory 4, vgpu.io/gpu-cores 30 only",
                  lim)
            check(all(v == lim.get(k) for k, v in req.items()), "requests, if any, equal limits", req)
            names = [e["name"] for e in ct.get("env", [])]
            check(not [n for n in names if n in ("LD_PRELOAD", "LD_LIBRARY_PATH") or
                       n.startswith(("VGPU_", "CUDA_MEM", "CUDA_CORE", "TENSOR_FUSION", "TF_"))],
                  f"container {ct['name']}: no LD_PRELOAD or vgpu variables", names)
            check(not ct.get("volumeMounts"), f"container {ct['name']}: no mounts")
            check(not (ct.get("securityContext") or {}).get("privileged"),
                  f"container {ct['name']}: not privileged")
        # the resource names are the ones the device plugin serves, where it is in the tree
        dp = [os.path.join(root, "src", "hypervisor", f) for f in ("device_plugin.h",
                                                                    "device_plugin.c")]
        if os.path.exists(dp[0]):
            src = ""
            for f in dp:
                if os.path.exists(f):
                    with open(f) as fh:
                        src += fh.read()
            for r in ("vgpu.io/gpu-memory", "vgpu.io/gpu-cores"):
                check(f'"{r}"' in src, f"the device plugin (src/hypervisor/device_plugin.*) "
                      f"serves {r}")
        else:
            print("note src/hypervisor/device_plugin.h not in this tree: resource names not "
                  "checked against it")
    return finish()


def run_daemon(a, ini_path, daemon_args, cfg_in_ctr, d, caps):
    """Run the built daemon with vgpu.ini, its absolute paths moved under a temporary
    directory, and the DaemonSet's arguments (as root: with only the DaemonSet's capabilities,
    through setpriv); it must answer /healthz on both sockets and `vgpu status`, and stop
    cleanly. Then the same file with an unknown key must be refused."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "hypervisor"))
    from hvlib import request  # HTTP over a Unix socket, standard library only

    tmp = tempfile.mkdtemp(prefix="vgpu-manifests-")
    try:
        def moved(v):
            return tmp + v if v.startswith("/") else v

        with open(ini_path) as f:
            text = f.read()
        out, section = [], None
        for line in text.splitlines():
            s = line.strip()
            if s.startswith("["):
                section = s
            elif section == "[daemon]" and "=" in s and not s.startswith((";", "#")):
                k, v = (x.strip() for x in s.split("=", 1))
                if k == "device_plugin_dir" and a.no_device_plugin:
                    print("note the daemon here is built without the device plugin (no gRPC): "
                          "run without device_plugin_dir")
                    continue
                if v.startswith("/"):
                    line = f"{k} = {moved(v)}"
            out.append(line)
        moved_ini = os.path.join(tmp, "vgpu.ini")
        with open(moved_ini, "w") as f:
            f.write("\n".join(out) + "\n")
        # what the DaemonSet's volumes give the daemon: the directories exist (the kubelet's
        # device-plugin directory is type Directory: made here as the kubelet would have)
        for k in ("device_plugin_dir",):
            if k in d:
                os.makedirs(moved(d[k]), exist_ok=True)
        for k in ("socket", "worker_socket", "state"):
            if k in d:
                os.makedirs(os.path.dirname(moved(d[k])), exist_ok=True)
        args = [moved_ini if x == cfg_in_ctr else moved(x) if x.startswith("/") else x
                for x in daemon_args]
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("VGPU_", "KUBERNETES_", "NODE_NAME"))}
        env["NODE_NAME"] = "manifests-test-node"
        op, worker = moved(d.get("socket", "")), moved(d.get("worker_socket", ""))
        log = os.path.join(tmp, "daemon.log")
        wrap = []
        setpriv = shutil.which("setpriv")
        if os.geteuid() == 0 and setpriv:
            # root keeps only what the bounding set allows: the DaemonSet's capabilities
            wrap = [setpriv, "--bounding-set=-all" + "".join(",+" + c.lower() for c in caps),
                    "--inh-caps=-all"]
            print("note the daemon runs with the DaemonSet's capabilities only: " +
                  (", ".join(caps) or "none"))
        else:
            print("note not root (or no setpriv): the daemon's capabilities are not limited here")
        with open(log, "wb") as lf:
            proc = subprocess.Popen(wrap + [a.daemon] + args, stdout=lf, stderr=lf, env=env)
        up = False
        try:
            deadline = time.time() + 20
            while time.time() < deadline and proc.poll() is None:
                try:
                    if request(op, "GET", "/healthz", timeout=2)[0] == 200 and \
                            request(worker, "GET", "/healthz", timeout=2)[0] == 200:
                        up = True
                        break
                except OSError:
                    pass
                time.sleep(0.05)

            def logtail():
                with open(log, errors="replace") as f:
                    return f.read()[-1500:]

            check(up, "the daemon runs with vgpu.ini and the DaemonSet's arguments: /healthz "
                  "answers on the operator and the worker socket",
                  f"exit code {proc.poll()}; log: {logtail()}")
            if up and a.cli:
                r = subprocess.run([a.cli, "--socket", op, "status"], capture_output=True,
                                   text=True, timeout=20, env=env)
                check(r.returncode == 0, "the readiness probe's `vgpu status` succeeds against it",
                      r.stdout[-300:] + r.stderr[-300:])
            if up:
                check(os.path.isdir(moved(d["shm_dir"])) if "shm_dir" in d else True,
                      "it made its shm_dir")
            if up and "device_plugin_dir" in d and not a.no_device_plugin:
                # the plugin's endpoints appear in the directory before it registers (there is
                # no kubelet here: it keeps retrying, which is not an error)
                dpd, socks = moved(d["device_plugin_dir"]), []
                deadline = time.time() + 5
                while time.time() < deadline and not socks:
                    socks = [f for f in os.listdir(dpd) if f.endswith(".sock")]
                    time.sleep(0.05)
                check(len(socks) >= 2, "the device plugin serves its endpoints in device_plugin_dir",
                      socks)
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    rc = proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                    rc = None
                check(rc == 0, "it stops on SIGTERM with exit code 0", rc)
        if up:
            check(not os.path.exists(op) and not os.path.exists(worker),
                  "its sockets are gone after it stopped")

        # the negative control: the daemon does refuse a key it does not know
        bad_ini = os.path.join(tmp, "bad.ini")
        with open(bad_ini, "w") as f:
            f.write("\n".join(out).replace("[daemon]", "[daemon]\nno_such_key_x = 1", 1) + "\n")
        bad_args = [bad_ini if x == moved_ini else x for x in args]
        try:
            r = subprocess.run([a.daemon] + bad_args, capture_output=True, text=True, timeout=20,
                               env=env)
            check(r.returncode != 0 and "no_such_key_x" in (r.stdout + r.stderr),
                  "the same INI with an unknown key is refused, naming the key (the check above "
                  "can fail)", (r.returncode, r.stderr[-300:]))
        except subprocess.TimeoutExpired:
            check(False, "the daemon refuses an INI with an unknown key", "it kept running")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def finish():
    if FAILS:
        print(f"manifests_test: {len(FAILS)} failure(s)")
        return 1
    print("manifests_test: all passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
