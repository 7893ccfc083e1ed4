# Unit tests (Check): one check_<unit> per part; none needs a broker.
# They link libferry_core.la (or libferryapp.la), so internals are in reach.
if HAVE_CHECK
UNIT_TESTS = tests/unit/check_config tests/unit/check_loader tests/unit/check_envelope \
	tests/unit/check_pub tests/unit/check_ledger tests/unit/check_retry \
	tests/unit/check_schema tests/unit/check_http tests/unit/check_validator \
	tests/unit/check_logger tests/unit/check_consume
tests_unit_check_config_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/core/app
tests_unit_check_config_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_unit_check_config_LDADD = libferry_core.la $(CHECK_LIBS)
tests_unit_check_loader_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_unit_check_loader_LDADD = libferry_core.la $(CHECK_LIBS)
tests_unit_check_envelope_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) $(CJSON_CFLAGS)
tests_unit_check_envelope_LDADD = libferry_core.la $(CHECK_LIBS) $(CJSON_LIBS)
tests_unit_check_pub_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_unit_check_pub_LDADD = libferry_core.la $(CHECK_LIBS)
tests_unit_check_ledger_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_unit_check_ledger_LDADD = libferry_core.la $(CHECK_LIBS)
tests_unit_check_retry_SOURCES = tests/unit/check_retry.c
tests_unit_check_retry_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/core/app $(CJSON_CFLAGS)
tests_unit_check_retry_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_unit_check_retry_LDADD = libferryapp.la $(CHECK_LIBS)
tests_unit_check_schema_SOURCES = tests/unit/check_schema.c
tests_unit_check_schema_CPPFLAGS = $(AM_CPPFLAGS) $(CJSON_CFLAGS) $(CHECK_CFLAGS) \
	-DFERRY_TEST_SCHEMA_DIR='"$(top_srcdir)/etc/schemas"'
tests_unit_check_schema_CFLAGS = $(AM_CFLAGS)
tests_unit_check_schema_LDADD = libferry_schema.la $(CHECK_LIBS) $(PTHREAD_LIBS)
tests_unit_check_http_SOURCES = tests/unit/check_http.c
tests_unit_check_http_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/core/app $(CHECK_CFLAGS) $(CJSON_CFLAGS)
tests_unit_check_http_LDADD = libferryapp.la $(CHECK_LIBS) $(CJSON_LIBS)
tests_unit_check_validator_SOURCES = tests/unit/check_validator.c
tests_unit_check_validator_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/core/app $(CJSON_CFLAGS)
tests_unit_check_validator_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_unit_check_validator_LDADD = libferryapp.la $(CHECK_LIBS)
tests_unit_check_consume_SOURCES = tests/unit/check_consume.c
tests_unit_check_consume_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/core/app $(CJSON_CFLAGS)
tests_unit_check_consume_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_unit_check_consume_LDADD = libferryapp.la $(CHECK_LIBS)
tests_unit_check_logger_CPPFLAGS = $(AM_CPPFLAGS) $(FERRY_CORE_CPPFLAGS)
tests_unit_check_logger_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) $(CJSON_CFLAGS)
tests_unit_check_logger_LDADD = libferry_core.la $(CHECK_LIBS) $(CJSON_LIBS) $(PTHREAD_LIBS)

if !SANITIZERS
# check_logger again with ThreadSanitizer, the library's sources compiled
# in; TSan cannot be combined with AddressSanitizer, so only here.
UNIT_TESTS += tests/unit/check_logger_tsan
tests_unit_check_logger_tsan_SOURCES = tests/unit/check_logger.c $(libferry_core_la_SOURCES) \
	$(libferry_spool_la_SOURCES)
tests_unit_check_logger_tsan_CPPFLAGS = $(libferry_core_la_CPPFLAGS)
tests_unit_check_logger_tsan_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) $(CJSON_CFLAGS) \
	-fsanitize=thread -g -O1
tests_unit_check_logger_tsan_LDFLAGS = -fsanitize=thread
tests_unit_check_logger_tsan_LDADD = libferry_schema.la $(CJSON_LIBS) $(INIH_LIBS) \
	$(PCRE2_LIBS) $(LIBLTDL) $(CHECK_LIBS) $(PTHREAD_LIBS) $(LIBM)
endif

# The plugins' helpers, compiled in from the plugin's own directory.
if HAVE_AMQP
UNIT_TESTS += tests/unit/check_amqp_util
tests_unit_check_amqp_util_SOURCES = tests/unit/check_amqp_util.c \
	plugins/amqp/amqp-util.c plugins/amqp/amqp-util.h
tests_unit_check_amqp_util_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/plugins/amqp \
	$(AMQP_CFLAGS) $(CHECK_CFLAGS)
tests_unit_check_amqp_util_LDADD = $(AMQP_LIBS) $(CHECK_LIBS)
endif
if HAVE_KAFKA
UNIT_TESTS += tests/unit/check_kafka
tests_unit_check_kafka_SOURCES = tests/unit/check_kafka.c plugins/kafka/status.c plugins/kafka/security.c \
	plugins/kafka/offsets.c
tests_unit_check_kafka_CPPFLAGS = $(AM_CPPFLAGS) $(KAFKA_CFLAGS) $(CHECK_CFLAGS)
tests_unit_check_kafka_LDADD = $(KAFKA_LIBS) $(CHECK_LIBS)
endif

check_PROGRAMS += $(UNIT_TESTS)
TESTS += $(UNIT_TESTS)
endif

# mqtt.so's status mapping and option table
if HAVE_MQTT
if HAVE_CHECK
check_PROGRAMS += tests/unit/check_mqtt
TESTS += tests/unit/check_mqtt
tests_unit_check_mqtt_SOURCES = tests/unit/check_mqtt.c plugins/mqtt/status.c
tests_unit_check_mqtt_CPPFLAGS = $(AM_CPPFLAGS) $(MQTT_CFLAGS) $(CHECK_CFLAGS)
tests_unit_check_mqtt_LDADD = libferry.la $(MQTT_LIBS) $(CHECK_LIBS)
endif
endif

# the zmq plugin's wire codec: plain bytes, no libzmq needed
if HAVE_CHECK
check_PROGRAMS += tests/unit/check_zmq_wire
TESTS += tests/unit/check_zmq_wire
tests_unit_check_zmq_wire_SOURCES = tests/unit/check_zmq_wire.c plugins/zmq/wire.c plugins/zmq/wire.h
tests_unit_check_zmq_wire_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/plugins/zmq $(CHECK_CFLAGS)
tests_unit_check_zmq_wire_LDADD = $(CHECK_LIBS)
endif

# the checks of untrusted JSON text (core/lib/jsoncheck.c)
if HAVE_CHECK
check_PROGRAMS += tests/unit/check_jsoncheck
TESTS += tests/unit/check_jsoncheck
tests_unit_check_jsoncheck_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/core/app
tests_unit_check_jsoncheck_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_unit_check_jsoncheck_LDADD = libferry_core.la $(CHECK_LIBS)
endif

# the id sets behind de-duplication (core/app/idset.c)
if HAVE_CHECK
check_PROGRAMS += tests/unit/check_idset
TESTS += tests/unit/check_idset
tests_unit_check_idset_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/core/app
tests_unit_check_idset_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_unit_check_idset_LDADD = libferryapp.la $(CHECK_LIBS)
endif
