# Test-only plugins (never installed): an in-process broker and broken ones.
TEST_PLUGIN_LDFLAGS = -module -avoid-version -shared -rpath /nowhere $(SAN_LDFLAGS)
check_LTLIBRARIES += tests/plugins/loopback.la tests/plugins/wrongabi.la \
	tests/plugins/nodesc.la tests/plugins/badopts.la tests/plugins/oldabi.la
tests_plugins_loopback_la_SOURCES = tests/plugins/loopback.c
tests_plugins_loopback_la_LDFLAGS = $(TEST_PLUGIN_LDFLAGS)
tests_plugins_loopback_la_LIBADD = $(PTHREAD_LIBS)
tests_plugins_wrongabi_la_SOURCES = tests/plugins/wrongabi.c
tests_plugins_wrongabi_la_LDFLAGS = $(TEST_PLUGIN_LDFLAGS)
tests_plugins_nodesc_la_SOURCES = tests/plugins/nodesc.c
tests_plugins_nodesc_la_LDFLAGS = $(TEST_PLUGIN_LDFLAGS)
tests_plugins_badopts_la_SOURCES = tests/plugins/badopts.c
tests_plugins_badopts_la_LDFLAGS = $(TEST_PLUGIN_LDFLAGS)
tests_plugins_oldabi_la_SOURCES = tests/plugins/oldabi.c
tests_plugins_oldabi_la_LDFLAGS = $(TEST_PLUGIN_LDFLAGS)
