/* Unit tests of mqtt.so without a broker: the one mapping of libmosquitto
 * errors and MQTT 5 reason codes to ferry statuses, and the option table
 * as the loader sees it. */
#include "config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <ferry/ferry.h>
#include <mosquitto.h>
#include <mqtt_protocol.h>

#include "../../plugins/mqtt/mqtt-status.h"

START_TEST(test_status_maps_each_class)
{
    ck_assert_int_eq(fmqtt_status(MOSQ_ERR_SUCCESS), FERRY_OK);
    ck_assert_int_eq(fmqtt_status(MOSQ_ERR_NOMEM), FERRY_E_AGAIN);
    ck_assert_int_eq(fmqtt_status(MOSQ_ERR_KEEPALIVE), FERRY_E_TIMEOUT);
    ck_assert_int_eq(fmqtt_status(MOSQ_ERR_NO_CONN), FERRY_E_NOCONN);
    ck_assert_int_eq(fmqtt_status(MOSQ_ERR_CONN_LOST), FERRY_E_NOCONN);
    ck_assert_int_eq(fmqtt_status(MOSQ_ERR_ERRNO), FERRY_E_NOCONN);
    ck_assert_int_eq(fmqtt_status(MOSQ_ERR_EAI), FERRY_E_NOCONN);
    ck_assert_int_eq(fmqtt_status(MOSQ_ERR_INVAL), FERRY_E_CONFIG);
    ck_assert_int_eq(fmqtt_status(MOSQ_ERR_AUTH), FERRY_E_CONFIG);
    ck_assert_int_eq(fmqtt_status(MOSQ_ERR_TLS), FERRY_E_CONFIG);
    ck_assert_int_eq(fmqtt_status(MOSQ_ERR_MALFORMED_UTF8), FERRY_E_CONFIG);
    ck_assert_int_eq(fmqtt_status(MOSQ_ERR_PAYLOAD_SIZE), FERRY_E_TOOBIG);
    ck_assert_int_eq(fmqtt_status(MOSQ_ERR_OVERSIZE_PACKET), FERRY_E_TOOBIG);
    ck_assert_int_eq(fmqtt_status(MOSQ_ERR_NOT_SUPPORTED), FERRY_E_NOTSUP);
    ck_assert_int_eq(fmqtt_status(MOSQ_ERR_PROTOCOL), FERRY_E_FATAL);
    ck_assert_int_eq(fmqtt_status(12345), FERRY_E_FATAL);
}
END_TEST

START_TEST(test_only_transient_errors_are_retried)
{
    for (int rc = MOSQ_ERR_AUTH_CONTINUE; rc <= MOSQ_ERR_ALREADY_EXISTS; rc++) {
        int st = fmqtt_status(rc);
        ck_assert_msg(st <= 0 && st >= FERRY_E_REJECTED, "code %d -> %d", rc, st);
        bool transient = rc == MOSQ_ERR_NOMEM || rc == MOSQ_ERR_CONN_PENDING ||
                         rc == MOSQ_ERR_TIMEOUT || rc == MOSQ_ERR_KEEPALIVE ||
                         rc == MOSQ_ERR_NO_CONN || rc == MOSQ_ERR_CONN_LOST ||
                         rc == MOSQ_ERR_CONN_REFUSED || rc == MOSQ_ERR_ERRNO ||
                         rc == MOSQ_ERR_EAI || rc == MOSQ_ERR_PROXY;
        ck_assert_msg(ferry_status_retriable(st) == transient, "code %d (%s) -> %d", rc,
                      mosquitto_strerror(rc), st);
    }
}
END_TEST

