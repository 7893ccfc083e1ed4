# MQTT tests: a unit test of mqtt.so's status mapping and option table, and
# end-to-end scripts against a private mosquitto per test
# (tests/brokers/mosquitto.sh).
EXTRA_DIST += tests/brokers/mosquitto.sh tests/e2e/mqtt-lib.sh

if HAVE_MQTT
if HAVE_CHECK
check_PROGRAMS += tests/unit/check_mqtt
TESTS += tests/unit/check_mqtt
tests_unit_check_mqtt_SOURCES = tests/unit/check_mqtt.c plugins/mqtt/status.c
tests_unit_check_mqtt_CPPFLAGS = $(AM_CPPFLAGS) $(MQTT_CFLAGS) $(CHECK_CFLAGS)
tests_unit_check_mqtt_LDADD = libferry.la $(MQTT_LIBS) $(CHECK_LIBS)
endif
endif

MQTT_E2E_TESTS = tests/e2e/mqtt-conformance.test tests/e2e/mqtt-flow.test \
	tests/e2e/mqtt-validator.test tests/e2e/mqtt-share.test tests/e2e/mqtt-session.test \
	tests/e2e/mqtt-tls.test tests/e2e/mqtt-restart.test
EXTRA_DIST += $(MQTT_E2E_TESTS)
TESTS += $(MQTT_E2E_TESTS)
