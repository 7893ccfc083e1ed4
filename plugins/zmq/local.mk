if HAVE_ZMQ
pkglib_LTLIBRARIES += plugins/zmq/zmq.la
plugins_zmq_zmq_la_SOURCES = plugins/zmq/zmq.c plugins/zmq/wire.c plugins/zmq/wire.h
plugins_zmq_zmq_la_CPPFLAGS = $(AM_CPPFLAGS) $(ZMQ_CFLAGS)
# -module spelled out: automake checks module names only when it sees it.
plugins_zmq_zmq_la_LDFLAGS = -module $(PLUGIN_LDFLAGS)
plugins_zmq_zmq_la_LIBADD = $(ZMQ_LIBS)
endif
EXTRA_DIST += plugins/zmq/README.md
