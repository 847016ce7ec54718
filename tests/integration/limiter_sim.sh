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
. "$(dirname "$0")/../lib/testlib.sh"
on_fail() { "$PROBE" ledger >&2 2>/dev/null; } # the ledger as the failure left it
limited() { LD_PRELOAD=$PRE$LIM "$@"; }
# launches per second after the first half second ("rates=a,b,c,..." from cuda_probe spin)
avg_rate() { field rates "$1" | cut -d, -f2- | tr ',' '\n' | awk '{s+=$1} END {print (NR ? int(s/NR) : 0)}'; }
# wait until a background probe prints HELD (or gives up)
wait_held() { wait_until 5 grep -q HELD "$1" || fail "holder did not start: $(cat "$1")"; }
# the pod's usage is below BYTES
pod_used_below() { [ "$(field used "$(limited "$PROBE" nvml)")" -lt "$1" ]; }
# the pod's usage is BYTES
pod_used_is() { [ "$(field used "$(limited "$PROBE" nvml)")" = "$1" ]; }

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
    # the driver's error passes unchanged (no confidential computing here); no MPS server
    expect_eq "$(field cc "$out")" 3 "protected memory outside confidential computing (NOT_SUPPORTED)"
    expect_eq "$(field mps "$out")" 0,0 "MPS processes, v1 and v2"
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
    wait_until 1.2 pod_used_below $((200 * MIB)) # the promise is "within a second"
    used=$(field used "$(limited "$PROBE" nvml)")
    [ "$used" -lt $((200 * MIB)) ] || fail "pod still charged $used bytes a second after kill -9"
    kill %2 2>/dev/null
    ;;
fail-closed)
    for bad in 'CUDA_MEM_LIMIT_0=4x' 'TENSOR_FUSION_CUDA_MEM_LIMIT={"0": 1' 'VCUDA_MEMORY_LIMIT=0' 'CUDA_MEM_LIMIT_zero=1g' \
        'CUDA_CORE_LIMIT_0=abc' 'TENSOR_FUSION_CUDA_UP_LIMIT={"0": 130}' 'CUDA_CORE_SOFT_LIMIT_0=0'; do
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
    # a 512 MiB cap with ratio 2 (VGPU-Controller's meaning): 256 MiB on the GPU, past that
    # allocations come from host memory, up to the other 256 MiB
    export CUDA_MEM_LIMIT_0=512MiB CUDA_MEM_OVERSOLD_0=1 CUDA_MEM_RATIO_0=2 VGPU_SIM_CTX_OVERHEAD=0
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
    # nothing to limit: the doors an application asks hand out the driver's own entry points
    # (no call of it pays for a hook); with a limit they hand out the limiter's
    lim_so=$(basename "$LIM")
    for door in gpa gpa11 dlsym; do
        out=$(VGPU_PROBE_DOOR=$door LD_PRELOAD=$PRE$LIM "$PROBE" doors)
        case "$out" in *"$lim_so"* | "") fail "door $door, no limit: $out" ;; esac
        out=$(VGPU_PROBE_DOOR=$door CUDA_CORE_LIMIT_0=50 LD_PRELOAD=$PRE$LIM "$PROBE" doors)
        expect_eq "$out" "launch=$lim_so alloc=$lim_so" "door $door with a compute limit"
        out=$(VGPU_PROBE_DOOR=$door CUDA_MEM_LIMIT_0=1x LD_PRELOAD=$PRE$LIM "$PROBE" doors 2>/dev/null)
        expect_eq "$out" "launch=$lim_so alloc=$lim_so" "door $door with a configuration error"
    done
    ;;
