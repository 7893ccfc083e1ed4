# The installed headers: <ferry/ferry.h> for applications, <ferry/transport.h>
# and <ferry/sink.h> for plugins, and the optional parts of the library.
# Public headers go to $(includedir)/ferry/ (nobase_ would add include/ again).
ferryincludedir = $(includedir)/ferry
ferryinclude_HEADERS = include/ferry/ferry.h include/ferry/transport.h include/ferry/sink.h \
	include/ferry/metrics.h include/ferry/retry.h include/ferry/ledger.h \
	include/ferry/schema.h
