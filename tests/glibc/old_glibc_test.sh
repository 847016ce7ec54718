#!/usr/bin/env bash
# old_glibc_test.sh - the injected libraries load and work in a process on an older glibc.
#
#   old_glibc_test.sh BUILD_DIR WORK_DIR CC NEEDS_NEW_SO
#
# The oldest glibc this can run is Debian bullseye's 2.31 (Debian's mirrors keep no older
# suite); the symbol check (check-elf --max-glibc 2.17) covers the rest of the way to 2.17. Its
# libc6, libc6-dev and linux-libc-dev are downloaded once into WORK_DIR with apt-get and a private
# apt state (the system's apt configuration is not touched); when that is impossible the test is
# skipped (exit 77) and says why. The simulated driver (tests/sim) and old_glibc_probe.c are
# compiled against that glibc with CC, then the probe runs under bullseye's own loader with
# LD_BIND_NOW=1 (every symbol bound at start) and:
#   - alone: more than the cap fits (the cap below comes from the limiter);
#   - with libcuda_limiter.so and libadd_path.so preloaded: a 1 GiB cap holds, through the linked
#     entry point and through dlsym, and TF_PATH extends PATH;
#   - with NEEDS_NEW_SO preloaded: the loader refuses it (the harness does reject a library
#     that needs a newer glibc).
set -u
BUILD=$1
WORK=$2
CC=$3
NEW=$4
SRC=$(cd "$(dirname "$0")/../.." && pwd)
LIM=$BUILD/src/limiter/libcuda_limiter.so
ADD=$BUILD/src/addpath/libadd_path.so
ROOT=$WORK/bullseye
MIB=$((1024 * 1024))

skip() {
    echo "SKIP: $*"
    exit 77
}
[ -z "${VGPU_TEST_PRELOAD:-}" ] ||
    skip "sanitized build: the sanitizer runtimes preloaded with the limiter need this host's glibc"
[ "$(uname -m)" = x86_64 ] || skip "bullseye's x86-64 glibc is what this test runs; this host is $(uname -m)"
LOADER=$ROOT/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2