overhead)
    # the driver's own memory (the context: 64 MiB in the simulator) counts toward the cap
    export CUDA_MEM_LIMIT_0=1GiB VGPU_SIM_CTX_OVERHEAD=64MiB VGPU_MAINTENANCE_MS=50
    LD_PRELOAD=$PRE$LIM "$PROBE" hold 100 30 >"$TMP/a" &
    wait_held "$TMP/a"
    wait_until 5 pod_used_is $((164 * MIB)) # the maintenance thread charges the context
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
import-external)
    # imported external memory (Vulkan, another process's fd) is charged to the importer
    export CUDA_MEM_LIMIT_0=1GiB VGPU_SIM_CTX_OVERHEAD=0
    out=$(limited "$PROBE" import 512 768) || fail "import: $out"
    expect_eq "$(field first "$out")" 0 "a 512 MiB import under a 1 GiB cap"
    expect_eq "$(field fell "$out")" $((512 * MIB)) "cuMemGetInfo's free after a 512 MiB import"
    expect_eq "$(field second "$out")" 2 "a 768 MiB import beside it (CUDA_ERROR_OUT_OF_MEMORY)"
    expect_eq "$(field destroyed "$out")" 0 "cuDestroyExternalMemory"
    expect_eq "$(field missing "$out")" 0 "bytes still charged after the destroy"
    pod_used_is 0 || fail "the pod is still charged after the process ended"
    ;;
