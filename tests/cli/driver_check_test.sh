#!/usr/bin/env bash
# driver_check_test.sh - `vgpu driver-check` against the simulated driver (tests/sim): the full
# simulator is covered, and a hook left out of the table (--drop-hook, test-only) is reported,
# alone, with its class and a failing exit status.
#
#   driver_check_test.sh VGPU SIM_DIR
set -u
VGPU=$1
SIM=$2
. "$(dirname "$0")/../lib/testlib.sh"
run() {
    out=$(LD_LIBRARY_PATH=$SIM "$VGPU" driver-check "$@" 2>&1)
    rc=$?
}
uncovered() { grep '^uncovered' <<<"$out"; }

run
[ $rc -eq 0 ] || fail "full simulator: exit $rc, expected 0: $out"
[ -z "$(uncovered)" ] || fail "full simulator reported: $(uncovered)"
grep -q '^libcuda: .*/libcuda.so.1: ' <<<"$out" || fail "no libcuda summary: $out"
grep -q '^libnvidia-ml: .*/libnvidia-ml.so.1: ' <<<"$out" || fail "no NVML summary: $out"

# explicit files instead of the loader's search
out=$(env -u LD_LIBRARY_PATH "$VGPU" driver-check --cuda "$SIM/libcuda.so.1" \
    --nvml "$SIM/libnvidia-ml.so.1" 2>&1)
[ $? -eq 0 ] || fail "--cuda/--nvml: $out"

for case in "cuMemAllocManaged alloc" "cuLaunchKernel_ptsz launch" "cuGraphAddMemAllocNode alloc" \
    "nvmlDeviceGetMemoryInfo_v2 view" "cuLaunchGrid launch" "cuLaunchCooperativeKernelMultiDevice launch" \
    "cuImportExternalMemory alloc" "cuDestroyExternalMemory alloc" \
    "nvmlDeviceGetMPSComputeRunningProcesses view" "nvmlDeviceGetConfComputeProtectedMemoryUsage view"; do
    set -- $case
    run --drop-hook "$1"
    want=$([ "$2" = view ] && echo 0 || echo 1)
    [ $rc -eq "$want" ] || fail "without $1: exit $rc, expected $want"
    got=$(uncovered)
    [ "$got" = "$(printf 'uncovered  %-6s %s' "$2" "$1")" ] ||
        fail "without $1: reported '$got', expected exactly $1 as $2"
done

run --verbose
grep -q '^reviewed   alloc  cuMemMap: ' <<<"$out" || fail "--verbose does not list reviewed names"
# "view" is memory use only: the simulator's NVML exports a bus width, which is neither hooked,
# reviewed nor reported
grep -aq nvmlDeviceGetMemoryBusWidth "$SIM/libnvidia-ml.so.1" ||
    fail "the simulator does not export nvmlDeviceGetMemoryBusWidth: the next check means nothing"
! grep -q nvmlDeviceGetMemoryBusWidth <<<"$out" || fail "a bus width was classified: $out"

run --cuda /nonexistent/libcuda.so.1
[ $rc -eq 2 ] && grep -q '/nonexistent/libcuda.so.1' <<<"$out" || fail "missing file: $rc $out"
run --cuda "$0"
[ $rc -eq 2 ] && grep -q 'not an ELF file' <<<"$out" || fail "not an ELF file: $rc $out"
out=$(env LD_LIBRARY_PATH=/nonexistent "$VGPU" driver-check --nvml /dev/null 2>&1)
rc=$?
if ! ldconfig -p 2>/dev/null | grep -q 'libcuda.so.1 '; then
    [ $rc -eq 2 ] && grep -q 'libcuda.so.1 is not installed' <<<"$out" ||
        fail "no driver installed: $rc $out"
fi
run --drop-hook cuNotAHook
[ $rc -eq 64 ] && grep -q "'cuNotAHook' is not in the hook table" <<<"$out" || fail "bad --drop-hook: $rc $out"
run --cuda
[ $rc -eq 64 ] && grep -q -- '--cuda needs a value' <<<"$out" || fail "--cuda without a path: $rc $out"

finish
