# Memory: bounded memory with the consumer side away (make check and
# make check-faults), the end-to-end tests under valgrind's memcheck
# (make check-valgrind) and the soak of 1,000,000 messages per transport
# (make soak).
MEMORY_E2E_TESTS = tests/e2e/memory-producer-zmq.test tests/e2e/memory-logger-zmq.test
TESTS += $(MEMORY_E2E_TESTS)
EXTRA_DIST += $(MEMORY_E2E_TESTS) tests/e2e/memory-lib.sh tests/wrap.sh
# with a broker stopped: private RabbitMQ node, private Kafka mock cluster
MEMORY_FAULT_TESTS = tests/faults/amqp-memory.test tests/faults/kafka-memory.test
FAULT_TESTS += $(MEMORY_FAULT_TESTS)
EXTRA_DIST += $(MEMORY_FAULT_TESTS)

# The soak: not part of `make check`; FERRY_SOAK_COUNT (default 1,000,000)
# messages per transport, figures in soak/TRANSPORT.md and soak/report.md.
SOAK_TESTS = tests/soak/zmq.test tests/soak/amqp.test tests/soak/kafka.test
EXTRA_DIST += $(SOAK_TESTS) tests/soak/soak.sh
soak: all
	@rm -f soak/*.md
	-$(MAKE) $(AM_MAKEFLAGS) check TESTS="$(SOAK_TESTS)"; echo $$? >soak.status
	@mkdir -p soak; { \
	  echo "| transport | messages | seconds | msgs/s | producer RSS MiB start / peak / end | aggregator RSS MiB start / peak / end | missing / duplicates |"; \
	  echo "|---|---:|---:|---:|---|---|---|"; \
	  for t in zmq amqp kafka; do test -f soak/$$t.md && cat soak/$$t.md; done; } >soak/report.md
	@cat soak/report.md; s=$$(cat soak.status); rm -f soak.status; exit $$s
clean-local: clean-soak
clean-soak:
	-rm -rf soak
.PHONY: soak clean-soak

# The end-to-end tests under valgrind's memcheck: one producer -> aggregator
# flow and one validator flow per transport, the logger through a broker
# outage, the HTTP API, and the conformance suite over loopback (each of its
# cases is a forked process with a report of its own: loans left open at
# close, a cut connection, a restart must leak nothing). Every program the tests start runs under
# valgrind (FERRY_TEST_WRAPPER, tests/wrap.sh) with its report in
# valgrind/PID.log; any error or definite leak fails the target, whatever
# the test itself concluded. A program killed by its test (SIGKILL) leaves a
# report without a summary: it is counted, not judged. Volumes are cut to
# 5 % (FERRY_TEST_VOLUME), deadlines stretched (FERRY_TEST_TIMEOUT_SCALE),
# and the tests run VALGRIND_JOBS at a time: most of their time is spent
# waiting for idle timeouts and group joins, not computing.
VALGRIND_TESTS = tests/e2e/zmq-flow.test tests/e2e/amqp-classic.test tests/e2e/kafka-flow.test \
	tests/e2e/validator-zmq.test tests/e2e/validator-amqp.test tests/e2e/validator-kafka.test \
	tests/e2e/logger-kafka.test tests/e2e/http-zmq.test tests/conformance/loopback.test
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
