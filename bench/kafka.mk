# Benchmark of the Kafka plugin against plain librdkafka: built by
# `make bench-kafka` (part of `make bench`), never installed, not a test.
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
