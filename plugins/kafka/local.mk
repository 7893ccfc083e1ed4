if HAVE_KAFKA
pkglib_LTLIBRARIES += plugins/kafka/kafka.la
plugins_kafka_kafka_la_SOURCES = plugins/kafka/kafka.c plugins/kafka/offsets.c \
	plugins/kafka/offsets.h plugins/kafka/status.c plugins/kafka/fkafka.h \
	plugins/kafka/security.c
plugins_kafka_kafka_la_CPPFLAGS = $(AM_CPPFLAGS) $(KAFKA_CFLAGS)
plugins_kafka_kafka_la_LDFLAGS = -module $(PLUGIN_LDFLAGS)
plugins_kafka_kafka_la_LIBADD = $(KAFKA_LIBS)
endif
EXTRA_DIST += plugins/kafka/README.md
