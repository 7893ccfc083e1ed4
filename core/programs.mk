# The programs: thin mains over libferryapp (their logic, reachable by tests).
noinst_LTLIBRARIES += libferryapp.la
libferryapp_la_SOURCES = core/app/app.h core/app/cli.c core/app/sections.c \
	core/app/idset.h core/app/idset.c \
	core/app/producer.c core/app/consume.c core/app/aggregator.c core/app/validator.c
libferryapp_la_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/core/app $(CJSON_CFLAGS)
libferryapp_la_LIBADD = libferry.la $(CJSON_LIBS) $(LIBM)

bin_PROGRAMS += ferry-producer ferry-aggregator ferry-validator
ferry_producer_SOURCES = core/producer/main.c
ferry_producer_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/core/app
ferry_producer_LDADD = libferryapp.la
ferry_aggregator_SOURCES = core/aggregator/main.c
ferry_aggregator_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/core/app
ferry_aggregator_LDADD = libferryapp.la
ferry_validator_SOURCES = core/validator/main.c
ferry_validator_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/core/app
ferry_validator_LDADD = libferryapp.la

# doc/options.md comes from the option tables.
noinst_PROGRAMS += doc/gen-options
doc_gen_options_SOURCES = doc/gen-options.c
doc_gen_options_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/core/app
doc_gen_options_LDADD = libferryapp.la
dist_doc_DATA += doc/options.md doc/sinks.md
docs: doc/gen-options$(EXEEXT)
	p='$(abs_top_builddir)/plugins/zmq:$(abs_top_builddir)/plugins/amqp:$(abs_top_builddir)/plugins/kafka'; \
	for s in $(FERRY_BUILT_SINKS); do p="$$p:$(abs_top_builddir)/plugins/sinks/$$s"; done; \
	FERRY_PLUGIN_PATH="$$p" ./doc/gen-options$(EXEEXT) zmq amqp kafka $(FERRY_BUILT_SINKS) \
	  > $(srcdir)/doc/options.md
.PHONY: docs
