# The transport and sink conformance suites, installed so outside plugin
# authors can run them, and their runs over the loopback plugin, ZeroMQ,
# the lying transports the suite must fail (liars.test), the file sink, the
# lying sink and the per-record test sink.
EXTRA_DIST += tests/conformance/loopback.test tests/conformance/zmq-pipeline.test \
	tests/conformance/zmq-wire2.test tests/conformance/zmq-reliable.test \
	tests/conformance/liars.test tests/conformance/sink-file.test \
	tests/conformance/sink-liar.test tests/conformance/sink-refuser.test
if HAVE_CHECK
bin_PROGRAMS += ferry-conformance
ferry_conformance_SOURCES = tests/conformance/conformance.c tests/conformance/conformance.h \
	tests/conformance/delivery.c tests/conformance/proxy.c tests/conformance/sink.c
ferry_conformance_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
ferry_conformance_LDADD = libferry.la $(CHECK_LIBS) $(PTHREAD_LIBS)
TESTS += tests/conformance/loopback.test tests/conformance/liars.test
# (each sink plugin runs the suite from its own test directory, with the
# server it needs: tests/postgresql/conformance.test, ...)
TESTS += tests/conformance/sink-file.test tests/conformance/sink-liar.test \
	tests/conformance/sink-refuser.test
if HAVE_ZMQ
TESTS += tests/conformance/zmq-pipeline.test tests/conformance/zmq-wire2.test \
	tests/conformance/zmq-reliable.test
endif
endif
