#!/usr/bin/env bash
# image_test.sh - the node image's recipe checked without building it (CTest deploy_image).
#
# Why this exists: building the image needs a container engine, which CI (and the machine this
# was written on) does not have. So what can be checked without one is checked here:
#   - scripts/image picks docker (only with a reachable engine), podman or buildah, passes the
#     tag (default vgpu/node:<project version>) and the build arguments, and exits 2 naming
#     all three when none can build; run against fake builders on a private PATH;
#   - the Dockerfile: its stages, its continuation lines, every package it installs exists in
#     Debian (apt-cache show; a made-up name must fail), the build stage has the daemon's
#     packages of scripts/install-deps and the device plugin's, the libraries are held to
#     scripts/release's glibc floor, what it COPYs exists and is let in by .dockerignore, the
#     runtime stage has the files the DaemonSet runs;
#   - with --daemon/--cli (the binaries built here): every shared library they need belongs to
#     a runtime-stage package or one of its dependencies (dpkg -S, apt-cache depends), and
#     dropping libgrpc29 from that list is caught.
#
#   image_test.sh [--daemon PATH] [--cli PATH]        exit 0 pass, 1 fail, 77 not Debian
# "CHECK && ok ... || fail ...": ok only echoes, so fail runs exactly when CHECK fails
# shellcheck disable=SC2015
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
DAEMON="" CLI=""
while [ $# -gt 0 ]; do
    case "$1" in
    --daemon) DAEMON=$2; shift 2 ;;
    --cli) CLI=$2; shift 2 ;;
    *) echo "usage: $0 [--daemon PATH] [--cli PATH]" >&2; exit 64 ;;
    esac
done
for t in dpkg apt-cache readelf; do
    command -v "$t" >/dev/null || {
        echo "SKIPPED: $t not found (the package checks need Debian's tools)"
        exit 77
    }
done
T=$(mktemp -d)
trap 'rm -rf -- "$T"' EXIT
. "$(dirname "$0")/../lib/testlib.sh"
DF=$ROOT/Dockerfile
VERSION=$(sed -n 's/^project(vgpu VERSION \([0-9][0-9A-Za-z.+-]*\).*/\1/p' "$ROOT/CMakeLists.txt")
[ -n "$VERSION" ] || fail "no version in CMakeLists.txt"

