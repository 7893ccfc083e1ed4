if HAVE_MQTT
pkglib_LTLIBRARIES += plugins/mqtt/mqtt.la
plugins_mqtt_mqtt_la_SOURCES = plugins/mqtt/mqtt.c plugins/mqtt/status.c plugins/mqtt/mqtt-status.h \
	core/lib/base64.c core/app/base64.h
plugins_mqtt_mqtt_la_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/core/app $(MQTT_CFLAGS)
# -module spelled out: automake checks module names only when it sees it.
plugins_mqtt_mqtt_la_LDFLAGS = -module $(PLUGIN_LDFLAGS)
plugins_mqtt_mqtt_la_LIBADD = $(MQTT_LIBS) $(PTHREAD_LIBS)
endif
EXTRA_DIST += plugins/mqtt/README.md
