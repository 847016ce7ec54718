#!/usr/bin/env bash
# hv_client_sim.sh - the limiter's node-daemon client (src/limiter/hv_client.c) against
# fake_hypervisor.py, with cuda_probe on the simulated GPU: registration, limits and suspension
# pushed at run time, the daemon dying and coming back, failing closed without a daemon. One
# case per invocation, so CTest reports each on its own. To run these against the real daemon,
# replace start_fake (same sockets, same operator API; the /test/log queries need its status).
#
#   hv_client_sim.sh BUILD_DIR CASE
set -u
BUILD=$1
CASE=$2
HERE=$(cd "$(dirname "$0")" && pwd)
SIM=$BUILD/sim
LIM=$BUILD/src/limiter/libcuda_limiter.so
PRE=${VGPU_TEST_PRELOAD:-} # sanitizer runtimes must come first in a sanitized build
PROBE=$BUILD/tests/integration/cuda_probe
FAKE="python3 $HERE/fake_hypervisor.py"
TMP=$(mktemp -d /tmp/vgpu-hv-XXXXXX)
cleanup() {
    local left
    kill -CONT $(jobs -p) 2>/dev/null
    kill $(jobs -p) 2>/dev/null
    for _ in $(seq 40); do
        left=$(jobs -pr)
        [ -z "$left" ] && break
        sleep 0.05
    done
    [ -z "$(jobs -pr)" ] || kill -9 $(jobs -pr) 2>/dev/null
    wait 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT

export LD_LIBRARY_PATH=$SIM
export VGPU_SIM_STATE=$TMP/sim.state
export VGPU_SIM_MEM=16GiB
export VGPU_SHM_DIR=$TMP/shm
export VGPU_POD_NAME=pod-$CASE POD_NAMESPACE=test-ns
export VGPU_HYPERVISOR_SOCKET=$TMP/worker.sock
unset TENSOR_FUSION_CUDA_MEM_LIMIT VCUDA_MEMORY_LIMIT CUDA_VISIBLE_DEVICES HYPERVISOR_IP HYPERVISOR_PORT VGPU_POD_UID
OPS=$TMP/op.sock
POD=test-ns/pod-$CASE
MIB=$((1024 * 1024))
fails=0
fail() {
    echo "FAIL: $*" >&2
    fails=$((fails + 1))
}
expect_eq() { [ "$1" = "$2" ] || fail "$3: got '$1', expected '$2'"; }
field() { sed -n "s/.*\b$1=\([0-9.,]*\).*/\1/p" <<<"$2"; }
limited() { LD_PRELOAD=$PRE$LIM "$@"; }
mono() { python3 -c 'import time; print(time.monotonic())'; }
start_fake() {
    $FAKE serve --worker-socket "$VGPU_HYPERVISOR_SOCKET" --socket "$OPS" --state "$TMP/state.json" "$@" >"$TMP/fake.out" 2>&1 &
    FAKE_PID=$!
    for _ in $(seq 100); do grep -q READY "$TMP/fake.out" 2>/dev/null && return 0; sleep 0.05; done
    fail "the fake daemon did not start: $(cat "$TMP/fake.out")"
}
ctl() { $FAKE ctl "$OPS" "$@"; }
# check PYTHON_CODE: runs with `log` (the fake's /test/log entries), `ctl_out` and files in TMP;
# every line it prints is a failure
check() {
    ctl GET /test/log >"$TMP/log.json" || fail "cannot read the fake's log"
    local out
    out=$(python3 - "$TMP" <<EOF
import json, sys, os
tmp = sys.argv[1]
log = json.load(open(os.path.join(tmp, "log.json")))["log"]
def kinds(k): return [e for e in log if e["kind"] == k]
def spin(name):
    line = open(os.path.join(tmp, name)).read()
    fields = dict(p.split("=", 1) for p in line.split() if "=" in p)
    return [float(x) for x in fields["rates"].split(",")], float(fields["t0"])
def pulses(name):
    out = []
    for line in open(os.path.join(tmp, name)):
        t, what = line.split()
        out.append((float(t[2:]), what))
    return out
def avg(xs): return sum(xs) / len(xs) if xs else 0
def near(v, e, pct, what):
    if abs(v - e) > e * pct / 100: print(f"{what}: {v:.0f}, expected {e} within {pct}%")
$1
EOF
)
    [ -z "$out" ] || fail "$out"
}

case $CASE in
hv-register)
    # the body names the pod, the process and each GPU with its environment limits; the daemon
    # sees the same pid through SO_PEERCRED; the exit deletes the worker
    export CUDA_MEM_LIMIT_0=2GiB CUDA_CORE_LIMIT_0=40 VGPU_POD_UID=uid-123 CONTAINER_NAME=main
    start_fake
    limited "$PROBE" try 1 >/dev/null; expect_eq $? 0 "allocation of a registered process"
    out=$("$PROBE" control)
    expect_eq "$(field managed "$out")" 1 "region managed by the daemon"
    expect_eq "$(field mem_limit "$out")" $((2048 * MIB)) "memory cap from the daemon (the env's, no defaults)"
    expect_eq "$(field core_limit "$out")" 4000 "compute limit from the daemon"
    expect_eq "$(field weight "$out")" 1 "weight from the daemon"
    check '
