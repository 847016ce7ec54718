#!/usr/bin/env bash
# run_overhead.sh - the limiter's added cost per alloc+free pair and per empty launch, measured
# against no limiter in the same session: runs bench_overhead alternately without and with
# libcuda_limiter.so (capped, so the ledger path is taken) and prints medians and differences.
#   run_overhead.sh BUILD_DIR [ITERATIONS]
set -eu
BUILD=${1:-build}
N=${2:-7}
BIN=$BUILD/bench/bench_overhead
LIM=$BUILD/src/limiter/libcuda_limiter.so
declare -a base_af base_la lim_af lim_la
for i in $(seq "$N"); do
    read -r a b _ < <("$BIN" | sed 's/[a-z_]*=//g')
    base_af+=("$a"); base_la+=("$b")
    read -r a b _ < <(LD_PRELOAD=$LIM CUDA_MEM_LIMIT_0=${VGPU_BENCH_CAP:-8GiB} VGPU_POD_NAME=bench-$$ "$BIN" | sed 's/[a-z_]*=//g')
    lim_af+=("$a"); lim_la+=("$b")
done
med() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
ba=$(med "${base_af[@]}"); la=$(med "${lim_af[@]}")
bl=$(med "${base_la[@]}"); ll=$(med "${lim_la[@]}")
printf '%-26s %14s %14s %12s %8s\n' "operation" "baseline ns" "limiter ns" "added ns" "ratio"
awk -v b="$ba" -v l="$la" 'BEGIN {printf "%-26s %14.1f %14.1f %12.1f %8.3f\n", "cuMemAlloc+cuMemFree 2MiB", b, l, l-b, (b>0?l/b:0)}'
awk -v b="$bl" -v l="$ll" 'BEGIN {printf "%-26s %14.1f %14.1f %12.1f %8.3f\n", "cuLaunchKernel (empty)", b, l, l-b, (b>0?l/b:0)}'
echo "(medians of $N interleaved runs of 21 rounds each; goals: alloc+free <= 1000 ns added, launch <= 50 ns added)"