# fetch bullseye's glibc once (ROOT appears only when complete)
if [ ! -e "$ROOT/usr/include/x86_64-linux-gnu/gnu/libc-version.h" ]; then
    for tool in apt-get dpkg-deb; do command -v $tool >/dev/null || skip "no $tool to fetch Debian bullseye's glibc"; done
    apt=$WORK/apt
    rm -rf "$apt" "$ROOT.tmp"
    mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/parts" "$apt/debs" "$ROOT.tmp"
    echo "deb http://deb.debian.org/debian bullseye main" >"$apt/sources.list"
    opts=(-q -o "Dir::Etc::sourcelist=$apt/sources.list" -o "Dir::Etc::sourceparts=$apt/parts"
        -o "Dir::Etc::preferencesparts=$apt/parts" -o "Dir::State::lists=$apt/lists"
        -o "Dir::Cache=$apt/cache" -o "Dir::State::status=/dev/null" -o Debug::NoLocking=1
        -o APT::Sandbox::User=root -o Acquire::Retries=2)
    apt-get "${opts[@]}" update >"$apt/log" 2>&1
    compgen -G "$apt/lists/*bullseye_main_binary-amd64_Packages*" >/dev/null ||
        skip "cannot fetch Debian bullseye's package lists (glibc 2.31): $(tail -2 "$apt/log")"
    (cd "$apt/debs" && apt-get "${opts[@]}" download libc6 libc6-dev linux-libc-dev) >>"$apt/log" 2>&1 ||
        skip "cannot download bullseye's libc6, libc6-dev, linux-libc-dev: $(tail -2 "$apt/log")"
    for deb in "$apt/debs"/*.deb; do dpkg-deb -x "$deb" "$ROOT.tmp" || { echo "FAIL: cannot unpack $deb" >&2; exit 1; }; done
    # absolute links (lib64/ld-linux-x86-64.so.2 -> /lib/...) must stay inside ROOT
    find "$ROOT.tmp" -type l -lname '/*' | while read -r l; do ln -sfn "$ROOT$(readlink "$l")" "$l"; done
    mv "$ROOT.tmp" "$ROOT"
fi
[ -x "$LOADER" ] || { echo "FAIL: no loader at $LOADER" >&2; exit 1; }

# the simulated driver and the probe, against bullseye's headers, start files and libraries
OUT=$WORK/old
rm -rf "$OUT"
mkdir -p "$OUT/sim"
L=$ROOT/usr/lib/x86_64-linux-gnu
old_cc() {
    "$CC" -nostdinc -isystem "$("$CC" -print-file-name=include)" -isystem "$ROOT/usr/include/x86_64-linux-gnu" \
        -isystem "$ROOT/usr/include" -B"$L/" -L"$L" -L"$ROOT/lib/x86_64-linux-gnu" -Wl,--sysroot="$ROOT" \
        -static-libgcc -O1 "$@" || { echo "FAIL: cannot build against bullseye's glibc: $*" >&2; exit 1; }
}
S=$SRC/tests/sim
so=(-fPIC -shared -fvisibility=hidden "-Wl,-Bsymbolic")
# every sim_cuda_*.c, as tests/sim/CMakeLists.txt builds libcuda.so.1 from them
old_cc "${so[@]}" -Wl,-soname,libcuda.so.1 -o "$OUT/sim/libcuda.so.1" "$S"/sim_cuda_*.c "$S/sim_state.c" \
    -lpthread -ldl
old_cc "${so[@]}" -Wl,-soname,libnvidia-ml.so.1 -o "$OUT/sim/libnvidia-ml.so.1" "$S/sim_nvml.c" "$S/sim_state.c" -lpthread
old_cc -o "$OUT/probe" "$SRC/tests/glibc/old_glibc_probe.c" "$OUT/sim/libcuda.so.1" -ldl
for f in "$OUT/sim/libcuda.so.1" "$OUT/sim/libnvidia-ml.so.1" "$OUT/probe"; do
    "$SRC/scripts/check-elf" --max-glibc 2.31 x64 "$f" >/dev/null || { echo "FAIL: $f was not built for glibc 2.31" >&2; exit 1; }
done

TMP=$(mktemp -d /tmp/vgpu-glibc-XXXXXX)
trap 'rm -rf "$TMP"' EXIT
export VGPU_SIM_STATE=$TMP/sim.state VGPU_SIM_MEM=16GiB VGPU_SHM_DIR=$TMP/shm VGPU_POD_NAME=old-glibc
export VGPU_SIM_CTX_OVERHEAD=0 LD_BIND_NOW=1
unset TENSOR_FUSION_CUDA_MEM_LIMIT VCUDA_MEMORY_LIMIT CUDA_VISIBLE_DEVICES LD_PRELOAD LD_LIBRARY_PATH
old() { "$LOADER" --library-path "$ROOT/lib/x86_64-linux-gnu:$OUT/sim" "$OUT/probe"; }
. "$(dirname "$0")/../lib/testlib.sh"

out=$(old 2>&1)
[ "$(value glibc "$out")" = 2.31 ] || fail "the probe did not run on glibc 2.31: $out"
[ "$(value linked "$out")" -gt $((1024 * MIB)) ] 2>/dev/null || fail "without the limiter 1 GiB or less fitted: $out"

out=$(CUDA_MEM_LIMIT_0=1GiB TF_PATH=/opt/vgpu-floor LD_PRELOAD="$LIM:$ADD" old 2>&1)
rc=$?
[ $rc = 0 ] || fail "with the libraries preloaded the probe failed (rc $rc): $out"
[ "$(value glibc "$out")" = 2.31 ] || fail "the probe did not run on glibc 2.31: $out"
[ "$(value linked "$out")" = $((1024 * MIB)) ] || fail "the 1 GiB cap did not hold through cuMemAlloc_v2: $out"
[ "$(value dlsym "$out")" = $((1024 * MIB)) ] || fail "the 1 GiB cap did not hold through dlsym: $out"
case $(value PATH "$out") in
*:/opt/vgpu-floor) ;;
*) fail "libadd_path.so did not extend PATH: $out" ;;
esac

out=$(LD_PRELOAD="$NEW" old 2>&1)
rc=$?
if [ $rc = 0 ] || ! grep -q "version .GLIBC_2\.3[2-9]' not found" <<<"$out"; then
    fail "glibc 2.31's loader accepted a library that needs a newer glibc (rc $rc): $out"
fi

finish "ok: libcuda_limiter.so and libadd_path.so load and work on glibc 2.31 (the cap held at 1 GiB)"