regs = kinds("register")
if len(regs) != 1: print(f"{len(regs)} registrations, expected 1")
b = regs[0]["body"]
want = {"pod_id": "uid:uid-123", "namespace": "test-ns", "pod": "pod-hv-register", "pod_uid": "uid-123",
        "container": "main", "pid": regs[0]["host_pid"],
        "gpus": [{"index": 0, "uuid": "gpu-5e1a0000-0000-0000-0000-000000000001",
                  "env": {"mem_limit": 2147483648, "core_limit": 40.0, "soft": False}}]}
if b != want: print(f"registration body {json.dumps(b)}\n  expected {json.dumps(want)}")
if [e["worker_id"] for e in kinds("delete")] != [regs[0]["worker_id"]]: print("the worker was not deleted at exit")
'
    # a soft limit goes to the daemon as a soft core_limit
    env -u CUDA_CORE_LIMIT_0 CUDA_CORE_SOFT_LIMIT_0=20 LD_PRELOAD=$PRE$LIM "$PROBE" try 1 >/dev/null
    check 'e = kinds("register")[-1]["body"]["gpus"][0]["env"]
if e.get("core_limit") != 20.0 or e.get("soft") is not True: print(f"soft limit sent as {e}")'
    # exit is not held up by the long poll, nor by a daemon that stopped answering (DELETE: 100 ms)
    limited "$PROBE" hold 10 2 >"$TMP/h" &
    holder=$!
    sleep 1
    kill -STOP "$FAKE_PID"
    start=$(date +%s%N)
    wait $holder
    ms=$((($(date +%s%N) - start) / 1000000))
    kill -CONT "$FAKE_PID"
    [ $ms -lt 1500 ] || fail "exit with a silent daemon took $ms ms after the 1 s left to sleep"
    ;;
hv-limits)
    # a limits command lowers the memory cap and the compute share of running processes (and
    # arrives chunked); a process started later gets them at registration
    start_fake --chunked
    VGPU_PROBE_BUCKET_MS=500 limited "$PROBE" spin 6 1000 >"$TMP/spin" &
    spinner=$!
    limited "$PROBE" pulse 600 6 >"$TMP/pulse" &
    pulser=$!
    sleep 2
    ctl PUT "/v1/pods/$POD/limits" '{"mem_limit": "512MiB", "core_limit": 30, "weight": 3}' >/dev/null || fail "PUT limits"
    wait $spinner $pulser
    check '
push = kinds("push")[0]
tc = push["t"]
p = pulses("pulse")
before = [w for t, w in p if t < tc]
after = [w for t, w in p if t > tc + 0.5]
if len(before) < 5 or set(before) != {"OK"}: print(f"600 MiB before the change: {before}")
if len(after) < 20 or set(after) != {"REFUSED"}: print(f"600 MiB half a second after a 512 MiB cap: {after}")
rates, t0 = spin("spin")
pre = [r for k, r in enumerate(rates) if k >= 1 and t0 + (k + 1) * 0.5 <= tc]
post = [r for k, r in enumerate(rates) if t0 + k * 0.5 >= tc + 1.0]
near(avg(pre), 1000, 8, "launches/s before the change (no limit)")
near(avg(post), 300, 10, "launches/s a second after a 30% limit")
acks = [e for e in kinds("ack") if e["seq"] == push["seq"] and e["ok"]]
if len(acks) != 2: print(f"acks of the limits command: {acks}")
'
    out=$("$PROBE" control)
    expect_eq "$(field mem_limit "$out")" $((512 * MIB)) "memory cap in the region"
    expect_eq "$(field core_effective "$out")" 3000 "enforced share in the region"
    expect_eq "$(field weight "$out")" 3 "weight in the region"
    expect_eq "$(field control_seq "$out")" 1 "control_seq in the region"
    limited "$PROBE" try 600 >/dev/null; expect_eq $? 2 "600 MiB in a new process under the 512 MiB cap"
    limited "$PROBE" try 400 >/dev/null; expect_eq $? 0 "400 MiB in a new process under the 512 MiB cap"
    ;;
