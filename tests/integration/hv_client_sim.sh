#!/usr/bin/env bash
# hv_client_sim.sh - the limiter's node-daemon client (src/limiter/hv_client.c) against
# fake_hypervisor.py, with cuda_probe on the simulated GPU: registration, limits and suspension
# changed at run time, the daemon dying and coming back, failing closed without a daemon, and
# that a pod cannot change what the daemon decided for it. One case per invocation, so CTest
# reports each on its own. To run these against the real daemon, replace start_fake (same
# sockets, same operator API; the /test/log queries need its status).
#
# Like the daemon, the fake makes each pod's directory $VGPU_SHM_DIR/pods/<name>/ (with
# tests/hypervisor/hv_shm_tool) and writes the pod's limits and suspension into its control
# region (control/control.shm) before it replies or pushes a command; the limiter maps that
# region read-only and the pod's ledger (ledger/ledger.shm) read-write. So what the daemon
# decided is read here from the control region (cuda_probe control with VGPU_PROBE_POD_DIR);
# a process the daemon has not answered, or one that cannot use the pod's region, runs on a
# private ledger of its own (src/limiter/limiter.h).
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
TOOL=$BUILD/tests/hypervisor/hv_shm_tool # makes and writes the pods' regions for the fake
FAKE="python3 $HERE/fake_hypervisor.py"
TMP=$(mktemp -d /tmp/vgpu-hv-XXXXXX)
. "$HERE/../lib/testlib.sh"
no_jobs_left() { [ -z "$(jobs -pr)" ]; }
cleanup() {
    kill -CONT $(jobs -p) 2>/dev/null
    kill $(jobs -p) 2>/dev/null
    wait_until 2 no_jobs_left || kill -9 $(jobs -pr) 2>/dev/null
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
unset VGPU_LOG_LEVEL VCUDA_LOG_LEVEL VGPU_PROBE_POD_DIR
OPS=$TMP/op.sock
POD=test-ns/pod-$CASE
# the pod's directory as the fake names it ("env-" and the pod key, '/' as '_')
PODDIR=$VGPU_SHM_DIR/pods/env-test-ns_pod-$CASE
MIB=$((1024 * 1024))
limited() { LD_PRELOAD=$PRE$LIM "$@"; }
mono() { python3 -c 'import time; print(time.monotonic())'; }
# what the daemon decided for the pod, from its control region (exit 1: there is none)
region() { VGPU_PROBE_POD_DIR=$PODDIR "$PROBE" control; }
# launches per second after the first step ("rates=a,b,c,..." from cuda_probe spin)
avg_rate() { field rates "$1" | cut -d, -f2- | tr ',' '\n' | awk '{s+=$1} END {print (NR ? int(s/NR) : 0)}'; }
# the permissions of PID's mappings of FILE, one line each ("r--s")
maps_perms() {
    [ -r "/proc/$1/maps" ] || { echo "(process $1 is gone)"; return; }
    awk -v f="$2" '$6 == f {print $2}' "/proc/$1/maps"
}
# a background probe printed HELD
wait_held() { wait_for 10 "holder of $1 to start" has_line "$1" HELD 1 || echo "  it printed: $(cat "$1")" >&2; }
start_fake() {
    $FAKE serve --worker-socket "$VGPU_HYPERVISOR_SOCKET" --socket "$OPS" --state "$TMP/state.json" \
        --tool "$TOOL" --shm-dir "$VGPU_SHM_DIR" "$@" >"$TMP/fake.out" 2>&1 &
    FAKE_PID=$!
    wait_until 5 grep -q READY "$TMP/fake.out" ||
        fail "the fake daemon did not start: $(cat "$TMP/fake.out")"
}
stop_fake() {
    kill "$FAKE_PID"
    wait "$FAKE_PID" 2>/dev/null
}
ctl() { $FAKE ctl "$OPS" "$@"; }
# registrations the fake has seen [from host PID $1]
registered() {
    ctl GET /test/log | python3 -c 'import json, sys
log = json.load(sys.stdin)["log"]
pid = int(sys.argv[1]) if len(sys.argv) > 1 else None
print(sum(1 for e in log if e["kind"] == "register" and pid in (None, e["host_pid"])))' "$@"
}
registered_at_least() { [ "$(registered "${@:2}")" -ge "$1" ]; }
# the fake has logged at least $2 events of kind $1
logged_at_least() {
    [ "$(ctl GET /test/log | python3 -c 'import json, sys
print(sum(1 for e in json.load(sys.stdin)["log"] if e["kind"] == sys.argv[1]))' "$1")" -ge "$2" ]
}
# acks (ok) of command $1 the fake has seen
acked() {
    ctl GET /test/log | python3 -c 'import json, sys
log = json.load(sys.stdin)["log"]
print(sum(1 for e in log if e["kind"] == "ack" and e["seq"] == int(sys.argv[1]) and e["ok"]))' "$1"
}
acked_at_least() { [ "$(acked "$2")" -ge "$1" ]; }
# lines of a pulse file stamped after $2 + $3 s
pulses_after() { awk -v t="$(awk -v a="$2" -v b="$3" 'BEGIN {printf "%.6f", a + b}')" '{sub(/^t=/, "", $1); if ($1 + 0 > t) n++} END {print n + 0}' "$1"; }
pulses_after_at_least() { [ "$(pulses_after "$2" "$3" "$4")" -ge "$1" ]; }
# check PYTHON_CODE: runs with `log` (the fake's /test/log entries), `tmp` (TMP, for its files)
# and the helpers kinds, spin, pulses, avg and near defined below; every line it prints is a
# failure
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
[ -x "$TOOL" ] || { echo "FAIL: $TOOL is not built (the fake makes the pods' regions with it)" >&2; exit 1; }

case $CASE in
hv-register)
    # the body names the pod, the process and each GPU with its environment limits; the daemon
    # sees the same pid through SO_PEERCRED; the process attaches the region the reply names,
    # where the daemon has put the limits; the exit deletes the worker
    export CUDA_MEM_LIMIT_0=2GiB CUDA_CORE_LIMIT_0=40 VGPU_POD_UID=uid-123 CONTAINER_NAME=main
    start_fake
    VGPU_LOG_LEVEL=info limited "$PROBE" try 1 >/dev/null 2>"$TMP/err"
    expect_eq $? 0 "allocation of a registered process"
    grep -qF "shared memory $PODDIR (from the node daemon)" "$TMP/err" ||
        fail "the process did not attach the pod's region: $(cat "$TMP/err")"
    out=$(region) || fail "no control region for the pod: $out"
    expect_eq "$(field suspended "$out")" 0 "suspended in the control region"
    expect_eq "$(field state "$out")" 0 "state in the control region"
    expect_eq "$(field mem_limit "$out")" $((2048 * MIB)) "memory cap from the daemon (the env's, no defaults)"
    expect_eq "$(field core_limit "$out")" 4000 "compute limit from the daemon"
    expect_eq "$(field core_soft "$out")" 0 "a hard limit has no floor"
    expect_eq "$(field core_effective "$out")" 4000 "enforced share from the daemon"
    expect_eq "$(field weight "$out")" 1 "weight from the daemon"
    # the cap the daemon wrote holds new processes of the pod
    limited "$PROBE" try 2100 >/dev/null; expect_eq $? 2 "2100 MiB under the daemon's 2 GiB cap"
    limited "$PROBE" try 1500 >/dev/null; expect_eq $? 0 "1500 MiB under the daemon's 2 GiB cap"
    # the exit's DELETE is sent with a 100 ms deadline and may be handled after the process is
    # gone (a loaded runner): wait for the fake to have seen all three
    wait_for 3 "three DELETEs at exit" logged_at_least delete 3
    check '
regs = kinds("register")
if len(regs) != 3: print(f"{len(regs)} registrations, expected 3")
b = regs[0]["body"]
want = {"pod_id": "uid:uid-123", "namespace": "test-ns", "pod": "pod-hv-register", "pod_uid": "uid-123",
        "container": "main", "pid": regs[0]["host_pid"],
        "gpus": [{"index": 0, "uuid": "gpu-5e1a0000-0000-0000-0000-000000000001",
                  "env": {"mem_limit": 2147483648, "core_limit": 40.0, "soft": False}}]}
if b != want: print(f"registration body {json.dumps(b)}\n  expected {json.dumps(want)}")
dirs = [e["dir"] for e in regs]
if set(dirs) != {"pods/env-test-ns_pod-hv-register"}: print(f"regions named: {dirs}")
nreg = len(kinds("region"))
if nreg != 1: print(f"the pod got {nreg} regions, expected 1")
if [e["worker_id"] for e in kinds("delete")] != [e["worker_id"] for e in regs]: print("the workers were not deleted at exit")
'
    # a soft limit goes to the daemon as a soft core_limit (and into the region as a floor)
    env -u CUDA_CORE_LIMIT_0 CUDA_CORE_SOFT_LIMIT_0=20 LD_PRELOAD=$PRE$LIM "$PROBE" try 1 >/dev/null
    check 'e = kinds("register")[-1]["body"]["gpus"][0]["env"]
if e.get("core_limit") != 20.0 or e.get("soft") is not True: print(f"soft limit sent as {e}")'
    out=$(region)
    expect_eq "$(field core_soft "$out"),$(field core_limit "$out")" "2000,10000" "a soft 20% in the region"
    # exit is not held up by the long poll, nor by a daemon that stopped answering (DELETE: 100 ms)
    limited "$PROBE" hold 10 2 >"$TMP/h" &
    holder=$!
    sleep 1 # measured: the holder has 1 s of its 2 left when the daemon goes silent
    kill -STOP "$FAKE_PID"
    start=$(date +%s%N)
    wait $holder
    ms=$((($(date +%s%N) - start) / 1000000))
    kill -CONT "$FAKE_PID"
    [ $ms -lt 1500 ] || fail "exit with a silent daemon took $ms ms after the 1 s left to sleep"
    ;;
hv-limits)
    # a limits change (the daemon writes the control region, then pushes the command, which
    # arrives chunked and is acked) lowers the memory cap and the compute share of running
    # processes; a process started later is held to them from its registration
    start_fake --chunked
    VGPU_PROBE_BUCKET_MS=500 limited "$PROBE" spin 6 1000 >"$TMP/spin" &
    spinner=$!
    limited "$PROBE" pulse 600 6 >"$TMP/pulse" &
    pulser=$!
    sleep 2 # measured: the window before the change, without a limit
    ctl PUT "/v1/pods/$POD/limits" '{"mem_limit": "512MiB", "core_limit": 30, "weight": 3}' >/dev/null || fail "PUT limits"
    wait $spinner $pulser
    check '
