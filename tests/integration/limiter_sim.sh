#!/usr/bin/env bash
# limiter_sim.sh - integration tests: real processes with libcuda_limiter.so preloaded over the
# simulated GPU driver (tests/sim). One case per invocation, so CTest reports each on its own.
#
#   limiter_sim.sh BUILD_DIR CASE
set -u
BUILD=$1
CASE=$2
SIM=$BUILD/sim
LIM=$BUILD/src/limiter/libcuda_limiter.so
PRE=${VGPU_TEST_PRELOAD:-} # sanitizer runtimes must come first in a sanitized build
PROBE=$BUILD/tests/integration/cuda_probe
TMP=$(mktemp -d /tmp/vgpu-it-XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$TMP"' EXIT

export LD_LIBRARY_PATH=$SIM
export VGPU_SIM_STATE=$TMP/sim.state
export VGPU_SIM_MEM=16GiB
export VGPU_SHM_DIR=$TMP/shm
export VGPU_POD_NAME=pod-$CASE
unset TENSOR_FUSION_CUDA_MEM_LIMIT VCUDA_MEMORY_LIMIT CUDA_VISIBLE_DEVICES

MIB=$((1024 * 1024))
fails=0
fail() {
    echo "FAIL: $*" >&2
    fails=$((fails + 1))
    "$PROBE" ledger >&2 2>/dev/null
}
expect_eq() { [ "$1" = "$2" ] || fail "$3: got '$1', expected '$2'"; }
field() { sed -n "s/.*\b$1=\([0-9,]*\).*/\1/p" <<<"$2"; }
limited() { LD_PRELOAD=$PRE$LIM "$@"; }
# wait until a background probe prints HELD (or gives up)
wait_held() {
    for _ in $(seq 100); do grep -q HELD "$1" 2>/dev/null && return 0; sleep 0.05; done
    fail "holder did not start: $(cat "$1")"
}

case $CASE in
families-link | families-dlsym | families-gpa | families-gpa11)
    export VGPU_PROBE_DOOR=${CASE#families-}
    export CUDA_MEM_LIMIT_0=1GiB
    limited "$PROBE" families || fail "families through ${VGPU_PROBE_DOOR}"
    ;;
gpa-aliases)
    # the driver hands out entry points that are not its exported symbols: wrapped by name
    export VGPU_SIM_GPA_ALIASES=1 VGPU_PROBE_DOOR=gpa CUDA_MEM_LIMIT_0=1GiB
    out=$(limited "$PROBE" info) || fail "info"
    expect_eq "$(field total "$out")" $((1024 * MIB)) "cuMemGetInfo total through an aliased pointer"
    out=$(limited "$PROBE" try 2000; echo "rc=$?")
    grep -q "rc=2" <<<"$out" || fail "aliased cuMemAlloc was not limited: $out"
    ;;
view)
    export TENSOR_FUSION_CUDA_MEM_LIMIT='{"GPU-5E1A0000-0000-0000-0000-000000000001": "3GiB"}'
    out=$(limited "$PROBE" info) || fail "info"
    expect_eq "$(field total "$out")" $((3072 * MIB)) "cuMemGetInfo total"
    expect_eq "$(field devtotal "$out")" $((3072 * MIB)) "cuDeviceTotalMem"
    free=$(field free "$out")
    [ "$free" -le $((3072 * MIB)) ] || fail "free $free above the cap"
    # NVML, as nvidia-smi sees it: the cap as total, the pod's usage as used
    LD_PRELOAD=$PRE$LIM "$PROBE" hold 512 30 >"$TMP/h" &
    wait_held "$TMP/h"
    holder=$!
    out=$(limited "$PROBE" nvml) || fail "nvml"
    expect_eq "$(field total "$out")" $((3072 * MIB)) "NVML total"
    expect_eq "$(field total2 "$out")" $((3072 * MIB)) "NVML v2 total"
    used=$(field used "$out")
    [ "$used" -ge $((512 * MIB)) ] && [ "$used" -le $((600 * MIB)) ] || fail "NVML used $used for a 512 MiB holder"
    expect_eq "$(field procs "$out")" "$holder" "NVML processes of the pod"
    # another pod's nvidia-smi does not see this pod's processes; without a cap it sees all
    out=$(VGPU_POD_NAME=other limited "$PROBE" nvml)
    expect_eq "$(field used "$out")" 0 "another pod's NVML used"
    expect_eq "$(field procs "$out")" "" "another pod's NVML processes"
    out=$(env -u TENSOR_FUSION_CUDA_MEM_LIMIT LD_PRELOAD=$PRE$LIM "$PROBE" nvml)
    expect_eq "$(field total "$out")" $((16384 * MIB)) "uncapped NVML total"
    expect_eq "$(field procs "$out")" "$holder" "uncapped NVML processes"
    kill $holder
    ;;
