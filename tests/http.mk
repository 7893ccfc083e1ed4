# HTTP server tests: Check units for the metrics text format and request
# parsing; end-to-end scripts over loopback (always) and each transport.
EXTRA_DIST += tests/e2e/http-lib.sh
HTTP_E2E = tests/e2e/http-seed-api.test tests/e2e/http-config.test tests/e2e/http-loopback.test tests/e2e/http-loopback-down.test \
	tests/e2e/http-zmq.test tests/e2e/http-amqp.test tests/e2e/http-kafka.test
TESTS += $(HTTP_E2E)
EXTRA_DIST += $(HTTP_E2E) tests/e2e/http-flow.sh

if HAVE_CHECK
check_PROGRAMS += tests/unit/check_http
TESTS += tests/unit/check_http
tests_unit_check_http_SOURCES = tests/unit/check_http.c
tests_unit_check_http_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/core/app $(CHECK_CFLAGS) $(CJSON_CFLAGS)
tests_unit_check_http_LDADD = libferryapp.la libferry.la $(CHECK_LIBS) $(CJSON_LIBS)
endif

EXTRA_DIST += bench/http-load.sh
