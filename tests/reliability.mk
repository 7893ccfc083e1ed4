# Reliability: the delivery ledger, fault-injection tests (make check-faults),
# fuzz targets (make fuzz) and the sanitizer build script.
libferry_la_SOURCES += core/lib/ledger.c
nobase_include_HEADERS += include/ferry/ledger.h

if HAVE_CHECK
check_PROGRAMS += tests/unit/check_ledger
TESTS += tests/unit/check_ledger
tests_unit_check_ledger_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_unit_check_ledger_LDADD = libferry.la $(CHECK_LIBS)
endif

# Fault injection: not part of `make check` (they restart brokers and take
# minutes); `make check-faults` runs them through the same harness.
FAULT_TESTS = tests/faults/amqp-kill.test tests/faults/amqp-restart.test \
	tests/faults/amqp-cut.test tests/faults/amqp-diskfull.test \
	tests/faults/kafka-kill.test tests/faults/kafka-restart.test \
	tests/faults/kafka-cut.test tests/faults/kafka-diskfull.test \
	tests/faults/zmq-kill.test tests/faults/zmq-cut.test tests/faults/zmq-diskfull.test
EXTRA_DIST += $(FAULT_TESTS) tests/faults/faults.sh tests/faults/cutproxy.py
check-faults:
	$(MAKE) $(AM_MAKEFLAGS) check TESTS="$(FAULT_TESTS)"
.PHONY: check-faults
