# JSON Schema (draft-07) validator: a convenience library linked into libferry.
noinst_LTLIBRARIES += libferry_schema.la
libferry_schema_la_SOURCES = core/lib/schema.c core/lib/schema_format.c \
	core/lib/schema_meta.c core/lib/schema_internal.h
libferry_schema_la_CPPFLAGS = $(AM_CPPFLAGS) $(CJSON_CFLAGS) $(PCRE2_CFLAGS)
libferry_schema_la_CFLAGS = $(AM_CFLAGS)
libferry_schema_la_LIBADD = $(CJSON_LIBS) $(PCRE2_LIBS) $(LIBM)
ferryinclude_HEADERS += include/ferry/schema.h
schemadir = $(pkgdatadir)/schemas
dist_schema_DATA = etc/schemas/download-event.json

# the suite runner needs no Check, so it always runs
check_PROGRAMS += tests/schema/schema-suite
TESTS += tests/schema/schema-suite
if HAVE_CHECK
check_PROGRAMS += tests/unit/check_schema
TESTS += tests/unit/check_schema
endif
tests_unit_check_schema_SOURCES = tests/unit/check_schema.c
tests_unit_check_schema_CPPFLAGS = $(AM_CPPFLAGS) $(CJSON_CFLAGS) $(CHECK_CFLAGS) \
	-DFERRY_TEST_SCHEMA_DIR='"$(top_srcdir)/etc/schemas"'
tests_unit_check_schema_CFLAGS = $(AM_CFLAGS)
tests_unit_check_schema_LDADD = libferry_schema.la $(CHECK_LIBS) $(PTHREAD_LIBS)
tests_schema_schema_suite_SOURCES = tests/schema/schema-suite.c
tests_schema_schema_suite_CPPFLAGS = $(AM_CPPFLAGS) $(CJSON_CFLAGS)
tests_schema_schema_suite_CFLAGS = $(AM_CFLAGS)
tests_schema_schema_suite_LDADD = libferry_schema.la $(CJSON_LIBS)
