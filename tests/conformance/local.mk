# The transport conformance suite, installed so outside plugin authors can
# run it, and its runs over the loopback plugin and ZeroMQ.
EXTRA_DIST += tests/conformance/loopback.test tests/conformance/zmq-pipeline.test
if HAVE_CHECK
bin_PROGRAMS += ferry-conformance
ferry_conformance_SOURCES = tests/conformance/conformance.c
ferry_conformance_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
ferry_conformance_LDADD = libferry.la $(CHECK_LIBS)
TESTS += tests/conformance/loopback.test
if HAVE_ZMQ
TESTS += tests/conformance/zmq-pipeline.test
endif
endif
