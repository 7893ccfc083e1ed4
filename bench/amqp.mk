# Benchmark of the AMQP plugin against plain rabbitmq-c: built by
# `make bench-amqp` (part of `make bench`), never installed, not a test.
# Run: bench/amqp/amqp-bench -u URL -p plugins/amqp/.libs
if HAVE_AMQP
BENCH_AMQP = bench/amqp/amqp-bench$(EXEEXT)
EXTRA_PROGRAMS += bench/amqp/amqp-bench
bench_amqp_amqp_bench_SOURCES = bench/amqp/amqp-bench.c
bench_amqp_amqp_bench_CPPFLAGS = $(AM_CPPFLAGS) $(AMQP_CFLAGS)
bench_amqp_amqp_bench_LDADD = $(AMQP_LIBS) -lltdl
CLEANFILES += $(BENCH_AMQP)
endif
bench-amqp: $(BENCH_AMQP)
.PHONY: bench-amqp