push = kinds("push")[0]
tc = push["t"]
tw = [e["t"] for e in kinds("control") if e["seq"] == push["seq"]][0]  # the region changes from here
p = pulses("pulse")
before = [w for t, w in p if t < tw]
after = [w for t, w in p if t > tc + 0.5]
if len(before) < 5 or set(before) != {"OK"}: print(f"600 MiB before the change: {before}")
if len(after) < 20 or set(after) != {"REFUSED"}: print(f"600 MiB half a second after a 512 MiB cap: {after}")
rates, t0 = spin("spin")
pre = [r for k, r in enumerate(rates) if k >= 1 and t0 + (k + 1) * 0.5 <= tw]
post = [r for k, r in enumerate(rates) if t0 + k * 0.5 >= tc + 1.0]
near(avg(pre), 1000, 8, "launches/s before the change (no limit)")
near(avg(post), 300, 10, "launches/s a second after a 30% limit")
acks = [e for e in kinds("ack") if e["seq"] == push["seq"] and e["ok"]]
if len(acks) != 2: print(f"acks of the limits command: {acks}")
'
    out=$(region) || fail "no control region: $out"
    expect_eq "$(field mem_limit "$out")" $((512 * MIB)) "memory cap in the control region"
    expect_eq "$(field core_limit "$out")" 3000 "compute limit in the control region"
    expect_eq "$(field core_effective "$out")" 3000 "enforced share in the control region"
    expect_eq "$(field weight "$out")" 3 "weight in the control region"
    expect_eq "$(field control_seq "$out")" 1 "control_seq in the control region"
    limited "$PROBE" try 600 >/dev/null; expect_eq $? 2 "600 MiB in a new process under the 512 MiB cap"
    limited "$PROBE" try 400 >/dev/null; expect_eq $? 0 "400 MiB in a new process under the 512 MiB cap"
    ;;
