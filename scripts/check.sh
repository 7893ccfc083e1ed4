#!/bin/sh
# Run every test: install the test dependencies (brokers included), build,
# then run each suite in turn. The tests start and stop their own private
# RabbitMQ node and Kafka mock cluster. Set FERRY_REQUIRE_ALL_TRANSPORTS=1
# to turn any skipped transport into a failure.
#
# Usage: scripts/check.sh [SUITE...]      (default, or all: every suite below,
#                                          in this order, as CI runs them)
#   format      make format-check: every C file matches .clang-format
#   check       make check in build/: unit, conformance and end-to-end tests
#   faults      make check-faults: SIGKILL, broker restart, cut connections, full disk
#   valgrind    make check-valgrind: end-to-end tests with every program under memcheck
#   sanitizers  make check again, built with ASan + UBSan in build-san/
#   fuzz        make fuzz: each libFuzzer target for FUZZ_SECONDS (default 60)
#   bench       make bench-check: instructions per message of each ferry path
#               under callgrind, within 10 % of bench/results/icount-baseline.tsv
#   docker      make docker-smoke: the images build (base made with debootstrap
#               when no registry answers), the zmq and amqp compose profiles
#               deliver between containers; FERRY_DOCKER_CHECK=full runs
#               make docker-check instead (every test inside containers).
#               Needs root; starts dockerd if none runs (doc/docker.md)
# Every suite runs even when an earlier one failed; the exit status is 1
# if any failed, and the failing suite's log is printed.
set -eu
cd "$(dirname "$0")/.."
suites=${*:-all}
[ "$suites" != all ] || suites="format check faults valgrind sanitizers fuzz bench docker"
for s in $suites; do
    case $s in
        format|check|faults|valgrind|sanitizers|fuzz|bench|docker) ;;
        *) echo "check: unknown suite '$s' (format, check, faults, valgrind, sanitizers, fuzz, bench, docker, all)" >&2; exit 64 ;;
    esac
done
case " $suites " in
    *" fuzz "*) sh scripts/install-deps.sh all ;;
    *) sh scripts/install-deps.sh test ;;
esac
case " $suites " in
    *" docker "*) sh scripts/install-deps.sh docker ;;
esac
sh scripts/build.sh

failed=""
run_suite() {
    name=$1 log=$2
    shift 2
    start=$(date +%s)
    echo "=== check: $name"
    if "$@"; then
        echo "=== check: $name passed in $(( $(date +%s) - start ))s"
    else
        echo "=== check: $name FAILED after $(( $(date +%s) - start ))s"
        [ -z "$log" ] || [ ! -f "$log" ] || cat "$log"
        failed="$failed $name"
    fi
}

for s in $suites; do
    case $s in
        format) run_suite format "" make -C build format-check ;;
        check) run_suite check build/test-suite.log make -C build -j2 check ;;
        # one at a time: each test restarts or starves a broker
        faults) run_suite faults build/test-suite.log make -C build check-faults ;;
        valgrind) run_suite valgrind build/test-suite.log make -C build check-valgrind ;;
        sanitizers) run_suite sanitizers build-san/test-suite.log sh scripts/check-sanitizers.sh ;;
        fuzz) run_suite fuzz "" make -C build -j2 fuzz FUZZ_SECONDS="${FUZZ_SECONDS:-60}" ;;
        bench) run_suite bench "" make -C build bench-check ;;
        docker)
            if [ "${FERRY_DOCKER_CHECK:-smoke}" = full ]; then
                run_suite docker "" make -C build docker-check
            else
                run_suite docker "" make -C build docker-smoke
            fi ;;
    esac
done
if [ -n "$failed" ]; then
    echo "check: failed:$failed" >&2
    exit 1
fi
echo "check: all passed ($suites)"
