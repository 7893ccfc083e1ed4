# libferry: the shared library behind the programs and the logging API.
lib_LTLIBRARIES += libferry.la
libferry_la_SOURCES = \
	core/lib/internal.h \
	core/lib/util.c \
	core/lib/options.c \
	core/lib/config.c \
	core/lib/loader.c \
	core/lib/conn.c \
	core/lib/sink.c \
	core/lib/pub.c \
	core/lib/envelope.c
libferry_la_CPPFLAGS = $(AM_CPPFLAGS) $(CJSON_CFLAGS) $(INIH_CFLAGS)
libferry_la_LIBADD = libferry_schema.la $(CJSON_LIBS) $(INIH_LIBS) $(PCRE2_LIBS) $(LIBLTDL) $(PTHREAD_LIBS) $(LIBM)
libferry_la_LDFLAGS = $(AM_LDFLAGS) -version-info 0:0:0 -no-undefined \
	-export-symbols-regex '^ferry_'
