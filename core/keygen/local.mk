# ferry-keygen: CURVE key pairs for the zmq plugin (needs libzmq).
if HAVE_ZMQ
bin_PROGRAMS += ferry-keygen
ferry_keygen_SOURCES = core/keygen/main.c
ferry_keygen_CPPFLAGS = $(AM_CPPFLAGS) $(ZMQ_CFLAGS)
ferry_keygen_LDADD = $(ZMQ_LIBS)
endif
