/* The HTTP side without a network: the metrics registry and its Prometheus
 * text, request parsing (/produce, /batch-produce), tokens, listen addresses. */
#include "config.h"
#include "app.h"
#include "http.h"

#include <check.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The value of the sample line starting with prefix (name and labels). */
static double sample(const char *text, const char *prefix)
{
    size_t n = strlen(prefix);
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (!strncmp(p, prefix, n) && p[n] == ' ')
            return strtod(p + n + 1, NULL);
    ck_abort_msg("no sample %s in:\n%s", prefix, text);
    return -1;
}

START_TEST(test_counters_are_labelled_and_typed)
{
    struct ferry_metrics *m = ferry_metrics_new("kafka");
    struct ferry_metrics_dest *d = ferry_metrics_dest(m, "logs");
    ck_assert_ptr_eq(ferry_metrics_dest(m, "logs"), d); /* one series per name */
    ferry_metrics_count(d, FERRY_CTR_PRODUCED, 41);
    ferry_metrics_count(d, FERRY_CTR_PRODUCED, 1);
    ferry_metrics_count(ferry_metrics_dest(m, "events"), FERRY_CTR_REJECTED, 3);
    size_t len;
    char *t = ferry_metrics_render(m, &len);
    ck_assert_ptr_nonnull(t);
    ck_assert_uint_eq(strlen(t), len);
    ck_assert_double_eq(
        sample(t, "ferry_messages_produced_total{transport=\"kafka\",destination=\"logs\"}"), 42);
    ck_assert_double_eq(
        sample(t, "ferry_messages_rejected_total{transport=\"kafka\",destination=\"events\"}"), 3);
    ck_assert_double_eq(
        sample(t, "ferry_messages_dropped_total{transport=\"kafka\",destination=\"logs\"}"), 0);
    ck_assert_ptr_nonnull(strstr(t, "# TYPE ferry_messages_produced_total counter\n"));
    ck_assert_ptr_nonnull(strstr(t, "# TYPE ferry_transport_connected gauge\n"));
    ck_assert_ptr_nonnull(strstr(t, "# TYPE ferry_http_request_duration_seconds histogram\n"));
    ck_assert_ptr_nonnull(strstr(t, "# HELP ferry_inflight_messages "));
    /* every metric family has HELP and TYPE once; the text ends with a newline */
    ck_assert_int_eq(t[len - 1], '\n');
    ck_assert_ptr_null(strstr(strstr(t, "# TYPE ferry_messages_consumed_total") + 1,
                              "# TYPE ferry_messages_consumed_total"));
    free(t);
    ferry_metrics_free(m);
}
END_TEST

START_TEST(test_histogram_buckets_are_cumulative)
{
    struct ferry_metrics *m = ferry_metrics_new("zmq");
    ferry_metrics_observe_http(m, FERRY_HTTP_PRODUCE, 0.0004);
    ferry_metrics_observe_http(m, FERRY_HTTP_PRODUCE, 0.003);
    ferry_metrics_observe_http(m, FERRY_HTTP_PRODUCE, 0.2);
    ferry_metrics_observe_http(m, FERRY_HTTP_PRODUCE, 100);
    size_t len;
    char *t = ferry_metrics_render(m, &len);
#define B(le)                                                                                      \
    "ferry_http_request_duration_seconds_bucket{transport=\"zmq\",handler=\"produce\",le=\"" le    \
    "\"}"
    ck_assert_double_eq(sample(t, B("0.0005")), 1);
    ck_assert_double_eq(sample(t, B("0.0025")), 1);
    ck_assert_double_eq(sample(t, B("0.005")), 2);
    ck_assert_double_eq(sample(t, B("0.25")), 3);
    ck_assert_double_eq(sample(t, B("30")), 3);
    ck_assert_double_eq(sample(t, B("+Inf")), 4);
#undef B
    ck_assert_double_eq(
        sample(t,
               "ferry_http_request_duration_seconds_count{transport=\"zmq\",handler=\"produce\"}"),
        4);
    ck_assert_double_eq_tol(
        sample(t, "ferry_http_request_duration_seconds_sum{transport=\"zmq\",handler=\"produce\"}"),
        100.2034, 1e-6);
    ck_assert_double_eq(
        sample(t,
               "ferry_http_request_duration_seconds_count{transport=\"zmq\",handler=\"health\"}"),
        0);
    free(t);
    ferry_metrics_free(m);
}
END_TEST