coop-multi)
    # cuLaunchCooperativeKernelMultiDevice: the gate charges one GPU, so over several GPUs under
    # a compute limit it is refused (CUDA_ERROR_NOT_SUPPORTED, said once); over one it is gated
    # (the rate: compute-legacy); without a limit it passes
    export VGPU_SIM_DEVICES=2
    out=$(CUDA_CORE_LIMIT_0=30 limited "$PROBE" multi 2 2>"$TMP/err") || fail "multi 2: $out"
    expect_eq "$(field multi "$out")" 801 "two GPUs under a compute limit"
    grep -q "cuLaunchCooperativeKernelMultiDevice.*cuLaunchCooperativeKernel" "$TMP/err" ||
        fail "the refusal was not explained: $(cat "$TMP/err")"
    out=$(CUDA_CORE_LIMIT_0=30 limited "$PROBE" multi 1) || fail "multi 1: $out"
    expect_eq "$(field multi "$out")" 0 "one GPU under a compute limit"
    out=$(limited "$PROBE" multi 2) || fail "multi 2 unlimited: $out"
    expect_eq "$(field multi "$out")" 0 "two GPUs without a limit"
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
multi-gpu-2 | multi-gpu-4)
    # N simulated GPUs: limits by index (CUDA_MEM_LIMIT_<i>, CUDA_CORE_LIMIT_<i>) and by UUID
    # (the TENSOR_FUSION_* maps) hold on the GPU they name and never reach another one
    n=${CASE#multi-gpu-}
    export VGPU_SIM_DEVICES=$n
    uuid() { printf 'GPU-5E1A0000-0000-0000-0000-%012x' $(($1 + 1)); }
    on() { local d=$1; shift; VGPU_PROBE_DEV=$d limited "$@"; }
    # memory by index: GPU i capped at (i + 1) x 512 MiB
    for i in $(seq 0 $((n - 1))); do export CUDA_MEM_LIMIT_$i=$(((i + 1) * 512))MiB; done
    for i in $(seq 0 $((n - 1))); do
        cap=$(((i + 1) * 512))
        out=$(on "$i" "$PROBE" info) || fail "info on GPU $i"
        expect_eq "$(field total "$out")" $((cap * MIB)) "GPU $i: cuMemGetInfo total"
        expect_eq "$(field total "$(on "$i" "$PROBE" nvml)")" $((cap * MIB)) "GPU $i: NVML total"
        on "$i" "$PROBE" try $((cap + 64)) >/dev/null; expect_eq $? 2 "GPU $i: past its cap"
    done
    # what GPU 0 holds is not charged to GPU 1: GPU 0 full, GPU 1 still has its whole cap
    VGPU_PROBE_DEV=0 LD_PRELOAD=$PRE$LIM "$PROBE" hold 384 30 >"$TMP/h0" &
    holder=$!
    wait_held "$TMP/h0"
    on 0 "$PROBE" try 200 >/dev/null; expect_eq $? 2 "GPU 0 full (384 MiB held + contexts)"
    on 1 "$PROBE" try 896 >/dev/null; expect_eq $? 0 "GPU 1's 1 GiB cap untouched by GPU 0's use"
    kill $holder
    wait $holder 2>/dev/null
    for i in $(seq 0 $((n - 1))); do unset CUDA_MEM_LIMIT_$i; done
    # memory by UUID (any case, GPU- optional): only the GPUs named
    last=$((n - 1))
    low=$(uuid 0 | tr 'A-Z' 'a-z')
    export VGPU_POD_NAME=pod-$CASE-uuid
    export TENSOR_FUSION_CUDA_MEM_LIMIT="{\"$(uuid $last)\": \"1GiB\", \"${low#gpu-}\": \"768MiB\"}"
    for i in $(seq 0 $last); do
        cap=16384
        [ "$i" -eq 0 ] && cap=768
        [ "$i" -eq "$last" ] && cap=1024
        expect_eq "$(field total "$(on "$i" "$PROBE" info)")" $((cap * MIB)) "GPU $i: total by UUID"
        on "$i" "$PROBE" try $((cap + 64)) >/dev/null; expect_eq $? 2 "GPU $i: past its UUID cap"
    done
    unset TENSOR_FUSION_CUDA_MEM_LIMIT
    # compute by index: GPU 0 at 30% while GPU 1, unlimited, runs at full speed beside it
    base=$(avg_rate "$(VGPU_PROBE_DEV=1 "$PROBE" spin 1.5 1000)")
    export VGPU_POD_NAME=pod-$CASE-core CUDA_CORE_LIMIT_0=30
    on 0 "$PROBE" spin 3 1000 >"$TMP/c0" &
    on 1 "$PROBE" spin 3 1000 >"$TMP/c1" &
    wait
    near "$(avg_rate "$(cat "$TMP/c0")")" $((base * 30 / 100)) 10 "GPU 0 at CUDA_CORE_LIMIT_0=30"
    [ "$(avg_rate "$(cat "$TMP/c1")")" -ge $((base * 90 / 100)) ] ||
        fail "GPU 1 without a limit: $(avg_rate "$(cat "$TMP/c1")")/s, expected about $base/s"
    unset CUDA_CORE_LIMIT_0
    # compute by UUID: the last GPU at 60%, GPU 0 unlimited beside it
    export VGPU_POD_NAME=pod-$CASE-core-uuid TENSOR_FUSION_CUDA_UP_LIMIT="{\"$(uuid $last)\": 60}"
    on "$last" "$PROBE" spin 3 1000 >"$TMP/u1" &
    on 0 "$PROBE" spin 3 1000 >"$TMP/u0" &
    wait
    near "$(avg_rate "$(cat "$TMP/u1")")" $((base * 60 / 100)) 10 "GPU $last at 60% by UUID"
    [ "$(avg_rate "$(cat "$TMP/u0")")" -ge $((base * 90 / 100)) ] ||
        fail "GPU 0 without a limit: $(avg_rate "$(cat "$TMP/u0")")/s, expected about $base/s"
    ;;
compute-hard)
    # a hard limit holds for long kernels, short kernels and graphs; NVML sees the limit
    export CUDA_CORE_LIMIT_0=30
    base=$(avg_rate "$("$PROBE" spin 1.5 1000)")
    out=$(limited "$PROBE" spin 3 1000)
    near "$(avg_rate "$out")" $((base * 30 / 100)) 8 "1 ms kernels at 30%"
    [ "$(field util "$out")" -le 36 ] || fail "NVML busy $(field util "$out")% above 30% + 6"
    base=$(avg_rate "$("$PROBE" spin 1.5 50)")
    near "$(avg_rate "$(limited "$PROBE" spin 2 50)")" $((base * 30 / 100)) 8 "50 us kernels at 30%"
    base=$(avg_rate "$("$PROBE" spin 1.5 100 1 10)")
    near "$(avg_rate "$(limited "$PROBE" spin 2 100 1 10)")" $((base * 30 / 100)) 8 "graphs of 10 x 100 us at 30%"
    near "$(avg_rate "$(limited "$PROBE" spin 2 1000 8)")" $((1000 * 30 / 100)) 8 "8 threads at 30%"
    ;;
compute-legacy)
    # the legacy launches and a one-GPU multi-device cooperative launch are held like
    # cuLaunchKernel
    export CUDA_CORE_LIMIT_0=30
    base=$(avg_rate "$("$PROBE" spin 1.5 1000)")
    for api in legacy grid gridasync multi1; do
        out=$(VGPU_PROBE_LAUNCH=$api VGPU_POD_NAME=pod-$api limited "$PROBE" spin 2 1000) ||
            fail "spin through $api: $out"
        near "$(avg_rate "$out")" $((base * 30 / 100)) 8 "1 ms kernels through $api at 30%"
    done
    ;;
