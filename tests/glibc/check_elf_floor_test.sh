#!/usr/bin/env bash
# check_elf_floor_test.sh - scripts/check-elf --max-glibc: refuses an object that needs a glibc
# symbol version above the floor, naming version and symbols; passes the injected libraries at
# 2.17; rejects a malformed version.
#
#   check_elf_floor_test.sh NEEDS_NEW_SO [LIBRARY...]
#
# NEEDS_NEW_SO: needs_new_glibc.c built for this host. LIBRARYs (the injected libraries; none in a
# sanitized build, where they need the sanitizer runtimes) must pass --libc-only --max-glibc 2.17.
set -u
CHECK=$(dirname "$0")/../../scripts/check-elf
NEW=$1
shift
case $(uname -m) in
x86_64) arch=x64 ;;
aarch64) arch=arm64 ;;
*) echo "SKIP: check-elf knows no $(uname -m)"; exit 77 ;;
esac
. "$(dirname "$0")/../lib/testlib.sh"

newest=$(readelf -V "$NEW" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1)
if [ "$(printf '%s\n' "${newest#GLIBC_}" 2.17 | sort -V | tail -1)" = 2.17 ]; then
    echo "SKIP: this host's glibc builds no object above GLIBC_2.17 (pthread_create is $newest)"
    exit 77
fi

out=$("$CHECK" --max-glibc 2.17 "$arch" "$NEW" 2>&1)
rc=$?
[ $rc = 1 ] || fail "an object needing $newest passed --max-glibc 2.17 (rc $rc): $out"
grep -q "$newest (.*pthread_create" <<<"$out" || fail "the failure does not name $newest and pthread_create: $out"

out=$("$CHECK" --max-glibc "${newest#GLIBC_}" "$arch" "$NEW" 2>&1) ||
    fail "the same object failed --max-glibc ${newest#GLIBC_}: $out"

for bad in 2 2.x abc ""; do
    out=$("$CHECK" --max-glibc "$bad" "$arch" "$NEW" 2>&1)
    rc=$?
    if [ $rc != 2 ] || ! grep -q -- "--max-glibc" <<<"$out"; then fail "--max-glibc '$bad': rc $rc, $out"; fi
done

for lib; do
    out=$("$CHECK" --libc-only --max-glibc 2.17 "$arch" "$lib" 2>&1) || fail "$out"
done

finish "ok: check-elf --max-glibc refuses $newest and passes ${#} injected librar(ies) at 2.17"