hv-suspend)
    # suspend stops submissions within 100 ms, resume restarts them (20 ms steps); the daemon
    # sets the control region's word before it pushes the command
    start_fake
    VGPU_PROBE_BUCKET_MS=20 limited "$PROBE" spin 4 1000 >"$TMP/spin" &
    spinner=$!
    sleep 1.2 # measured: the window before the suspension
    out=$(ctl POST "/v1/pods/$POD/suspend")
    expect_eq "$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(d["acked"], d["workers"])' "$out")" "1 1" "suspend acked by the worker"
    out=$(region)
    expect_eq "$(field suspended "$out")" 1 "suspended in the control region"
    expect_eq "$(field control_seq "$out")" 1 "control_seq of the suspend"
    sleep 1.3 # measured: the suspended window
    ctl POST "/v1/pods/$POD/resume" >/dev/null
    wait $spinner
    check '
# the region says suspended from the write of the fake (ts), before it pushes the command, and
# resumed from the write of the resume (tr)
writes = {e["seq"]: e["t"] for e in kinds("control")}
ts, tr = [writes[e["seq"]] for e in kinds("push")]
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
    out=$(region)
    expect_eq "$(field suspended "$out"),$(field control_seq "$out")" "0,2" "resumed in the control region (seq 2)"
    ;;
