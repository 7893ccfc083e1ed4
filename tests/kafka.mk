# Kafka tests: the mock cluster host, unit tests of the plugin's helpers and
# end-to-end scripts against the mock (or FERRY_TEST_KAFKA_BROKERS).
EXTRA_DIST += tests/brokers/ensure-kafka.sh tests/brokers/kafka-ctl.sh

if HAVE_KAFKA
check_PROGRAMS += tests/brokers/kafka-mock
tests_brokers_kafka_mock_SOURCES = tests/brokers/kafka-mock.c
tests_brokers_kafka_mock_CPPFLAGS = $(AM_CPPFLAGS) $(KAFKA_CFLAGS)
tests_brokers_kafka_mock_LDADD = $(KAFKA_LIBS)

if HAVE_CHECK
check_PROGRAMS += tests/unit/check_kafka
TESTS += tests/unit/check_kafka
tests_unit_check_kafka_SOURCES = tests/unit/check_kafka.c plugins/kafka/status.c plugins/kafka/security.c \
	plugins/kafka/offsets.c
tests_unit_check_kafka_CPPFLAGS = $(AM_CPPFLAGS) $(KAFKA_CFLAGS) $(CHECK_CFLAGS)
tests_unit_check_kafka_LDADD = $(KAFKA_LIBS) $(CHECK_LIBS)
endif
endif

KAFKA_E2E_TESTS = tests/e2e/kafka-conformance.test tests/e2e/kafka-flow.test \
	tests/e2e/kafka-share.test tests/e2e/kafka-kill.test \
	tests/e2e/kafka-brokerdown.test tests/e2e/kafka-kcat.test tests/e2e/kafka-dedup.test \
	tests/e2e/kafka-key-share.test tests/e2e/kafka-lag.test
TESTS += $(KAFKA_E2E_TESTS)
EXTRA_DIST += $(KAFKA_E2E_TESTS) tests/e2e/kafka-lib.sh
