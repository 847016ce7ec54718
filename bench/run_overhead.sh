#!/usr/bin/env bash
# run_overhead.sh - the limiter's added cost per alloc+free pair and per empty launch, measured
# against no limiter in the same session: runs bench_overhead alternately without and with
# libcuda_limiter.so (memory cap and a 99% compute limit, so the ledger and the gate are on the
# path) and prints, per operation, the median
# over runs, the spread of the per-run medians, and the difference.
#   run_overhead.sh BUILD_DIR [RUNS]
set -eu
BUILD=${1:-build}
N=${2:-9}
BIN=$BUILD/bench/bench_overhead
LIM=$BUILD/src/limiter/libcuda_limiter.so
base=() lim=() paired=()
for i in $(seq "$N"); do
    base+=("$("$BIN" | head -1 | sed 's/[a-z0-9_]*=//g')")
    # capped memory and a compute limit that never makes it wait: the full path, no throttling
    out=$(LD_PRELOAD=$LIM CUDA_MEM_LIMIT_0=${VGPU_BENCH_CAP:-8GiB} CUDA_CORE_LIMIT_0=${VGPU_BENCH_CORE:-99} VGPU_POD_NAME=bench-$$ "$BIN")
    lim+=("$(head -1 <<<"$out" | sed 's/[a-z0-9_]*=//g')")
    paired+=("$(grep '^paired' <<<"$out" | sed 's/[a-z0-9_]*=//g')")
done
col() { local k=$1; shift; printf '%s\n' "$@" | awk -v k="$k" '{print $k}'; }
stats() { sort -g | awk '{v[NR]=$1} END {printf "%.1f %.1f %.1f\n", v[int((NR+1)/2)], v[1], v[NR]}'; }
printf '%-28s %12s %12s %12s %8s   %s\n' "operation" "baseline ns" "limiter ns" "added ns" "ratio" "spread of run medians (base | limiter)"
names=("cuMemAlloc+cuMemFree 2 MiB" "cuMemAlloc+cuMemFree 4 KiB" "cuLaunchKernel (empty)")
for k in 1 2 3; do
    read -r bm bl bh < <(col $k "${base[@]}" | stats)
    read -r lm ll lh < <(col $k "${lim[@]}" | stats)
    awk -v n="${names[$((k - 1))]}" -v b="$bm" -v l="$lm" -v s="$bl-$bh | $ll-$lh" \
        'BEGIN {printf "%-28s %12.1f %12.1f %12.1f %8.3f   %s\n", n, b, l, l-b, (b>0?l/b:0), s}'
done
echo "(separate processes: medians of $N interleaved runs, each the median of 31 rounds)"
echo
printf '%-28s %12s   %s\n' "operation" "added ns" "spread of run medians"
for k in 1 2 3; do
    read -r pm pl ph < <(col $k "${paired[@]}" | stats)
    printf '%-28s %12.1f   %s\n' "${names[$((k - 1))]}" "$pm" "$pl..$ph"
done
echo "gate counters of the limited runs (did the gate make anything wait?):"
VGPU_POD_NAME=bench-$$ "$BUILD/tests/integration/cuda_probe" gate 2>/dev/null | sed 's/^/  /'
echo "(paired in one process: real entry point vs hooked, alternating rounds; median over $N runs of the"
echo " median per-round difference. Goals: alloc+free <= 1000 ns added, launch <= 50 ns added)"