/* A batch observed at once counts as that many messages, each with the
 * batch's time, as one call per message would. */
START_TEST(test_observe_n_counts_each_message)
{
    struct ferry_metrics *m = ferry_metrics_new("kafka");
    struct ferry_metrics_dest *d = ferry_metrics_dest(m, "logs");
    ferry_metrics_observe_n(d, 0.003, 500);
    ferry_metrics_observe(d, 0.2);
    ferry_metrics_observe_n(d, 1.0, 0); /* nothing */
    size_t len;
    char *t = ferry_metrics_render(m, &len);
#define S(x) "ferry_message_processing_duration_seconds" x
#define L "{transport=\"kafka\",destination=\"logs\""
    ck_assert_double_eq(sample(t, S("_bucket") L ",le=\"0.0025\"}"), 0);
    ck_assert_double_eq(sample(t, S("_bucket") L ",le=\"0.005\"}"), 500);
    ck_assert_double_eq(sample(t, S("_bucket") L ",le=\"+Inf\"}"), 501);
    ck_assert_double_eq(sample(t, S("_count") L "}"), 501);
    ck_assert_double_eq_tol(sample(t, S("_sum") L "}"), 1.7, 1e-6);
#undef L
#undef S
    free(t);
    ferry_metrics_free(m);
}
END_TEST

START_TEST(test_label_values_are_escaped)
{
    struct ferry_metrics *m = ferry_metrics_new("am\"qp");
    ferry_metrics_count(ferry_metrics_dest(m, "a\\b\nc\"d"), FERRY_CTR_CONSUMED, 5);
    size_t len;
    char *t = ferry_metrics_render(m, &len);
    ck_assert_double_eq(sample(t, "ferry_messages_consumed_total{transport=\"am\\\"qp\","
                                  "destination=\"a\\\\b\\nc\\\"d\"}"),
                        5);
    free(t);
    ferry_metrics_free(m);
}
END_TEST

START_TEST(test_destination_series_are_bounded)
{
    struct ferry_metrics *m = ferry_metrics_new("zmq");
    char name[32];
    for (int i = 0; i < 3 * FERRY_METRICS_MAX_DESTS; i++) {
        snprintf(name, sizeof name, "d%d", i);
        ferry_metrics_count(ferry_metrics_dest(m, name), FERRY_CTR_PRODUCED, 1);
    }
    size_t len;
    char *t = ferry_metrics_render(m, &len);
    int lines = 0;
    for (const char *p = t; (p = strstr(p, "ferry_messages_produced_total{")); p++)
        lines++;
    ck_assert_int_eq(lines, FERRY_METRICS_MAX_DESTS);
    ck_assert_double_eq(
        sample(t, "ferry_messages_produced_total{transport=\"zmq\",destination=\"_other\"}"),
        3 * FERRY_METRICS_MAX_DESTS - (FERRY_METRICS_MAX_DESTS - 1));
    free(t);
    ferry_metrics_free(m);
}
END_TEST

START_TEST(test_state_snapshot_and_gauges)
{
    struct ferry_metrics *m = ferry_metrics_new("amqp");
    struct ferry_metrics_state st;
    ferry_metrics_get_state(m, &st);
    ck_assert(!st.ready); /* not ready before the main thread says so */
    struct ferry_health h = {.state = FERRY_HEALTH_CONNECTED, .reconnects = 2};
    ferry_metrics_set_state(m, &h, NULL, 1, 7, true);
    ferry_metrics_get_state(m, &st);
    ck_assert(st.ready);
    ck_assert_uint_eq(st.reconnects, 2);
    ck_assert_uint_eq(st.inflight, 7);
    h = (struct ferry_health){.state = FERRY_HEALTH_CONNECTING, .reason = "connection refused"};
    ferry_metrics_set_state(m, &h, NULL, 0, 0, false);
    ferry_metrics_get_state(m, &st);
    ck_assert_uint_eq(st.reconnects, 2); /* a counter never goes back */
    ck_assert_str_eq(st.reason, "connection refused");
    ck_assert_str_eq(ferry_health_state_name(st.state), "reconnecting");
    size_t len;
    char *t = ferry_metrics_render(m, &len);
    ck_assert_double_eq(sample(t, "ferry_transport_connected{transport=\"amqp\"}"), 0);
    ck_assert_double_eq(sample(t, "ferry_transport_reconnects_total{transport=\"amqp\"}"), 2);
    ck_assert_double_eq(sample(t, "ferry_up{transport=\"amqp\"}"), 0);
    free(t);
    ferry_metrics_free(m);
}
END_TEST

