#!/bin/sh
# Build in build-san/ with AddressSanitizer and UndefinedBehaviorSanitizer
# and run `make check` there; any report fails the run.
# Usage: scripts/check-sanitizers.sh [make check arguments...]
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
[ -x "$src/configure" ] || (cd "$src" && autoreconf -fi)
mkdir -p "$src/build-san"
cd "$src/build-san"
[ -f Makefile ] || "$src/configure" --enable-sanitizers
make -j"$(nproc)"
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1:abort_on_error=0}
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export ASAN_OPTIONS UBSAN_OPTIONS
exec make -j"$(nproc)" check "$@"
