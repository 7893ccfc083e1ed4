# The application logging API of libferry (ferry_log) and its on-disk spool,
# the example program, and the logger benchmark (make bench-logger).
libferry_la_SOURCES += core/lib/logger.c core/lib/spool.c core/lib/spool.h

noinst_PROGRAMS += examples/logger-demo
examples_logger_demo_SOURCES = examples/logger-demo.c
examples_logger_demo_LDADD = libferry.la

EXTRA_PROGRAMS += bench/logger-bench
bench_logger_bench_SOURCES = bench/logger-bench.c
bench_logger_bench_LDADD = libferry.la $(PTHREAD_LIBS)
CLEANFILES += bench/logger-bench
bench-logger logger-bench: bench/logger-bench$(EXEEXT)
.PHONY: bench-logger logger-bench
