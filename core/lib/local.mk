# libferry. Every source of the library is listed here (its public headers
# are in include/local.mk) and compiled once, into the convenience library
# libferry_core.la. libferry.la, the installed shared library, is made of it
# and exports only what the installed headers declare (exports.sh); the
# programs (through core/app) and the unit tests link libferry_core.la
# itself to reach the internals declared in core/app/private.h.
noinst_LTLIBRARIES += libferry_core.la
libferry_core_la_SOURCES = \
	core/lib/internal.h \
	core/lib/util.c \
	core/lib/options.c \
	core/lib/config.c \
	core/lib/loader.c \
	core/lib/conn.c \
	core/lib/sink.c \
	core/lib/pub.c \
	core/lib/envelope.c \
	core/lib/ledger.c \
	core/lib/retry.c \
	core/lib/metrics.c \
	core/lib/logger.c
libferry_core_la_CPPFLAGS = $(AM_CPPFLAGS) $(FERRY_CORE_CPPFLAGS) $(CJSON_CFLAGS) $(INIH_CFLAGS)
libferry_core_la_LIBADD = libferry_schema.la libferry_spool.la $(CJSON_LIBS) $(INIH_LIBS) $(PCRE2_LIBS) $(LIBLTDL) \
	$(PTHREAD_LIBS) $(LIBM)
# the library's own headers (internal.h, spool.h), and core/app/private.h
FERRY_CORE_CPPFLAGS = -I$(top_srcdir)/core/lib -I$(top_srcdir)/core/app

lib_LTLIBRARIES += libferry.la
libferry_la_SOURCES =
libferry_la_LIBADD = libferry_core.la
libferry_la_LDFLAGS = $(AM_LDFLAGS) -version-info 0:0:0 -no-undefined \
	-export-symbols core/lib/libferry.sym
EXTRA_libferry_la_DEPENDENCIES = core/lib/libferry.sym
core/lib/libferry.sym: $(srcdir)/core/lib/exports.sh $(ferryinclude_HEADERS:%=$(srcdir)/%)
	$(AM_V_GEN)$(MKDIR_P) core/lib && \
	$(SHELL) $(srcdir)/core/lib/exports.sh $(ferryinclude_HEADERS:%=$(srcdir)/%) >$@-t && mv $@-t $@
CLEANFILES += core/lib/libferry.sym
EXTRA_DIST += core/lib/exports.sh

# JSON Schema (draft-07) validator: a convenience library linked into
# libferry_core, and on its own into the schema tests.
noinst_LTLIBRARIES += libferry_schema.la
libferry_schema_la_SOURCES = core/lib/schema.c core/lib/schema_format.c \
	core/lib/schema_meta.c core/lib/schema_internal.h
libferry_schema_la_CPPFLAGS = $(AM_CPPFLAGS) $(FERRY_CORE_CPPFLAGS) $(CJSON_CFLAGS) $(PCRE2_CFLAGS)
libferry_schema_la_CFLAGS = $(AM_CFLAGS)
libferry_schema_la_LIBADD = $(CJSON_LIBS) $(PCRE2_LIBS) $(LIBM)

# checks of untrusted JSON text (NUL, UTF-8, duplicate keys, numbers)
libferry_schema_la_SOURCES += core/lib/jsoncheck.c core/app/jsoncheck.h

# The on-disk spool: self-contained, linked into libferry_core (the logger)
# and into zmq.so (reliable mode), so there is one spool, not two.
noinst_LTLIBRARIES += libferry_spool.la
libferry_spool_la_SOURCES = core/lib/spool.c core/lib/spool.h
