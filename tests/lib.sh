# Shared shell helpers for the end-to-end tests (sourced, not run).
# The harness exports FERRY_BINDIR, FERRY_SRCDIR, FERRY_PLUGIN_PATH,
# FERRY_TEST_STATE_DIR and FERRY_TEST_OWNER_PID.
set -u
: "${FERRY_BINDIR:=$PWD}"
: "${FERRY_SRCDIR:=$PWD}"
: "${FERRY_TEST_STATE_DIR:=$PWD/tests/state}"
: "${FERRY_TEST_TIMEOUT_SCALE:=1}"
export FERRY_TEST_STATE_DIR

# A private scratch directory, removed at exit with every process we started.
T=$(mktemp -d "${TMPDIR:-/tmp}/ferry-test.XXXXXX")

. "$FERRY_SRCDIR/tests/wrap.sh"
PRODUCER=$(wrapped "$FERRY_BINDIR/ferry-producer" "$T/wrap")
AGGREGATOR=$(wrapped "$FERRY_BINDIR/ferry-aggregator" "$T/wrap")
VALIDATOR=$(wrapped "$FERRY_BINDIR/ferry-validator" "$T/wrap")
CONFORMANCE=$(wrapped "$FERRY_BINDIR/ferry-conformance" "$T/wrap")
FERRY_PIDS=""
FERRY_AT_EXIT=""
# at_exit CMD: run CMD (a shell command line) when the test ends, before the
# processes it started are killed; the last registered runs first. Stop
# servers the test started this way, so none outlives it.
at_exit() { FERRY_AT_EXIT="$1${FERRY_AT_EXIT:+; $FERRY_AT_EXIT}"; }
# FERRY_TEST_KEEP=1 keeps the scratch directory of a failing test (its
# logs, configs and outputs) and names it on stderr.
cleanup() {
    local rc=$?
    [ -z "$FERRY_AT_EXIT" ] || eval "$FERRY_AT_EXIT"
    for p in $FERRY_PIDS; do kill -9 "$p" 2>/dev/null; done
    wait 2>/dev/null
    if [ "$rc" != 0 ] && [ "${FERRY_TEST_KEEP:-0}" = 1 ]; then
        echo "# kept $T" >&2
    else
        rm -rf "$T"
    fi
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
note() { echo "# $*" >&2; }

# skip REASON: 77, or a hard error when every transport is required
skip() {
    if [ "${FERRY_REQUIRE_ALL_TRANSPORTS:-0}" = 1 ]; then
        echo "ERROR (FERRY_REQUIRE_ALL_TRANSPORTS=1 forbids skipping): $*" >&2
        exit 99
    fi
    echo "SKIP: $*" >&2
    exit 77
}

# need_plugin NAME: the plugin was built in this tree
need_plugin() {
    case " ${FERRY_BUILT_PLUGINS:-} " in
        *" $1 "*) ;;
        *) skip "the $1 plugin is not built (configure found no client library?)" ;;
    esac
}

# Timeouts: every wait and limit a test sets goes through scaled, so
# FERRY_TEST_TIMEOUT_SCALE (a number, fractions allowed) stretches them all
# on a slow or shared machine, or under valgrind.
# scaled N: N (seconds, or any count of time units) times the scale, whole
scaled() { awk -v s="$1" -v k="$FERRY_TEST_TIMEOUT_SCALE" 'BEGIN{printf "%d", s*k}'; }
# deadline SECONDS: prints the epoch second when a wait of SECONDS (scaled) ends
deadline() { echo $(( $(date +%s) + $(scaled "$1") )); }

# wait_for SECONDS CMD...: poll CMD until it succeeds or time runs out
wait_for() {
    local end; end=$(deadline "$1"); shift
    while ! "$@"; do
        [ "$(date +%s)" -lt "$end" ] || return 1
        sleep 0.1
    done
}

# volume N: N messages times FERRY_TEST_VOLUME (default 1; a fraction
# shortens the runs under a slow wrapper such as valgrind), at least 1
volume() { awk -v n="$1" -v v="${FERRY_TEST_VOLUME:-1}" 'BEGIN { n = int(n * v); print n < 1 ? 1 : n }'; }

# lines FILE: number of lines (0 when missing)
lines() { if [ -f "$1" ]; then wc -l < "$1" | tr -d ' '; else echo 0; fi; }

# count_ids FILE FIELD: distinct ids and total lines
distinct_ids() { grep -o "\"$2\":\"[^\"]*\"" "$1" | sort -u | wc -l | tr -d ' '; }
dup_ids() { grep -o "\"$2\":\"[^\"]*\"" "$1" | sort | uniq -d | wc -l | tr -d ' '; }

# free_port: a TCP port nobody listens on now
free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# bg CMD...: start in background, remember the pid in $!
bg() { "$@" & FERRY_PIDS="$FERRY_PIDS $!"; }

# vm_kib PID FIELD: a memory figure of a live process from /proc/PID/status
# in KiB (VmRSS: resident now; VmHWM: the highest resident so far); 0 once
# the process is gone.
vm_kib() {
    local v; v=$(awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status" 2>/dev/null)
    echo "${v:-0}"
}

# rss_sampler PID FILE [INTERVAL]: append "SECONDS_SINCE_START RSS_KIB
# HWM_KIB" to FILE every INTERVAL seconds (default 1) while PID lives; run
# it with bg. The kernel's high-water mark catches peaks between samples.
rss_sampler() {
    local start r h; start=$(date +%s.%N)
    # a libtool wrapper is a shell script until it execs the program
    while case $(readlink "/proc/$1/exe" 2>/dev/null) in */sh | */bash | */dash) true ;; *) false ;; esac; do
        sleep 0.05
    done
    while r=$(vm_kib "$1" VmRSS) && h=$(vm_kib "$1" VmHWM) && [ "$r" -gt 0 ]; do
        echo "$(awk -v s="$start" -v n="$(date +%s.%N)" 'BEGIN{printf "%.1f", n-s}') $r $h" >>"$2"
        sleep "${3:-1}"
    done
}
# peak_kib FILE: the highest high-water mark rss_sampler wrote to FILE
peak_kib() { awk '$3 > m { m = $3 } END { print m + 0 }' "$1" 2>/dev/null || echo 0; }

# under_wrapper: true when the programs run under FERRY_TEST_WRAPPER, whose
# own memory makes resident sizes meaningless
under_wrapper() { [ -n "${FERRY_TEST_WRAPPER:-}" ]; }
