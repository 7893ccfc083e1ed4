# Fuzzing with libFuzzer (clang): `make fuzz` builds each target with
# -fsanitize=fuzzer,address,undefined straight from the sources and runs it
# for FUZZ_SECONDS on a copy of its seed corpus (tests/fuzz/corpus/TARGET).
# Crashes are left as fuzz/crash-* in the build tree.
FUZZ_SECONDS = 60
FUZZ_CC = clang
FUZZ_CFLAGS = -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	-I$(top_builddir) -I$(top_builddir)/include -I$(top_srcdir)/include -I$(top_srcdir)/core/lib \
	-I$(top_srcdir)/core/app \
	-DFERRY_PLUGIN_DIR='"$(pkglibdir)"' -DFERRY_SYSCONFDIR='"$(sysconfdir)"' \
	$(CJSON_CFLAGS) $(INIH_CFLAGS) $(PCRE2_CFLAGS)
FUZZ_LIBSRC = core/lib/util.c core/lib/options.c core/lib/config.c core/lib/loader.c \
	core/lib/conn.c core/lib/pub.c core/lib/envelope.c core/lib/ledger.c \
	core/lib/schema.c core/lib/schema_format.c core/lib/schema_meta.c
FUZZ_LIBS = $(CJSON_LIBS) $(INIH_LIBS) $(PCRE2_LIBS) $(LIBLTDL) $(PTHREAD_LIBS) $(LIBM)
FUZZ_TARGETS = config body_id schema zmq_frames
EXTRA_DIST += $(FUZZ_TARGETS:%=tests/fuzz/fuzz_%.c) tests/fuzz/corpus tests/fuzz/run.sh

FUZZ_ZMQ_SRC = plugins/zmq/wire.c plugins/zmq/reliable.c core/lib/spool.c
fuzz/fuzz_zmq_frames: $(top_srcdir)/tests/fuzz/fuzz_zmq_frames.c $(top_srcdir)/plugins/zmq/zmq.c \
		$(top_srcdir)/plugins/zmq/wire.h $(FUZZ_ZMQ_SRC:%=$(top_srcdir)/%)
	@mkdir -p fuzz
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(ZMQ_CFLAGS) -I$(top_srcdir)/core/lib -o $@ \
		$(top_srcdir)/tests/fuzz/fuzz_zmq_frames.c $(FUZZ_ZMQ_SRC:%=$(top_srcdir)/%) $(ZMQ_LIBS)
fuzz/fuzz_config: $(top_srcdir)/tests/fuzz/fuzz_config.c $(FUZZ_LIBSRC:%=$(top_srcdir)/%)
	@mkdir -p fuzz
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(top_srcdir)/tests/fuzz/fuzz_config.c $(FUZZ_LIBSRC:%=$(top_srcdir)/%) $(FUZZ_LIBS)
fuzz/fuzz_body_id: $(top_srcdir)/tests/fuzz/fuzz_body_id.c $(FUZZ_LIBSRC:%=$(top_srcdir)/%)
	@mkdir -p fuzz
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(top_srcdir)/tests/fuzz/fuzz_body_id.c $(FUZZ_LIBSRC:%=$(top_srcdir)/%) $(FUZZ_LIBS)
fuzz/fuzz_schema: $(top_srcdir)/tests/fuzz/fuzz_schema.c $(FUZZ_LIBSRC:%=$(top_srcdir)/%)
	@mkdir -p fuzz
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(top_srcdir)/tests/fuzz/fuzz_schema.c $(FUZZ_LIBSRC:%=$(top_srcdir)/%) $(FUZZ_LIBS)

fuzz-build: $(FUZZ_TARGETS:%=fuzz/fuzz_%)
# one target per fuzzer, so `make -j2 fuzz` runs two at a time
fuzz: $(FUZZ_TARGETS:%=fuzz-run-%)
fuzz-run-config: fuzz/fuzz_config
	@sh $(top_srcdir)/tests/fuzz/run.sh config $(FUZZ_SECONDS) $(abs_top_srcdir)
fuzz-run-body_id: fuzz/fuzz_body_id
	@sh $(top_srcdir)/tests/fuzz/run.sh body_id $(FUZZ_SECONDS) $(abs_top_srcdir)
fuzz-run-schema: fuzz/fuzz_schema
	@sh $(top_srcdir)/tests/fuzz/run.sh schema $(FUZZ_SECONDS) $(abs_top_srcdir)
fuzz-run-zmq_frames: fuzz/fuzz_zmq_frames
	@sh $(top_srcdir)/tests/fuzz/run.sh zmq_frames $(FUZZ_SECONDS) $(abs_top_srcdir)
.PHONY: fuzz fuzz-build $(FUZZ_TARGETS:%=fuzz-run-%)
clean-local: clean-fuzz
clean-fuzz:
	-rm -rf fuzz
.PHONY: clean-fuzz

# The fuzz corpora replayed by make check, with the normal compiler.
check_PROGRAMS += tests/fuzz/replay_config tests/fuzz/replay_body_id tests/fuzz/replay_schema
tests_fuzz_replay_config_SOURCES = tests/fuzz/replay.c tests/fuzz/fuzz_config.c
tests_fuzz_replay_config_LDADD = libferry.la
tests_fuzz_replay_body_id_SOURCES = tests/fuzz/replay.c tests/fuzz/fuzz_body_id.c
tests_fuzz_replay_body_id_LDADD = libferry.la
tests_fuzz_replay_schema_SOURCES = tests/fuzz/replay.c tests/fuzz/fuzz_schema.c
tests_fuzz_replay_schema_CPPFLAGS = $(AM_CPPFLAGS) $(CJSON_CFLAGS)
tests_fuzz_replay_schema_LDADD = libferry.la $(CJSON_LIBS)
if HAVE_ZMQ
check_PROGRAMS += tests/fuzz/replay_zmq_frames
tests_fuzz_replay_zmq_frames_SOURCES = tests/fuzz/replay.c tests/fuzz/fuzz_zmq_frames.c \
	plugins/zmq/wire.c plugins/zmq/wire.h plugins/zmq/reliable.c
EXTRA_tests_fuzz_replay_zmq_frames_DEPENDENCIES = plugins/zmq/zmq.c
tests_fuzz_replay_zmq_frames_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/plugins/zmq $(ZMQ_CFLAGS) \
	-I$(top_srcdir)/core/lib
tests_fuzz_replay_zmq_frames_LDADD = libferry_spool.la $(ZMQ_LIBS)
endif
TESTS += tests/fuzz/replay.test
EXTRA_DIST += tests/fuzz/replay.test

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
