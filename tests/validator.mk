# ferry-validator: unit tests (loopback, no broker), end-to-end tests over
# each transport, and the validation benchmark (`make bench-validator`).
if HAVE_CHECK
check_PROGRAMS += tests/unit/check_validator
TESTS += tests/unit/check_validator
tests_unit_check_validator_SOURCES = tests/unit/check_validator.c
tests_unit_check_validator_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/core/app $(CJSON_CFLAGS)
tests_unit_check_validator_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_unit_check_validator_LDADD = libferryapp.la $(CHECK_LIBS)
endif

VALIDATOR_E2E_TESTS = tests/e2e/validator-zmq.test tests/e2e/validator-amqp.test \
	tests/e2e/validator-kafka.test tests/e2e/validator-amqp-kill.test
TESTS += $(VALIDATOR_E2E_TESTS)
EXTRA_DIST += $(VALIDATOR_E2E_TESTS) tests/e2e/validator-lib.sh

# Benchmark (not a test): validations per second per core on download events.
EXTRA_PROGRAMS += bench/validate-bench
bench_validate_bench_SOURCES = bench/validate-bench.c
bench_validate_bench_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/core/app $(CJSON_CFLAGS)
bench_validate_bench_LDADD = libferryapp.la
CLEANFILES += bench/validate-bench$(EXEEXT)
bench-validator: bench/validate-bench$(EXEEXT)
	./bench/validate-bench$(EXEEXT) $(srcdir)/etc/schemas/download-event.json
.PHONY: bench-validator