hv-suspend)
    # suspend stops submissions within 100 ms, resume restarts them (20 ms steps)
    start_fake
    VGPU_PROBE_BUCKET_MS=20 limited "$PROBE" spin 4 1000 >"$TMP/spin" &
    spinner=$!
    sleep 1.2
    out=$(ctl POST "/v1/pods/$POD/suspend")
    expect_eq "$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(d["acked"], d["workers"])' "$out")" "1 1" "suspend acked by the worker"
    expect_eq "$("$PROBE" control | sed -n 's/.*suspended=\([0-9]\).*/\1/p')" 1 "suspended in the region"
    sleep 1.3
    ctl POST "/v1/pods/$POD/resume" >/dev/null
    wait $spinner
    check '
ts, tr = [e["t"] for e in kinds("push")]
rates, t0 = spin("spin")
step = 0.02
def window(a, b): return [r for k, r in enumerate(rates) if t0 + k * step >= a and t0 + (k + 1) * step <= b]
busy = window(t0 + step, ts - 0.05)
near(avg(busy), 1000, 10, "launches/s before the suspension")
stopped = window(ts + 0.1, tr)
if not stopped or max(stopped) != 0: print(f"launches 100 ms after suspend: {stopped}")
last = max([k for k, r in enumerate(rates) if r > 0 and t0 + (k + 1) * step <= tr] or [0])
print_latency = (t0 + (last + 1) * step - ts) * 1000
if print_latency > 100: print(f"launches went on {print_latency:.0f} ms after suspend")
first = min([k for k, r in enumerate(rates) if r > 0 and t0 + k * step >= tr] or [10**6])
if (t0 + first * step - tr) * 1000 > 100: print(f"launches came back {(t0 + first * step - tr) * 1000:.0f} ms after resume")
if not 800 <= avg(window(tr + 0.1, t0 + 3.9)) <= 1300: print(f"launches/s after resume: {avg(window(tr + 0.1, t0 + 3.9)):.0f}, expected about 1000")
sys.stderr.write(f"suspend: last launch within {print_latency:.0f} ms; resume: first launch within {(t0 + first * step - tr) * 1000:.0f} ms\n")
'
    ;;
hv-restart)
    # the daemon dies: the last limits stay in force; it comes back: the worker registers again
    # (new worker id) within the 2 s backoff and takes commands again
    start_fake
    ctl PUT "/v1/pods/$POD/limits" '{"mem_limit": "512MiB", "core_limit": 30}' >/dev/null || fail "PUT limits"
    VGPU_PROBE_BUCKET_MS=500 limited "$PROBE" spin 9 1000 >"$TMP/spin" &
    spinner=$!
    limited "$PROBE" pulse 600 9 >"$TMP/pulse" &
    pulser=$!
    sleep 2
    kill -9 "$FAKE_PID"
    wait "$FAKE_PID" 2>/dev/null
    tk=$(mono)
    sleep 0.5
    out=$("$PROBE" control)
    expect_eq "$(field mem_limit "$out")" $((512 * MIB)) "memory cap while the daemon is down"
    expect_eq "$(field core_effective "$out")" 3000 "share while the daemon is down"
    sleep 1.5
    tr=$(mono)
    start_fake
    for _ in $(seq 60); do
        [ "$(ctl GET /test/log | grep -o '"register"' | wc -l)" -ge 2 ] && break
        sleep 0.05
    done
    treg=$(mono)
    ctl PUT "/v1/pods/$POD/limits" '{"core_limit": 60}' >/dev/null || fail "PUT limits on the new daemon"
    wait $spinner $pulser
    check "
tk, tr, treg = $tk, $tr, $treg
regs = kinds('register')
if len(regs) != 2: print(f'{len(regs)} registrations with the restarted daemon, expected 2 (spin and pulse)')
if treg - tr > 2.5: print(f'registered again {treg - tr:.1f} s after the daemon came back')
p = pulses('pulse')
if set(w for t, w in p) != {'REFUSED'}: print('600 MiB fitted under the 512 MiB cap at some point (the cap lapsed)')
rates, t0 = spin('spin')
down = [r for k, r in enumerate(rates) if t0 + k * 0.5 >= tk + 0.1 and t0 + (k + 1) * 0.5 <= tr]
near(avg(down), 300, 12, 'launches/s at 30% while the daemon is down')
late = [r for k, r in enumerate(rates) if t0 + k * 0.5 >= treg + 1.0 and t0 + (k + 1) * 0.5 <= t0 + 8.9]
near(avg(late), 600, 12, 'launches/s after 60% from the restarted daemon')
"
    ;;
