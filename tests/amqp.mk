# Tests of the AMQP transport: unit tests (no broker) and end-to-end scripts
# against a private RabbitMQ node (tests/brokers/ensure-amqp.sh).
EXTRA_DIST += tests/brokers/ensure-amqp.sh tests/brokers/amqp-node.sh

if HAVE_AMQP
if HAVE_CHECK
check_PROGRAMS += tests/unit/check_amqp_util
TESTS += tests/unit/check_amqp_util
tests_unit_check_amqp_util_SOURCES = tests/unit/check_amqp_util.c \
	plugins/amqp/amqp-util.c plugins/amqp/amqp-util.h
tests_unit_check_amqp_util_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/plugins/amqp \
	$(AMQP_CFLAGS) $(CHECK_CFLAGS)
tests_unit_check_amqp_util_LDADD = $(AMQP_LIBS) $(CHECK_LIBS)
endif
endif

AMQP_E2E_TESTS = tests/e2e/amqp-ops.test tests/e2e/amqp-classic.test tests/e2e/amqp-interop.test \
	tests/e2e/amqp-share.test tests/e2e/amqp-kill.test \
	tests/e2e/amqp-restart.test tests/e2e/amqp-conformance.test
EXTRA_DIST += $(AMQP_E2E_TESTS) tests/e2e/amqp-lib.sh
if HAVE_AMQP
TESTS += $(AMQP_E2E_TESTS)
endif
