# testlib.sh - the helpers every shell test here uses, sourced (". tests/lib/testlib.sh").
#
# Why this exists: the integration, add-path, deploy and glibc scripts each counted failures,
# compared values, read "name=value" fields of a probe's output and polled for a condition; one
# definition keeps them alike (one failure format, one field syntax, one way to wait).
#
# A script calls `fail` for each failed check and ends with `finish`; a failure never stops the
# script, so one run reports every broken check. A script that wants more said on each failure
# (a ledger dump, say) defines on_fail, which fail calls after counting.
# Synchronisation waits on the condition itself (wait_until), never on a fixed sleep: a loaded
# machine makes a fixed sleep too short, and an idle one makes it waste time. A sleep that is
# part of what a case measures (a workload running for a while) stays, saying so.

fails=0

# fail MESSAGE...: count one failed check and say what broke (each line cut to FAIL_WIDTH
# characters where the script sets it: messages that quote whole environments)
fail() {
    if [ -n "${FAIL_WIDTH:-}" ]; then
        echo "FAIL: $*" | cut -c1-"$FAIL_WIDTH" >&2
    else
        echo "FAIL: $*" >&2
    fi
    fails=$((fails + 1))
    if declare -F on_fail >/dev/null; then on_fail; fi
    return 0
}

# ok MESSAGE...: report one passed check
ok() { echo "ok   $*"; }

# expect_eq GOT WANT WHAT
expect_eq() { [ "$1" = "$2" ] || fail "$3: got '$1', expected '$2'"; }

# field NAME TEXT: the number (digits, '.', ',') after "NAME=" in TEXT, one per matching line
field() { sed -n "s/.*\b$1=\([0-9.,]*\).*/\1/p" <<<"$2"; }

# value NAME TEXT: whatever follows "NAME=" in TEXT up to the next blank
value() { sed -n "s/.*\b$1=\([^ ]*\).*/\1/p" <<<"$2"; }

# near VALUE EXPECTED PERCENT WHAT: VALUE within PERCENT % of EXPECTED, else a failure
near() {
    awk -v v="$1" -v e="$2" -v p="$3" 'BEGIN {d = v - e; if (d < 0) d = -d; exit !(d <= e * p / 100)}' ||
        fail "$4: $1, expected $2 within $3%"
}

# wait_until SECONDS COMMAND...: run COMMAND every 50 ms until it succeeds (status 0) or SECONDS
# have passed (status 1). Says nothing: the caller names what it waited for.
wait_until() {
    local end
    end=$(($(date +%s%N) + $(awk -v s="$1" 'BEGIN {printf "%.0f", s * 1e9}')))
    shift
    while :; do
        "$@" && return 0
        [ "$(date +%s%N)" -lt "$end" ] || return 1
        sleep 0.05
    done
}

# wait_for SECONDS WHAT COMMAND...: wait_until, and a failure naming WHAT when it times out
wait_for() {
    local s=$1 what=$2
    shift 2
    wait_until "$s" "$@" && return 0
    fail "waited $s s in vain for: $what"
    return 1
}

# has_line FILE PATTERN COUNT: FILE has at least COUNT lines matching PATTERN
has_line() { [ "$(grep -c -- "$2" "$1" 2>/dev/null)" -ge "$3" ]; }

# finish [PASS_MESSAGE]: print PASS_MESSAGE (default "ok") when nothing failed, and exit with
# the outcome
finish() {
    if [ "$fails" -eq 0 ]; then
        echo "${1:-ok}"
        exit 0
    fi
    echo "$fails check(s) failed" >&2
    exit 1
}
