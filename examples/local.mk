# A complete program using the logging API (compiled against a staged
# `make install` by tests/e2e/logger-pkgconfig.test).
noinst_PROGRAMS += examples/logger-demo
examples_logger_demo_SOURCES = examples/logger-demo.c
examples_logger_demo_LDADD = libferry.la
