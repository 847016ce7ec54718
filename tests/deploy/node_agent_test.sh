#!/usr/bin/env bash
# node_agent_test.sh - scripts/vgpu-node-agent against temporary directories (CTest
# deploy_node_agent).
#
# Why this exists: the agent runs as root on a host directory that every GPU pod loads its
# limiter from. A mistake there either shows pods a half-written library (a process that
# cannot preload the limiter runs without limits) or writes as root through a symlink. So this
# checks the layout, that a reader of DIR/lib never sees a missing or partial file while the
# agent re-installs 20 times, idempotence, the removal of old versions, and that planted
# symlinks are never followed. The daemon it would exec is a fake that records its arguments.
#
#   node_agent_test.sh [AGENT]     (default: scripts/vgpu-node-agent of this tree)

# "CHECK && ok ... || fail ...": ok only echoes, so fail runs exactly when CHECK fails
# shellcheck disable=SC2015
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
AGENT=${1:-$HERE/../../scripts/vgpu-node-agent}
[ -x "$AGENT" ] || {
    echo "FAIL: agent $AGENT is not executable" >&2
    exit 1
}
T=$(mktemp -d)
READER_PID=""
cleanup() {
    if [ -n "$READER_PID" ]; then kill "$READER_PID" 2>/dev/null || true; fi
    rm -rf -- "$T"
}
trap cleanup EXIT

. "$(dirname "$0")/../lib/testlib.sh"
# must CMD...: the command succeeds, else the test stops (what follows depends on it)
must() {
    "$@" || {
        echo "FAIL (fatal): $*" >&2
        exit 1
    }
}

SRC=$T/image/opt/vgpu/lib # what the image holds
DIR=$T/host/usr/local/vgpu # the host directory as the agent sees it
OUTSIDE=$T/outside        # a directory planted symlinks point to: must never change
mkdir -p "$SRC" "$OUTSIDE" "$T/bin" "$(dirname "$DIR")" "$T/proc/1"
echo "22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw" >"$T/proc/1/mountinfo"
echo "9.8.7" >"$T/image/opt/vgpu/VERSION"
echo "precious" >"$OUTSIDE/victim"

# a fake daemon on PATH under the real name: records its pid and arguments
cat >"$T/bin/vgpu-hypervisor" <<EOF
#!/bin/sh
echo "\$\$" >"$T/fake.pid"
printf '%s\n' "\$@" >"$T/fake.args"
EOF
chmod +x "$T/bin/vgpu-hypervisor"