hv-restart)
    # the daemon dies: the last limits stay in force (its control region stays); it comes back:
    # the worker registers again (new worker id) within the 2 s backoff, to the same region
    # (same token), and takes commands again
    start_fake
    ctl PUT "/v1/pods/$POD/limits" '{"mem_limit": "512MiB", "core_limit": 30}' >/dev/null || fail "PUT limits"
    # 11 s: the restarted fake and the workers' backoff can take 4 s on a loaded machine, and
    # the 60% must still have a second and more to show after the registration
    VGPU_PROBE_BUCKET_MS=500 limited "$PROBE" spin 11 1000 >"$TMP/spin" &
    spinner=$!
    limited "$PROBE" pulse 600 11 >"$TMP/pulse" &
    pulser=$!
    sleep 2 # measured: the window before the daemon dies
    ctl GET /test/log >"$TMP/log1.json" || fail "cannot read the first fake's log"
    kill -9 "$FAKE_PID"
    wait "$FAKE_PID" 2>/dev/null
    tk=$(mono)
    sleep 0.5 # measured: the region is read half a second into the down window
    out=$(region)
    expect_eq "$(field mem_limit "$out")" $((512 * MIB)) "memory cap while the daemon is down"
    expect_eq "$(field core_effective "$out")" 3000 "share while the daemon is down"
    sleep 1.5 # measured: the rest of the down window
    tr=$(mono)
    start_fake
    wait_for 4 "2 registrations with the restarted daemon" registered_at_least 2
    treg=$(mono)
    ctl PUT "/v1/pods/$POD/limits" '{"core_limit": 60}' >/dev/null || fail "PUT limits on the new daemon"
    wait $spinner $pulser
    check "
