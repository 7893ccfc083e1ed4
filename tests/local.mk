# Tests: what every test directory shares (the environment the harness
# gives each test, the shell helpers, the test-state directory) and the
# runs over several directories (make check-valgrind). Each directory
# under tests/ registers its own tests in its local.mk.

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

AM_TESTS_ENVIRONMENT = \
	FERRY_PLUGIN_PATH='$(abs_top_builddir)/tests/plugins:$(abs_top_builddir)/plugins/zmq:$(abs_top_builddir)/plugins/amqp:$(abs_top_builddir)/plugins/kafka'; \
	export FERRY_PLUGIN_PATH; \
	FERRY_BUILT_PLUGINS='$(FERRY_BUILT_PLUGINS)'; export FERRY_BUILT_PLUGINS; \
	FERRY_TEST_STATE_DIR='$(abs_top_builddir)/tests/state'; export FERRY_TEST_STATE_DIR; \
	FERRY_TEST_OWNER_PID=$${FERRY_TEST_OWNER_PID:-$$PPID}; export FERRY_TEST_OWNER_PID; \
	FERRY_BINDIR='$(abs_top_builddir)'; export FERRY_BINDIR; \
	FERRY_SRCDIR='$(abs_top_srcdir)'; export FERRY_SRCDIR; \
	CK_DEFAULT_TIMEOUT=$${CK_DEFAULT_TIMEOUT:-120}; export CK_DEFAULT_TIMEOUT;
TEST_EXTENSIONS = .test
TEST_LOG_COMPILER = $(SHELL)

EXTRA_DIST += tests/lib.sh tests/wrap.sh

clean-local: clean-test-state
clean-test-state:
	-$(SHELL) $(top_srcdir)/tests/brokers/stop-servers.sh '$(abs_top_builddir)/tests/state'
	-rm -rf tests/state tests/work
.PHONY: clean-test-state

# The end-to-end tests under valgrind's memcheck: one producer -> aggregator
# flow and one validator flow per transport, the logger through a broker
# outage, and the HTTP API. Every program the tests start runs under
# valgrind (FERRY_TEST_WRAPPER, tests/wrap.sh) with its report in
# valgrind/PID.log; any error or definite leak fails the target, whatever
# the test itself concluded. A program killed by its test (SIGKILL) leaves a
# report without a summary: it is counted, not judged. Volumes are cut to
# 5 % (FERRY_TEST_VOLUME), deadlines stretched (FERRY_TEST_TIMEOUT_SCALE),
# and the tests run VALGRIND_JOBS at a time: most of their time is spent
# waiting for idle timeouts and group joins, not computing.
VALGRIND_TESTS = tests/e2e/zmq-flow.test tests/e2e/amqp-classic.test tests/e2e/kafka-flow.test \
	tests/e2e/validator-zmq.test tests/e2e/validator-amqp.test tests/e2e/validator-kafka.test \
	tests/e2e/logger-kafka.test tests/e2e/http-zmq.test
VALGRIND = valgrind
VALGRIND_FLAGS = --error-exitcode=97 --leak-check=full --errors-for-leak-kinds=definite \
	--show-leak-kinds=definite --num-callers=40 --suppressions=$(abs_top_srcdir)/tests/valgrind.supp \
	--log-file=$(abs_top_builddir)/valgrind/%p.log
VALGRIND_TIMEOUT_SCALE = 4
VALGRIND_VOLUME = 0.05
VALGRIND_JOBS = 4
EXTRA_DIST += tests/valgrind.supp
check-valgrind: all
	@command -v $(VALGRIND) >/dev/null || { echo "check-valgrind: $(VALGRIND) not found (apt-get install valgrind)" >&2; exit 1; }
	@rm -rf valgrind && mkdir -p valgrind
	@FERRY_TEST_WRAPPER='$(VALGRIND) $(VALGRIND_FLAGS)' FERRY_TEST_TIMEOUT_SCALE=$(VALGRIND_TIMEOUT_SCALE) \
	FERRY_TEST_VOLUME=$(VALGRIND_VOLUME) FERRY_LOGGER_TEST_THREADS=4 \
	  $(MAKE) $(AM_MAKEFLAGS) -j$(VALGRIND_JOBS) check TESTS="$(VALGRIND_TESTS)"; rc=$$?; \
	runs=$$(ls valgrind | wc -l); \
	checked=$$(grep -ls 'ERROR SUMMARY' valgrind/*.log); \
	bad=$$(test -z "$$checked" || grep -L 'ERROR SUMMARY: 0 errors' $$checked); \
	killed=$$((runs - $$(echo $$checked | wc -w))); \
	for f in $$bad; do echo "=== $$f"; cat $$f; done; \
	echo "check-valgrind: $$runs program runs under memcheck: $$((runs - killed)) checked at exit," \
	  "$$(echo $$bad | wc -w) with errors or definite leaks; $$killed killed by their test before exit"; \
	test $$rc -eq 0 && test -z "$$bad"
clean-local: clean-valgrind
clean-valgrind:
	-rm -rf valgrind
.PHONY: check-valgrind clean-valgrind
