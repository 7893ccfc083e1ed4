# `make bench`: ferry against the plain client libraries and the usual
# Python producers over zmq, amqp and kafka (bench/run-bench.sh), with the
# report and plots in bench/results/. Not part of `make check`.
EXTRA_DIST += bench/run-bench.sh bench/py-bench.py bench/report.py bench/findings.md
if HAVE_ZMQ
if HAVE_AMQP
if HAVE_KAFKA
BENCH_DRIVER = bench/ferry-bench$(EXEEXT)
BENCH_MOCK = tests/brokers/kafka-mock$(EXEEXT)
EXTRA_PROGRAMS += bench/ferry-bench
bench_ferry_bench_SOURCES = bench/ferry-bench.c
bench_ferry_bench_CPPFLAGS = $(AM_CPPFLAGS) $(ZMQ_CFLAGS) $(AMQP_CFLAGS) $(KAFKA_CFLAGS)
bench_ferry_bench_CFLAGS = $(AM_CFLAGS) -pthread
bench_ferry_bench_LDADD = libferry.la $(ZMQ_LIBS) $(AMQP_LIBS) $(KAFKA_LIBS) -lpthread
CLEANFILES += $(BENCH_DRIVER)
endif
endif
endif
BENCH_OUT = $(abs_top_srcdir)/bench/results

bench: all $(BENCH_DRIVER) $(BENCH_MOCK)
	@test -n "$(BENCH_DRIVER)" || { echo "make bench needs the zmq, amqp and kafka libraries" >&2; exit 1; }
	BENCH_BUILDDIR='$(abs_top_builddir)' BENCH_SRCDIR='$(abs_top_srcdir)' \
	BENCH_OUT='$(BENCH_OUT)' bash $(top_srcdir)/bench/run-bench.sh
	-@for t in bench-amqp bench-kafka bench-validator logger-bench bench-sinks; do \
	  if grep -q "^$$t:" Makefile; then $(MAKE) $(AM_MAKEFLAGS) $$t || exit 1; fi; done
.PHONY: bench