static const struct http_defaults defs = {.service = "svc",
                                          .level = FERRY_INFO,
                                          .destination = "logs",
                                          .max_message_size = 1000,
                                          .max_batch = 3};

static int parse(const char *text, bool batch, struct http_job **j, char *err, size_t errlen)
{
    return app_http_parse(text, strlen(text), batch, &defs, j, err, errlen);
}

START_TEST(test_message_becomes_a_log_envelope)
{
    struct http_job *j;
    char err[256];
    ck_assert_int_eq(parse("{\"id\":\"x1\",\"message\":\"hi\",\"level\":\"error\","
                           "\"information\":{\"k\":1},\"key\":\"k1\"}",
                           false, &j, err, sizeof err),
                     0);
    ck_assert_uint_eq(j->n, 1);
    ck_assert_uint_eq(j->remaining, 1);
    struct http_msg *m = &j->msgs[0];
    ck_assert_str_eq(m->id, "x1");
    ck_assert_str_eq(m->dest, "logs");
    ck_assert_str_eq(m->key, "k1");
    cJSON *o = cJSON_Parse(m->body);
    ck_assert_str_eq(cJSON_GetObjectItem(o, "id")->valuestring, "x1");
    ck_assert_str_eq(cJSON_GetObjectItem(o, "service")->valuestring, "svc");
    ck_assert_str_eq(cJSON_GetObjectItem(o, "level")->valuestring, "ERROR");
    ck_assert_str_eq(cJSON_GetObjectItem(o, "message")->valuestring, "hi");
    ck_assert_int_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "information"), "k")->valueint, 1);
    ck_assert_ptr_nonnull(cJSON_GetObjectItem(o, "timestamp"));
    ck_assert_uint_eq(strlen(m->body), m->body_len);
    cJSON_Delete(o);
    app_http_job_free(j);

    /* defaults: a fresh id, the routing key service.level */
    ck_assert_int_eq(parse("{\"message\":\"hi\",\"service\":\"auth\",\"destination\":\"d2\"}",
                           false, &j, err, sizeof err),
                     0);
    ck_assert_uint_eq(strlen(j->msgs[0].id), 36);
    ck_assert_str_eq(j->msgs[0].key, "auth.info");
    ck_assert_str_eq(j->msgs[0].dest, "d2");
    app_http_job_free(j);
}
END_TEST

START_TEST(test_payload_is_sent_with_its_id)
{
    struct http_job *j;
    char err[256];
    ck_assert_int_eq(parse("{\"id\":7,\"payload\":{\"a\":[1,2]}}", false, &j, err, sizeof err), 0);
    ck_assert_str_eq(j->msgs[0].id, "7");
    ck_assert_ptr_null(j->msgs[0].key);
    ck_assert_str_eq(j->msgs[0].body, "{\"a\":[1,2],\"id\":7}");
    app_http_job_free(j);
    ck_assert_int_eq(parse("{\"payload\":{\"id\":\"in\",\"b\":true}}", false, &j, err, sizeof err),
                     0);
    ck_assert_str_eq(j->msgs[0].id, "in");
    ck_assert_str_eq(j->msgs[0].body, "{\"id\":\"in\",\"b\":true}");
    app_http_job_free(j);
    ck_assert_int_eq(parse("{\"payload\":{}}", false, &j, err, sizeof err), 0);
    ck_assert_uint_eq(strlen(j->msgs[0].id), 36);
    ck_assert_ptr_nonnull(strstr(j->msgs[0].body, j->msgs[0].id));
    app_http_job_free(j);
}
END_TEST

