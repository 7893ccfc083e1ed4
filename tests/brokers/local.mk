# Private brokers for the tests: a RabbitMQ node (amqp-node.sh) and
# librdkafka's mock cluster over real TCP (kafka-mock), each started per
# test run and stopped when it ends. Every server a helper starts is
# registered (servers.sh); at the end of `make check`, stop-servers.sh stops
# the shared brokers and fails if a test left any other server running.
EXTRA_DIST += tests/brokers/ensure-amqp.sh tests/brokers/amqp-node.sh tests/brokers/amqp-cluster.sh \
	tests/brokers/rabbitmq-lib.sh \
	tests/brokers/ensure-kafka.sh tests/brokers/kafka-ctl.sh \
	tests/brokers/servers.sh tests/brokers/stop-servers.sh tests/brokers/mosquitto.sh tests/brokers/pg-node.sh

# check-local runs in the same make as check-TESTS: after it, by this rule.
check-local: check-TESTS
	@$(SHELL) $(top_srcdir)/tests/brokers/stop-servers.sh '$(abs_top_builddir)/tests/state'
if HAVE_KAFKA
check_PROGRAMS += tests/brokers/kafka-mock
tests_brokers_kafka_mock_SOURCES = tests/brokers/kafka-mock.c
tests_brokers_kafka_mock_CPPFLAGS = $(AM_CPPFLAGS) $(KAFKA_CFLAGS)
tests_brokers_kafka_mock_LDADD = $(KAFKA_LIBS)
endif
