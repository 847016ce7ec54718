#!/usr/bin/env bash
# compare_launch.sh - the added cost per empty launch of two limiter builds, in one session.
#
# Why this exists: the launch path's cost (tens of ns on a 3-4 us driver call) moves by more
# than that between sessions and machines, so a change to the path is judged against the
# previous build on the same GPU, runs interleaved. Each run of bench_overhead (launches only)
# gives the median of paired per-round differences (real entry point vs hooked, one process);
# this prints, per build, the median over runs and the spread of the run medians.
#   compare_launch.sh BENCH_OVERHEAD_BIN LIMITER_A.so LIMITER_B.so [RUNS]
set -eu
BIN=$1 A=$2 B=$3 N=${4:-15}
export VGPU_BENCH_LAUNCH_ONLY=1 VGPU_SHM_DIR=${VGPU_SHM_DIR:-$(mktemp -d)}
one() { LD_PRELOAD=$1 CUDA_MEM_LIMIT_0=8GiB CUDA_CORE_LIMIT_0=99 VGPU_POD_NAME=cmp-$$-$2 "$BIN" |
    sed -n 's/.*paired_launch_ns=\([0-9.-]*\).*/\1/p'; }
ra=() rb=()
for i in $(seq "$N"); do
    if [ $((i % 2)) = 1 ]; then ra+=("$(one "$A" a)"); rb+=("$(one "$B" b)"); else
        rb+=("$(one "$B" b)"); ra+=("$(one "$A" a)"); fi
done
stats() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {printf "%.1f ns (run medians %.1f..%.1f)", v[int((NR+1)/2)], v[1], v[NR]}'; }
echo "A $A: $(stats "${ra[@]}")"
echo "B $B: $(stats "${rb[@]}")"
echo "(added per empty cuLaunchKernel, paired in one process; $N interleaved runs each)"
