# Private brokers for the tests: a RabbitMQ node (amqp-node.sh) and
# librdkafka's mock cluster over real TCP (kafka-mock), each started per
# test run and stopped when it ends.
EXTRA_DIST += tests/brokers/ensure-amqp.sh tests/brokers/amqp-node.sh \
	tests/brokers/ensure-kafka.sh tests/brokers/kafka-ctl.sh
if HAVE_KAFKA
check_PROGRAMS += tests/brokers/kafka-mock
tests_brokers_kafka_mock_SOURCES = tests/brokers/kafka-mock.c
tests_brokers_kafka_mock_CPPFLAGS = $(AM_CPPFLAGS) $(KAFKA_CFLAGS)
tests_brokers_kafka_mock_LDADD = $(KAFKA_LIBS)
endif
