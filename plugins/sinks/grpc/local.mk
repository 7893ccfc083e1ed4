# grpc.so: the gRPC sink (gRPC C core + protobuf-c). The C code for the
# contract is generated from proto/ferry/v1/sink.proto by protoc-c at build time.
protodir = $(datadir)/ferry/proto/ferry/v1
dist_proto_DATA = proto/ferry/v1/sink.proto

if HAVE_GRPC
pkglib_LTLIBRARIES += plugins/sinks/grpc/grpc.la
plugins_sinks_grpc_grpc_la_SOURCES = plugins/sinks/grpc/grpc.c
nodist_plugins_sinks_grpc_grpc_la_SOURCES = plugins/sinks/grpc/ferry/v1/sink.pb-c.c \
	plugins/sinks/grpc/ferry/v1/sink.pb-c.h
plugins_sinks_grpc_grpc_la_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_builddir)/plugins/sinks/grpc \
	$(GRPC_CFLAGS) $(CJSON_CFLAGS)
# -module spelled out: automake checks module names only when it sees it.
plugins_sinks_grpc_grpc_la_LDFLAGS = -module $(PLUGIN_LDFLAGS)
plugins_sinks_grpc_grpc_la_LIBADD = $(GRPC_LIBS) $(CJSON_LIBS)
BUILT_SOURCES += plugins/sinks/grpc/ferry/v1/sink.pb-c.c plugins/sinks/grpc/ferry/v1/sink.pb-c.h
CLEANFILES += plugins/sinks/grpc/ferry/v1/sink.pb-c.c plugins/sinks/grpc/ferry/v1/sink.pb-c.h

plugins/sinks/grpc/ferry/v1/sink.pb-c.h: plugins/sinks/grpc/ferry/v1/sink.pb-c.c
plugins/sinks/grpc/ferry/v1/sink.pb-c.c: $(top_srcdir)/proto/ferry/v1/sink.proto
	$(AM_V_GEN)$(MKDIR_P) plugins/sinks/grpc && \
	$(PROTOC_C) --proto_path=$(top_srcdir)/proto --c_out=plugins/sinks/grpc \
		$(top_srcdir)/proto/ferry/v1/sink.proto
endif
EXTRA_DIST += plugins/sinks/grpc/README.md
EXTRA_DIST += examples/grpc-service/service.py examples/grpc-service/ferry.conf \
	examples/grpc-service/README.md
