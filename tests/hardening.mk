# Hardening: checks of untrusted input (JSON text, stdin lines, config
# lines, plugin names, HTTP framing) and their tests.
libferry_schema_la_SOURCES += core/lib/jsoncheck.c core/app/jsoncheck.h

if HAVE_CHECK
check_PROGRAMS += tests/unit/check_jsoncheck
TESTS += tests/unit/check_jsoncheck
tests_unit_check_jsoncheck_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/core/app
tests_unit_check_jsoncheck_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_unit_check_jsoncheck_LDADD = libferry_core.la $(CHECK_LIBS)
endif

HARDEN_TESTS = tests/e2e/harden-stdin.test tests/e2e/harden-json.test tests/e2e/harden-plugin-name.test tests/e2e/harden-secrets.test tests/e2e/harden-config.test tests/e2e/harden-http-framing.test tests/e2e/harden-slow-clients.test tests/e2e/harden-amqp-toobig.test tests/e2e/harden-zmq-frames.test tests/e2e/harden-http-stamp.test tests/e2e/harden-amqp-idle-health.test tests/e2e/harden-amqp-queue-type.test
EXTRA_DIST += $(HARDEN_TESTS)
TESTS += $(HARDEN_TESTS)

# Fuzzing (make fuzz, see tests/reliability.mk): the JSON text checks and
# the HTTP body and batch parser; the corpus holds the inputs of the
# hardening issue (NUL, invalid UTF-8, duplicate keys, 1e999999, deep
# nesting) and the config corpus its long lines, duplicate keys and nan.
FUZZ_LIBSRC += core/lib/jsoncheck.c
HARDEN_FUZZ = json_check http_body
EXTRA_DIST += $(HARDEN_FUZZ:%=tests/fuzz/fuzz_%.c)
fuzz/fuzz_json_check: $(top_srcdir)/tests/fuzz/fuzz_json_check.c $(FUZZ_LIBSRC:%=$(top_srcdir)/%)
	@mkdir -p fuzz
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(top_srcdir)/tests/fuzz/fuzz_json_check.c $(FUZZ_LIBSRC:%=$(top_srcdir)/%) $(FUZZ_LIBS)
FUZZ_HTTP_SRC = core/app/http.c core/lib/metrics.c
fuzz/fuzz_http_body: $(top_srcdir)/tests/fuzz/fuzz_http_body.c $(FUZZ_LIBSRC:%=$(top_srcdir)/%) $(FUZZ_HTTP_SRC:%=$(top_srcdir)/%)
	@mkdir -p fuzz
	$(FUZZ_CC) $(FUZZ_CFLAGS) -DFERRY_FUZZ_STANDALONE -I$(top_srcdir)/core/app $(MHD_CFLAGS) -o $@ \
		$(top_srcdir)/tests/fuzz/fuzz_http_body.c $(FUZZ_HTTP_SRC:%=$(top_srcdir)/%) \
		$(FUZZ_LIBSRC:%=$(top_srcdir)/%) $(FUZZ_LIBS) $(MHD_LIBS)
fuzz-build: $(HARDEN_FUZZ:%=fuzz/fuzz_%)
fuzz: $(HARDEN_FUZZ:%=fuzz-run-%)
fuzz-run-json_check: fuzz/fuzz_json_check
	@sh $(top_srcdir)/tests/fuzz/run.sh json_check $(FUZZ_SECONDS) $(abs_top_srcdir)
fuzz-run-http_body: fuzz/fuzz_http_body
	@sh $(top_srcdir)/tests/fuzz/run.sh http_body $(FUZZ_SECONDS) $(abs_top_srcdir)
.PHONY: fuzz-run-json_check fuzz-run-http_body

# the corpora replayed by make check (tests/fuzz/replay.test)
check_PROGRAMS += tests/fuzz/replay_json_check tests/fuzz/replay_http_body
tests_fuzz_replay_json_check_SOURCES = tests/fuzz/replay.c tests/fuzz/fuzz_json_check.c
tests_fuzz_replay_json_check_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/core/app $(CJSON_CFLAGS)
tests_fuzz_replay_json_check_LDADD = libferry_core.la $(CJSON_LIBS)
tests_fuzz_replay_http_body_SOURCES = tests/fuzz/replay.c tests/fuzz/fuzz_http_body.c
tests_fuzz_replay_http_body_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/core/app $(CJSON_CFLAGS) $(MHD_CFLAGS)
tests_fuzz_replay_http_body_LDADD = libferryapp.la $(CJSON_LIBS) $(MHD_LIBS)
