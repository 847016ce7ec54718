#!/usr/bin/env bash
# daemon_cpu.sh - the node daemon's CPU use with many limiter processes, against the same daemon
# idle in the same run (issue: "the daemon under 1% of a core with 64 processes in 32 pods").
#
#   bench/daemon_cpu.sh BUILD_DIR [PROCS] [PODS] [SECONDS]     (defaults 64 32 20)
#
# Starts vgpu-hypervisor on the simulated GPU (tests/sim; the real one where NVML finds one),
# measures its CPU time (utime + stime of /proc/PID/stat) over SECONDS with no process, then
# starts PROCS cuda_probe processes holding 64 MiB each under the limiter, spread over PODS pods
# (named in the environment: the daemon's development mode), waits until all have registered,
# and measures again over SECONDS. Prints both as percent of one core (with the daemon's own
# counters by part: the tick's NVML pass, the rest of the tick, other threads) and their
# difference.
# Leaves nothing running.
set -euo pipefail
BUILD=$(cd "${1:-build}" && pwd)
PROCS=${2:-64}
PODS=${3:-32}
SECS=${4:-20}
HV=$BUILD/src/hypervisor/vgpu-hypervisor
CLI=$BUILD/src/cli/vgpu
LIM=$BUILD/src/limiter/libcuda_limiter.so
PROBE=$BUILD/tests/integration/cuda_probe
for f in "$HV" "$CLI" "$LIM" "$PROBE"; do [ -e "$f" ] || { echo "daemon_cpu: $f not built" >&2; exit 2; }; done
T=$(mktemp -d /tmp/vgpu-dcpu-XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$T"' EXIT
if ! nvidia-smi -L >/dev/null 2>&1; then
    export LD_LIBRARY_PATH=$BUILD/sim${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    export VGPU_SIM_STATE=$T/sim.state VGPU_SIM_MEM=64GiB
fi
"$HV" --socket "$T/op.sock" --shm-dir "$T/shm" --state "$T/state.json" --identity env ${HV_ARGS:-} \
    2>"$T/daemon.log" &
HVPID=$!
V() { "$CLI" --socket "$T/op.sock" "$@"; }
for _ in $(seq 200); do V status >/dev/null 2>&1 && break; sleep 0.05; done
ticks() { awk '{print $14 + $15}' "/proc/$HVPID/stat"; }
HZ=$(getconf CLK_TCK)
# the daemon's own CPU counters (1 ms resolution): process, and its tick thread's NVML pass and
# the rest of its tick
cpu() {
    V metrics | awk '/^process_cpu_seconds_total / {p = $2}
        /^vgpu_tick_cpu_seconds_total\{part="nvml"\}/ {n = $2}
        /^vgpu_tick_cpu_seconds_total\{part="pods"\}/ {q = $2}
        END {print p, n, q}'
}
# percent of one core over SECS seconds: process (from /proc), then in the parts' line
# process / tick's NVML pass / the rest of the tick / everything else (the HTTP threads)
measure() {
    local a b t0 t1 ca cb
    a=$(ticks)
    ca=$(cpu)
    t0=$(date +%s.%N)
    sleep "$SECS"
    b=$(ticks)
    cb=$(cpu)
    t1=$(date +%s.%N)
    awk -v a="$a" -v b="$b" -v hz="$HZ" -v t0="$t0" -v t1="$t1" \
        'BEGIN {printf "%.3f", 100 * (b - a) / hz / (t1 - t0)}'
    echo "$ca $cb" | awk -v t0="$t0" -v t1="$t1" '{d = t1 - t0
        printf " (process %.3f, tick NVML %.3f, tick pods %.3f, other threads %.3f)",
            100 * ($4 - $1) / d, 100 * ($5 - $2) / d, 100 * ($6 - $3) / d,
            100 * (($4 - $1) - ($5 - $2) - ($6 - $3)) / d}'
}
idle=$(measure)
for i in $(seq "$PROCS"); do
    VGPU_HYPERVISOR_SOCKET=$T/worker.sock VGPU_SHM_DIR=$T/shm VGPU_POD_NAMESPACE=bench \
        VGPU_POD_NAME=pod-$((i % PODS)) CUDA_CORE_LIMIT_0=50 LD_PRELOAD=$LIM \
        "$PROBE" hold 64 $((SECS * 3 + 60)) >"$T/p$i.out" 2>&1 &
done
workers=0
for _ in $(seq 600); do
    workers=$(V status --json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["workers"])' 2>/dev/null || echo 0)
    [ "$workers" -ge "$PROCS" ] && break
    sleep 0.1
done
[ "$workers" -ge "$PROCS" ] || { echo "daemon_cpu: only $workers of $PROCS registered" >&2; exit 1; }
sleep 2 # past the registrations' own work
busy=$(measure)
echo "daemon CPU, percent of one core over $SECS s: idle $idle; with $PROCS processes in $PODS pods $busy"
awk -v i="$idle" -v b="$busy" 'BEGIN {printf "added by the processes: %.3f%% of a core\n", b - i}'
