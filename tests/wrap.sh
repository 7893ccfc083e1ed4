# FERRY_TEST_WRAPPER (e.g. "valgrind --error-exitcode=97 ..."): run the
# programs under test through it (sourced by tests/lib.sh and amqp-lib.sh).
# Programs linked against the uninstalled libferry are libtool wrapper
# scripts; `libtool --mode=execute` runs the real binary under the wrapper
# with the same pid, so tests can still signal and measure it.

# wrapped PROGRAM DIR: print PROGRAM, or a script in DIR that runs it under
# FERRY_TEST_WRAPPER when that is set.
wrapped() {
    if [ -z "${FERRY_TEST_WRAPPER:-}" ]; then
        echo "$1"
        return 0
    fi
    mkdir -p "$2" || return 1
    local w; w="$2/$(basename "$1")"
    {
        echo '#!/bin/sh'
        echo "exec \"${FERRY_BINDIR:-$PWD}/libtool\" --mode=execute $FERRY_TEST_WRAPPER \"$1\" \"\$@\""
    } >"$w"
    chmod +x "$w"
    echo "$w"
}