START_TEST(test_connack_refusals_split_config_from_busy)
{
    ck_assert_int_eq(fmqtt_connack_status(0), FERRY_OK);
    ck_assert_int_eq(fmqtt_connack_status(MQTT_RC_BAD_USERNAME_OR_PASSWORD), FERRY_E_CONFIG);
    ck_assert_int_eq(fmqtt_connack_status(MQTT_RC_NOT_AUTHORIZED), FERRY_E_CONFIG);
    ck_assert_int_eq(fmqtt_connack_status(MQTT_RC_CLIENTID_NOT_VALID), FERRY_E_CONFIG);
    ck_assert_int_eq(fmqtt_connack_status(4), FERRY_E_CONFIG);   /* MQTT 3.1.1 */
    ck_assert_int_eq(fmqtt_connack_status(3), FERRY_E_NOCONN);
    ck_assert_int_eq(fmqtt_connack_status(MQTT_RC_SERVER_BUSY), FERRY_E_NOCONN);
    ck_assert_int_eq(fmqtt_connack_status(MQTT_RC_SERVER_UNAVAILABLE), FERRY_E_NOCONN);
    ck_assert_int_eq(fmqtt_connack_status(MQTT_RC_QUOTA_EXCEEDED), FERRY_E_NOCONN);
}
END_TEST

START_TEST(test_puback_refusals)
{
    ck_assert_int_eq(fmqtt_puback_status(MQTT_RC_QUOTA_EXCEEDED), FERRY_E_AGAIN);
    ck_assert_int_eq(fmqtt_puback_status(MQTT_RC_NOT_AUTHORIZED), FERRY_E_CONFIG);
    ck_assert_int_eq(fmqtt_puback_status(MQTT_RC_TOPIC_NAME_INVALID), FERRY_E_CONFIG);
    ck_assert_int_eq(fmqtt_puback_status(MQTT_RC_PACKET_TOO_LARGE), FERRY_E_TOOBIG);
    ck_assert_int_eq(fmqtt_puback_status(MQTT_RC_PAYLOAD_FORMAT_INVALID), FERRY_E_REJECTED);
    ck_assert_int_eq(fmqtt_puback_status(MQTT_RC_UNSPECIFIED), FERRY_E_REJECTED);
}
END_TEST

static const struct ferry_option *find(const struct ferry_option *o, const char *name)
{
    for (; o->name; o++)
        if (!strcmp(o->name, name))
            return o;
    return NULL;
}

START_TEST(test_option_table_loads_and_is_documented)
{
    char err[1024];
    int st;
    const struct ferry_transport *t = ferry_plugin_load("mqtt", NULL, &st, err, sizeof err);
    ck_assert_msg(t != NULL, "load mqtt: %s", err);
    ck_assert_str_eq(t->name, "mqtt");
    ck_assert_int_eq(ferry_options_validate(t->options, err, sizeof err), 0);
    for (const struct ferry_option *o = t->options; o->name; o++) {
        ck_assert_msg(o->help && strlen(o->help) > 10, "%s: no help", o->name);
        ck_assert_msg(o->help[strlen(o->help) - 1] == '.', "%s: help without a period", o->name);
    }
    const struct ferry_option *pw = find(t->options, "password");
    ck_assert(pw && (pw->flags & FERRY_OPTF_SECRET));
    ck_assert(find(t->options, "ca_file") && find(t->options, "cert_file") &&
              find(t->options, "key_file") && find(t->options, "tls_insecure"));
    const struct ferry_option *qos = find(t->options, "qos");
    ck_assert(qos && qos->type == FERRY_OPT_ENUM && !strcmp(qos->def, "2"));
    const struct ferry_option *big = find(t->options, "max_message_size");
    ck_assert(big && big->type == FERRY_OPT_SIZE && big->max <= 268435455);
    /* what is claimed, and what MQTT through libmosquitto cannot give */
    ck_assert(t->caps & FERRY_CAP_CONFIRMS);
    ck_assert(t->caps & FERRY_CAP_GROUPS);
    ck_assert(t->caps & FERRY_CAP_FANOUT);
    ck_assert(!(t->caps & FERRY_CAP_ACK));
    ck_assert(!(t->caps & FERRY_CAP_DEADLETTER));
    ck_assert_msg(strstr(t->lib_version(), "libmosquitto 2.") != NULL, "%s", t->lib_version());
}
END_TEST

int main(void)
{
    Suite *s = suite_create("mqtt");
    TCase *tc = tcase_create("mqtt");
    tcase_add_test(tc, test_status_maps_each_class);
    tcase_add_test(tc, test_only_transient_errors_are_retried);
    tcase_add_test(tc, test_connack_refusals_split_config_from_busy);
    tcase_add_test(tc, test_puback_refusals);
    tcase_add_test(tc, test_option_table_loads_and_is_documented);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
