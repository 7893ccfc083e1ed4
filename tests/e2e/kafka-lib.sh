# Shared set-up of the Kafka end-to-end tests (sourced after tests/lib.sh):
# a cluster address, a config file and a unique topic with PARTS partitions.
need_plugin kafka
KAFKA_BROKERS=$("$FERRY_SRCDIR/tests/brokers/ensure-kafka.sh") || skip "no Kafka cluster: see above"
KAFKA_CTL="$FERRY_SRCDIR/tests/brokers/kafka-ctl.sh"
KAFKA_CONF="$T/kafka.conf"
cat > "$KAFKA_CONF" <<CONF
[transport]
plugin = kafka
[kafka]
brokers = $KAFKA_BROKERS
; a member killed or gone is forgotten only after its session timeout
session_timeout = 6s
commit_interval = 200ms
CONF

# kafka_topic NAME PARTS: create NAME with PARTS partitions on the mock
# (on a real cluster the plugin creates missing topics with `partitions`;
# a mock started elsewhere is reached at FERRY_TEST_KAFKA_CONTROL).
kafka_topic() {
    if [ -n "${FERRY_TEST_KAFKA_BROKERS:-}" ] && [ -z "${FERRY_TEST_KAFKA_CONTROL:-}" ]; then
        # once in the file (a second topic would repeat the key, an error)
        sed -i '/^partitions = /d' "$KAFKA_CONF"
        printf 'partitions = %s\n' "$2" >> "$KAFKA_CONF"
    else
        "$KAFKA_CTL" create-topic "$1" "$2" || fail "cannot create topic $1"
    fi
}

# ids FILE: number of distinct message ids in FILE
ids() { if [ -f "$1" ]; then distinct_ids "$1" id; else echo 0; fi; }
