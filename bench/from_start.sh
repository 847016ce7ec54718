#!/usr/bin/env bash
# from_start.sh - the compute-limit table as users see it: whole runs measured from process start.
#
# Why this exists: a user's job is measured from its start, not after the limiter has settled. A
# new pod starts with its cost model unmeasured, its cost scale at 1.0 and no clock factor yet;
# a second process of a pod starts from what the pod learned (its ledger) with its own kernel
# estimates. For four workloads (ms-long bf16 matmuls, tens-of-us fp32 matmuls, a launch-bound
# elementwise loop, a CUDA graph of 50 matmuls), each limit 10/30/50/70/90% is one process of a
# fresh pod (its own shared-memory directory), measured from its 20th step for SECONDS with no
# settling; the 10% cell is followed by a second process of the same pod ("10% 2nd"). Between
# cells runs the workload without the limiter, and a cell's baseline is the mean of its two
# neighbours: the launch-bound loop's own pace moves by 10-30% between runs (gpu-facts.md), and
# neighbours a few seconds away take most of that out. Then, on the bf16 matmul, two processes
# of one fresh pod at 50% together, and two fresh pods at 30% and 50% together (no daemon: the
# daemon's case is tests/gpu/run hv-pods), against the unlimited runs around them.
# Every process is pinned to the same CPUs (PIN_CPUS, default 2,3; '' for none), as in noload.py:
# where the scheduler puts a launch-bound loop moves its pace by more than the tolerance.
# The expected ratio is min(1, limit / u0), u0 the baseline's busy fraction (NVML). Prints a
# table with, per cell, the neighbours' rates (their spread bounds what a cell can show) and the
# gate's state at the end; exits 1 if a cell is off by more than TOL (default 0.05).
#   from_start.sh BUILD_DIR [SECONDS]
set -u
BUILD=${1:-build}
SECS=${2:-5}
TOL=${TOL:-0.05}
LOGDIR=${LOGDIR:-$(mktemp -d)}
HERE=$(cd "$(dirname "$0")" && pwd)
LIM=$BUILD/src/limiter/libcuda_limiter.so
export VGPU_PROBE=$BUILD/tests/integration/cuda_probe
PY=${PYTHON:-python3}
PIN=${PIN_CPUS-2,3}
T=("$PY" "$HERE/throttle.py")
[ -n "$PIN" ] && command -v taskset >/dev/null && T=(taskset -c "$PIN" "${T[@]}")
val() { sed -n "s/.*\b$1=\([0-9.-]*\).*/\1/p" <<<"$2" | head -1; }
mean() { awk -v a="$1" -v b="$2" 'BEGIN {print (a + b) / 2}'; }
fails=0
# free WORKLOAD: one run without the limiter
free() { "${T[@]}" "$1" --phases 0 --settle 0 --seconds "$SECS"; }
# limited SHM_DIR POD LIMIT WORKLOAD [ARGS]: one process of pod POD limited from its start
# (the limiter's decisions, VGPU_LOG_LEVEL=debug, go to LOGDIR, one file per workload)
limited() {
    VGPU_LOG_LEVEL=debug VGPU_SHM_DIR=$1 VGPU_POD_NAME=$2 CUDA_CORE_LIMIT_0=$3 LD_PRELOAD=$LIM \
        "${T[@]}" "$4" --phases 0 --settle 0 --seconds "$SECS" --gate "${@:5}" 2>>"$LOGDIR/from-start-$4.log"
}
# row NAME LIMIT RATE BUSY BEFORE AFTER [GATE_LINE]: one line of the table; 1 if off
row() {
    local r0 u0
    r0=$(mean "$(val rate "$5")" "$(val rate "$6")")
    u0=$(mean "$(val busy "$5")" "$(val busy "$6")")
    awk -v w="$1" -v l="$2" -v r="$3" -v b="$4" -v r0="$r0" -v u0="$u0" -v ra="$(val rate "$5")" \
        -v rb="$(val rate "$6")" -v tol="$TOL" -v g="${7:-}" -v p="${ROWTAG:-}" 'BEGIN {
        if (!(r0 > 0) || !(u0 > 0) || r == "") { printf "%-18s %-8s no figures (a run failed)  OFF\n", w, l "%"; exit 1 }
        ratio = r / r0; want = l / 100 / u0; if (want > 1) want = 1
        d = ratio - want; if (d < 0) d = -d
        ok = (d <= tol && b <= l / 100 + tol) ? "ok" : "OFF"
        goal = (d <= 0.02 && b <= l / 100 + 0.02) ? "" : " (>2pp)"
        # the limit is above what the workload uses and its gate never made it wait: the
        # limiter did not slow it, and its ratio is the spread of the workload itself between runs
        # (the per-launch cost of the library is for noload.py to measure)
        if (want == 1 && g ~ /waited_s=0\.00 / && b <= l / 100 + tol) { ok = "free"; goal = "" }
        printf "%-18s %-8s %9.2f %8.3f %9.3f %7.3f  %s%s\n", w, l "%" (p ? " " p : ""), r, ratio, want, b, ok, goal
        printf "      free runs around it: %.2f / %.2f it/s, busy %.3f (mean)%s\n", ra, rb, u0, g
        exit ok == "OFF" ? 1 : 0 }'
}
gate() { [ -n "$1" ] && printf '; gate: %s' "$(sed -n 's/.*\(charged=.*\)/\1/p' <<<"$1")"; }
printf '%-18s %-8s %9s %8s %9s %7s\n' workload limit "it/s" ratio expected busy
# WORKLOADS and CONCURRENT=0 narrow the run down (diagnosis); the acceptance run takes all
for w in ${WORKLOADS:-matmul_bf16_8192 matmul_fp32_2048 elementwise_loop graph_50_matmuls}; do
    prev=$(free "$w")
    printf '%-18s %-8s %9.2f %8s %9s %7.3f\n' "$w" none "$(val rate "$prev")" 1.000 1.000 "$(val busy "$prev")"
    for l in ${LIMITS:-10 30 50 70 90}; do
        shm=$(mktemp -d) # a fresh pod: nothing learned yet
        cells=("$(limited "$shm" fs-$l "$l" "$w")")
        [ "$l" = 10 ] && cells+=("$(limited "$shm" fs-$l "$l" "$w")")
        rm -rf "$shm"
        next=$(free "$w")
        for i in "${!cells[@]}"; do
            c=${cells[$i]}
            ROWTAG=$([ "$i" = 1 ] && echo 2nd) row "$w" "$l" "$(val rate "$c")" "$(val busy "$c")" \
                "$prev" "$next" "$(gate "$c")" || fails=$((fails + 1))
        done
        prev=$next
    done
