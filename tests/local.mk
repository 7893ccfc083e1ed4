# Tests: Check unit tests, the conformance suite, end-to-end scripts.
# Each transport's tests live in tests/<transport>.mk.

# Plugins built in this tree, for the loader test and the transport guard.
FERRY_BUILT_PLUGINS =
if HAVE_ZMQ
FERRY_BUILT_PLUGINS += zmq
endif
if HAVE_AMQP
FERRY_BUILT_PLUGINS += amqp
endif
if HAVE_KAFKA
FERRY_BUILT_PLUGINS += kafka
endif
# Sinks built in this tree (plugins/sinks/NAME), for the loader test, the
# plugin path of the tests and ferry-conformance --sink. A sink with a
# configure option adds itself under its conditional: FERRY_BUILT_SINKS += NAME
FERRY_BUILT_SINKS = file
if HAVE_GRPC
FERRY_BUILT_SINKS += grpc
endif
if HAVE_WEBHOOK
FERRY_BUILT_SINKS += webhook
endif

AM_TESTS_ENVIRONMENT = \
	FERRY_PLUGIN_PATH='$(abs_top_builddir)/tests/plugins:$(abs_top_builddir)/plugins/zmq:$(abs_top_builddir)/plugins/amqp:$(abs_top_builddir)/plugins/kafka'; \
	for s in $(FERRY_BUILT_SINKS); do \
	  FERRY_PLUGIN_PATH="$$FERRY_PLUGIN_PATH:$(abs_top_builddir)/plugins/sinks/$$s"; done; \
	export FERRY_PLUGIN_PATH; \
	FERRY_BUILT_PLUGINS='$(FERRY_BUILT_PLUGINS)'; export FERRY_BUILT_PLUGINS; \
	FERRY_BUILT_SINKS='$(FERRY_BUILT_SINKS)'; export FERRY_BUILT_SINKS; \
	FERRY_TEST_STATE_DIR='$(abs_top_builddir)/tests/state'; export FERRY_TEST_STATE_DIR; \
	FERRY_TEST_OWNER_PID=$${FERRY_TEST_OWNER_PID:-$$PPID}; export FERRY_TEST_OWNER_PID; \
	FERRY_BINDIR='$(abs_top_builddir)'; export FERRY_BINDIR; \
	FERRY_SRCDIR='$(abs_top_srcdir)'; export FERRY_SRCDIR; \
	CK_DEFAULT_TIMEOUT=$${CK_DEFAULT_TIMEOUT:-120}; export CK_DEFAULT_TIMEOUT;
TEST_EXTENSIONS = .test
TEST_LOG_COMPILER = $(SHELL)

EXTRA_DIST += tests/lib.sh

# Test-only plugins (never installed): an in-process broker and broken ones.
TEST_PLUGIN_LDFLAGS = -module -avoid-version -shared -rpath /nowhere $(SAN_LDFLAGS)
check_LTLIBRARIES += tests/plugins/loopback.la tests/plugins/wrongabi.la \
	tests/plugins/nodesc.la tests/plugins/badopts.la tests/plugins/oldabi.la \
	tests/plugins/wrongabisink.la tests/plugins/liar.la
tests_plugins_loopback_la_SOURCES = tests/plugins/loopback.c
tests_plugins_loopback_la_LDFLAGS = $(TEST_PLUGIN_LDFLAGS)
tests_plugins_loopback_la_LIBADD = $(PTHREAD_LIBS)
tests_plugins_wrongabi_la_SOURCES = tests/plugins/wrongabi.c
tests_plugins_wrongabi_la_LDFLAGS = $(TEST_PLUGIN_LDFLAGS)
tests_plugins_nodesc_la_SOURCES = tests/plugins/nodesc.c
tests_plugins_nodesc_la_LDFLAGS = $(TEST_PLUGIN_LDFLAGS)
tests_plugins_badopts_la_SOURCES = tests/plugins/badopts.c
tests_plugins_badopts_la_LDFLAGS = $(TEST_PLUGIN_LDFLAGS)
tests_plugins_oldabi_la_SOURCES = tests/plugins/oldabi.c
tests_plugins_oldabi_la_LDFLAGS = $(TEST_PLUGIN_LDFLAGS)
tests_plugins_wrongabisink_la_SOURCES = tests/plugins/wrongabisink.c
tests_plugins_wrongabisink_la_LDFLAGS = $(TEST_PLUGIN_LDFLAGS)
tests_plugins_liar_la_SOURCES = tests/plugins/liar.c
tests_plugins_liar_la_LDFLAGS = $(TEST_PLUGIN_LDFLAGS)

if HAVE_CHECK
# The conformance suite is installed so outside plugin authors can run it.
bin_PROGRAMS += ferry-conformance
ferry_conformance_SOURCES = tests/conformance/conformance.c tests/conformance/conformance.h \
	tests/conformance/sink.c
ferry_conformance_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
ferry_conformance_LDADD = libferry.la $(CHECK_LIBS)

UNIT_TESTS = tests/unit/check_config tests/unit/check_loader tests/unit/check_envelope \
	tests/unit/check_pub
check_PROGRAMS += $(UNIT_TESTS)
TESTS += $(UNIT_TESTS)
tests_unit_check_config_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_unit_check_config_LDADD = libferry.la $(CHECK_LIBS)
tests_unit_check_loader_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_unit_check_loader_LDADD = libferry.la $(CHECK_LIBS)
tests_unit_check_envelope_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) $(CJSON_CFLAGS)
tests_unit_check_envelope_LDADD = libferry.la $(CHECK_LIBS) $(CJSON_LIBS)
tests_unit_check_pub_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_unit_check_pub_LDADD = libferry.la $(CHECK_LIBS)

TESTS += tests/conformance/loopback.test
# Sink conformance: one test per built sink (tests/conformance/sink-NAME.test),
# and the lying sink the suite must fail.
TESTS += $(FERRY_BUILT_SINKS:%=tests/conformance/sink-%.test) tests/conformance/sink-liar.test
endif
EXTRA_DIST += tests/conformance/loopback.test tests/conformance/sink-file.test \
	tests/conformance/sink-liar.test

E2E_TESTS = tests/e2e/config-errors.test tests/e2e/transports.test tests/e2e/zmq-flow.test \
	tests/e2e/etc-configs.test tests/e2e/zmq-conformance.test \
	tests/e2e/options-doc.test tests/e2e/sink-errors.test
TESTS += $(E2E_TESTS)
EXTRA_DIST += $(E2E_TESTS) scripts/install-deps.sh scripts/build.sh scripts/demo.sh \
	scripts/check.sh

clean-local: clean-test-state
clean-test-state:
	-rm -rf tests/state
.PHONY: clean-test-state