/* The requests of the producer API ferry replaces, verbatim. */
START_TEST(test_replaced_api_requests_are_accepted)
{
    struct http_job *j;
    char err[256];
    /* a string payload: sent as its JSON text, the id in a header */
    ck_assert_int_eq(parse("{\"payload\": \"Hello World\"}", false, &j, err, sizeof err), 0);
    ck_assert_str_eq(j->msgs[0].body, "\"Hello World\"");
    ck_assert_uint_eq(strlen(j->msgs[0].id), 36);
    ck_assert_ptr_null(j->msgs[0].ptime);
    app_http_job_free(j);
    ck_assert_int_eq(parse("{\"id\":\"n1\",\"payload\":[1,\"x\"],\"processing_time\":0.5}", false,
                           &j, err, sizeof err),
                     0);
    ck_assert_str_eq(j->msgs[0].body, "[1,\"x\"]");
    ck_assert_str_eq(j->msgs[0].id, "n1");
    ck_assert_str_eq(j->msgs[0].ptime, "0.5");
    app_http_job_free(j);
    /* an object payload with processing_time: it goes into the event */
    ck_assert_int_eq(parse("{\"payload\": {\"user\": \"u1\"}, \"processing_time\": 2}", false, &j,
                           err, sizeof err),
                     0);
    ck_assert_ptr_nonnull(strstr(j->msgs[0].body, "\"processing_time\":2"));
    ck_assert_ptr_nonnull(strstr(j->msgs[0].body, "\"user\":\"u1\""));
    ck_assert_ptr_null(j->msgs[0].ptime);
    app_http_job_free(j);
    /* a log with processing_time */
    ck_assert_int_eq(
        parse("{\"message\":\"m\",\"processing_time\":1.5}", false, &j, err, sizeof err), 0);
    ck_assert_ptr_nonnull(strstr(j->msgs[0].body, "\"processing_time\":1.5"));
    app_http_job_free(j);
    /* a batch of them */
    ck_assert_int_eq(
        parse("{\"messages\": [{\"payload\": \"Hello World\"}, {\"payload\": {\"a\": 1}, "
              "\"processing_time\": 2}, {\"payload\": 42}]}",
              true, &j, err, sizeof err),
        0);
    ck_assert_uint_eq(j->n, 3);
    ck_assert_str_eq(j->msgs[2].body, "42");
    app_http_job_free(j);
    /* a batch as a bare array */
    ck_assert_int_eq(
        parse("[{\"payload\": \"a\"}, {\"payload\": {\"b\": 2}, \"processing_time\": 2}]", true, &j,
              err, sizeof err),
        0);
    ck_assert_uint_eq(j->n, 2);
    ck_assert_str_eq(j->msgs[0].body, "\"a\"");
    app_http_job_free(j);
}
END_TEST

/* [producer] key applies to HTTP messages that have no "key" of their own. */
START_TEST(test_key_modes)
{
    struct http_job *j;
    char err[256];
    struct http_defaults d = defs;
    d.key_mode = APP_KEY_ID;
    const char *log = "{\"id\":\"L1\",\"message\":\"m\",\"service\":\"auth\"}";
    ck_assert_int_eq(app_http_parse(log, strlen(log), false, &d, &j, err, sizeof err), 0);
    ck_assert_str_eq(j->msgs[0].key, "L1");
    app_http_job_free(j);
    const char *str = "{\"id\":\"S1\",\"payload\":\"Hello World\"}";
    ck_assert_int_eq(app_http_parse(str, strlen(str), false, &d, &j, err, sizeof err), 0);
    ck_assert_str_eq(j->msgs[0].key, "S1");
    app_http_job_free(j);
    const char *own = "{\"id\":\"O1\",\"message\":\"m\",\"key\":\"mine\"}";
    ck_assert_int_eq(app_http_parse(own, strlen(own), false, &d, &j, err, sizeof err), 0);
    ck_assert_str_eq(j->msgs[0].key, "mine");
    app_http_job_free(j);
    d.key_mode = APP_KEY_SERVICE;
    ck_assert_int_eq(app_http_parse(log, strlen(log), false, &d, &j, err, sizeof err), 0);
    ck_assert_str_eq(j->msgs[0].key, "auth");
    app_http_job_free(j);
    d.key_mode = APP_KEY_NONE;
    ck_assert_int_eq(app_http_parse(log, strlen(log), false, &d, &j, err, sizeof err), 0);
    ck_assert_ptr_null(j->msgs[0].key);
    app_http_job_free(j);
    d.key_mode = APP_KEY_FIELD;
    d.key_field = "user";
    const char *ev = "{\"payload\":{\"user\":\"u7\"}}";
    ck_assert_int_eq(app_http_parse(ev, strlen(ev), false, &d, &j, err, sizeof err), 0);
    ck_assert_str_eq(j->msgs[0].key, "u7");
    app_http_job_free(j);
    d.key_mode = APP_KEY_SERVICE_LEVEL;
    ck_assert_int_eq(app_http_parse(log, strlen(log), false, &d, &j, err, sizeof err), 0);
    ck_assert_str_eq(j->msgs[0].key, "auth.info");
    app_http_job_free(j);
    ck_assert_int_eq(app_key_mode("service.level"), APP_KEY_SERVICE_LEVEL);
    ck_assert_int_eq(app_key_mode("id"), APP_KEY_ID);
    ck_assert_int_eq(app_key_mode("host"), APP_KEY_FIELD);
}
END_TEST