tk, tr, treg = $tk, $tr, $treg
regs = kinds('register')
if len(regs) != 2: print(f'{len(regs)} registrations with the restarted daemon, expected 2 (spin and pulse)')
back = max(e['t'] for e in regs) - kinds('ready')[0]['t'] if regs else 0
if back > 2.5: print(f'registered again {back:.1f} s after the daemon came back')
first = [e for e in json.load(open(os.path.join(tmp, 'log1.json')))['log'] if e['kind'] == 'register']
tokens = {e['token'] for e in first + regs}
if len(first) != 2 or len(tokens) != 1: print(f'tokens before and after the restart: {tokens} ({len(first)} registrations before)')
p = pulses('pulse')
if set(w for t, w in p) != {'REFUSED'}: print('600 MiB fitted under the 512 MiB cap at some point (the cap lapsed)')
rates, t0 = spin('spin')
down = [r for k, r in enumerate(rates) if t0 + k * 0.5 >= tk + 0.1 and t0 + (k + 1) * 0.5 <= tr]
near(avg(down), 300, 12, 'launches/s at 30% while the daemon is down')
late = [r for k, r in enumerate(rates) if t0 + k * 0.5 >= treg + 1.0 and t0 + (k + 1) * 0.5 <= t0 + 10.9]
if not late: print(f'no whole step of the spin after the registration (registered {treg - t0:.1f} s in)')
near(avg(late), 600, 12, 'launches/s after 60% from the restarted daemon')
"
    ;;
hv-failclosed)
    # no daemon and no limits in the environment: memory refused and launches held until the
    # daemon answers; the client tries every second. New with the daemon's regions: such a
    # process has no ledger at all until then, and attaches the pod's region once it answers.
    start=$(date +%s%N)
    limited "$PROBE" try 100 >/dev/null 2>"$TMP/err"; expect_eq $? 2 "100 MiB without a daemon"
    ms=$((($(date +%s%N) - start) / 1000000))
    [ $ms -lt 1500 ] || fail "failing closed took $ms ms"
    grep -q "no limits in the environment" "$TMP/err" || fail "no error message: $(cat "$TMP/err")"
    VGPU_LOG_LEVEL=info limited "$PROBE" pulse 100 5 >"$TMP/pulse" 2>"$TMP/pulse.err" &
    pulser=$!
    VGPU_LOG_LEVEL=info VGPU_PROBE_BUCKET_MS=100 limited "$PROBE" spin 5 1000 >"$TMP/spin" 2>"$TMP/spin.err" &
    spinner=$!
    sleep 1.5 # measured: the window without a daemon
    ts=$(mono)
    start_fake
    wait $spinner $pulser
    check "
ts = $ts
ready = kinds('ready')[0]['t']
regs = [e['t'] for e in kinds('register')]
if len(regs) != 2: print(f'{len(regs)} registrations, expected 2 (pulse and spin)')
treg = max(regs + [ts])
if treg - ready > 1.5: print(f'registered {treg - ready:.1f} s after the daemon started (the client tries every second)')
p = pulses('pulse')
before = [w for t, w in p if t < ts]
after = [w for t, w in p if t > treg + 0.2]
if len(before) < 5 or set(before) != {'REFUSED'}: print(f'without a daemon: {before}')
if len(after) < 10 or set(after) != {'OK'}: print(f'0.2 s after the registration: {after}')
rates, t0 = spin('spin')
held = [r for k, r in enumerate(rates) if t0 + (k + 1) * 0.1 <= ts]
if not held or max(held) != 0: print(f'launches without a daemon: {held}')
late = [r for k, r in enumerate(rates) if t0 + k * 0.1 >= treg + 0.3 and k < len(rates) - 1]
if not 800 <= avg(late) <= 1300: print(f'launches/s once the daemon answered: {avg(late):.0f}, expected about 1000')
"
    for p in pulse spin; do
        grep -qF "shared memory $PODDIR (from the node daemon)" "$TMP/$p.err" ||
            fail "the $p process did not attach the pod's region once the daemon answered: $(cat "$TMP/$p.err")"
    done
    out=$(region) || fail "no control region once registered: $out"
    expect_eq "$(field suspended "$out")" 0 "not suspended once registered"
    ;;
hv-busy)
    # a daemon that answers 503 at first (its pod watch has not seen the pod yet): the first
    # registration is tried again every 0.1 s and the process gets its memory; one that answers
    # 503 for longer than 5 s leaves the process failing closed
    # out and ms: what `try 100` printed and how long it took; $1 names the case
    timed_try() {
        local start
        start=$(date +%s%N)
        out=$(limited "$PROBE" try 100 2>&1)
        ms=$((($(date +%s%N) - start) / 1000000))
        echo "hv-busy: $1: $(grep -m1 "^OK\|^REFUSED" <<<"$out") after $ms ms"
    }
    start_fake --busy 3
    timed_try "three 503s, then"
    grep -q "^OK" <<<"$out" || fail "100 MiB after three 503s: $out"
    [ $ms -lt 2000 ] || fail "the retries took $ms ms"
    check "