shared-cap)
    # two processes of one pod share one cap
    export CUDA_MEM_LIMIT_0=1GiB
    LD_PRELOAD=$PRE$LIM "$PROBE" hold 600 30 >"$TMP/a" &
    wait_held "$TMP/a"
    limited "$PROBE" try 600 >/dev/null; expect_eq $? 2 "second process past the shared cap"
    limited "$PROBE" try 250 >/dev/null; expect_eq $? 0 "second process within the shared cap (each context costs 64 MiB)"
    # a process of another pod has its own cap
    VGPU_POD_NAME=other limited "$PROBE" try 900 >/dev/null; expect_eq $? 0 "another pod"
    kill %1
    ;;
kill9)
    # a process killed with -9 gives its bytes back to the pod within a second
    export CUDA_MEM_LIMIT_0=1GiB
    LD_PRELOAD=$PRE$LIM "$PROBE" hold 900 60 >"$TMP/a" &
    holder=$!
    wait_held "$TMP/a"
    limited "$PROBE" try 900 >/dev/null; expect_eq $? 2 "while the holder lives"
    kill -9 $holder
    wait $holder 2>/dev/null
    start=$(date +%s%N)
    limited "$PROBE" try 900 >/dev/null; expect_eq $? 0 "right after kill -9"
    ms=$((($(date +%s%N) - start) / 1000000))
    [ $ms -lt 1000 ] || fail "reclaiming took $ms ms"
    # without anyone allocating, the maintenance thread reaps within a second
    LD_PRELOAD=$PRE$LIM "$PROBE" hold 100 60 >"$TMP/b" &
    wait_held "$TMP/b"
    LD_PRELOAD=$PRE$LIM "$PROBE" hold 700 60 >"$TMP/c" &
    victim=$!
    wait_held "$TMP/c"
    kill -9 $victim
    wait $victim 2>/dev/null
    sleep 1.2
    used=$(field used "$(limited "$PROBE" nvml)")
    [ "$used" -lt $((200 * MIB)) ] || fail "pod still charged $used bytes a second after kill -9"
    kill %2 2>/dev/null
    ;;
fail-closed)
    for bad in 'CUDA_MEM_LIMIT_0=4x' 'TENSOR_FUSION_CUDA_MEM_LIMIT={"0": 1' 'VCUDA_MEMORY_LIMIT=0' 'CUDA_MEM_LIMIT_zero=1g'; do
        var=${bad%%=*}
        out=$(env "$bad" LD_PRELOAD=$PRE$LIM "$PROBE" init 2>"$TMP/err")
        rc=$?
        expect_eq "$rc" 3 "cuInit with $bad"
        expect_eq "$out" "cuInit=1" "cuInit result with $bad"
        grep -q "$var" "$TMP/err" || fail "the error does not name $var: $(cat "$TMP/err")"
        out=$(env "$bad" LD_PRELOAD=$PRE$LIM "$PROBE" nvml 2>/dev/null)
        expect_eq "$out" "nvmlInit=999" "nvmlInit with $bad"
        # the log line comes once, not on every call
        n=$(env "$bad" LD_PRELOAD=$PRE$LIM VGPU_PROBE_DOOR=gpa "$PROBE" families 2>&1 | grep -c "invalid configuration")
        expect_eq "$n" 1 "error lines with $bad"
    done
    ;;
