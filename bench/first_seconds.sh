#!/usr/bin/env bash
# first_seconds.sh - what a limited process gets from its first second on, as a user sees it.
#
# Why this exists: run_throttle.sh measures each cell after the closed loop has settled (4-8 s).
# A user's job is measured from its start: a new pod starts with its cost model unmeasured and
# its scale at 1.0, and a second process of a pod starts from the scale the pod learned (shared
# in its ledger) but with its own kernel estimates. For each workload and limit this runs, from
# process start (20 warm-up steps, no settling), a process of a fresh pod, then a second process
# of the same pod, each measured over its first SECONDS; the baseline is the mean of unlimited
# runs of the same length before and after. The expected ratio is min(1, limit / u0), u0 the
# baseline's busy fraction. Prints a table; exits 1 if a cell is off by more than TOL (0.05).
#   first_seconds.sh BUILD_DIR [SECONDS]
set -u
BUILD=${1:-build}
SECS=${2:-6}
TOL=${TOL:-0.05}
HERE=$(cd "$(dirname "$0")" && pwd)
LIM=$BUILD/src/limiter/libcuda_limiter.so
PY=${PYTHON:-python3}
T="$PY $HERE/throttle.py"
val() { sed -n "s/.*$1=\([0-9.-]*\).*/\1/p" <<<"$2" | head -1; }
fails=0
printf '%-18s %6s %-7s %9s %8s %9s %7s\n' workload limit process "it/s" ratio expected busy
for spec in "elementwise_loop 10,20" "matmul_bf16_8192 10,30,50"; do
    set -- $spec
    w=$1
    # WORKLOADS narrows the run down (diagnosis); the acceptance run takes both
    case " ${WORKLOADS:-$w} " in *" $w "*) ;; *) continue ;; esac
    a=$($T "$w" --phases 0 --settle 0 --seconds "$SECS")
    rows=()
    for l in ${2//,/ }; do
        shm=$(mktemp -d) # a fresh pod: nothing learned yet
        for p in first second; do
            out=$(VGPU_SHM_DIR=$shm VGPU_POD_NAME=fs CUDA_CORE_LIMIT_0=$l LD_PRELOAD=$LIM \
                $T "$w" --phases 0 --settle 0 --seconds "$SECS")
            rows+=("$l $p $(val rate "$out") $(val busy "$out")")
        done
        rm -rf "$shm"
    done
    b=$($T "$w" --phases 0 --settle 0 --seconds "$SECS")
    r0=$(awk -v a="$(val rate "$a")" -v b="$(val rate "$b")" 'BEGIN {print (a + b) / 2}')
    u0=$(awk -v a="$(val busy "$a")" -v b="$(val busy "$b")" 'BEGIN {print (a + b) / 2}')
    printf '%-18s %6s %-7s %9.2f %8s %9s %7.3f  (before %s, after %s it/s)\n' "$w" none - "$r0" 1.000 1.000 "$u0" "$(val rate "$a")" "$(val rate "$b")"
    for r in "${rows[@]}"; do
        set -- $r
        awk -v w="$w" -v l="$1" -v p="$2" -v r="$3" -v b="$4" -v r0="$r0" -v u0="$u0" -v tol="$TOL" 'BEGIN {
            ratio = r / r0; want = l / 100 / u0; if (want > 1) want = 1
            d = ratio - want; if (d < 0) d = -d
            printf "%-18s %5d%% %-7s %9.2f %8.3f %9.3f %7.3f  %s%s\n", w, l, p, r, ratio, want, b, d <= tol ? "ok" : "OFF", d <= 0.02 ? "" : " (>2pp)"
            exit d <= tol ? 0 : 1 }' || fails=$((fails + 1))
    done
done
echo "ratio = rate over the first $SECS s from process start / the unlimited runs' mean; $fails cell(s) off by more than $TOL"
[ "$fails" -eq 0 ]
