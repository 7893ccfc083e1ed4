# libferry: the shared library behind the programs and the logging API.
# Every source of the library is listed here; its public headers are in
# include/local.mk.
lib_LTLIBRARIES += libferry.la
libferry_la_SOURCES = \
	core/lib/internal.h \
	core/lib/util.c \
	core/lib/options.c \
	core/lib/config.c \
	core/lib/loader.c \
	core/lib/conn.c \
	core/lib/pub.c \
	core/lib/envelope.c \
	core/lib/ledger.c \
	core/lib/retry.c \
	core/lib/metrics.c \
	core/lib/logger.c \
	core/lib/spool.c core/lib/spool.h
libferry_la_CPPFLAGS = $(AM_CPPFLAGS) $(CJSON_CFLAGS) $(INIH_CFLAGS)
libferry_la_LIBADD = libferry_schema.la $(CJSON_LIBS) $(INIH_LIBS) $(PCRE2_LIBS) $(LIBLTDL) $(PTHREAD_LIBS) $(LIBM)
libferry_la_LDFLAGS = $(AM_LDFLAGS) -version-info 0:0:0 -no-undefined \
	-export-symbols-regex '^ferry_'

# JSON Schema (draft-07) validator: a convenience library linked into
# libferry, and on its own into the schema tests.
noinst_LTLIBRARIES += libferry_schema.la
libferry_schema_la_SOURCES = core/lib/schema.c core/lib/schema_format.c \
	core/lib/schema_meta.c core/lib/schema_internal.h
libferry_schema_la_CPPFLAGS = $(AM_CPPFLAGS) $(CJSON_CFLAGS) $(PCRE2_CFLAGS)
libferry_schema_la_CFLAGS = $(AM_CFLAGS)
libferry_schema_la_LIBADD = $(CJSON_LIBS) $(PCRE2_LIBS) $(LIBM)
