# Many threads logging through one logger, for tests/e2e/logger-*.test.
check_PROGRAMS += tests/logger/logger-load
tests_logger_logger_load_SOURCES = tests/logger/logger-load.c
tests_logger_logger_load_LDADD = libferry.la $(PTHREAD_LIBS)
