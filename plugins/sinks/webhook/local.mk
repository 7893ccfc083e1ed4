# webhook.so: the HTTP webhook sink (libcurl).
if HAVE_WEBHOOK
pkglib_LTLIBRARIES += plugins/sinks/webhook/webhook.la
plugins_sinks_webhook_webhook_la_SOURCES = plugins/sinks/webhook/webhook.c
plugins_sinks_webhook_webhook_la_CPPFLAGS = $(AM_CPPFLAGS) $(WEBHOOK_CFLAGS) $(CJSON_CFLAGS)
# -module spelled out: automake checks module names only when it sees it.
plugins_sinks_webhook_webhook_la_LDFLAGS = -module $(PLUGIN_LDFLAGS)
plugins_sinks_webhook_webhook_la_LIBADD = $(WEBHOOK_LIBS) $(CJSON_LIBS)
endif
EXTRA_DIST += plugins/sinks/webhook/README.md
