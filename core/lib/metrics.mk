# libferry's metrics registry (Prometheus text format) and its header.
libferry_la_SOURCES += core/lib/metrics.c
ferryinclude_HEADERS += include/ferry/metrics.h
