# Memory: bounded memory with the consumer side away (make check and
# make check-faults), the end-to-end tests under valgrind's memcheck
# (make check-valgrind) and the soak of 1,000,000 messages per transport
# (make soak).
MEMORY_E2E_TESTS = tests/e2e/memory-producer-zmq.test tests/e2e/memory-logger-zmq.test
TESTS += $(MEMORY_E2E_TESTS)
EXTRA_DIST += $(MEMORY_E2E_TESTS) tests/e2e/memory-lib.sh tests/wrap.sh