START_TEST(test_delay_parses_a_duration_or_a_range)
{
    int64_t lo, hi;
    char err[256];
    ck_assert_int_eq(app_parse_delay("50ms", &lo, &hi, err, sizeof err), 0);
    ck_assert_int_eq(lo, 50);
    ck_assert_int_eq(hi, 50);
    ck_assert_int_eq(app_parse_delay("20ms-1s", &lo, &hi, err, sizeof err), 0);
    ck_assert_int_eq(lo, 20);
    ck_assert_int_eq(hi, 1000);
    ck_assert_int_eq(app_parse_delay(NULL, &lo, &hi, err, sizeof err), 0);
    ck_assert_int_eq(hi, 0);
    ck_assert_int_eq(app_parse_delay("1s-20ms", &lo, &hi, err, sizeof err), -1);
    ck_assert_int_eq(app_parse_delay("soon", &lo, &hi, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "delay"));
}
END_TEST

static void refused(const char *text, bool batch, int status, const char *why)
{
    struct http_job *j = (struct http_job *)1;
    char err[256] = "";
    ck_assert_int_eq(parse(text, batch, &j, err, sizeof err), status);
    ck_assert_ptr_null(j);
    ck_assert_msg(strstr(err, why), "%s: error '%s' lacks '%s'", text, err, why);
}

START_TEST(test_bad_requests_are_400_with_a_reason)
{
    refused("{\"message\":", false, 400, "invalid JSON");
    refused("{\"message\":\"a\"} x", false, 400, "text after the value");
    refused("[1]", false, 400, "must be a JSON object");
    refused("{}", false, 400, "missing field: message");
    refused("{\"message\":\"a\",\"payload\":{}}", false, 400, "not both");
    refused("{\"message\":5}", false, 400, "message must be a string");
    refused("{\"message\":\"a\",\"level\":\"LOUD\"}", false, 400, "level must be");
    refused("{\"message\":\"a\",\"information\":[1]}", false, 400,
            "information must be a JSON object");
    refused("{\"message\":\"a\",\"color\":1}", false, 400, "unknown field: color");
    refused("{\"message\":\"a\",\"destination\":\"\"}", false, 400, "destination must be");
    refused("{\"message\":\"a\",\"id\":1.5}", false, 400, "id must be");
    refused("{\"message\":\"a\",\"id\":1e300}", false, 400, "id must be");
    refused("{\"payload\":\"a\",\"processing_time\":\"2\"}", false, 400,
            "processing_time must be a number");
    refused("{\"message\":\"a\",\"processing_time\":-1}", false, 400,
            "processing_time must be a number");
    refused("{\"payload\":{},\"processing_time\":3601}", false, 400,
            "processing_time must be a number");
    refused("{\"payload\":\"a\",\"colour\":1}", false, 400, "unknown field: colour");
    refused("{\"id\":\"a\",\"payload\":{\"id\":\"b\"}}", false, 400, "differ");
    refused("{\"messages\":{}}", true, 400, "messages: [...]");
    refused("{\"messages\":[],\"x\":1}", true, 400, "messages: [...]");
    refused("{\"messages\":[]}", true, 400, "empty");
    refused("{\"messages\":[{\"message\":\"ok\"},{\"message\":false}]}", true, 400,
            "messages[1]: message must be a string");
}
END_TEST

