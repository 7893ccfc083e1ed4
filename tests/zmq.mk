# ZeroMQ plugin tests: brokerless, so they always run when the plugin is built.
ZMQ_E2E_TESTS = tests/e2e/zmq-oneshot.test tests/e2e/zmq-pyzmq.test tests/e2e/sink-stdout.test \
	tests/e2e/sink-rotate.test
EXTRA_DIST += $(ZMQ_E2E_TESTS) tests/conformance/zmq-pipeline.test
if HAVE_ZMQ
TESTS += $(ZMQ_E2E_TESTS)
if HAVE_CHECK
check_PROGRAMS += tests/zmq/check_zmq
tests_zmq_check_zmq_SOURCES = tests/zmq/check_zmq.c
tests_zmq_check_zmq_CPPFLAGS = $(AM_CPPFLAGS) $(ZMQ_CFLAGS) $(CHECK_CFLAGS)
tests_zmq_check_zmq_LDADD = $(ZMQ_LIBS) $(CHECK_LIBS)
TESTS += tests/zmq/check_zmq tests/conformance/zmq-pipeline.test
endif
endif