hv-failclosed)
    # no daemon and no limits in the environment: memory refused and launches held until the
    # daemon answers; the client tries every second
    start=$(date +%s%N)
    limited "$PROBE" try 100 >/dev/null 2>"$TMP/err"; expect_eq $? 2 "100 MiB without a daemon"
    ms=$((($(date +%s%N) - start) / 1000000))
    [ $ms -lt 1500 ] || fail "failing closed took $ms ms"
    grep -q "no limits in the environment" "$TMP/err" || fail "no error message: $(cat "$TMP/err")"
    limited "$PROBE" pulse 100 5 >"$TMP/pulse" 2>/dev/null &
    pulser=$!
    VGPU_PROBE_BUCKET_MS=100 limited "$PROBE" spin 5 1000 >"$TMP/spin" 2>/dev/null &
    spinner=$!
    sleep 1.5
    ts=$(mono)
    start_fake
    wait $spinner $pulser
    check "
ts = $ts
p = pulses('pulse')
before = [w for t, w in p if t < ts]
after = [w for t, w in p if t > ts + 1.3]
if len(before) < 5 or set(before) != {'REFUSED'}: print(f'without a daemon: {before}')
if len(after) < 10 or set(after) != {'OK'}: print(f'1.3 s after the daemon started: {after}')
rates, t0 = spin('spin')
held = [r for k, r in enumerate(rates) if t0 + (k + 1) * 0.1 <= ts]
if not held or max(held) != 0: print(f'launches without a daemon: {held}')
late = [r for k, r in enumerate(rates) if t0 + k * 0.1 >= ts + 1.3 and k < len(rates) - 1]
if not 800 <= avg(late) <= 1300: print(f'launches/s once the daemon answered: {avg(late):.0f}, expected about 1000')
"
    out=$("$PROBE" control)
    expect_eq "$(field managed "$out")" 1 "managed once registered"
    expect_eq "$(sed -n 's/.*suspended=\([0-9]\).*/\1/p' <<<"$out")" 0 "not suspended once registered"
    ;;
hv-envlimits)
    # no daemon but limits in the environment: they apply; once a daemon answers its values
    # rule (the daemon lowers its default to the environment's, never raises it)
    export CUDA_MEM_LIMIT_0=512MiB CUDA_CORE_LIMIT_0=30
    limited "$PROBE" try 400 >/dev/null 2>&1; expect_eq $? 0 "400 MiB under the environment's 512 MiB"
    limited "$PROBE" try 600 >/dev/null 2>&1; expect_eq $? 2 "600 MiB under the environment's 512 MiB"
    out=$(limited "$PROBE" spin 2.5 1000 2>/dev/null)
    r=$(field rates "$out" | cut -d, -f2- | tr ',' '\n' | awk '{s+=$1} END {print int(s/NR)}')
    awk -v v="$r" 'BEGIN {exit !(v >= 270 && v <= 330)}' || fail "launches/s at the environment's 30%: $r"
    out=$("$PROBE" control)
    expect_eq "$(field managed "$out")" 0 "not managed without a daemon"
    expect_eq "$(sed -n 's/.*suspended=\([0-9]\).*/\1/p' <<<"$out")" 0 "not suspended with environment limits"
    start_fake --default-mem $((256 * MIB)) --default-core 50
    limited "$PROBE" try 400 >/dev/null; expect_eq $? 2 "400 MiB once the daemon's 256 MiB default applies"
    out=$("$PROBE" control)
    expect_eq "$(field mem_limit "$out")" $((256 * MIB)) "min(env 512 MiB, default 256 MiB)"
    expect_eq "$(field core_limit "$out")" 3000 "min(env 30%, default 50%)"
    ;;
hv-fork)
    # parent and forked child register as two workers
    start_fake
    VGPU_PROBE_FORK=1 limited "$PROBE" spin 1 1000 >/dev/null
    check '
pids = sorted(e["host_pid"] for e in kinds("register"))
if len(set(pids)) != 2: print(f"registrations after fork: {pids}")
if len(kinds("delete")) != 2: print("deletes:", kinds("delete"))
'
    ;;
hv-badconfig)
    unset VGPU_HYPERVISOR_SOCKET
    for bad in 'HYPERVISOR_PORT=99999' 'HYPERVISOR_PORT=http' 'HYPERVISOR_PORT='; do
        out=$(env HYPERVISOR_IP=127.0.0.1 "$bad" LD_PRELOAD=$PRE$LIM "$PROBE" init 2>"$TMP/err")
        expect_eq "$?" 3 "cuInit with HYPERVISOR_IP and $bad"
        grep -q "HYPERVISOR_PORT" "$TMP/err" || fail "the error does not name HYPERVISOR_PORT: $(cat "$TMP/err")"
    done
    ;;
*)
    echo "unknown case $CASE" >&2
    exit 2
    ;;
esac
[ $fails -eq 0 ] && echo ok
exit $((fails > 0))