done

if [ "${CONCURRENT:-1}" = 1 ]; then
    w=matmul_bf16_8192
    echo
    echo "concurrent, $w, from process start (ratios against the free runs before and after)"
    before=$(free "$w")
    s1=$(mktemp -d) s2=$(mktemp -d) s3=$(mktemp -d) m1=$(mktemp) m2=$(mktemp)
    # processes measured together measure the same seconds (throttle.py --together)
    limited "$s1" pair 50 "$w" --together "$m1:2" >"$s1/a.txt" &
    limited "$s1" pair 50 "$w" --together "$m1:2" >"$s1/b.txt" &
    wait
    limited "$s2" podA 30 "$w" --together "$m2:2" >"$s2/out.txt" &
    limited "$s3" podB 50 "$w" --together "$m2:2" >"$s3/out.txt" &
    wait
    after=$(free "$w")
    a=$(cat "$s1/a.txt") b=$(cat "$s1/b.txt") pa=$(cat "$s2/out.txt") pb=$(cat "$s3/out.txt")
    row "1 pod, 2 procs" 50 "$(awk -v a="$(val rate "$a")" -v b="$(val rate "$b")" 'BEGIN {print a + b}')" \
        "$(val busy "$a")" "$before" "$after" "$(gate "$a")" || fails=$((fails + 1))
    # the busy fraction of the GPU is both pods': each pod's own is not known here
    row "pod A of 2" 30 "$(val rate "$pa")" 0 "$before" "$after" "$(gate "$pa")" || fails=$((fails + 1))
    row "pod B of 2" 50 "$(val rate "$pb")" 0 "$before" "$after" "$(gate "$pb")" || fails=$((fails + 1))
    echo "two pods together: GPU busy $(val busy "$pa") (expected at most 0.80 x u0 of the free runs)"
    rm -rf "$s1" "$s2" "$s3" "$m1" "$m2"
fi
echo
echo "ratio = rate over $SECS s from the 20th step of a new process / the mean of the free runs"
echo "(no limiter) before and after it; expected = min(1, limit / u0), u0 their busy fraction;"
echo "busy = NVML utilisation over the measured seconds; free = expected 1.000 and the gate never"
echo "made the process wait (the ratio is then the workload's own spread between runs, and the"
echo "loaded library's per-launch cost is noload.py's). $fails cell(s) off by more than $TOL."
[ "$fails" -eq 0 ]