b = kinds('busy'); r = kinds('register')
if len(b) != 3 or len(r) != 1: print(f'{len(b)} answered 503 and {len(r)} registered, expected 3 and 1')
elif r[0]['t'] < b[-1]['t']: print('registered before the last 503')
"
    stop_fake
    start_fake --busy 1000
    timed_try "503 throughout"
    grep -q "^REFUSED" <<<"$out" || fail "100 MiB from a daemon that always answers 503: $out"
    [ $ms -ge 4500 ] && [ $ms -lt 7000 ] || fail "gave up after $ms ms, expected 5 s"
    grep -q "HTTP 503" <<<"$out" || fail "no warning naming the answer: $out"
    ;;
hv-envlimits)
    # no daemon but limits in the environment: they apply; once a daemon answers its values
    # rule (the daemon lowers its default to the environment's, never raises it), for the
    # processes that were running too. New with the daemon's regions: until a daemon answers,
    # a process runs on a private ledger, so the environment's cap holds per process, not for
    # the pod; a process that started so stays on its ledger, held to the daemon's limits.
    export CUDA_MEM_LIMIT_0=512MiB CUDA_CORE_LIMIT_0=30
    limited "$PROBE" try 400 >/dev/null 2>&1; expect_eq $? 0 "400 MiB under the environment's 512 MiB"
    limited "$PROBE" try 600 >/dev/null 2>&1; expect_eq $? 2 "600 MiB under the environment's 512 MiB"
    out=$(limited "$PROBE" spin 2.5 1000 2>/dev/null)
    r=$(avg_rate "$out")
    awk -v v="$r" 'BEGIN {exit !(v >= 270 && v <= 330)}' || fail "launches/s at the environment's 30%: $r (not suspended, limited)"
    LD_PRELOAD=$PRE$LIM "$PROBE" hold 400 30 >"$TMP/h" 2>"$TMP/h.err" &
    holder=$!
    wait_held "$TMP/h"
    limited "$PROBE" try 400 >/dev/null 2>&1; expect_eq $? 0 "400 MiB next to another process's 400 MiB (the cap is per process without a daemon)"
    limited "$PROBE" try 600 >/dev/null 2>&1; expect_eq $? 2 "600 MiB next to another process's 400 MiB"
    grep -q "held to the environment's limits on its own" "$TMP/h.err" || fail "no word of the private ledger: $(cat "$TMP/h.err")"
    kill $holder
    wait $holder 2>/dev/null
    [ ! -e "$VGPU_SHM_DIR/pods" ] || fail "a pod region without a daemon: $(ls -R "$VGPU_SHM_DIR")"
    "$PROBE" control >/dev/null 2>&1 && fail "a shared region for the pod without a daemon"
    # a process that runs when the daemon answers takes the daemon's limits on its own ledger
    LD_PRELOAD=$PRE$LIM "$PROBE" pulse 400 6 >"$TMP/pulse" 2>"$TMP/pulse.err" &
    pulser=$!
    wait_for 3 "pulses before the daemon starts" has_line "$TMP/pulse" . 3
    ts=$(mono)
    start_fake --default-mem $((256 * MIB)) --default-core 50
    wait_for 3 "the running process to register" registered_at_least 1 $pulser
    treg=$(mono)
    wait $pulser
    check "
