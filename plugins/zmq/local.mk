if HAVE_ZMQ
pkglib_LTLIBRARIES += plugins/zmq/zmq.la
plugins_zmq_zmq_la_SOURCES = plugins/zmq/zmq.c plugins/zmq/wire.c plugins/zmq/wire.h \
	plugins/zmq/reliable.c plugins/zmq/reliable.h
# reliable.c uses the logger's spool (core/lib/spool.h, libferry_spool.la)
plugins_zmq_zmq_la_CPPFLAGS = $(AM_CPPFLAGS) $(ZMQ_CFLAGS) -I$(top_srcdir)/core/lib
# -module spelled out: automake checks module names only when it sees it.
plugins_zmq_zmq_la_LDFLAGS = -module $(PLUGIN_LDFLAGS)
plugins_zmq_zmq_la_LIBADD = libferry_spool.la $(ZMQ_LIBS)
endif
EXTRA_DIST += plugins/zmq/README.md
