# Hardening: checks of untrusted input (JSON text, stdin lines, config
# lines, plugin names, HTTP framing) and their tests.
libferry_schema_la_SOURCES += core/lib/jsoncheck.c core/lib/jsoncheck.h

if HAVE_CHECK
check_PROGRAMS += tests/unit/check_jsoncheck
TESTS += tests/unit/check_jsoncheck
tests_unit_check_jsoncheck_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_unit_check_jsoncheck_LDADD = libferry.la $(CHECK_LIBS)
endif

HARDEN_TESTS = tests/e2e/harden-stdin.test tests/e2e/harden-json.test tests/e2e/harden-plugin-name.test tests/e2e/harden-secrets.test tests/e2e/harden-config.test tests/e2e/harden-http-framing.test tests/e2e/harden-slow-clients.test tests/e2e/harden-amqp-toobig.test tests/e2e/harden-zmq-frames.test tests/e2e/harden-http-stamp.test
EXTRA_DIST += $(HARDEN_TESTS)
TESTS += $(HARDEN_TESTS)