compute-shared)
    # two processes of one pod share its 50%; another pod at 30% gets its own share
    export CUDA_CORE_LIMIT_0=50
    limited "$PROBE" spin 3 1000 >"$TMP/a" &
    limited "$PROBE" spin 3 1000 >"$TMP/b" &
    wait
    near $(($(avg_rate "$(cat "$TMP/a")") + $(avg_rate "$(cat "$TMP/b")"))) 500 8 "two processes of one pod at 50%"
    CUDA_CORE_LIMIT_0=30 VGPU_POD_NAME=pod-thirty limited "$PROBE" spin 3 1000 >"$TMP/c" &
    CUDA_CORE_LIMIT_0=50 VGPU_POD_NAME=pod-fifty limited "$PROBE" spin 3 1000 >"$TMP/d" &
    wait
    near "$(avg_rate "$(cat "$TMP/c")")" 300 8 "pod at 30% next to a pod at 50%"
    near "$(avg_rate "$(cat "$TMP/d")")" 500 8 "pod at 50% next to a pod at 30%"
    VGPU_PROBE_FORK=1 limited "$PROBE" spin 3 1000 >"$TMP/e"
    near "$(avg_rate "$(sed -n 1p "$TMP/e")" ) " 250 12 "parent after fork"
    near $(($(avg_rate "$(sed -n 1p "$TMP/e")") + $(avg_rate "$(sed -n 2p "$TMP/e")"))) 500 8 "parent and forked child share 50%"
    ;;
compute-runtime)
    # the limit changes while the program runs and applies within a second
    export CUDA_CORE_LIMIT_0=20 VGPU_MAINTENANCE_MS=200
    limited "$PROBE" spin 5 1000 >"$TMP/a" &
    sleep 2 # measured: the change comes 2 s into the run
    "$PROBE" set-core 60
    wait
    rates=$(field rates "$(cat "$TMP/a")")
    r_before=$(cut -d, -f2-4 <<<"$rates" | tr ',' '\n' | awk '{s+=$1} END {print int(s/NR)}')
    r_after=$(cut -d, -f7-10 <<<"$rates" | tr ',' '\n' | awk '{s+=$1} END {print int(s/NR)}')
    near "$r_before" 200 10 "before the change (20%)"
    near "$r_after" 600 10 "a second after the change (60%)"
    ;;
compute-soft)
    # a soft 20% uses the idle GPU, and drops to 20% within a second of another pod starting
    export CUDA_CORE_SOFT_LIMIT_0=20 VGPU_MAINTENANCE_MS=200
    limited "$PROBE" spin 5 1000 >"$TMP/a" &
    sleep 2 # measured: the other pod starts 2 s into the run
    env -u CUDA_CORE_SOFT_LIMIT_0 CUDA_CORE_LIMIT_0=50 VGPU_POD_NAME=other LD_PRELOAD=$PRE$LIM "$PROBE" spin 3 1000 >"$TMP/b"
    wait
    rates=$(field rates "$(cat "$TMP/a")")
    alone=$(cut -d, -f2-4 <<<"$rates" | tr ',' '\n' | awk '{s+=$1} END {print int(s/NR)}')
    shared=$(cut -d, -f7-10 <<<"$rates" | tr ',' '\n' | awk '{s+=$1} END {print int(s/NR)}')
    [ "$alone" -ge 900 ] || fail "soft 20% alone on the GPU got $alone/s, expected the idle GPU (about 1000/s)"
    near "$shared" 200 12 "soft 20% a second after another pod started"
    late=$(field rates "$(cat "$TMP/b")" | cut -d, -f4-6 | tr ',' '\n' | awk '{s+=$1} END {print int(s/NR)}')
    near "$late" 500 10 "the other pod's 50%, a second after it started"
    ;;
