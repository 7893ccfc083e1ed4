# End-to-end tests: the programs over each transport, with private brokers
# (tests/brokers/). A test whose transport or tool is missing skips, which
# FERRY_REQUIRE_ALL_TRANSPORTS=1 turns into a failure. Tests of a transport
# whose plugin configure left out are not run at all.
E2E_TESTS = tests/e2e/config-errors.test tests/e2e/transports.test tests/e2e/zmq-flow.test \
	tests/e2e/etc-configs.test tests/e2e/zmq-conformance.test \
	tests/e2e/options-doc.test tests/e2e/doc-links.test tests/e2e/docker-static.test \
	tests/e2e/aggregator-delay.test tests/e2e/prometheus-rules.test tests/e2e/alert-email.test \
	tests/e2e/exports.test tests/e2e/skeleton-plugin.test tests/e2e/sink-errors.test \
	tests/e2e/retry-amqp.test tests/e2e/retry-kafka.test tests/e2e/retry-zmq.test \
	tests/e2e/http-config.test tests/e2e/http-loopback.test tests/e2e/http-loopback-down.test \
	tests/e2e/http-zmq.test tests/e2e/http-amqp.test tests/e2e/http-kafka.test \
	tests/e2e/http-tls.test tests/e2e/http-seed-api.test \
	tests/e2e/kafka-conformance.test tests/e2e/kafka-flow.test \
	tests/e2e/kafka-share.test tests/e2e/kafka-kill.test \
	tests/e2e/kafka-brokerdown.test tests/e2e/kafka-kcat.test tests/e2e/kafka-dedup.test \
	tests/e2e/kafka-key-share.test tests/e2e/kafka-lag.test \
	tests/e2e/logger-pkgconfig.test tests/e2e/logger-amqp.test tests/e2e/logger-kafka.test \
	tests/e2e/memory-producer-zmq.test tests/e2e/memory-logger-zmq.test \
	tests/e2e/validator-zmq.test tests/e2e/validator-amqp.test \
	tests/e2e/validator-kafka.test tests/e2e/validator-amqp-kill.test
E2E_AMQP_TESTS = tests/e2e/amqp-ops.test tests/e2e/amqp-classic.test tests/e2e/amqp-batch.test tests/e2e/amqp-interop.test \
	tests/e2e/amqp-share.test tests/e2e/amqp-kill.test \
	tests/e2e/amqp-restart.test tests/e2e/amqp-conformance.test \
	tests/e2e/amqp-tls.test tests/e2e/amqp-quorum-unstarted.test
E2E_ZMQ_TESTS = tests/e2e/zmq-oneshot.test tests/e2e/zmq-pyzmq.test tests/e2e/zmq-pyzmq-wire2.test \
	tests/e2e/zmq-reliable-pyzmq.test tests/e2e/zmq-reliable-spool-full.test \
	tests/e2e/zmq-curve.test tests/e2e/config-secrets.test \
	tests/e2e/sink-stdout.test tests/e2e/sink-rotate.test tests/e2e/sink-health.test \
	tests/e2e/sink-reject.test
E2E_KAFKA_TESTS = tests/e2e/kafka-sasl.test
# against a private mosquitto per test (tests/brokers/mosquitto.sh)
E2E_MQTT_TESTS = tests/e2e/mqtt-conformance.test tests/e2e/mqtt-flow.test \
	tests/e2e/mqtt-validator.test tests/e2e/mqtt-share.test tests/e2e/mqtt-session.test \
	tests/e2e/mqtt-tls.test tests/e2e/mqtt-validator-forward.test

TESTS += $(E2E_TESTS)
if HAVE_AMQP
TESTS += $(E2E_AMQP_TESTS)
endif
if HAVE_ZMQ
TESTS += $(E2E_ZMQ_TESTS)
endif
if HAVE_KAFKA
TESTS += $(E2E_KAFKA_TESTS)
endif
if HAVE_MQTT
TESTS += $(E2E_MQTT_TESTS)
endif
# shared helpers of several tests, and the checkers some tests run
EXTRA_DIST += $(E2E_TESTS) $(E2E_AMQP_TESTS) $(E2E_ZMQ_TESTS) $(E2E_KAFKA_TESTS) \
	$(E2E_MQTT_TESTS) tests/e2e/mqtt-lib.sh \
	tests/e2e/amqp-lib.sh tests/e2e/http-lib.sh tests/e2e/http-flow.sh \
	tests/e2e/kafka-lib.sh tests/e2e/logger-lib.sh tests/e2e/memory-lib.sh \
	tests/e2e/retry-lib.sh tests/e2e/validator-lib.sh \
	tests/e2e/docker-static.py tests/e2e/doc-links.py tests/e2e/options-tables.py \
	tests/prometheus/ferry-alerts.test.yml

# untrusted input: JSON text, stdin lines, config lines, plugin names,
# HTTP framing, secrets, slow clients (doc/security.md)
HARDEN_TESTS = tests/e2e/harden-stdin.test tests/e2e/harden-json.test tests/e2e/harden-plugin-name.test tests/e2e/harden-secrets.test tests/e2e/harden-config.test tests/e2e/harden-http-framing.test tests/e2e/harden-slow-clients.test tests/e2e/harden-amqp-toobig.test tests/e2e/harden-zmq-frames.test tests/e2e/harden-http-stamp.test tests/e2e/harden-amqp-idle-health.test tests/e2e/harden-amqp-queue-type.test tests/e2e/file-record-bytes.test \
	tests/e2e/harden-kafka-idle-health.test tests/e2e/harden-amqp-validator-toobig.test
EXTRA_DIST += $(HARDEN_TESTS)
TESTS += $(HARDEN_TESTS)
