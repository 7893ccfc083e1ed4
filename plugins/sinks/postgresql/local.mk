if HAVE_POSTGRESQL
pkglib_LTLIBRARIES += plugins/sinks/postgresql/postgresql.la
plugins_sinks_postgresql_postgresql_la_SOURCES = plugins/sinks/postgresql/postgresql.c \
	core/lib/jsoncheck.c core/app/jsoncheck.h
plugins_sinks_postgresql_postgresql_la_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/core/app $(POSTGRESQL_CFLAGS)
# -module spelled out: automake checks module names only when it sees it.
plugins_sinks_postgresql_postgresql_la_LDFLAGS = -module $(PLUGIN_LDFLAGS)
plugins_sinks_postgresql_postgresql_la_LIBADD = $(POSTGRESQL_LIBS)
endif
EXTRA_DIST += plugins/sinks/postgresql/README.md