compute-backlog)
    # A program that ran unlimited has filled the driver's queue (2 s of 1 ms kernels here, as
    # a real driver holds seconds of long kernels); then a 50% limit comes. The queued work runs
    # first and the pod waits for it, so from then on it gets its 50%; and the closed loop does
    # not take that backlog for a wrong model (before: the GPU stayed full for 3 s while the pod
    # kept queueing at 50%, and the loop raised the cost scale 1.5x, throttling it to 33%).
    export CUDA_CORE_LIMIT_0=100 VGPU_SIM_QUEUE_MS=2000 VGPU_POD_NAME=backlog
    (sleep 2 && "$PROBE" set-core 50 >/dev/null) & # measured: the limit comes 2 s into the run
    out=$(VGPU_PROBE_BUCKET_MS=250 limited "$PROBE" spin 10 1000)
    wait
    echo "backlog: launches per second in steps of 250 ms: $(field rates "$out"); gate: $("$PROBE" gate)"
    scale=$(field scale "$("$PROBE" gate)")
    [ "$scale" -ge 922 ] && [ "$scale" -le 1126 ] ||
        fail "the cost scale moved to $scale/1024 after the limit came: the backlog was taken for the model's error"
    # seconds 6-10 (the limit came at 2 s, the queued 1.5 s ran by 4 s)
    late=$(field rates "$out" | cut -d, -f25-40 | tr ',' '\n' | awk '{s+=$1} END {print int(s/NR)}')
    near "$late" 500 8 "50% after the queued work ran"
    ;;
compute-dvfs)
    # The GPU draws power as the H200 does under bf16 matmuls (830 W per busy second above its
    # 126 W floor; a full GPU would need 956 W of its 700 W cap, and would clock down): a pod
    # held to 30% of the time is paid at the full GPU's speed, so it gets 30% / 1.154 of the
    # time (dvfs_model.h: (830 / (0.985 x 700 - 126))^0.37 = 1.154). With VGPU_NO_DVFS, or when
    # the work draws little power, 30% of the time.
    export CUDA_CORE_LIMIT_0=30 VGPU_SIM_POWER_W=830
    out=$(limited "$PROBE" spin 7 1000)
    gate=$("$PROBE" gate)
    echo "dvfs: launches per second $(field rates "$out"); gate: $gate"
    dvfs=$(field dvfs "$gate")
    [ "$dvfs" -ge 1150 ] && [ "$dvfs" -le 1215 ] || fail "clock factor $dvfs/1024, expected 1.154 x 1024 = 1182"
    late=$(field rates "$out" | cut -d, -f6-14 | tr ',' '\n' | awk '{s+=$1} END {print int(s/NR)}')
    near "$late" 260 6 "30% of a GPU that would clock down when full"
    # from its start too: the first second, run before the factor was known, is charged the
    # difference once it is, and a new pod has no bank to spend
    early=$(field rates "$out" | cut -d, -f1-4 | tr ',' '\n' | awk '{s+=$1} END {print int(s/NR)}')
    near "$early" 260 3 "the first two seconds from the pod's start"
    near "$(avg_rate "$(VGPU_NO_DVFS=1 VGPU_POD_NAME=no-dvfs limited "$PROBE" spin 3 1000)")" 300 8 "the same with VGPU_NO_DVFS=1"
    near "$(avg_rate "$(VGPU_SIM_POWER_W=300 VGPU_POD_NAME=cool limited "$PROBE" spin 3 1000)")" 300 8 "work that draws little power"
    ;;
compute-feedback)
    # timing events that overstate by 1.5x: the loop on NVML's measured busy time corrects the
    # model, and the pod reaches its 30% within a few seconds (without it, it stays at 20%)
    export CUDA_CORE_LIMIT_0=30 VGPU_SIM_EVENT_SKEW=1.5
    out=$(VGPU_NO_FEEDBACK=1 VGPU_POD_NAME=open-loop limited "$PROBE" spin 3 1000)
    near "$(avg_rate "$out")" 200 8 "open loop with skewed events (the bias the loop must remove)"
    out=$(limited "$PROBE" spin 10 1000)
    late=$(field rates "$out" | cut -d, -f17-20 | tr ',' '\n' | awk '{s+=$1} END {print int(s/NR)}')
    near "$late" 300 8 "closed loop, after 8 seconds"
    ;;