oversold)
    # past the cap, allocations come from host memory, up to cap * (ratio - 1)
    export CUDA_MEM_LIMIT_0=256MiB CUDA_MEM_OVERSOLD_0=1 CUDA_MEM_RATIO_0=2 VGPU_SIM_CTX_OVERHEAD=0
    LD_PRELOAD=$PRE$LIM "$PROBE" hold 200 30 >"$TMP/a" &
    wait_held "$TMP/a"
    LD_PRELOAD=$PRE$LIM "$PROBE" hold 200 30 >"$TMP/b" &
    wait_held "$TMP/b"
    grep -q "HELD 200" "$TMP/b" || fail "oversubscribed allocation refused"
    grep -q "managed=0" "$TMP/a" || fail "the allocation within the cap is not device memory: $(cat "$TMP/a")"
    grep -q "managed=1" "$TMP/b" || fail "the allocation past the cap is not host-backed managed memory: $(cat "$TMP/b")"
    limited "$PROBE" try 100 >/dev/null; expect_eq $? 2 "past cap * ratio"
    out=$(limited "$PROBE" nvml)
    used=$(field used "$out")
    [ "$used" -le $((256 * MIB)) ] || fail "device usage $used above the cap while oversubscribed"
    kill %1 %2
    ;;
unlimited)
    # no limit configured: nothing changes
    out=$(LD_PRELOAD=$PRE$LIM "$PROBE" info)
    expect_eq "$(field total "$out")" $((16384 * MIB)) "uncapped total"
    LD_PRELOAD=$PRE$LIM "$PROBE" try 10000 >/dev/null; expect_eq $? 0 "10000 MiB uncapped"
    [ ! -d "$VGPU_SHM_DIR" ] || fail "an uncapped process created shared memory"
    ;;
overhead)
    # the driver's own memory (the context: 64 MiB in the simulator) counts toward the cap
    export CUDA_MEM_LIMIT_0=1GiB VGPU_SIM_CTX_OVERHEAD=64MiB VGPU_MAINTENANCE_MS=50
    LD_PRELOAD=$PRE$LIM "$PROBE" hold 100 30 >"$TMP/a" &
    wait_held "$TMP/a"
    sleep 0.3
    out=$(limited "$PROBE" nvml)
    used=$(field used "$out")
    expect_eq "$used" $((164 * MIB)) "pod usage with the context overhead"
    limited "$PROBE" try 860 >/dev/null; expect_eq $? 2 "past the cap once overhead counts"
    kill %1
    ;;
fill)
    export CUDA_MEM_LIMIT_0=1GiB VGPU_SIM_CTX_OVERHEAD=0
    out=$(limited "$PROBE" fill) || fail "fill: $out"
    expect_eq "$(field fitted "$out")" $((1024 * MIB)) "64 MiB blocks that fit in 1 GiB"
    expect_eq "$(field free "$out")" 0 "free once full"
    ;;
fill-early-bind)
    # the GPU is first looked at before a context exists (as PyTorch does): the context must
    # still count before the first allocation, without waiting for the maintenance thread
    export CUDA_MEM_LIMIT_0=1GiB VGPU_SIM_CTX_OVERHEAD=64MiB VGPU_MAINTENANCE_MS=10000 VGPU_PROBE_EARLY_TOTALMEM=1
    out=$(limited "$PROBE" fill) || fail "fill: $out"
    expect_eq "$(field fitted "$out")" $((960 * MIB)) "64 MiB blocks next to a 64 MiB context in 1 GiB"
    ;;
threads)
    export CUDA_MEM_LIMIT_0=256MiB
    limited "$PROBE" threads || fail "threads"
    ;;
fork)
    export CUDA_MEM_LIMIT_0=1GiB
    limited "$PROBE" fork || fail "fork"
    ;;
pool-overshoot)
    # a pool that grows in 64 MiB steps must not take the pod past its cap
    export CUDA_MEM_LIMIT_0=100MiB VGPU_SIM_POOL_CHUNK=64MiB VGPU_SIM_CTX_OVERHEAD=0
    LD_PRELOAD=$PRE$LIM "$PROBE" hold 60 30 >"$TMP/a" &
    wait_held "$TMP/a"
    limited "$PROBE" async 10 >/dev/null; expect_eq $? 2 "10 MiB that would grow the pool by 64 MiB"
    limited "$PROBE" try 38 >/dev/null; expect_eq $? 0 "the refused pool gave its memory back"
    export CUDA_MEM_LIMIT_0=100MiB VGPU_POD_NAME=roomy
    limited "$PROBE" async 10 >/dev/null; expect_eq $? 0 "a pool growth that fits"
    kill %1
    ;;
*)
    echo "unknown case $CASE" >&2
    exit 2
    ;;
esac
[ $fails -eq 0 ] && echo ok
exit $((fails > 0))
