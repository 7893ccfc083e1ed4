# ferry-aggregator: a thin main over libferryapp (core/app).
bin_PROGRAMS += ferry-aggregator
ferry_aggregator_SOURCES = core/aggregator/main.c
ferry_aggregator_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/core/app
ferry_aggregator_LDADD = libferryapp.la
