# Tests of the grpc and webhook sinks against Python servers ferry did not
# write (python3-grpcio, http.server). sink-pump drives a sink plugin the way
# the consume loop does, over any transport.
check_PROGRAMS += tests/sinks/sink-pump
tests_sinks_sink_pump_SOURCES = tests/sinks/sink-pump.c
tests_sinks_sink_pump_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/core/app
tests_sinks_sink_pump_LDADD = libferry_core.la $(LIBLTDL)

SINK_E2E_TESTS =
EXTRA_DIST += tests/sinks/grpc_server.py tests/sinks/webhook_server.py tests/sinks/sinks-lib.sh

SINK_E2E_TESTS += tests/e2e/grpc-kafka.test tests/e2e/grpc-unavailable.test tests/e2e/webhook-amqp.test \
	tests/e2e/grpc-tls.test tests/e2e/grpc-auth.test tests/e2e/grpc-status.test tests/e2e/webhook-tls.test \
	tests/e2e/sink-service-conformance.test
TESTS += $(SINK_E2E_TESTS)
EXTRA_DIST += $(SINK_E2E_TESTS)
