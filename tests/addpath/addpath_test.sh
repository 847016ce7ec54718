#!/usr/bin/env bash
# addpath_test.sh - tests of libadd_path.so with real processes: the library is preloaded into
# /bin/sh and env(1), and what they and their descendants see is compared with what the rules in
# src/addpath/add_path.c give for the starting values. One case per invocation, or "all".
#
#   addpath_test.sh LIB CASE...
#
# With ADDPATH_PROBE=PROG the cases run PROG (addpath_probe.c) where they would run sh and env:
# the release script does that for the arm64 library under qemu-user, with
# ADDPATH_PROBE_WRAPPER=qemu-aarch64-static and QEMU_LD_PREFIX=/usr/aarch64-linux-gnu. The seed
# README's commands are also run literally when sh and env run. VGPU_TEST_PRELOAD (sanitizer
# runtimes, ending with ':') goes before the library in LD_PRELOAD.
set -u
export LC_ALL=C
LIB=$1
shift
L=${VGPU_TEST_PRELOAD:-}$LIB # LD_PRELOAD as each case starts it
PROBE=${ADDPATH_PROBE:-}
# the seed README's PATH: its examples' outputs are computed from it
START=/home/user/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
ENV_BIN=$(command -v env)
KEEP=() # passed to every process: sanitizer and emulator settings
for v in ASAN_OPTIONS UBSAN_OPTIONS ADDPATH_PROBE_WRAPPER QEMU_LD_PREFIX; do
    [ -n "${!v:-}" ] && KEEP+=("$v=${!v}")
done
TMP=$(mktemp -d /tmp/vgpu-addpath-XXXXXX)
trap 'rm -rf "$TMP"' EXIT
checks=0
. "$(dirname "$0")/../lib/testlib.sh"
FAIL_WIDTH=600 # a failure quotes whole environments
# the shell chain for DEPTH >= 1: DEPTH shells, the last one runs env; "clean" unsets the TF_*
# variables in the first shell, so its descendants see only what the library did in it
CHAIN='r=$1 n=$2
if [ "$3" = clean ]; then unset TF_PATH TF_LD_PRELOAD TF_LD_LIBRARY_PATH TF_PREPEND_PATH TF_PREPEND_LD_PRELOAD TF_PREPEND_LD_LIBRARY_PATH; fi
if [ "$n" -gt 1 ]; then sh -c "$r" sh "$r" $((n - 1)) keep; else env; fi'

# run ENVIRONMENT... -- COMMAND...: run with exactly that environment (plus KEEP); stdout to
# stdout; anything on stderr (a loader complaint, a sanitizer report) is a failure
run() {
    local vars=()
    while [ "$1" != -- ]; do vars+=("$1"); shift; done
    shift
    "$ENV_BIN" -i "${KEEP[@]}" "${vars[@]}" "$@" 2>"$TMP/err"
    local rc=$?
    if [ $rc -ne 0 ] || [ -s "$TMP/err" ]; then
        echo "exit status $rc, stderr: $(head -c 400 "$TMP/err")"
        return 1
    fi
}

# show DEPTH keep|clean ASSIGN...: PATH, LD_PRELOAD and LD_LIBRARY_PATH (in that order, those
# set) as the DEPTH-th descendant of the first process with the library sees them (with clean,
# that descendant must see no TF_* variable). The environment starts as PATH=$START
# LD_PRELOAD=$L; NAME=VALUE sets, -NAME unsets.
show() {
    local depth=$1 mode=$2 vars=("PATH=$START" "LD_PRELOAD=$L") a i cmd out
    shift 2
    for a; do
        for i in "${!vars[@]}"; do
            [ "${vars[$i]%%=*}" = "${a#-}" ] || [ "${vars[$i]%%=*}" = "${a%%=*}" ] && unset 'vars[i]'
        done
        [ "${a#-}" = "$a" ] && vars+=("$a")
    done
    if [ -n "$PROBE" ]; then
        cmd=(${ADDPATH_PROBE_WRAPPER:+"$ADDPATH_PROBE_WRAPPER"} "$PROBE" "$depth" "$mode")
    elif [ "$depth" -eq 0 ]; then
        cmd=("$ENV_BIN")
    else
        cmd=(/bin/sh -c "$CHAIN" sh "$CHAIN" "$depth" "$mode")
    fi
    out=$(run "${vars[@]}" -- "${cmd[@]}") || { echo "$out"; return 1; }
    if [ "$mode" = clean ] && grep -q '^TF_' <<<"$out"; then
        echo "TF_* variables not unset: $(grep '^TF_' <<<"$out" | tr '\n' ' ')"
        return 1
    fi
    for v in PATH LD_PRELOAD LD_LIBRARY_PATH; do grep "^$v=" <<<"$out"; done
    return 0
}

