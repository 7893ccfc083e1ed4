# ferry-producer: a thin main over libferryapp (core/app).
bin_PROGRAMS += ferry-producer
ferry_producer_SOURCES = core/producer/main.c
ferry_producer_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/core/app
ferry_producer_LDADD = libferryapp.la
