# Retry with backoff, then dead-letter (include/ferry/retry.h): the library
# part, its unit tests (loopback, no broker) and the end-to-end tests of
# retries, dead letters and --replay over each transport.
libferry_la_SOURCES += core/lib/retry.c
ferryinclude_HEADERS += include/ferry/retry.h

if HAVE_CHECK
check_PROGRAMS += tests/unit/check_retry
TESTS += tests/unit/check_retry
tests_unit_check_retry_SOURCES = tests/unit/check_retry.c
tests_unit_check_retry_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/core/app $(CJSON_CFLAGS)
tests_unit_check_retry_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_unit_check_retry_LDADD = libferryapp.la $(CHECK_LIBS)
endif

RETRY_E2E_TESTS = tests/e2e/retry-amqp.test tests/e2e/retry-kafka.test tests/e2e/retry-zmq.test
TESTS += $(RETRY_E2E_TESTS)
EXTRA_DIST += $(RETRY_E2E_TESTS) tests/e2e/retry-lib.sh