ts, treg = $ts, $treg
p = pulses('pulse')
before = [w for t, w in p if t < ts]
after = [w for t, w in p if t > treg + 0.2]
if len(before) < 3 or set(before) != {'OK'}: print(f'400 MiB under the 512 MiB of the environment: {before}')
if len(after) < 10 or set(after) != {'REFUSED'}: print(f'400 MiB once the 256 MiB default of the daemon applies: {after}')
"
    grep -q "node daemon answered: its limits apply now" "$TMP/pulse.err" || fail "no word of the daemon's limits: $(cat "$TMP/pulse.err")"
    # a new process attaches the pod's region: the daemon's values, for the whole pod
    limited "$PROBE" try 400 >/dev/null; expect_eq $? 2 "400 MiB once the daemon's 256 MiB default applies"
    out=$(region) || fail "no control region once the daemon answered: $out"
    expect_eq "$(field mem_limit "$out")" $((256 * MIB)) "min(env 512 MiB, default 256 MiB)"
    expect_eq "$(field core_limit "$out")" 3000 "min(env 30%, default 50%)"
    # (each process's context is charged too: 64 MiB on the simulated GPU)
    LD_PRELOAD=$PRE$LIM "$PROBE" hold 50 30 >"$TMP/h2" &
    holder=$!
    wait_held "$TMP/h2"
    limited "$PROBE" try 100 >/dev/null; expect_eq $? 2 "100 MiB next to the pod's 50 MiB under 256 MiB (one cap for the pod)"
    limited "$PROBE" try 50 >/dev/null; expect_eq $? 0 "50 MiB next to the pod's 50 MiB under 256 MiB"
    ;;
hv-fork)
    # parent and forked child register as two workers, of the same pod's region
    start_fake
    VGPU_PROBE_FORK=1 limited "$PROBE" spin 1 1000 >/dev/null
    check '
regs = kinds("register")
pids = sorted(e["host_pid"] for e in regs)
if len(set(pids)) != 2: print(f"registrations after fork: {pids}")
dirs = [e["dir"] for e in regs]
if set(dirs) != {"pods/env-test-ns_pod-hv-fork"}: print(f"regions: {dirs}")
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
hv-tamper)
    # What the daemon decided is out of the pod's reach. (Opening control.shm for writing from
    # another process of the pod is no test here: the fake makes it as this user, root on a CI
    # host, not in a container that mounts control/ read-only; docs/security.md.) So: a
    # registered process maps the control region read-only and its ledger read-write; what a
    # process of the pod can write, the ledger's own limit fields, changes nothing it enforces.
    start_fake --default-mem $((512 * MIB)) --default-core 30
    VGPU_LOG_LEVEL=info LD_PRELOAD=$PRE$LIM "$PROBE" hold 100 30 >"$TMP/h" 2>"$TMP/h.err" &
    holder=$!
    wait_held "$TMP/h"
    grep -qF "shared memory $PODDIR (from the node daemon)" "$TMP/h.err" ||
        fail "the holder did not attach the pod's region: $(cat "$TMP/h.err")"
    expect_eq "$(maps_perms $holder "$PODDIR/control/control.shm")" "r--s" "the limiter's mapping of the control region"
    expect_eq "$(maps_perms $holder "$PODDIR/ledger/ledger.shm")" "rw-s" "the limiter's mapping of the ledger"
    # raise the limits in the ledger (which the pod can write) to 100%: the control region's
    # 30% still holds a new process
    VGPU_PROBE_POD_DIR=$PODDIR "$PROBE" set-core 100 || fail "cannot write the ledger's limits"
    out=$(VGPU_PROBE_BUCKET_MS=250 limited "$PROBE" spin 1.5 1000 2>/dev/null)
    r=$(avg_rate "$out")
    [ "$r" -gt 0 ] && [ "$r" -lt 500 ] || fail "launches/s under the daemon's 30% after the ledger said 100%: $r ($out)"
    limited "$PROBE" try 450 >/dev/null; expect_eq $? 2 "450 MiB next to the pod's 100 MiB under 512 MiB"
    limited "$PROBE" try 200 >/dev/null; expect_eq $? 0 "200 MiB next to the pod's 100 MiB under 512 MiB"
    kill $holder
    wait $holder 2>/dev/null
    stop_fake

    # a reply whose token is not the control region's: the region is not attached; the process
    # holds itself on a private ledger to the reply's limits (and to later commands)
    start_fake --default-mem $((512 * MIB)) --default-core 30 --wrong-token
    VGPU_LOG_LEVEL=info LD_PRELOAD=$PRE$LIM "$PROBE" hold 400 30 >"$TMP/h" 2>"$TMP/h.err" &
    holder=$!
    wait_held "$TMP/h"
    grep -q "token differs" "$TMP/h.err" || fail "the log does not say the token differs: $(cat "$TMP/h.err")"
    grep -q "held to the pod's limits on its own" "$TMP/h.err" || fail "no word of the private ledger: $(cat "$TMP/h.err")"
    expect_eq "$(maps_perms $holder "$PODDIR/control/control.shm")" "" "a mapping of a control region of another token"
    expect_eq "$(maps_perms $holder "$PODDIR/ledger/ledger.shm")" "" "a mapping of the ledger of a region of another token"
    limited "$PROBE" try 600 >/dev/null 2>"$TMP/err"; expect_eq $? 2 "600 MiB in a 2nd process under the reply's 512 MiB"
    grep -q "token differs" "$TMP/err" || fail "the 2nd process's log does not say the token differs: $(cat "$TMP/err")"
    limited "$PROBE" try 400 >/dev/null 2>&1; expect_eq $? 0 "400 MiB in a 2nd process (its own ledger) under the reply's 512 MiB"
    # commands land in the private ledger: a lower cap, then a suspension
    LD_PRELOAD=$PRE$LIM "$PROBE" pulse 300 30 >"$TMP/pulse" 2>/dev/null &
    pulser=$!
    wait_for 5 "pulses of 300 MiB" has_line "$TMP/pulse" OK 3
    ctl PUT "/v1/pods/$POD/limits" '{"mem_limit": "256MiB"}' >/dev/null || fail "PUT limits"
    wait_for 5 "the limits acked by both workers" acked_at_least 2 1
    tack=$(mono)
    wait_for 5 "pulses after the ack" pulses_after_at_least 3 "$TMP/pulse" "$tack" 0.3
    check "
