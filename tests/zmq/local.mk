# The zmq plugin over real sockets (ipc://), no broker needed.
if HAVE_ZMQ
if HAVE_CHECK
check_PROGRAMS += tests/zmq/check_zmq
TESTS += tests/zmq/check_zmq
# check_zmq.c includes zmq.c; wire.c and reliable.c are compiled alongside
tests_zmq_check_zmq_SOURCES = tests/zmq/check_zmq.c plugins/zmq/wire.c plugins/zmq/wire.h \
	plugins/zmq/reliable.c
tests_zmq_check_zmq_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/plugins/zmq $(ZMQ_CFLAGS) $(CHECK_CFLAGS) \
	-I$(top_srcdir)/core/lib
tests_zmq_check_zmq_LDADD = libferry_spool.la $(ZMQ_LIBS) $(CHECK_LIBS)
endif
endif