# ==== scripts/image against fake builders ==========================================================
# A private PATH: only what scripts/image needs, plus the fakes of each case (a real docker,
# podman or buildah elsewhere on this machine must not be picked up).
mkdir -p "$T/tools"
for t in bash sed dirname; do ln -s "$(command -v "$t")" "$T/tools/$t"; done
# fake NAME MODE: a builder that records its arguments and directory; MODE "ok", "fail" (the
# build fails) or "noengine" (docker: the client without an engine)
fake() {
    cat >"$T/case/$1" <<EOF
#!$(command -v bash)
if [ "\$1" = version ]; then [ "$2" != noengine ]; exit; fi
printf '%s\n' "\$PWD" "\$@" >"$T/case/$1.args"
[ "$2" != fail ]
EOF
    chmod +x "$T/case/$1"
}
# image_case EXPECT_RC FAKES... -- ARGS...: run scripts/image with these fakes only
image_case() {
    local want=$1 rc=0
    shift
    rm -rf "$T/case" && mkdir -p "$T/case"
    while [ $# -gt 0 ] && [ "$1" != -- ]; do
        fake "${1%%:*}" "${1#*:}"
        shift
    done
    [ $# -gt 0 ] && shift
    env -i HOME="$T" PATH="$T/case:$T/tools" "$ROOT/scripts/image" "$@" >"$T/out" 2>&1 || rc=$?
    [ "$rc" = "$want" ]
}
args_of() { [ -f "$T/case/$1.args" ] && paste -sd' ' "$T/case/$1.args"; }

if image_case 2 docker:noengine --; then
    grep -q docker "$T/out" && grep -q podman "$T/out" && grep -q buildah "$T/out" &&
        ok "image: no usable builder (docker client without an engine): exit 2, naming all three" ||
        fail "image: no builder: the message does not name docker, podman and buildah: $(cat "$T/out")"
else
    fail "image: with only a docker client without engine: not exit 2: $(cat "$T/out")"
fi
if image_case 0 docker:ok podman:ok --; then
    [ "$(args_of docker)" = "$ROOT build --tag vgpu/node:$VERSION --file Dockerfile ." ] &&
        ok "image: docker with an engine first: docker build --tag vgpu/node:$VERSION (repository root)" ||
        fail "image: docker called as: $(args_of docker)"
    [ -z "$(args_of podman)" ] || fail "image: podman ran as well as docker"
else
    fail "image: docker build failed to run: $(cat "$T/out")"
fi
if image_case 0 docker:noengine podman:ok -- --tag reg.example/vgpu/node:t1 -- --pull; then
    [ "$(args_of podman)" = "$ROOT build --tag reg.example/vgpu/node:t1 --file Dockerfile --pull ." ] &&
        ok "image: docker without an engine is passed over for podman; --tag and build arguments" ||
        fail "image: podman called as: $(args_of podman)"
else
    fail "image: podman case: $(cat "$T/out")"
fi
if image_case 0 buildah:ok --; then
    [ "$(args_of buildah)" = "$ROOT bud --tag vgpu/node:$VERSION --file Dockerfile ." ] &&
        ok "image: buildah alone: buildah bud" || fail "image: buildah called as: $(args_of buildah)"
else
    fail "image: buildah case: $(cat "$T/out")"
fi
image_case 1 podman:fail -- && ok "image: a failing build: exit 1" || fail "image: a failing build: $(cat "$T/out")"
image_case 2 podman:ok -- --builder buildah && [ -z "$(args_of podman)" ] &&
    ok "image: --builder buildah when only podman is here: exit 2, nothing else run" ||
    fail "image: --builder buildah without buildah: $(cat "$T/out")"
if image_case 0 podman:ok -- --dry-run && [ -z "$(args_of podman)" ] &&
    grep -q "^podman build --tag vgpu/node:$VERSION" "$T/out"; then
    ok "image: --dry-run prints the command and runs nothing"
else
    fail "image: --dry-run: $(cat "$T/out")"
fi

# ==== the Dockerfile ===================================================================================
# stage_pkgs N: the packages the N-th stage (1-based) installs: the words after "apt-get
# install" up to the next "&&" (options left out)
stage_pkgs() {
    awk -v n="$1" '
        /^FROM / { stage++ }
        stage != n { next }
        /apt-get install/ { on = 1; sub(/.*apt-get install/, "") }
        on {
            line = $0
            if (line ~ /&&/) { sub(/&&.*/, "", line); on = 0 }
            sub(/\\$/, "", line)
            k = split(line, w, /[ \t]+/)
            for (i = 1; i <= k; i++) if (w[i] ~ /^[a-z0-9][a-z0-9.+-]+$/) print w[i]
            if ($0 !~ /\\$/) on = 0
        }' "$DF" | sort -u
}
froms=$(grep -E '^FROM ' "$DF" | paste -sd'|')
[ "$froms" = "FROM debian:bookworm AS build|FROM debian:bookworm-slim" ] &&
    ok "two stages: debian:bookworm AS build, then debian:bookworm-slim" || fail "stages: $froms"
# a continuation line followed by a blank or comment line is a classic Dockerfile mistake
bad=$(awk 'prev ~ /\\$/ && ($0 ~ /^[ \t]*$/ || $0 ~ /^[ \t]*#/) { print NR } { prev = $0 }' "$DF")
[ -z "$bad" ] && ok "no continuation line runs into a blank or comment line" || fail "Dockerfile lines $bad"
BUILD_PKGS=$(stage_pkgs 1)
RUN_PKGS=$(stage_pkgs 2)
[ "$(echo "$BUILD_PKGS" | wc -l)" -ge 8 ] && [ "$(echo "$RUN_PKGS" | wc -l)" -ge 5 ] &&
    ok "packages read: build stage $(echo "$BUILD_PKGS" | paste -sd' '); runtime $(echo "$RUN_PKGS" | paste -sd' ')" ||
    fail "could not read the packages of the Dockerfile (build: $BUILD_PKGS; runtime: $RUN_PKGS)"

# every package exists in Debian (apt's lists of this bookworm machine)
if apt-cache show --no-all-versions no-such-package-vgpu-x >/dev/null 2>&1; then
    fail "apt-cache show accepts a made-up package: this check proves nothing"
elif ! apt-cache policy 2>/dev/null | grep -q 'http'; then
    echo "note apt has no package lists (apt-get update): package existence not checked"
else
    # one call for all (each costs about a second); a name absent from the answer is missing
    # shellcheck disable=SC2086 # word splitting of the package lists is meant
    known=$(apt-cache show --no-all-versions $BUILD_PKGS $RUN_PKGS 2>/dev/null |
        sed -n 's/^Package: //p' | sort -u || true)
    missing=""
    for p in $BUILD_PKGS $RUN_PKGS; do
        echo "$known" | grep -qx -- "$p" || missing="$missing $p"
    done
    [ -z "$missing" ] && ok "every package the Dockerfile installs exists in Debian (apt-cache show)" ||
        fail "not in Debian's lists:$missing"
fi
# the build stage has what scripts/install-deps installs for the daemon and the CLI, and the
# device plugin's packages
deps_line=$(sed -n '/# the daemon and the CLI/{n;p}' "$ROOT/scripts/install-deps")
DAEMON_DEPS=$(echo "build-essential cmake pkg-config $deps_line" | tr ' ' '\n' | grep -E '^[a-z0-9]' | sort -u)
[ "$(echo "$DAEMON_DEPS" | wc -l)" -ge 7 ] || fail "could not read the daemon's packages from scripts/install-deps"
for p in $DAEMON_DEPS libgrpc-dev libprotobuf-c-dev protobuf-c-compiler; do
    echo "$BUILD_PKGS" | grep -qx -- "$p" || fail "the build stage does not install $p"
done
ok "build stage: scripts/install-deps' daemon packages ($(echo "$DAEMON_DEPS" | paste -sd' ')) and the device plugin's"
echo "$RUN_PKGS" | grep -q -- '-dev$' && fail "the runtime stage installs -dev packages: $RUN_PKGS"
# libgrpc29 is the package of gRPC 1.51's libgrpc.so (where libgrpc-dev is installed here)
if dpkg -s libgrpc-dev >/dev/null 2>&1; then
    so=$(readlink -f "$(dpkg -L libgrpc-dev | grep -E '/libgrpc\.so$' | head -1)")
    owner=$(dpkg -S "$so" 2>/dev/null | cut -d: -f1)
    echo "$RUN_PKGS" | grep -qx -- "$owner" &&
        ok "libgrpc.so ($so) is in $owner, which the runtime stage installs" ||
        fail "libgrpc.so here is $so of package '$owner', not in the runtime stage"
fi
# the build: Release, no tests
grep -q -- '-DCMAKE_BUILD_TYPE=Release' "$DF" && grep -q -- '-DVGPU_BUILD_TESTS=OFF' "$DF" &&
    ok "cmake: Release, VGPU_BUILD_TESTS=OFF" || fail "the build is not Release without tests"
# the injected libraries held to the release's glibc floor (scripts/release GLIBC_FLOOR), both:
# the Dockerfile with its continuation lines joined, spaces squeezed
floor=$(sed -n 's/^GLIBC_FLOOR=\([0-9.]*\).*/\1/p' "$ROOT/scripts/release")
joined=$(sed -e ':a' -e '/\\$/{N;s/\\\n//;ba' -e '}' "$DF" | tr -s ' ')
[ -n "$floor" ] &&
    grep -qF -- "check-elf --libc-only --no-exports --max-glibc $floor \"\$arch\" /stage/opt/vgpu/lib/libadd_path.so" <<<"$joined" &&
    grep -qF -- "check-elf --libc-only --max-glibc $floor \"\$arch\" /stage/opt/vgpu/lib/libcuda_limiter.so" <<<"$joined" &&
    ok "build stage: check-elf --max-glibc $floor on both libraries, as scripts/release" ||
    fail "the build stage does not hold both libraries to scripts/release's glibc floor (${floor:-none read})"
# what it COPYs from the tree exists and .dockerignore lets it in
while read -r src; do
    [ -e "$ROOT/$src" ] || fail "COPY $src: not in the tree"
    allowed=0
    while read -r pat; do
        case "$src" in "${pat#!}" | "${pat#!}"/*) allowed=1 ;; esac
    done < <(grep '^!' "$ROOT/.dockerignore")
    [ "$allowed" = 1 ] || fail "COPY $src: excluded by .dockerignore"
done < <(awk '/^COPY / && !/--from/ { for (i = 2; i < NF; i++) print $i }' "$DF")
grep -qx '\*' "$ROOT/.dockerignore" && ok "COPY sources exist; .dockerignore excludes all else" ||
    fail ".dockerignore does not start from excluding everything"
# the runtime stage has what the DaemonSet runs: the paths its COPYs make
made=$(awk '/^FROM /{s++} s==2 && /^COPY / {
        d = $NF
        for (i = 2; i < NF; i++) {
            if ($i ~ /^--/) continue
            n = split($i, p, "/")
            print (d ~ /\/$/ ? d p[n] : d)
        } }' "$DF")
for f in /usr/local/bin/vgpu-hypervisor /usr/local/bin/vgpu /usr/local/bin/vgpu-node-agent \
    /opt/vgpu/lib/libcuda_limiter.so /opt/vgpu/lib/libadd_path.so /opt/vgpu/VERSION; do
    echo "$made" | grep -qx -- "$f" || fail "the runtime stage does not COPY $f (it makes: $(echo "$made" | paste -sd' '))"
done
grep -q '^ENTRYPOINT \["/usr/local/bin/vgpu-node-agent"\]' "$DF" && grep -B3 '^USER 0' "$DF" | grep -q '^#' &&
    ok "runtime stage: the binaries, both libraries, VERSION; root (with why); the agent as entry point" ||
    fail "runtime stage: ENTRYPOINT or the comment on USER 0"

# ==== the built binaries' libraries are in the runtime stage ===========================================
# closure PKGS...: the packages and everything they depend on (Depends, Pre-Depends)
closure() {
    apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
        --no-replaces --no-enhances "$@" 2>/dev/null | grep -E '^[a-z0-9]' | sed 's/:.*//' | sort -u
}
# needs_met BIN CLOSURE: every library BIN needs (NEEDED, as resolved here) is in a package
# of CLOSURE (lines), or in libc6 (the base); prints what is not
needs_met() {
    local bin=$1 have=$2 lib path owner bad=""
    for lib in $(readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
        path=$(ldd "$bin" | awk -v l="$lib" '$1 == l { print $3 }')
        [ -n "$path" ] && [ -e "$path" ] || { bad="$bad $lib(unresolved)"; continue; }
        owner=$(dpkg -S "$(readlink -f "$path")" 2>/dev/null | head -1 | cut -d: -f1) ||
            owner=$(dpkg -S "$path" 2>/dev/null | head -1 | cut -d: -f1)
        [ "$owner" = libc6 ] && continue
        echo "$have" | grep -qx -- "$owner" || bad="$bad $lib($owner)"
    done
    echo "$bad"
}
if [ -n "$DAEMON" ] || [ -n "$CLI" ]; then
    if ! apt-cache policy 2>/dev/null | grep -q 'http'; then
        echo "note apt has no package lists: the binaries' libraries are not checked"
    else
        # shellcheck disable=SC2086 # word splitting of the package lists is meant
        # the stage's packages themselves, whatever apt-cache's recursion prints for them
        HAVE=$(printf '%s\n' $RUN_PKGS; closure $RUN_PKGS)
        for bin in $DAEMON $CLI; do
            bad=$(needs_met "$bin" "$HAVE")
            [ -z "$bad" ] && ok "${bin##*/}: every library it needs is in the runtime stage's packages" ||
                fail "${bin##*/} needs libraries no runtime-stage package brings:$bad"
        done
        if [ -n "$DAEMON" ] && readelf -d "$DAEMON" | grep -q 'libgrpc\.so'; then
            # shellcheck disable=SC2046 # word splitting of the package list is meant
            bad=$(needs_met "$DAEMON" "$(closure $(echo "$RUN_PKGS" | grep -vx libgrpc29))")
            [ -n "$bad" ] && ok "without libgrpc29 the check fails, as it must (missing:$bad)" ||
                fail "dropping libgrpc29 went unnoticed: this check proves nothing"
        elif [ -n "$DAEMON" ]; then
            echo "note ${DAEMON##*/} here is built without the device plugin (no libgrpc): the image's is not"
        fi
    fi
else
    echo "note no --daemon/--cli: the binaries' libraries are not checked"
fi

finish "image_test: all passed"