# make_libs GEN: the image's two libraries for generation GEN. Each file is "BEGIN GEN name",
# 64 KiB of filler, "END GEN name": a reader can tell a whole file from a partial one.
PAD=$(head -c 65536 /dev/zero | tr '\0' 'x')
make_libs() {
    local g=$1 f
    for f in libcuda_limiter.so libadd_path.so; do
        printf 'BEGIN %s %s\n%s\nEND %s %s\n' "$g" "$f" "$PAD" "$g" "$f" >"$SRC/$f"
    done
}
# whole FILE NAME: FILE's content is one complete generation of library NAME
whole() {
    local c g
    c=$(cat -- "$1" 2>/dev/null) || return 1
    g=${c%%$'\n'*}
    g=${g#BEGIN }
    g=${g% "$2"}
    [ -n "$g" ] && [ "$c" = "BEGIN $g $2"$'\n'"$PAD"$'\n'"END $g $2" ]
}
expected_name() { # the version directory the agent should make for the image's files now
    echo "9.8.7-$(cd "$SRC" && sha256sum libcuda_limiter.so libadd_path.so | sha256sum | cut -c1-16)"
}
# --proc: a /proc of our own, where a test plants a container's mount of a version
agent() { PATH="$T/bin:$PATH" "$AGENT" --host-lib-dir "$DIR" --src-dir "$SRC" --proc "$T/proc" "$@"; }
versions() { # the version directories in DIR, sorted
    find "$DIR" -mindepth 1 -maxdepth 1 -type d -name '*-????????????????' -printf '%f\n' | sort
}
entries() { find "$1" -mindepth 1 -maxdepth 1 -printf '%f\n' | sort | paste -sd' '; }
snapshot() { # inode, mtime and ctime of everything in DIR (nothing rewritten: same snapshot)
    find "$DIR" -printf '%p %y %i %T@ %C@ %l\n' | sort
}

# --- the checker itself catches what it must --------------------------------------------------------
make_libs g0
if whole "$SRC/libadd_path.so" libadd_path.so; then ok "checker: a whole file passes"; else fail "checker rejects a whole file"; fi
head -c 40000 "$SRC/libadd_path.so" >"$T/partial"
if whole "$T/partial" libadd_path.so; then fail "checker accepts a partial file"; else ok "checker: a partial file is caught"; fi
if whole "$T/nonexistent" libadd_path.so; then fail "checker accepts a missing file"; else ok "checker: a missing file is caught"; fi

# --- first install: layout, then exec of the daemon with the arguments after -- ------------------
make_libs g1
N1=$(expected_name)
# a simple command in the background: its pid is the agent's own (no subshell in between)
PATH="$T/bin:$PATH" "$AGENT" --host-lib-dir "$DIR" --src-dir "$SRC" --proc "$T/proc" \
    -- vgpu-hypervisor --config /etc/vgpu/vgpu.ini "an arg with spaces" >"$T/agent.log" 2>&1 &
apid=$!
wait "$apid" || fail "first install exited $?: $(cat "$T/agent.log")"
[ "$(cat "$T/fake.args" 2>/dev/null)" = $'--config\n/etc/vgpu/vgpu.ini\nan arg with spaces' ] &&
    ok "execs the command after -- (vgpu-hypervisor, found on PATH) with its arguments" ||
    fail "daemon arguments: $(cat "$T/fake.args" 2>/dev/null)"
[ "$(cat "$T/fake.pid" 2>/dev/null)" = "$apid" ] && ok "exec replaces the agent (same pid $apid)" ||
    fail "the daemon ran as pid $(cat "$T/fake.pid" 2>/dev/null), not the agent's $apid (no exec)"
[ "$(versions)" = "$N1" ] && ok "one version directory, named <version>-<sha256 prefix>: $N1" ||
    fail "version directories: $(versions | paste -sd' ') (expected $N1)"
[ -L "$DIR/lib" ] && [ "$(readlink "$DIR/lib")" = "$N1" ] && ok "lib is a relative symlink to it" ||
    fail "lib: $(ls -ld "$DIR/lib" 2>&1)"
[ "$(entries "$DIR")" = "$N1 lib" ] && ok "nothing else in DIR (no temporary names left)" ||
    fail "DIR holds: $(entries "$DIR")"
[ "$(entries "$DIR/$N1")" = "libadd_path.so libcuda_limiter.so" ] &&
    cmp -s "$SRC/libcuda_limiter.so" "$DIR/lib/libcuda_limiter.so" &&
    cmp -s "$SRC/libadd_path.so" "$DIR/lib/libadd_path.so" &&
    ok "the version holds exactly the two libraries, equal to the image's" ||
    fail "version content: $(ls -lA "$DIR/$N1")"
[ "$(stat -c %a "$DIR/$N1")" = 755 ] && [ "$(stat -c %a "$DIR/$N1/libcuda_limiter.so")" = 644 ] &&
    [ "$(stat -c %a "$DIR/$N1/libadd_path.so")" = 644 ] &&
    ok "modes 0755 (directory) and 0644 (libraries): readable by pods of any user" ||
    fail "modes: $(stat -c '%n %a' "$DIR/$N1" "$DIR/$N1"/*)"

rm -f "$T/fake.args"
agent >"$T/agent.log" 2>&1 || fail "run without a command exited $?: $(cat "$T/agent.log")"
[ -e "$T/fake.args" ] && [ "$(cat "$T/fake.args")" = "" ] && ok "without a command after --: vgpu-hypervisor, no arguments" ||
    fail "without a command: the daemon was not run, or with arguments: $(cat "$T/fake.args" 2>&1)"

# --- idempotent: the same content again rewrites nothing ------------------------------------------
before=$(snapshot)
agent --install-only >"$T/agent.log" 2>&1 || fail "second run exited $?: $(cat "$T/agent.log")"
[ "$(snapshot)" = "$before" ] && ok "same content: nothing in DIR rewritten (inodes, mtimes, ctimes)" ||
    fail "same content rewrote: $(diff <(echo "$before") <(snapshot) | head -5)"

# --- a version whose files were damaged is put right ----------------------------------------------
truncate -s 100 "$DIR/$N1/libadd_path.so"
agent --install-only >"$T/agent.log" 2>&1 || fail "repair run exited $?: $(cat "$T/agent.log")"
cmp -s "$SRC/libadd_path.so" "$DIR/lib/libadd_path.so" && [ "$(readlink "$DIR/lib")" = "$N1" ] &&
    ok "a truncated library in the current version is replaced whole" ||
    fail "damaged version not repaired: $(ls -l "$DIR/lib/")"

# --- new content: lib switches, lib.prev keeps the old one, older ones go --------------------------
make_libs g2
N2=$(expected_name)
echo "keep me" >"$DIR/README.operator"    # not ours: must stay
mkdir -p "$DIR/notes-dir"                 # not of our name form: must stay
agent --install-only >"$T/agent.log" 2>&1 || fail "upgrade exited $?: $(cat "$T/agent.log")"
[ "$(readlink "$DIR/lib")" = "$N2" ] && [ "$(readlink "$DIR/lib.prev")" = "$N1" ] &&
    ok "upgrade: lib -> $N2, lib.prev -> $N1" ||
    fail "upgrade: lib -> $(readlink "$DIR/lib"), lib.prev -> $(readlink "$DIR/lib.prev" 2>&1)"
make_libs g3
N3=$(expected_name)
agent --install-only >"$T/agent.log" 2>&1 || fail "second upgrade exited $?: $(cat "$T/agent.log")"
[ "$(versions | paste -sd' ')" = "$(printf '%s\n' "$N2" "$N3" | sort | paste -sd' ')" ] &&
    [ "$(readlink "$DIR/lib")" = "$N3" ] && [ "$(readlink "$DIR/lib.prev")" = "$N2" ] &&
    ok "old versions removed except the previous one ($N1 gone)" ||
    fail "after two upgrades: versions $(versions | paste -sd' '), lib -> $(readlink "$DIR/lib")"
[ -f "$DIR/README.operator" ] && [ -d "$DIR/notes-dir" ] && ok "names in DIR that are not the agent's stay" ||
    fail "the agent removed files that are not its own"
rm -rf "$DIR/README.operator" "$DIR/notes-dir"
# a version a container still has mounted (its /proc/PID/mountinfo names it) is kept
# until no process has it mounted any more
mkdir -p "$T/proc/4242"
printf '%s\n' "22 1 8:1 / / rw - ext4 /dev/sda1 rw" \
    "1234 1200 8:1 /usr/local/vgpu/$N2 /usr/local/vgpu/lib ro,nosuid,nodev,relatime master:1 - ext4 /dev/sda1 rw" \
    >"$T/proc/4242/mountinfo"
make_libs g4
N4=$(expected_name)
agent --install-only >"$T/agent.log" 2>&1 || fail "upgrade with a mounted version exited $?: $(cat "$T/agent.log")"
make_libs g5
N5=$(expected_name)
agent --install-only >"$T/agent.log" 2>&1 || fail "upgrade with a mounted version exited $?: $(cat "$T/agent.log")"
[ "$(versions | paste -sd' ')" = "$(printf '%s\n' "$N2" "$N4" "$N5" | sort | paste -sd' ')" ] &&
    [ "$(readlink "$DIR/lib")" = "$N5" ] &&
    ok "a version a container has mounted ($N2) outlives two upgrades; $N3 (not mounted) is gone" ||
    fail "with $N2 mounted: versions $(versions | paste -sd' ')"
rm -rf "$T/proc/4242"
agent --install-only >"$T/agent.log" 2>&1 || fail "run after the container went exited $?: $(cat "$T/agent.log")"
[ "$(versions | paste -sd' ')" = "$(printf '%s\n' "$N4" "$N5" | sort | paste -sd' ')" ] &&
    ok "once no process has it mounted, the next start removes it" ||
    fail "after the container went: versions $(versions | paste -sd' ')"
# back to an earlier content (a rollback) is a new switch, not a no-op
make_libs g4
agent --install-only >"$T/agent.log" 2>&1 || fail "rollback exited $?: $(cat "$T/agent.log")"
[ "$(readlink "$DIR/lib")" = "$N4" ] && [ "$(readlink "$DIR/lib.prev")" = "$N5" ] &&
    ok "rollback to $N4: lib -> $N4, lib.prev -> $N5" ||
    fail "rollback: lib -> $(readlink "$DIR/lib"), lib.prev -> $(readlink "$DIR/lib.prev" 2>&1)"

# --- a concurrent reader never sees a missing or partial file during 20 re-installs ---------------
# The reader opens the libraries through DIR/lib as a process would (each open resolves the
# symlink); every read must be a whole file of one generation and the directory must list
# exactly the two libraries.
reader() {
    local n=0 bad=0 f
    while [ ! -e "$T/stop" ]; do
        [ $n -ne 2 ] || : >"$T/reader.started" # one round of reads done
        for f in libcuda_limiter.so libadd_path.so; do
            whole "$DIR/lib/$f" "$f" || {
                echo "partial or missing $f (after $n reads)" >>"$T/reader.err"
                bad=$((bad + 1))
            }
            n=$((n + 1))
        done
        l=$(ls -A "$DIR/lib/" 2>&1) || true
        [ "$l" = $'libadd_path.so\nlibcuda_limiter.so' ] ||
            echo "listing: $(echo "$l" | paste -sd' ')" >>"$T/reader.err"
    done
    echo "$n" >"$T/reader.count"
}
rm -f "$T/reader.err" "$T/reader.count" "$T/stop" "$T/reader.started"
reader &
READER_PID=$!
wait_for 10 "the reader's first reads" test -e "$T/reader.started"
for i in $(seq 1 20); do
    make_libs "r$i"
    agent --install-only >"$T/agent.log" 2>&1 || fail "re-install $i exited $?: $(cat "$T/agent.log")"
    sleep 0.05 # part of the check: the reader gets reads in between the re-installs
done
touch "$T/stop"
wait "$READER_PID" || fail "the reader failed"
READER_PID=""
reads=$(cat "$T/reader.count" 2>/dev/null || echo 0)
if [ -s "$T/reader.err" ]; then
    fail "the reader saw $(wc -l <"$T/reader.err") bad states, e.g. $(head -3 "$T/reader.err" | paste -sd';')"
elif [ "$reads" -lt 40 ]; then
    fail "the reader made only $reads reads: the check proves nothing"
else
    ok "20 re-installs with new content: $reads reads through lib, none missing or partial"
fi
[ "$(versions | wc -l)" = 2 ] && ok "after them: 2 versions left (current and previous)" ||
    fail "after 20 re-installs: $(versions | wc -l) versions"

# --- planted symlinks are never followed or written through ---------------------------------------
make_libs p1
NP=$(expected_name)
before_outside=$(cd "$OUTSIDE" && find . -printf '%p %y %s %T@\n' | sort; sha256sum victim)
plant() { rm -f -- "$DIR/$1" && ln -sT -- "$OUTSIDE" "$DIR/$1"; }
plant lib.new           # the fixed temporary name of the switch
plant lib.prev.new
plant .tmp.AAAAAAAAAA   # a temporary name of the agent's form
plant "$NP"             # the very name the new version will get
plant lib.prev          # the previous version, pointing outside
plant lib               # the current version, pointing outside (absolute)
agent --install-only >"$T/agent.log" 2>&1 || fail "run with planted symlinks exited $?: $(cat "$T/agent.log")"
after_outside=$(cd "$OUTSIDE" && find . -printf '%p %y %s %T@\n' | sort; sha256sum victim)
[ "$after_outside" = "$before_outside" ] && ok "planted symlinks: nothing written, removed or added outside DIR" ||
    fail "the directory outside changed: $(diff <(echo "$before_outside") <(echo "$after_outside") | head -5)"
[ -d "$DIR/$NP" ] && [ ! -L "$DIR/$NP" ] && [ "$(readlink "$DIR/lib")" = "$NP" ] &&
    cmp -s "$SRC/libcuda_limiter.so" "$DIR/lib/libcuda_limiter.so" &&
    ok "a symlink at the version's name is replaced by the real directory; lib -> $NP" ||
    fail "after planted symlinks: $(ls -lA "$DIR")"
left=$(find "$DIR" -mindepth 1 -maxdepth 1 \( -name '.tmp.*' -o -name lib.new -o -name lib.prev.new \) -printf '%f ')
[ -z "$left" ] && ok "planted temporary names removed (as links, not followed)" || fail "left in DIR: $left"
if [ -L "$DIR/lib.prev" ]; then
    fail "lib.prev still points outside DIR: $(readlink "$DIR/lib.prev")"
else
    ok "a lib.prev pointing outside DIR is dropped, its target kept"
fi
# lib -> ../something (relative, out of DIR): never taken as a version, its target never removed
mkdir -p "$T/host/usr/local/sibling-0123456789abcdef"
echo x >"$T/host/usr/local/sibling-0123456789abcdef/f"
rm -f "$DIR/lib" && ln -sT ../sibling-0123456789abcdef "$DIR/lib"
make_libs p2
agent --install-only >"$T/agent.log" 2>&1 || fail "run with lib -> ../ exited $?: $(cat "$T/agent.log")"
[ -f "$T/host/usr/local/sibling-0123456789abcdef/f" ] && [ "$(readlink "$DIR/lib")" = "$(expected_name)" ] &&
    ! [ -e "$DIR/lib.prev" ] && ! [ -L "$DIR/lib.prev" ] && ok "lib -> ../x: replaced, x neither kept as lib.prev nor removed" ||
    fail "lib -> ../x: $(ls -lA "$DIR")"

# --- refusals: DIR a symlink, DIR writable by others, a version unfit for a file name -----------
mkdir -p "$T/real"
ln -s "$T/real" "$T/linkdir"
if PATH="$T/bin:$PATH" "$AGENT" --host-lib-dir "$T/linkdir" --src-dir "$SRC" --install-only >"$T/agent.log" 2>&1; then
    fail "DIR given as a symlink was accepted"
elif [ -n "$(ls -A "$T/real")" ]; then
    fail "DIR given as a symlink: files written through it: $(ls -A "$T/real")"
else
    ok "DIR that is a symlink: refused, nothing written through it"
fi
mkdir -p "$T/open" && chmod 0777 "$T/open"
if PATH="$T/bin:$PATH" "$AGENT" --host-lib-dir "$T/open" --src-dir "$SRC" --install-only >"$T/agent.log" 2>&1; then
    fail "a world-writable DIR was accepted"
else
    ok "DIR writable by others: refused ($(tail -1 "$T/agent.log"))"
fi
if agent --version "../../etc" --install-only >"$T/agent.log" 2>&1; then
    fail "version '../../etc' was accepted"
else
    ok "a version that is not a plain name: refused"
fi
rm -f "$T/fake.args"
if PATH="$T/bin:$PATH" "$AGENT" --host-lib-dir "$DIR" --src-dir "$T/nonexistent" --version 1 \
    -- vgpu-hypervisor x >"$T/agent.log" 2>&1; then
    fail "a missing --src-dir was accepted"
elif [ -e "$T/fake.args" ] && [ "$(cat "$T/fake.args")" = x ]; then
    fail "the daemon was started although the libraries could not be installed"
else
    ok "libraries missing from the image: exits non-zero without starting the daemon"
fi

finish "node_agent_test: all passed"
