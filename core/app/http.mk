# The programs' HTTP server (libmicrohttpd): /health, /metrics, ingestion.
libferryapp_la_SOURCES += core/app/http.h core/app/http.c
libferryapp_la_CPPFLAGS += $(MHD_CFLAGS)
libferryapp_la_LIBADD += $(MHD_LIBS) $(PTHREAD_LIBS)