# want PATH LD_PRELOAD LD_LIBRARY_PATH: the expected output of show; UNSET for an unset one
want() {
    local names=(PATH LD_PRELOAD LD_LIBRARY_PATH) vals=("$@") i
    for i in 0 1 2; do
        [ "${vals[$i]}" = UNSET ] || printf '%s=%s\n' "${names[$i]}" "${vals[$i]}"
    done
}

# check DESCRIPTION EXPECTED DEPTH keep|clean ASSIGN...
check() {
    local desc=$1 exp=$2 got
    shift 2
    checks=$((checks + 1))
    if ! got=$(show "$@"); then
        fail "$desc: $got"
    elif [ "$got" != "$exp" ]; then
        fail "$desc: got [$(tr '\n' ' ' <<<"$got")] expected [$(tr '\n' ' ' <<<"$exp")]"
    fi
}

# readme DESCRIPTION COMMAND EXTRA_ASSIGN EXPECTED_LINE...: the seed README's way: LD_PRELOAD
# exported, COMMAND run by sh -c; its output, sorted, must be exactly the expected lines
readme() {
    local desc=$1 command=$2 extra=$3 got exp
    shift 3
    [ -n "$PROBE" ] && return 0 # no sh here: show covers the same
    checks=$((checks + 1))
    exp=$(printf '%s\n' "$@" | sort)
    if ! got=$(run "PATH=$START" "LD_PRELOAD=$L" ${extra:+"$extra"} -- /bin/sh -c "$command"); then
        fail "$desc: $got"
    elif [ "$(sort <<<"$got")" != "$exp" ]; then
        fail "$desc: got [$(tr '\n' ' ' <<<"$got")] expected [$(tr '\n' ' ' <<<"$exp")]"
    fi
}

big() { seq -f "$1%g" "$2" "$3" | paste -sd: -; } # big PREFIX FIRST LAST: PREFIX1:PREFIX2:...