compute-feedback-shared)
    # the same skewed events, but another pod keeps the GPU busy meanwhile: NVML's per-process
    # figures do not say who used what while contexts time-slice, so the loop stands aside and
    # the cost scale stays 1.0 (alone, as in compute-feedback, it moves within seconds)
    export CUDA_CORE_LIMIT_0=30 VGPU_SIM_EVENT_SKEW=1.5
    # (the neighbour is never alone for long, before or after: alone, its loop may rightly
    # correct the skew once two windows agree, from its third second on; on a loaded machine a
    # 1 s head start and a 2 s tail gave it that)
    CUDA_CORE_LIMIT_0=40 VGPU_POD_NAME=busy-neighbour limited "$PROBE" spin 6.5 1000 >/dev/null &
    sleep 0.3 # measured: the neighbour's head start
    out=$(limited "$PROBE" spin 6 1000)
    wait
    scale=$(field scale "$("$PROBE" gate)")
    [ "$scale" = 1024 ] || fail "the loop followed per-process figures while another pod shared the GPU: scale $scale"
    near "$(avg_rate "$out")" 200 10 "30% beside another pod, on the (skewed) model alone"
    VGPU_POD_NAME=busy-neighbour "$PROBE" gate | grep -q "scale=1024" || fail "the neighbour's loop moved too"
    # a neighbour that only holds a context counts too: NVML's per-process figures lag the
    # GPU's, so a neighbour that has just started looks idle while the GPU's figure has its work
    VGPU_POD_NAME=idle-neighbour "$PROBE" hold 64 8 >"$TMP/h" &
    wait_held "$TMP/h"
    VGPU_POD_NAME=beside-idle limited "$PROBE" spin 5 1000 >/dev/null
    kill %1 2>/dev/null
    wait
    scale=$(field scale "$(VGPU_POD_NAME=beside-idle "$PROBE" gate)")
    [ "$scale" = 1024 ] || fail "the loop ran beside another pod's context: scale $scale"
    ;;
compute-noisy)
    # the same skewed events, and NVML's figures off by up to +-30% each time (as for sparse
    # tiny kernels on a real GPU): the loop still brings the pod to its 30% and does not
    # follow the noise. Over 8 runs, the mean of seconds 8-16 was 258-312 launches/s (full
    # steps on every window: 250-362); the bound only catches a loop that diverges or swings.
    export CUDA_CORE_LIMIT_0=30 VGPU_SIM_EVENT_SKEW=1.5 VGPU_SIM_UTIL_NOISE=0.3
    out=$(limited "$PROBE" spin 16 1000)
    late=$(field rates "$out" | cut -d, -f17-32 | tr ',' '\n' | awk '{s+=$1} END {print int(s/NR)}')
    near "$late" 300 18 "closed loop on noisy NVML figures, seconds 8-16"
    ;;
compute-tiny)
    # From a second in, the events tell twice the time they did (on real GPUs the events'
    # figure for a 1-3 us kernel changes with how the launches are spaced; the kernel does not).
    # A tiny kernel's estimate holds: the closed loop on NVML carries its cost (off here). A
    # longer kernel's estimate follows at once.
    export CUDA_CORE_LIMIT_0=50 VGPU_NO_FEEDBACK=1 VGPU_SIM_EVENT_SKEW=2 VGPU_SIM_EVENT_SKEW_AFTER_MS=1000
    # GPU time charged per launch from 0.4 s to 0.9 s, and from 1.5 s to 3.5 s: POD US
    per_launch() {
        VGPU_POD_NAME=$1 limited "$PROBE" spin 4 "$2" >/dev/null &
        local g=() t
        for t in 0.4 0.5 0.6 2; do
            sleep $t # measured: the gate is read at these points of the run
            g+=("$(VGPU_POD_NAME=$1 "$PROBE" gate)")
        done
        wait
        for t in "0 1" "2 3"; do
            set -- $t
            echo $((($(field charged_ns "${g[$2]}") - $(field charged_ns "${g[$1]}")) / ($(field launches "${g[$2]}") - $(field launches "${g[$1]}") + 1)))
        done
    }
    read -r tiny0 tiny1 <<<"$(per_launch tiny 5 | tr '\n' ' ')"
    read -r long0 long1 <<<"$(per_launch long 100 | tr '\n' ' ')"
    echo "charged per launch before and after the events doubled: 5 us kernel $tiny0 / $tiny1 ns, 100 us kernel $long0 / $long1 ns"
    near "$tiny1" "$tiny0" 10 "a 5 us kernel's estimate after its events' figure doubled"
    near "$long1" $((2 * long0)) 10 "a 100 us kernel's estimate after its events' figure doubled"
    # down it moves at once: a sample is never shorter than the kernel by sharing (the first
    # eight of a new process can all be long)
    read -r tiny0 tiny1 <<<"$(VGPU_SIM_EVENT_SKEW=0.5 per_launch tiny-down 8 | tr '\n' ' ')"
    echo "the same with the events' figure halved: 8 us kernel $tiny0 / $tiny1 ns"
    # (against the halved figure itself, 4 us: a slow start, as under ASan, can put the first
    # window after the change too)
    [ "$tiny1" -le 4800 ] && [ "$tiny1" -ge 2000 ] ||
        fail "an 8 us kernel's estimate held at $tiny1 ns after its events' figure halved to 4 us (was $tiny0)"
    ;;
