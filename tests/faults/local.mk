# Fault injection: not part of `make check` (they restart brokers and take
# minutes); `make check-faults` runs them through the same harness.
FAULT_TESTS = tests/faults/amqp-kill.test tests/faults/amqp-restart.test \
	tests/faults/amqp-cut.test tests/faults/amqp-diskfull.test \
	tests/faults/kafka-kill.test tests/faults/kafka-restart.test \
	tests/faults/kafka-cut.test tests/faults/kafka-diskfull.test \
	tests/faults/zmq-kill.test tests/faults/zmq-cut.test tests/faults/zmq-diskfull.test \
	tests/faults/zmq-reliable-kill.test tests/faults/zmq-reliable-cut.test \
	tests/faults/zmq-reliable-producer-kill.test tests/faults/zmq-reliable-share.test \
	tests/faults/zmq-reliable-fanin.test \
	tests/faults/mqtt-queue-limit.test \
	tests/faults/amqp-pg-kill.test tests/faults/kafka-pg-kill.test \
	tests/faults/amqp-pg-restart.test \
	tests/faults/grpc-kill.test tests/faults/webhook-kill.test
# bounded memory with a broker stopped (private RabbitMQ node, private Kafka mock)
FAULT_TESTS += tests/faults/amqp-memory.test tests/faults/kafka-memory.test
# a three-node RabbitMQ cluster (tests/brokers/amqp-cluster.sh): SIGKILL of
# the node the clients use, a quorum queue
FAULT_TESTS += tests/faults/amqp-cluster-failover.test
# three Kafka brokers (mock), replication 3, one down mid-stream
FAULT_TESTS += tests/faults/kafka-cluster-failover.test
EXTRA_DIST += $(FAULT_TESTS) tests/faults/faults.sh \
	tests/faults/cutproxy.py tests/faults/pg.sh
check-faults:
	$(MAKE) $(AM_MAKEFLAGS) check TESTS="$(FAULT_TESTS)"
.PHONY: check-faults