run_case() {
    case $1 in
    readme-path)
        # the seed's output, literally, where its short PATH finds env and grep (merged /usr)
        if [ -x /bin/env ] && [ -x /bin/grep ]; then
            readme "README: TF_PATH" "TF_PATH=/usr/custom/bin env | grep PATH" PATH=/home/user/bin:/usr/local/sbin:/bin \
                "PATH=/home/user/bin:/usr/local/sbin:/bin:/usr/custom/bin" "TF_PATH=/usr/custom/bin"
        else
            readme "README: TF_PATH" "TF_PATH=/usr/custom/bin env | grep PATH" "" \
                "PATH=$START:/usr/custom/bin" "TF_PATH=/usr/custom/bin"
        fi
        check "TF_PATH appends" "$(want "$START:/usr/custom/bin" "$L" UNSET)" 0 keep TF_PATH=/usr/custom/bin
        ;;
    readme-ld-preload)
        readme "README: TF_LD_PRELOAD" "TF_LD_PRELOAD=/path/to/custom.so env | grep LD_PRELOAD" "" \
            "LD_PRELOAD=$L:/path/to/custom.so" "TF_LD_PRELOAD=/path/to/custom.so"
        check "TF_LD_PRELOAD appends" "$(want "$START" "$L:/path/to/custom.so" UNSET)" 0 keep \
            TF_LD_PRELOAD=/path/to/custom.so
        ;;
    readme-ld-library-path)
        readme "README: TF_LD_LIBRARY_PATH" \
            "TF_LD_LIBRARY_PATH=/usr/local/cuda/lib64 env | grep LD_LIBRARY_PATH" \
            LD_LIBRARY_PATH=/usr/lib64:/lib64 \
            "LD_LIBRARY_PATH=/usr/lib64:/lib64:/usr/local/cuda/lib64" \
            "TF_LD_LIBRARY_PATH=/usr/local/cuda/lib64"
        check "TF_LD_LIBRARY_PATH appends" "$(want "$START" "$L" /usr/lib64:/lib64:/usr/local/cuda/lib64)" \
            0 keep LD_LIBRARY_PATH=/usr/lib64:/lib64 TF_LD_LIBRARY_PATH=/usr/local/cuda/lib64
        ;;
    readme-prepend-path)
        # the seed's output, literally
        readme "README: TF_PREPEND_PATH" "TF_PREPEND_PATH=/opt/custom/bin env | grep PATH" "" \
            "PATH=/opt/custom/bin:/home/user/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
            "TF_PREPEND_PATH=/opt/custom/bin"
        check "TF_PREPEND_PATH prepends" "$(want "/opt/custom/bin:$START" "$L" UNSET)" 0 keep \
            TF_PREPEND_PATH=/opt/custom/bin
        ;;
    multi)
        check "several entries appended in order" "$(want "$START:/a:/b:/c" "$L" UNSET)" 0 keep TF_PATH=/a:/b:/c
        check "several entries prepended in order" "$(want "$START" "$L" /p1:/p2:/s)" 0 keep \
            LD_LIBRARY_PATH=/s TF_PREPEND_LD_LIBRARY_PATH=/p1:/p2
        check "several LD_PRELOAD entries" "$(want "$START" "$L:/x.so:/y.so" UNSET)" 0 keep \
            TF_LD_PRELOAD=/x.so:/y.so
        ;;
    unset-target)
        check "append to unset LD_LIBRARY_PATH" "$(want "$START" "$L" /x:/y)" 0 keep TF_LD_LIBRARY_PATH=/x:/y
        check "prepend to unset LD_LIBRARY_PATH" "$(want "$START" "$L" /x)" 0 keep TF_PREPEND_LD_LIBRARY_PATH=/x
        check "both to unset LD_LIBRARY_PATH" "$(want "$START" "$L" /p:/a)" 0 keep \
            TF_PREPEND_LD_LIBRARY_PATH=/p TF_LD_LIBRARY_PATH=/a
        check "append to unset PATH" "$(want /x "$L" UNSET)" 0 keep -PATH TF_PATH=/x
        ;;
    empty-target)
        check "append to empty LD_LIBRARY_PATH" "$(want "$START" "$L" /x)" 0 keep LD_LIBRARY_PATH= TF_LD_LIBRARY_PATH=/x
        check "prepend to empty LD_LIBRARY_PATH" "$(want "$START" "$L" /x)" 0 keep LD_LIBRARY_PATH= \
            TF_PREPEND_LD_LIBRARY_PATH=/x
        check "both to empty LD_LIBRARY_PATH" "$(want "$START" "$L" /p:/a)" 0 keep LD_LIBRARY_PATH= \
            TF_PREPEND_LD_LIBRARY_PATH=/p TF_LD_LIBRARY_PATH=/a
        check "append to empty PATH" "$(want /x "$L" UNSET)" 0 keep PATH= TF_PATH=/x
        ;;
    empty-parts)
        check "empty parts of an appended value" "$(want "$START" "$L" /s:/a:/b)" 0 keep LD_LIBRARY_PATH=/s \
            "TF_LD_LIBRARY_PATH=::/a::/b:"
        check "empty parts of a prepended value" "$(want "/p:$START" "$L" UNSET)" 0 keep "TF_PREPEND_PATH=:/p::"
        check "empty parts, unset target" "$(want "$START" "$L" /a)" 0 keep "TF_LD_LIBRARY_PATH=::/a:"
        check "empty value: PATH untouched" "$(want "$START" "$L" UNSET)" 0 keep TF_PATH= TF_PREPEND_PATH=
        check "only colons: unset stays unset" "$(want "$START" "$L" UNSET)" 0 keep "TF_LD_LIBRARY_PATH=:::" \
            "TF_PREPEND_LD_LIBRARY_PATH=:"
        check "empty value: empty stays empty" "$(want "$START" "$L" "")" 0 keep LD_LIBRARY_PATH= \
            TF_LD_LIBRARY_PATH=
        check "only separators in TF_LD_PRELOAD" "$(want "$START" "$L" UNSET)" 0 keep "TF_LD_PRELOAD= : :" \
            "TF_PREPEND_LD_PRELOAD= "
        ;;
    present)
        check "present entry not appended" "$(want "$START" "$L" UNSET)" 0 keep TF_PATH=/usr/bin
        check "only the new entries appended" "$(want "$START:/new" "$L" UNSET)" 0 keep TF_PATH=/usr/bin:/new:/bin
        check "present entry not prepended (stays where it is)" "$(want "$START" "$L" UNSET)" 0 keep \
            TF_PREPEND_PATH=/usr/bin
        check "only the new entries prepended" "$(want "/new:$START" "$L" UNSET)" 0 keep TF_PREPEND_PATH=/new:/usr/bin
        check "repeated entry appended once" "$(want "$START:/n" "$L" UNSET)" 0 keep TF_PATH=/n:/n:/n
        check "repeated entry prepended once" "$(want "/n:/m:$START" "$L" UNSET)" 0 keep TF_PREPEND_PATH=/n:/m:/n
        check "the library itself is present" "$(want "$START" "$L" UNSET)" 0 keep "TF_LD_PRELOAD=$LIB"
        check "a prefix of an entry is not the entry" "$(want "$START" "$L" /a/b:/a:/a/b/)" 0 keep \
            LD_LIBRARY_PATH=/a/b TF_LD_LIBRARY_PATH=/a:/a/b/
        ;;
    existing-kept)
        # the existing value is kept byte for byte: empty entries (the current directory) too
        check "existing empty entries kept" "$(want "$START" "$L" /s::/t::/x)" 0 keep "LD_LIBRARY_PATH=/s::/t:" \
            TF_LD_LIBRARY_PATH=/x
        check "leading empty entry kept" "$(want "/p::$START" "$L" UNSET)" 0 keep "PATH=:$START" TF_PREPEND_PATH=/p
        check "PATH entries may hold spaces" "$(want "/x y:$START:/x:/a b" "$L" UNSET)" 0 keep \
            "PATH=/x y:$START" "TF_PATH=/x:/a b:/x y"
        ;;
    ld-preload-spaces)
        check "space-separated LD_PRELOAD: entry present" "$(want "$START" "$L libc.so.6" UNSET)" 0 keep \
            "LD_PRELOAD=$L libc.so.6" TF_LD_PRELOAD=libc.so.6
        check "space-separated LD_PRELOAD: first entry present" "$(want "$START" "$L libc.so.6" UNSET)" 0 keep \
            "LD_PRELOAD=$L libc.so.6" "TF_PREPEND_LD_PRELOAD=$LIB"
        check "spaces in TF_LD_PRELOAD separate, colons written" "$(want "$START" "$L:/x.so:/y.so" UNSET)" 0 keep \
            "TF_LD_PRELOAD= /x.so  /y.so:$LIB "
        check "space-separated LD_PRELOAD kept, prepend" "$(want "$START" "/p.so:$L  libc.so.6 " UNSET)" 0 keep \
            "LD_PRELOAD=$L  libc.so.6 " "TF_PREPEND_LD_PRELOAD=libc.so.6 /p.so"
        ;;
    both)
        check "prepend and append together" "$(want "/p:$START:/a" "$L" UNSET)" 0 keep TF_PREPEND_PATH=/p TF_PATH=/a
        check "entry in both: prepended" "$(want "/x:$START" "$L" UNSET)" 0 keep TF_PREPEND_PATH=/x TF_PATH=/x
        check "entries in both, in order" "$(want "/p:/x:$START:/a" "$L" UNSET)" 0 keep TF_PREPEND_PATH=/p:/x \
            TF_PATH=/x:/a:/p
        check "all six at once" "$(want "/p:$START:/a" "libm.so.6:$L:libc.so.6" /lp:/s:/la)" 0 keep \
            LD_LIBRARY_PATH=/s TF_PATH=/a TF_PREPEND_PATH=/p TF_LD_PRELOAD=libc.so.6 \
            TF_PREPEND_LD_PRELOAD=libm.so.6 TF_LD_LIBRARY_PATH=/la TF_PREPEND_LD_LIBRARY_PATH=/lp
        ;;
    children)
        # TF_* unset in the first process: what its descendants see, the library made there
        local w
        w=$(want "/p:$START:/x" "$L:libc.so.6" /lp:/s)
        for d in 1 2; do
            check "descendant $d, TF_* unset in the first process" "$w" $d clean TF_PATH=/x TF_PREPEND_PATH=/p \
                TF_LD_PRELOAD=libc.so.6 LD_LIBRARY_PATH=/s TF_PREPEND_LD_LIBRARY_PATH=/lp
        done
        ;;
    nested)
        # every process loads the library and sees the TF_* variables: nothing grows
        local w all
        all=(LD_LIBRARY_PATH=/s TF_PATH=/a:/usr/bin TF_PREPEND_PATH=/p TF_LD_PRELOAD=libc.so.6
            TF_PREPEND_LD_PRELOAD=libm.so.6 TF_LD_LIBRARY_PATH=/la TF_PREPEND_LD_LIBRARY_PATH=/lp)
        w=$(want "/p:$START:/a" "libm.so.6:$L:libc.so.6" /lp:/s:/la)
        for d in 0 1 3; do check "nested $d deep: no duplicates" "$w" $d keep "${all[@]}"; done
        check "already applied: unchanged" "$w" 0 keep "${all[@]}" "PATH=/p:$START:/a" \
            "LD_PRELOAD=libm.so.6:$L:libc.so.6" LD_LIBRARY_PATH=/lp:/s:/la
        ;;
    huge)
        local b n one
        b=$(big /huge/dir/ 1 3000)    # 45 KB
        n=$(big /huge/dir/ 2001 5000) # 1000 present, 2000 new
        for d in 0 1; do
            check "3000 entries + 3000 (1000 present), $d deep" "$(want "$START" "$L" "$b:$(big /huge/dir/ 3001 5000)")" \
                $d keep "LD_LIBRARY_PATH=$b" "TF_LD_LIBRARY_PATH=$n"
        done
        # 20000 tiny entries (108 KB, near the kernel's 128 KiB limit for one variable)
        check "20000 entries, half present" "$(want "$START" "$L" "$(seq 1 2 19999 | paste -sd: -):$(seq 2 2 20000 | paste -sd: -)")" \
            0 keep "LD_LIBRARY_PATH=$(seq 1 2 19999 | paste -sd: -)" "TF_LD_LIBRARY_PATH=$(seq 1 20000 | paste -sd: -)"
        one=/$(head -c 120000 /dev/zero | tr '\0' a)
        check "one 120 KB entry" "$(want "$START" "$L" "$one:/s")" 0 keep LD_LIBRARY_PATH=/s "TF_PREPEND_LD_LIBRARY_PATH=$one"
        ;;
    *)
        fail "unknown case $1"
        ;;
    esac
}

ALL="readme-path readme-ld-preload readme-ld-library-path readme-prepend-path multi unset-target
empty-target empty-parts present existing-kept ld-preload-spaces both children nested huge"
[ "${1:-}" = all ] && set -- $ALL
[ $# -gt 0 ] || { echo "usage: $0 LIB CASE...|all" >&2; exit 2; }
for c; do run_case "$c"; done
if [ $fails -gt 0 ]; then
    echo "$fails of $checks check(s) failed" >&2
    exit 1
fi
echo "ok: $checks checks ($*)${PROBE:+ through $PROBE}"
