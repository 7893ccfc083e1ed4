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