compute-floor)
    # A 1 us kernel is charged the cost model's floor (2 us, what NVML counts per launch of a
    # tiny kernel on an H200) from its first launch, not what its events say; a 50 us kernel
    # what its events say. The closed loop (off here) scales from there.
    export CUDA_CORE_LIMIT_0=50 VGPU_NO_FEEDBACK=1
    per_launch() {
        VGPU_POD_NAME=$1 limited "$PROBE" spin 2 "$2" >/dev/null &
        sleep 0.3 # measured: after the first samples
        local a b
        a=$(VGPU_POD_NAME=$1 "$PROBE" gate)
        sleep 1
        b=$(VGPU_POD_NAME=$1 "$PROBE" gate)
        wait
        echo $((($(field charged_ns "$b") - $(field charged_ns "$a")) / ($(field launches "$b") - $(field launches "$a") + 1)))
    }
    tiny=$(per_launch floor1 1) long=$(per_launch floor50 50)
    echo "charged per launch: 1 us kernel $tiny ns, 50 us kernel $long ns"
    near "$tiny" 2000 5 "a 1 us kernel's charge (the floor)"
    near "$long" 50000 10 "a 50 us kernel's charge"
    ;;
compute-early)
    # A pod at 5% whose first timings overstate 8x (on a real GPU a kernel's events span the
    # time slices of every context with work, as when many processes start together): the gate
    # then holds it to a few launches a second. The launch after each wait in the gate is timed,
    # so the estimate comes down within two seconds (it was 24-26 launches a second from 2 s
    # on); timed by count alone (every 64th launch) it stayed 8x for 20 s and more (3 a
    # second). 2 ms kernels at 5%: 25 launches a second.
    export CUDA_CORE_LIMIT_0=5 VGPU_NO_FEEDBACK=1 VGPU_SIM_EVENT_SKEW=8 VGPU_SIM_EVENT_SKEW_UNTIL_MS=300
    out=$(limited "$PROBE" spin 5 2000)
    late=$(field rates "$out" | cut -d, -f6-10 | tr ',' '\n' | awk '{s+=$1} END {print int(s/NR)}')
    echo "compute-early: launches per second per 0.5 s: $(field rates "$out")"
    near "$late" 25 15 "launches per second from 2.5 s on, after overstated first timings"
    ;;
compute-inflated)
    # A pod at 1% whose first timings overstate 50x, as when dozens of contexts start together
    # and a kernel's events span their time slices: each launch charged at such an estimate
    # holds the pod 10 s. When the launch timed after a long wait brings the estimate down, a
    # thread still waiting gives back what its launches were charged too much (compute_gate.c,
    # second_look), so the pod runs at its share from its first second. Without it the pod made
    # 1-2 launches in 6 s. 2 ms kernels at 1%: 5 launches a second.
    export CUDA_CORE_LIMIT_0=1 VGPU_NO_FEEDBACK=1 VGPU_SIM_EVENT_SKEW=50 VGPU_SIM_EVENT_SKEW_UNTIL_MS=300
    "$PROBE" hold 1 10 >"$TMP/h" & # the other contexts (no limiter): samples may span theirs
    wait_held "$TMP/h"
    out=$(VGPU_LOG_LEVEL=debug limited "$PROBE" spin 6 2000 2>"$TMP/inflated.err")
    late=$(field rates "$out" | cut -d, -f5-12 | tr ',' '\n' | awk '{s+=$1} END {printf "%.1f", s/NR}')
    echo "compute-inflated: launches per second per 0.5 s: $(field rates "$out"); $(grep -c 'given back' "$TMP/inflated.err") give-backs"
    near "$late" 5 30 "launches per second from 2 s on, after 50x overstated first timings"
    ;;
