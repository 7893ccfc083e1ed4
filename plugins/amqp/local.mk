if HAVE_AMQP
pkglib_LTLIBRARIES += plugins/amqp/amqp.la
plugins_amqp_amqp_la_SOURCES = plugins/amqp/amqp.c plugins/amqp/amqp-util.c plugins/amqp/amqp-util.h
plugins_amqp_amqp_la_CPPFLAGS = $(AM_CPPFLAGS) $(AMQP_CFLAGS)
plugins_amqp_amqp_la_LDFLAGS = -module -avoid-version $(PLUGIN_LDFLAGS)
plugins_amqp_amqp_la_LIBADD = $(AMQP_LIBS)
endif
EXTRA_DIST += plugins/amqp/README.md
