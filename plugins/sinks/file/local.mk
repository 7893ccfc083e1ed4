# The file sink: always built (it needs only cJSON, which the core needs too).
pkglib_LTLIBRARIES += plugins/sinks/file/file.la
plugins_sinks_file_file_la_SOURCES = plugins/sinks/file/file.c core/app/idset.c core/app/idset.h \
	core/lib/jsoncheck.c core/app/jsoncheck.h core/lib/base64.c core/app/base64.h
plugins_sinks_file_file_la_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/core/app $(CJSON_CFLAGS)
# -module spelled out: automake checks module names only when it sees it.
plugins_sinks_file_file_la_LDFLAGS = -module $(PLUGIN_LDFLAGS)
plugins_sinks_file_file_la_LIBADD = $(CJSON_LIBS)
EXTRA_DIST += plugins/sinks/file/README.md
