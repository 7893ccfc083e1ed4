# postgresql sink tests: a private PostgreSQL server per test (pg-node.sh).
PG_TESTS = tests/postgresql/sink.test tests/postgresql/conformance.test tests/postgresql/zmq.test \
	tests/postgresql/exit-codes.test
EXTRA_DIST += $(PG_TESTS) tests/postgresql/pg-lib.sh
if HAVE_POSTGRESQL
if HAVE_CHECK
check_PROGRAMS += tests/postgresql/check_postgresql
tests_postgresql_check_postgresql_SOURCES = tests/postgresql/check_postgresql.c core/lib/jsoncheck.c
EXTRA_tests_postgresql_check_postgresql_SOURCES = plugins/sinks/postgresql/postgresql.c
tests_postgresql_check_postgresql_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/core/app $(POSTGRESQL_CFLAGS) $(CHECK_CFLAGS)
tests_postgresql_check_postgresql_LDADD = libferry.la $(POSTGRESQL_LIBS) $(CHECK_LIBS)
TESTS += $(PG_TESTS)
endif
endif