p = pulses('pulse')
after = [w for t, w in p if t > $tack + 0.1]
if len(after) < 3 or set(after) != {'REFUSED'}: print(f'300 MiB after a 256 MiB cap was acked: {after}')
"
    kill $pulser
    wait $pulser 2>/dev/null
    VGPU_PROBE_BUCKET_MS=100 LD_PRELOAD=$PRE$LIM "$PROBE" spin 5 1000 >"$TMP/spin" 2>/dev/null &
    spinner=$!
    echo $spinner >"$TMP/spinner.pid"
    wait_for 5 "the spinner to register" registered_at_least 1 $spinner
    sleep 0.7 # measured: the window before the suspension
    out=$(ctl POST "/v1/pods/$POD/suspend")
    expect_eq "$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(d["acked"], d["workers"])' "$out")" "2 2" "suspend acked by both workers"
    sleep 0.8 # measured: the suspended window
    ctl POST "/v1/pods/$POD/resume" >/dev/null
    wait $spinner
    check '
pushes = [e for e in kinds("push") if e["type"] in ("suspend", "resume")]
ts, tr = [e["t"] for e in pushes]
# a process on a private ledger suspends itself when the command reaches it, before its ack
pid = int(open(os.path.join(tmp, "spinner.pid")).read())
wid = [e["worker_id"] for e in kinds("register") if e["host_pid"] == pid][-1]
acks = [e["t"] for e in kinds("ack") if e["worker_id"] == wid and e["seq"] == pushes[0]["seq"]]
ts = acks[0] if acks else tr
rates, t0 = spin("spin")
step = 0.1
def window(a, b): return [r for k, r in enumerate(rates) if t0 + k * step >= a and t0 + (k + 1) * step <= b]
before, stopped, after = window(t0 + step, pushes[0]["t"]), window(ts + 0.05, tr), window(tr + 0.2, t0 + 4.9)
if not 100 < avg(before) < 500: print(f"launches/s under the 30% of the reply before the suspension: {before}")
if not stopped or max(stopped) != 0: print(f"launches while suspended: {stopped}")
if not 100 < avg(after) < 500: print(f"launches/s after resume: {after}")
'
    ;;
*)
    echo "unknown case $CASE" >&2
    exit 2
    ;;
esac
finish
