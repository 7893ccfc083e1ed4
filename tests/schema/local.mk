# The JSON-Schema test suite runner: needs no Check, so it always runs.
check_PROGRAMS += tests/schema/schema-suite
TESTS += tests/schema/schema-suite
tests_schema_schema_suite_SOURCES = tests/schema/schema-suite.c
tests_schema_schema_suite_CPPFLAGS = $(AM_CPPFLAGS) $(CJSON_CFLAGS)
tests_schema_schema_suite_CFLAGS = $(AM_CFLAGS)
tests_schema_schema_suite_LDADD = libferry_schema.la $(CJSON_LIBS)
