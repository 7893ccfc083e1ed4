# The transport and sink conformance suites, installed so outside plugin
# authors can run them, and their runs over the loopback plugin, ZeroMQ,
# every built sink (tests/conformance/sink-NAME.test), the lying sink the
# suite must fail and the per-record test sink.
EXTRA_DIST += tests/conformance/loopback.test tests/conformance/zmq-pipeline.test \
	tests/conformance/sink-file.test tests/conformance/sink-liar.test \
	tests/conformance/sink-refuser.test
if HAVE_CHECK
bin_PROGRAMS += ferry-conformance
ferry_conformance_SOURCES = tests/conformance/conformance.c tests/conformance/conformance.h \
	tests/conformance/sink.c
ferry_conformance_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
ferry_conformance_LDADD = libferry.la $(CHECK_LIBS)
TESTS += tests/conformance/loopback.test
TESTS += $(FERRY_BUILT_SINKS:%=tests/conformance/sink-%.test) tests/conformance/sink-liar.test \
	tests/conformance/sink-refuser.test
if HAVE_ZMQ
TESTS += tests/conformance/zmq-pipeline.test
endif
endif
