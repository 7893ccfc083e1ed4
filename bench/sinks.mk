# make bench-sinks (also run by make bench): the grpc and webhook sinks
# against the Python receivers, each receiver's ceiling measured alone.
EXTRA_DIST += bench/sinks.sh bench/sink_ceiling.py
bench-sinks: all
	BENCH_BUILDDIR='$(abs_top_builddir)' BENCH_SRCDIR='$(abs_top_srcdir)' \
	BENCH_OUT='$(abs_top_srcdir)/bench/results' bash $(top_srcdir)/bench/sinks.sh
.PHONY: bench-sinks
