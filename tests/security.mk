# Security tests: CURVE for zmq, TLS for amqp, secrets handling.
SECURITY_ZMQ_TESTS = tests/e2e/zmq-curve.test
EXTRA_DIST += $(SECURITY_ZMQ_TESTS)
if HAVE_ZMQ
TESTS += $(SECURITY_ZMQ_TESTS)
endif
