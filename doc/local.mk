# doc/: the topic pages the README links to, and doc/options.md, generated
# from the option tables (`make docs`; tests/e2e/options-doc.test fails
# when it is stale).
EXTRA_DIST += doc/configuration.md doc/http-api.md doc/validator.md \
	doc/reliability.md doc/security.md doc/docker.md doc/logger.md \
	doc/benchmarks.md doc/testing.md doc/building.md \
	doc/plugin-authoring.md doc/plugin-guide.md doc/operations.md

# doc/options.md comes from the option tables.
noinst_PROGRAMS += doc/gen-options
doc_gen_options_SOURCES = doc/gen-options.c
doc_gen_options_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/core/app
doc_gen_options_LDADD = libferryapp.la
dist_doc_DATA += doc/options.md
docs: doc/gen-options$(EXEEXT)
	FERRY_PLUGIN_PATH='$(abs_top_builddir)/plugins/zmq:$(abs_top_builddir)/plugins/amqp:$(abs_top_builddir)/plugins/kafka' \
	  ./doc/gen-options$(EXEEXT) zmq amqp kafka > $(srcdir)/doc/options.md
.PHONY: docs
