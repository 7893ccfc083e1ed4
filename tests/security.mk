# Security tests: CURVE for zmq, TLS for amqp, secrets handling.
SECURITY_ZMQ_TESTS = tests/e2e/zmq-curve.test tests/e2e/config-secrets.test
EXTRA_DIST += $(SECURITY_ZMQ_TESTS)
if HAVE_ZMQ
TESTS += $(SECURITY_ZMQ_TESTS)
endif
SECURITY_AMQP_TESTS = tests/e2e/amqp-tls.test
EXTRA_DIST += $(SECURITY_AMQP_TESTS)
if HAVE_AMQP
TESTS += $(SECURITY_AMQP_TESTS)
endif
SECURITY_KAFKA_TESTS = tests/e2e/kafka-sasl.test
EXTRA_DIST += $(SECURITY_KAFKA_TESTS)
if HAVE_KAFKA
TESTS += $(SECURITY_KAFKA_TESTS)
endif
SECURITY_HTTP_TESTS = tests/e2e/http-tls.test
EXTRA_DIST += $(SECURITY_HTTP_TESTS)
TESTS += $(SECURITY_HTTP_TESTS)
