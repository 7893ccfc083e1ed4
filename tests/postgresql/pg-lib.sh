# PostgreSQL helpers for the tests (sourced after tests/lib.sh).
# pg_start NAME: a private server of this test's own (state under
# $FERRY_TEST_STATE_DIR/pg-NAME), stopped when the test exits; sets PG_NODE
# (the helper, with this state) and PG_CONNINFO. Skips only when PostgreSQL
# is not installed; any other failure to start it fails the test.
need_postgresql() {
    case " ${FERRY_BUILT_SINKS:-} " in
        *" postgresql "*) ;;
        *) skip "the postgresql sink is not built (configure found no libpq: apt-get install libpq-dev)" ;;
    esac
}

pg_start() {
    export FERRY_PG_NODE_STATE="$FERRY_TEST_STATE_DIR/pg-$1"
    PG_NODE="$FERRY_SRCDIR/tests/brokers/pg-node.sh"
    local rc
    PG_CONNINFO=$("$PG_NODE" start)
    rc=$?
    [ "$rc" = 77 ] && skip "PostgreSQL is not installed: see $FERRY_PG_NODE_STATE/log"
    [ "$rc" = 0 ] || fail "PostgreSQL did not start: see $FERRY_PG_NODE_STATE/log"
    trap 'pg_cleanup' EXIT
    export PG_NODE PG_CONNINFO
}

pg_cleanup() {
    cleanup
    "$PG_NODE" stop >/dev/null 2>&1
}

# psqlq SQL: one query, unaligned output
psqlq() { "$PG_NODE" psql -c "$1"; }
