# Tests of the logging API: Check units over the loopback plugin (also
# built with ThreadSanitizer, library sources compiled in), the installed
# library and pkg-config, and the broker runs.
if HAVE_CHECK
check_PROGRAMS += tests/unit/check_logger
TESTS += tests/unit/check_logger
tests_unit_check_logger_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) $(CJSON_CFLAGS)
tests_unit_check_logger_LDADD = libferry.la $(CHECK_LIBS) $(CJSON_LIBS) $(PTHREAD_LIBS)
if !SANITIZERS
# ThreadSanitizer cannot be combined with AddressSanitizer: only here then.
check_PROGRAMS += tests/unit/check_logger_tsan
TESTS += tests/unit/check_logger_tsan
tests_unit_check_logger_tsan_SOURCES = tests/unit/check_logger.c $(libferry_la_SOURCES)
tests_unit_check_logger_tsan_CPPFLAGS = $(libferry_la_CPPFLAGS)
tests_unit_check_logger_tsan_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) $(CJSON_CFLAGS) \
	-fsanitize=thread -g -O1
tests_unit_check_logger_tsan_LDFLAGS = -fsanitize=thread
tests_unit_check_logger_tsan_LDADD = libferry_schema.la $(CJSON_LIBS) $(INIH_LIBS) \
	$(PCRE2_LIBS) $(LIBLTDL) $(CHECK_LIBS) $(PTHREAD_LIBS) $(LIBM)
endif
endif

TESTS += tests/e2e/logger-pkgconfig.test
EXTRA_DIST += tests/e2e/logger-pkgconfig.test

# Many threads logging through one logger, for the broker runs below.
check_PROGRAMS += tests/logger/logger-load
tests_logger_logger_load_SOURCES = tests/logger/logger-load.c
tests_logger_logger_load_LDADD = libferry.la $(PTHREAD_LIBS)

LOGGER_BROKER_TESTS = tests/e2e/logger-amqp.test tests/e2e/logger-kafka.test
EXTRA_DIST += $(LOGGER_BROKER_TESTS) tests/e2e/logger-lib.sh
TESTS += $(LOGGER_BROKER_TESTS)