compute-recent)
    # A 200 us kernel whose time moves between 200 and 260 us, as under a power cap
    # (VGPU_SIM_KERNEL_JITTER=0.3), takes 230 us on average. By default, while no other process
    # holds a context on the GPU, it is charged that (the median of its last three samples);
    # with VGPU_COST_RECENT=0, and with another process's context there (whose time slices a
    # sample may span), the smallest of eight: near its fastest (206 us expected).
    export CUDA_CORE_LIMIT_0=50 VGPU_NO_FEEDBACK=1 VGPU_SIM_KERNEL_JITTER=0.3 VGPU_MAINTENANCE_MS=100
    per_launch() {
        if [ "$2" = default ]; then unset VGPU_COST_RECENT; else export VGPU_COST_RECENT=$2; fi
        VGPU_POD_NAME=$1 limited "$PROBE" spin 2.5 200 >/dev/null &
        sleep 0.8 # after the first samples and the first true-up
        local a b
        a=$(VGPU_POD_NAME=$1 "$PROBE" gate)
        sleep 1.2
        b=$(VGPU_POD_NAME=$1 "$PROBE" gate)
        wait $!
        echo $((($(field charged_ns "$b") - $(field charged_ns "$a")) / ($(field launches "$b") - $(field launches "$a") + 1)))
    }
    alone=$(per_launch recent1 default) smallest=$(per_launch recent0 0)
    "$PROBE" hold 1 8 >"$TMP/h" & # another process with a context, no limiter
    wait_held "$TMP/h"
    beside=$(per_launch recent2 default)
    echo "charged per launch: recent $alone ns, smallest of eight $smallest ns, recent beside another context $beside ns"
    near "$alone" 230000 5 "the median of the last three, alone"
    near "$smallest" 206000 5 "the smallest of eight"
    near "$beside" 206000 5 "the smallest of eight beside another context"
    ;;
compute-robust)
    # signals, and leaving while threads wait in the gate
    export CUDA_CORE_LIMIT_0=30
    out=$(VGPU_PROBE_SIGNALS=1 limited "$PROBE" spin 2 1000 2) || fail "spin with signals: $out"
    near "$(avg_rate "$out")" 300 10 "30% with a signal every millisecond"
    start=$(date +%s%N)
    out=$(CUDA_CORE_LIMIT_0=1 VGPU_POD_NAME=exiting VGPU_PROBE_EXIT_AFTER=0.5 timeout 10 env LD_PRELOAD=$PRE$LIM "$PROBE" spin 30 100000 8)
    rc=$?
    ms=$((($(date +%s%N) - start) / 1000000))
    expect_eq "$rc" 0 "exit while 8 threads wait in the gate"
    [ $ms -lt 3000 ] || fail "exiting took $ms ms"
    ;;
helper-missing)
    # a driver without the event functions: the limiter looks each up once, not per launch
    # the counting dlsym must sit right after the limiter; with a sanitizer runtime preloaded
    # first it saw none of the limiter's lookups (the sanitized pass of CI): counted in the plain
    # build only
    if [ -n "$PRE" ]; then
        echo "SKIP: the lookup counter is not on the limiter's path under a sanitizer runtime"
        exit 77
    fi
    hidden=cuEventCreate,cuEventRecord,cuEventQuery,cuEventElapsedTime,cuEventDestroy_v2
    export CUDA_CORE_LIMIT_0=50
    out=$(VGPU_TEST_DLSYM_HIDE=$hidden VGPU_TEST_DLSYM_COUNTS=$TMP/counts \
        LD_PRELOAD=$PRE$LIM:$BUILD/tests/integration/libvgpu_dlsym_count.so "$PROBE" spin 1 50) ||
        fail "spin without events: $out"
    launches=$(field launches "$out")
    [ "${launches:-0}" -ge 100 ] || fail "only ${launches:-0} launches without events"
    for name in ${hidden//,/ }; do
        n=$(awk -v s="$name" '$1 == s {print $2}' "$TMP/counts" 2>/dev/null)
        expect_eq "${n:-none}" 1 "lookups of the missing $name over $launches launches"
    done
    ;;
*)
    echo "unknown case $CASE" >&2
    exit 2
    ;;
esac
finish
