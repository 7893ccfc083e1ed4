# Benchmarks: never installed, not tests. `make bench` runs ferry against
# the plain client libraries and the usual Python producers over zmq, amqp
# and kafka (bench/run-bench.sh), with the report and plots in
# bench/results/; it ends with the benchmarks of the parts below.
EXTRA_DIST += bench/run-bench.sh bench/py-bench.py bench/report.py bench/findings.md \
	bench/results/latest.md bench/http-load.sh bench/icount.sh bench/icount.py \
	bench/bench-check.sh bench/results/icount-baseline.tsv

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

bench: all $(BENCH_DRIVER) $(BENCH_MOCK) bench/logger-bench$(EXEEXT)
	@test -n "$(BENCH_DRIVER)" || { echo "make bench needs the zmq, amqp and kafka libraries" >&2; exit 1; }
	BENCH_BUILDDIR='$(abs_top_builddir)' BENCH_SRCDIR='$(abs_top_srcdir)' \
	BENCH_OUT='$(BENCH_OUT)' bash $(top_srcdir)/bench/run-bench.sh
	-@for t in bench-amqp bench-kafka bench-validator logger-bench bench-postgresql bench-sinks \
	  bench-zmq-reliable; do \
	  if grep -q "^$$t:" Makefile; then $(MAKE) $(AM_MAKEFLAGS) $$t || exit 1; fi; done
.PHONY: bench

# Instructions per message of each ferry path under callgrind, against the
# committed bench/results/icount-baseline.tsv: `make bench-check` fails when
# one grows more than 10 % (no wall clock involved; 1 to 2 minutes on 2
# cores); `make bench-baseline` rewrites the baseline.
bench-check bench-baseline: all $(BENCH_DRIVER) $(BENCH_MOCK)
	@test -n "$(BENCH_DRIVER)" || { echo "make $@ needs the zmq, amqp and kafka libraries" >&2; exit 1; }
	BENCH_BUILDDIR='$(abs_top_builddir)' BENCH_SRCDIR='$(abs_top_srcdir)' \
	bash $(top_srcdir)/bench/bench-check.sh $(@:bench-%=%)
.PHONY: bench-check bench-baseline

# The AMQP plugin against plain rabbitmq-c (`make bench-amqp`).
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

# The Kafka plugin against plain librdkafka (`make bench-kafka`).
# Run: bench/kafka/kafka-bench -p plugins/kafka [-b BROKERS]
if HAVE_KAFKA
BENCH_KAFKA = bench/kafka/kafka-bench$(EXEEXT)
EXTRA_PROGRAMS += bench/kafka/kafka-bench
bench_kafka_kafka_bench_SOURCES = bench/kafka/kafka-bench.c
bench_kafka_kafka_bench_CPPFLAGS = $(AM_CPPFLAGS) $(KAFKA_CFLAGS)
bench_kafka_kafka_bench_LDADD = libferry.la $(KAFKA_LIBS)
CLEANFILES += $(BENCH_KAFKA)
endif
bench-kafka: $(BENCH_KAFKA)
.PHONY: bench-kafka

# The logging API: cost of one ferry_log() call, sustained rate (`make bench-logger`).
EXTRA_PROGRAMS += bench/logger-bench
bench_logger_bench_SOURCES = bench/logger-bench.c
bench_logger_bench_LDADD = libferry.la $(PTHREAD_LIBS)
CLEANFILES += bench/logger-bench
bench-logger logger-bench: bench/logger-bench$(EXEEXT)
.PHONY: bench-logger logger-bench

# Validations per second per core on download events (`make bench-validator`).
EXTRA_PROGRAMS += bench/validate-bench
bench_validate_bench_SOURCES = bench/validate-bench.c
bench_validate_bench_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/core/app $(CJSON_CFLAGS)
bench_validate_bench_LDADD = libferryapp.la
CLEANFILES += bench/validate-bench$(EXEEXT)
bench-validator: bench/validate-bench$(EXEEXT)
	./bench/validate-bench$(EXEEXT) $(srcdir)/etc/schemas/download-event.json
.PHONY: bench-validator

# The postgresql sink against psycopg2 and a plain libpq COPY
# (`make bench-postgresql`, bench/postgresql/run.sh).
EXTRA_DIST += bench/postgresql/run.sh bench/postgresql/pg-psycopg2-bench.py \
	bench/results/postgresql.md
if HAVE_POSTGRESQL
BENCH_PG_COPY = bench/postgresql/pg-copy-bench$(EXEEXT)
EXTRA_PROGRAMS += bench/postgresql/pg-copy-bench
bench_postgresql_pg_copy_bench_SOURCES = bench/postgresql/pg-copy-bench.c
bench_postgresql_pg_copy_bench_CPPFLAGS = $(AM_CPPFLAGS) $(POSTGRESQL_CFLAGS)
bench_postgresql_pg_copy_bench_LDADD = $(POSTGRESQL_LIBS)
CLEANFILES += $(BENCH_PG_COPY)
endif
bench-postgresql: all $(BENCH_PG_COPY) $(BENCH_MOCK)
	@test -n "$(BENCH_PG_COPY)" || { echo "make bench-postgresql needs libpq (libpq-dev)" >&2; exit 1; }
	BENCH_BUILDDIR='$(abs_top_builddir)' BENCH_SRCDIR='$(abs_top_srcdir)' \
	BENCH_OUT='$(BENCH_OUT)' bash $(top_srcdir)/bench/postgresql/run.sh
.PHONY: bench-postgresql

# make bench-sinks (also run by make bench): the grpc and webhook sinks
# against the Python receivers, each receiver's ceiling measured alone.
EXTRA_DIST += bench/sinks.sh bench/sink_ceiling.py
bench-sinks: all
	BENCH_BUILDDIR='$(abs_top_builddir)' BENCH_SRCDIR='$(abs_top_srcdir)' \
	BENCH_OUT='$(abs_top_srcdir)/bench/results' bash $(top_srcdir)/bench/sinks.sh
.PHONY: bench-sinks

# make bench-zmq-reliable (also run by make bench): zmq reliable = true
# against plain zmq and amqp with confirms, 100 B, throughput and p99
# (bench/zmq-reliable.sh writes bench/results/zmq-reliable.md).
EXTRA_DIST += bench/zmq-reliable.sh bench/results/zmq-reliable.md
bench-zmq-reliable: all $(BENCH_DRIVER)
	@test -n "$(BENCH_DRIVER)" || { echo "make bench-zmq-reliable needs the zmq, amqp and kafka libraries" >&2; exit 1; }
	BENCH_BUILDDIR='$(abs_top_builddir)' BENCH_SRCDIR='$(abs_top_srcdir)' \
	BENCH_OUT='$(BENCH_OUT)' bash $(top_srcdir)/bench/zmq-reliable.sh
.PHONY: bench-zmq-reliable
