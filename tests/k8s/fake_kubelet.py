#!/usr/bin/env python3
"""fake_kubelet.py - a kubelet's device manager, as far as a device plugin can see it.

Why this exists: the daemon's device plugin must work with a real kubelet, and CI has no
cluster. This plays the kubelet's side of the v1beta1 device-plugin API with the real gRPC
(Debian's python3-grpcio) and message classes generated at test time from the daemon's own
src/hypervisor/deviceplugin.proto (protoc --python_out):

  - serves Registration on DIR/kubelet.sock; on Register it checks the version, answers at once
    and then (as the kubelet does, in the background) connects to DIR/<endpoint>, calls
    GetDevicePluginOptions and reads ListAndWatch for as long as the plugin streams;
  - allocate() does what the kubelet's devicesToAllocate + Allocate do: take the healthy devices
    not yet given out, ask GetPreferredAllocation, take its answer, fill up from the available
    ones if it fell short, then call Allocate;
  - restart() is a kubelet restart: its socket and the plugins' sockets are removed and its
    socket is made anew (a new inode), so a plugin must notice and register again.

Used as a module by device_plugin_test.py; `fake_kubelet.py --dir DIR --proto FILE` runs one
that prints what it sees, for trying the daemon by hand.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from concurrent import futures

import grpc

API_VERSION = "v1beta1"
pb = None  # the generated module (load_messages)


def load_messages(proto, outdir):
    """Generate deviceplugin_pb2 from `proto` into `outdir` and import it."""
    global pb
    subprocess.run(["protoc", "--python_out=" + outdir, "--proto_path=" + os.path.dirname(proto),
                    proto], check=True)
    sys.path.insert(0, outdir)
    import deviceplugin_pb2  # noqa: E402
    pb = deviceplugin_pb2
    return pb


class Plugin:
    """The kubelet's view of one registered resource: the plugin's endpoint and its devices."""

    def __init__(self, kubelet, req, seq):
        self.kubelet = kubelet
        self.resource = req.resource_name
        self.endpoint = req.endpoint
        self.options = req.options
        self.seq = seq  # registration number (the kubelet's, over all resources)
        self.registered_at = time.time()
        self.served_options = None
        self.lists = []  # every ListAndWatch message: [{id: health}]
        self.error = None
        self.cond = threading.Condition()
        self.closed = False
        path = os.path.join(kubelet.dir, req.endpoint)
        self.channel = grpc.insecure_channel("unix:" + path)
        u = self.channel.unary_unary
        self._options = u("/v1beta1.DevicePlugin/GetDevicePluginOptions",
                          request_serializer=pb.Empty.SerializeToString,
                          response_deserializer=pb.DevicePluginOptions.FromString)
        self._preferred = u("/v1beta1.DevicePlugin/GetPreferredAllocation",
                            request_serializer=pb.PreferredAllocationRequest.SerializeToString,
                            response_deserializer=pb.PreferredAllocationResponse.FromString)
        self._allocate = u("/v1beta1.DevicePlugin/Allocate",
                           request_serializer=pb.AllocateRequest.SerializeToString,
                           response_deserializer=pb.AllocateResponse.FromString)
        self._prestart = u("/v1beta1.DevicePlugin/PreStartContainer",
                           request_serializer=pb.PreStartContainerRequest.SerializeToString,
                           response_deserializer=pb.PreStartContainerResponse.FromString)
        self._watch = self.channel.unary_stream(
            "/v1beta1.DevicePlugin/ListAndWatch", request_serializer=pb.Empty.SerializeToString,
            response_deserializer=pb.ListAndWatchResponse.FromString)
        self.stream = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            grpc.channel_ready_future(self.channel).result(timeout=10)
            self.served_options = self._options(pb.Empty(), timeout=5)
            self.stream = self._watch(pb.Empty())
            for resp in self.stream:
                with self.cond:
                    self.lists.append({d.ID: d.health for d in resp.devices})
                    self.cond.notify_all()
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.CANCELLED:
                self.error = "%s: %s" % (e.code(), e.details())
        except Exception as e:  # noqa: BLE001 - reported to the test
            self.error = repr(e)
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def devices(self):
        """The latest device list ({id: health}), or None before the first."""
        with self.cond:
            return dict(self.lists[-1]) if self.lists else None

    def wait_list(self, pred, timeout, what):
        """Wait until the latest list satisfies pred(list); return it."""
        deadline = time.time() + timeout
        with self.cond:
            while True:
                if self.lists and pred(self.lists[-1]):
                    return dict(self.lists[-1])
                left = deadline - time.time()
                if left <= 0:
                    raise TimeoutError("%s: %s (last list: %s; stream error: %s)" % (
                        self.resource, what, summary(self.lists[-1]) if self.lists else None,
                        self.error))
                self.cond.wait(min(left, 0.2))

    def preferred(self, available, must, size):
        req = pb.PreferredAllocationRequest(container_requests=[
            pb.ContainerPreferredAllocationRequest(available_deviceIDs=list(available),
                                                   must_include_deviceIDs=list(must),
                                                   allocation_size=size)])
        return list(self._preferred(req, timeout=10).container_responses[0].deviceIDs)

    def allocate_ids(self, *containers):
        """Allocate as given: one list of device IDs per container. Raises grpc.RpcError."""
        req = pb.AllocateRequest(container_requests=[
            pb.ContainerAllocateRequest(devices_ids=list(ids)) for ids in containers])
        return self._allocate(req, timeout=10)

    def prestart(self, ids):
        return self._prestart(pb.PreStartContainerRequest(devices_ids=list(ids)), timeout=10)

    def call(self, method, request, response_class, timeout=10):
        """Any method by its full path (for methods the plugin does not have); `request` a
        message, or bytes sent as they are."""
        ser = (lambda b: b) if isinstance(request, bytes) else type(request).SerializeToString
        f = self.channel.unary_unary(method, request_serializer=ser,
                                     response_deserializer=response_class.FromString)
        return f(request, timeout=timeout)

    def close(self):
        if self.stream is not None:
            self.stream.cancel()
        self.channel.close()


def summary(devs):
    health = {}
    for h in devs.values():
        health[h] = health.get(h, 0) + 1
    return "%d devices %s" % (len(devs), health)


class FakeKubelet:
    def __init__(self, directory):
        self.dir = directory
        self.sock = os.path.join(directory, "kubelet.sock")
        self.server = None
        self.plugins = {}  # resource -> Plugin (the newest registration)
        self.registrations = []  # (time, RegisterRequest) of every accepted Register
        self.refused = []
        self.allocated = {}  # resource -> set of IDs given out
        self.lock = threading.Condition()
        self.nreg = 0

    # --- the Registration service ---

    def _register(self, req, context):
        if req.version != API_VERSION:
            self.refused.append(req)
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          "unsupported device plugin API version %r" % req.version)
        if "/" not in req.resource_name or os.path.basename(req.endpoint) != req.endpoint:
            self.refused.append(req)
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "bad resource or endpoint")
        with self.lock:
            self.nreg += 1
            old = self.plugins.get(req.resource_name)
            # the kubelet answers at once and connects back in the background
            self.plugins[req.resource_name] = Plugin(self, req, self.nreg)
            self.registrations.append((time.time(), req))
            self.lock.notify_all()
        if old is not None:
            old.close()
        return pb.Empty()

    def start(self):
        os.makedirs(self.dir, exist_ok=True)
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        handler = grpc.method_handlers_generic_handler("v1beta1.Registration", {
            "Register": grpc.unary_unary_rpc_method_handler(
                self._register, request_deserializer=pb.RegisterRequest.FromString,
                response_serializer=pb.Empty.SerializeToString)})
        self.server.add_generic_rpc_handlers((handler,))
        if not self.server.add_insecure_port("unix:" + self.sock):
            raise RuntimeError("cannot listen on " + self.sock)
        self.server.start()
        return self

    def stop(self, remove_socket=True):
        if self.server is not None:
            self.server.stop(0).wait()
            self.server = None
        with self.lock:
            plugins, self.plugins = list(self.plugins.values()), {}
        for p in plugins:
            p.close()
        if remove_socket and os.path.exists(self.sock):
            os.unlink(self.sock)

    def restart(self, remove_plugin_sockets=True):
        """As a kubelet restart: everything in the directory goes, the socket is made anew."""
        self.stop()
        if remove_plugin_sockets:
            for name in os.listdir(self.dir):
                if name.endswith(".sock"):
                    os.unlink(os.path.join(self.dir, name))
        self.allocated = {}
        return self.start()

    # --- what tests ask ---

    def wait_plugin(self, resource, timeout, after=0):
        """The plugin of `resource` once registered after registration number `after`."""
        deadline = time.time() + timeout
        with self.lock:
            while True:
                p = self.plugins.get(resource)
                if p is not None and p.seq > after:
                    return p
                left = deadline - time.time()
                if left <= 0:
                    raise TimeoutError("%s did not register within %.1f s" % (resource, timeout))
                self.lock.wait(min(left, 0.2))

    def release(self, resource, ids):
        """A pod deleted: its devices are free again (the kubelet's podDevices cleanup)."""
        self.allocated.get(resource, set()).difference_update(ids)

    def allocate(self, resource, n, must=()):
        """The kubelet's devicesToAllocate and Allocate for one container: returns
        (ids, preferred, AllocateResponse); raises grpc.RpcError when the plugin refuses (the
        devices are then released, as the kubelet does when the pod fails admission)."""
        p = self.plugins[resource]
        given = self.allocated.setdefault(resource, set())
        healthy = {i for i, h in (p.devices() or {}).items() if h == "Healthy"}
        available = healthy - given
        if len(available) < n:
            raise RuntimeError("requested number of devices unavailable for %s. Requested: %d, "
                               "Available: %d" % (resource, n, len(available)))
        preferred = p.preferred(sorted(available | set(must)), must, n)
        chosen = []
        for i in list(must) + [d for d in preferred if d in available]:
            if i not in chosen and len(chosen) < n:
                chosen.append(i)
        for i in sorted(available):  # the kubelet falls back to any available device
            if len(chosen) >= n:
                break
            if i not in chosen:
                chosen.append(i)
        given.update(chosen)
        try:
            resp = p.allocate_ids(chosen)
        except grpc.RpcError:
            given.difference_update(chosen)
            raise
        return chosen, preferred, resp


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", required=True, help="the device-plugin directory")
    ap.add_argument("--proto", required=True, help="src/hypervisor/deviceplugin.proto")
    a = ap.parse_args()
    load_messages(a.proto, tempfile.mkdtemp(prefix="fake-kubelet-"))
    k = FakeKubelet(a.dir).start()
    print("fake kubelet on %s" % k.sock, flush=True)
    seen = {}
    try:
        while True:
            time.sleep(1)
            for r, p in list(k.plugins.items()):
                d = p.devices()
                key = (p.seq, summary(d) if d else None)
                if seen.get(r) != key:
                    seen[r] = key
                    print("%s (registration %d, endpoint %s): %s" % (r, p.seq, p.endpoint,
                                                                     key[1]), flush=True)
    except KeyboardInterrupt:
        k.stop()


if __name__ == "__main__":
    main()