START_TEST(test_limits_are_413)
{
    refused("{\"messages\":[{\"message\":\"a\"},{\"message\":\"b\"},{\"message\":\"c\"},{"
            "\"message\":\"d\"}]}",
            true, 413, "exceeds max_batch (3)");
    char big[1200];
    snprintf(big, sizeof big, "{\"message\":\"%0*d\"}", 1100, 0);
    refused(big, false, 413, "exceeds max_message_size");
}
END_TEST

START_TEST(test_batch_keeps_order)
{
    struct http_job *j;
    char err[256];
    ck_assert_int_eq(
        parse("{\"messages\":[{\"id\":\"a\",\"message\":\"1\"},{\"id\":\"b\",\"payload\":{}},"
              "{\"id\":\"c\",\"message\":\"3\",\"destination\":\"x\"}]}",
              true, &j, err, sizeof err),
        0);
    ck_assert_uint_eq(j->n, 3);
    ck_assert_str_eq(j->msgs[0].id, "a");
    ck_assert_str_eq(j->msgs[1].id, "b");
    ck_assert_str_eq(j->msgs[2].id, "c");
    ck_assert_str_eq(j->msgs[2].dest, "x");
    for (size_t i = 0; i < 3; i++)
        ck_assert_ptr_eq(j->msgs[i].job, j);
    app_http_job_free(j);
}
END_TEST

START_TEST(test_token_compare)
{
    ck_assert(app_http_token_equal("s3cret", "s3cret"));
    ck_assert(!app_http_token_equal("s3cre", "s3cret"));
    ck_assert(!app_http_token_equal("s3cret!", "s3cret"));
    ck_assert(!app_http_token_equal("", "s3cret"));
    ck_assert(!app_http_token_equal("S3cret", "s3cret"));
}
END_TEST

START_TEST(test_listen_needs_an_address)
{
    char host[64], port[16], err[256];
    ck_assert_int_eq(app_http_split_listen("127.0.0.1:9464", host, sizeof host, port, sizeof port,
                                           err, sizeof err),
                     0);
    ck_assert_str_eq(host, "127.0.0.1");
    ck_assert_str_eq(port, "9464");
    ck_assert_int_eq(
        app_http_split_listen("[::1]:80", host, sizeof host, port, sizeof port, err, sizeof err),
        0);
    ck_assert_str_eq(host, "::1");
    ck_assert_int_eq(
        app_http_split_listen("9464", host, sizeof host, port, sizeof port, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "127.0.0.1:9464") && strstr(err, "0.0.0.0:9464"), "%s", err);
    ck_assert_int_eq(
        app_http_split_listen(":9464", host, sizeof host, port, sizeof port, err, sizeof err), -1);
    ck_assert_int_eq(
        app_http_split_listen("::1:80", host, sizeof host, port, sizeof port, err, sizeof err), -1);
    ck_assert_int_eq(
        app_http_split_listen("host:99999", host, sizeof host, port, sizeof port, err, sizeof err),
        -1);
}
END_TEST

START_TEST(test_http_options_table_is_valid)
{
    char err[256];
    ck_assert_msg(ferry_options_validate(app_http_options, err, sizeof err) == FERRY_OK, "%s", err);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("http");
    TCase *m = tcase_create("metrics");
    tcase_add_test(m, test_counters_are_labelled_and_typed);
    tcase_add_test(m, test_histogram_buckets_are_cumulative);
    tcase_add_test(m, test_observe_n_counts_each_message);
    tcase_add_test(m, test_label_values_are_escaped);
    tcase_add_test(m, test_destination_series_are_bounded);
    tcase_add_test(m, test_state_snapshot_and_gauges);
    suite_add_tcase(s, m);
    TCase *r = tcase_create("requests");
    tcase_add_test(r, test_message_becomes_a_log_envelope);
    tcase_add_test(r, test_payload_is_sent_with_its_id);
    tcase_add_test(r, test_replaced_api_requests_are_accepted);
    tcase_add_test(r, test_key_modes);
    tcase_add_test(r, test_delay_parses_a_duration_or_a_range);
    tcase_add_test(r, test_bad_requests_are_400_with_a_reason);
    tcase_add_test(r, test_limits_are_413);
    tcase_add_test(r, test_batch_keeps_order);
    tcase_add_test(r, test_token_compare);
    tcase_add_test(r, test_listen_needs_an_address);
    tcase_add_test(r, test_http_options_table_is_valid);
    suite_add_tcase(s, r);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
