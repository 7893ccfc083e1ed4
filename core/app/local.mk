# The programs' logic, reachable by tests: option sections, the producer,
# aggregator and validator loops, and the HTTP server (libmicrohttpd) for
# /health, /metrics and ingestion. It links libferry_core.la, not the
# shared libferry: the internals it uses (private.h) are not exported.
noinst_LTLIBRARIES += libferryapp.la
libferryapp_la_SOURCES = core/app/app.h core/app/private.h core/app/cli.c core/app/sections.c \
	core/app/idset.h core/app/idset.c \
	core/app/producer.c core/app/aggregator.c core/app/validator.c \
	core/app/http.h core/app/http.c
libferryapp_la_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/core/app $(CJSON_CFLAGS) $(MHD_CFLAGS)
libferryapp_la_LIBADD = libferry_core.la $(CJSON_LIBS) $(MHD_LIBS) $(PTHREAD_LIBS) $(LIBM)
