/* The log envelope: fields, routing key, ids, timestamps, id extraction. */
#include "config.h"

#include <check.h>
#include <cjson/cJSON.h>
#include <ferry/ferry.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

START_TEST(test_encode_has_every_field)
{
    char err[128];
    struct ferry_envelope e = {.service = "auth",
                               .level = FERRY_WARNING,
                               .message = "User \"x\"\nlogged in",
                               .information = "{\"user_id\":\"123\"}",
                               .time_ms = 1700000000123LL,
                               .host = "h1"};
    char *s = ferry_envelope_encode(&e, err, sizeof err);
    ck_assert_ptr_nonnull(s);
    ck_assert_ptr_null(strchr(s, '\n')); /* one line */
    cJSON *o = cJSON_Parse(s);
    ck_assert_ptr_nonnull(o);
    ck_assert_uint_eq(strlen(cJSON_GetObjectItem(o, "id")->valuestring), 36);
    ck_assert_str_eq(cJSON_GetObjectItem(o, "service")->valuestring, "auth");
    ck_assert_str_eq(cJSON_GetObjectItem(o, "level")->valuestring, "WARNING");
    ck_assert_str_eq(cJSON_GetObjectItem(o, "message")->valuestring, "User \"x\"\nlogged in");
    ck_assert_str_eq(
        cJSON_GetObjectItem(cJSON_GetObjectItem(o, "information"), "user_id")->valuestring, "123");
    ck_assert_str_eq(cJSON_GetObjectItem(o, "timestamp")->valuestring, "2023-11-14T22:13:20.123Z");
    ck_assert_str_eq(cJSON_GetObjectItem(o, "host")->valuestring, "h1");
    cJSON_Delete(o);
    free(s);
}
END_TEST

START_TEST(test_information_must_be_an_object)
{
    char err[128];
    struct ferry_envelope e = {
        .service = "a", .level = FERRY_INFO, .message = "m", .information = "[1]"};
    ck_assert_ptr_null(ferry_envelope_encode(&e, err, sizeof err));
    ck_assert_msg(strstr(err, "object"), "got: %s", err);
    e.information = "{bad";
    ck_assert_ptr_null(ferry_envelope_encode(&e, err, sizeof err));
}
END_TEST

START_TEST(test_extra_fields_at_top_level)
{
    char err[128];
    struct ferry_envelope e = {.id = "fixed",
                               .service = "a",
                               .level = FERRY_INFO,
                               .message = "m",
                               .extra = "{\"processing_time\":0.5}"};
    char *s = ferry_envelope_encode(&e, err, sizeof err);
    ck_assert_ptr_nonnull(s);
    ck_assert_msg(strstr(s, "\"processing_time\":0.5") && strstr(s, "\"id\":\"fixed\""), "got %s",
                  s);
    free(s);
}
END_TEST

/* The envelope written directly (extra_members) and through cJSON (extra)
 * are the same bytes, for every byte value in the strings. */
START_TEST(test_direct_encoding_matches_cjson)
{
    char err[128], msg[300], svc[40];
    size_t k = 0;
    for (int c = 1; c < 256; c++)
        msg[k++] = (char)c;
    msg[k] = '\0';
    snprintf(svc, sizeof svc, "sv\"c\\\t\x7f\xc3\xa9");
    const char *infos[] = {NULL, "", "{ \"a\" : [1, 2.50, \"x\\u0001\"], \"b\": {} }"};
    for (size_t i = 0; i < sizeof infos / sizeof infos[0]; i++) {
        struct ferry_envelope e = {.id = "id\n1",
                                   .service = svc,
                                   .level = FERRY_ERROR,
                                   .message = msg,
                                   .information = infos[i],
                                   .time_ms = 1700000000007LL,
                                   .host = "h\"x",
                                   .extra_members = "\"producer\":\"h:1:2\",\"seq\":42,"
                                                    "\"processing_time\":0.5"};
        char *direct = ferry_envelope_encode(&e, err, sizeof err);
        e.extra_members = NULL;
        e.extra = "{\"producer\":\"h:1:2\", \"seq\":42, \"processing_time\":0.50}";
        char *tree = ferry_envelope_encode(&e, err, sizeof err);
        ck_assert_ptr_nonnull(direct);
        ck_assert_ptr_nonnull(tree);
        ck_assert_str_eq(direct, tree);
        free(direct);
        free(tree);
    }
    struct ferry_envelope bad = {
        .service = "a", .message = "m", .information = "[1]", .extra_members = "\"seq\":1"};
    ck_assert_ptr_null(ferry_envelope_encode(&bad, err, sizeof err));
}
END_TEST

/* The escape scan reads eight bytes at a time: a byte to escape at every
 * place in and across those words (and at the end) gives the bytes cJSON
 * gives. */
START_TEST(test_escapes_at_every_offset_match_cjson)
{
    const char specials[] = {'"', '\\', '\n', '\x01', '\x1f', ' ', '\x7f', (char)0xc3};
    char err[128], msg[64];
    for (size_t sp = 0; sp < sizeof specials; sp++)
        for (size_t len = 1; len < 40; len++)
            for (size_t at = 0; at < len; at++) {
                for (size_t i = 0; i < len; i++)
                    msg[i] = (char)('a' + i % 26);
                msg[at] = specials[sp];
                msg[len] = '\0';
                struct ferry_envelope e = {.id = "i",
                                           .service = "s",
                                           .level = FERRY_INFO,
                                           .message = msg,
                                           .time_ms = 1700000000007LL,
                                           .host = "h",
                                           .extra_members = "\"seq\":1"};
                char *direct = ferry_envelope_encode(&e, err, sizeof err);
                e.extra_members = NULL;
                e.extra = "{\"seq\":1}";
                char *tree = ferry_envelope_encode(&e, err, sizeof err);
                ck_assert_ptr_nonnull(direct);
                ck_assert_ptr_nonnull(tree);
                ck_assert_str_eq(direct, tree);
                free(direct);
                free(tree);
            }
}
END_TEST

/* Timestamps written by hand agree with strftime. */
START_TEST(test_timestamps_match_strftime)
{
    const int64_t ms[] = {
        1, 999, 1700000000123LL, 951782400001LL, 4102444799999LL, 253402300799999LL};
    for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++) {
        char got[32], want[64];
        time_t s = (time_t)(ms[i] / 1000);
        struct tm tm;
        gmtime_r(&s, &tm);
        size_t n = strftime(want, sizeof want, "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(want + n, sizeof want - n, ".%03dZ", (int)(ms[i] % 1000));
        struct ferry_envelope e = {
            .id = "x", .service = "a", .message = "m", .time_ms = ms[i], .host = "h"};
        char err[64], *out = ferry_envelope_encode(&e, err, sizeof err);
        ck_assert_ptr_nonnull(out);
        cJSON *o = cJSON_Parse(out);
        snprintf(got, sizeof got, "%s", cJSON_GetObjectItem(o, "timestamp")->valuestring);
        ck_assert_str_eq(got, want);
        cJSON_Delete(o);
        free(out);
    }
}
END_TEST

START_TEST(test_routing_key_and_levels)
{
    char k[64];
    ck_assert_str_eq(ferry_envelope_key("auth", FERRY_ERROR, k, sizeof k), "auth.error");
    ck_assert_int_eq(ferry_level_parse("warn"), FERRY_WARNING);
    ck_assert_int_eq(ferry_level_parse("CRITICAL"), FERRY_CRITICAL);
    ck_assert_int_eq(ferry_level_parse("loud"), -1);
    ck_assert_str_eq(ferry_level_name(FERRY_DEBUG), "DEBUG");
}
END_TEST

START_TEST(test_ids_are_unique_uuids)
{
    char a[37], b[37];
    ferry_make_id(a);
    ferry_make_id(b);
    ck_assert_str_ne(a, b);
    ck_assert_int_eq(a[14], '4');
    ck_assert_int_eq(a[8], '-');
}
END_TEST

START_TEST(test_body_id_fast_and_slow_paths)
{
    char id[64];
    const char *fast = "{\"id\":\"abc-1\",\"x\":1}";
    ck_assert(ferry_body_id(fast, strlen(fast), "id", id, sizeof id));
    ck_assert_str_eq(id, "abc-1");
    const char *slow = " { \"x\": 1, \"id\": \"q\\\"z\" }";
    ck_assert(ferry_body_id(slow, strlen(slow), "id", id, sizeof id));
    ck_assert_str_eq(id, "q\"z");
    const char *num = "{\"event_id\":42}";
    ck_assert(ferry_body_id(num, strlen(num), "event_id", id, sizeof id));
    ck_assert_str_eq(id, "42");
    ck_assert(!ferry_body_id("plain text", 10, "id", id, sizeof id));
    ck_assert(!ferry_body_id("{\"x\":1}", 7, "id", id, sizeof id));
    ck_assert(!ferry_body_id("{\"id\":\"", 7, "id", id, sizeof id));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("envelope");
    TCase *tc = tcase_create("envelope");
    tcase_add_test(tc, test_encode_has_every_field);
    tcase_add_test(tc, test_information_must_be_an_object);
    tcase_add_test(tc, test_extra_fields_at_top_level);
    tcase_add_test(tc, test_direct_encoding_matches_cjson);
    tcase_add_test(tc, test_escapes_at_every_offset_match_cjson);
    tcase_add_test(tc, test_timestamps_match_strftime);
    tcase_add_test(tc, test_routing_key_and_levels);
    tcase_add_test(tc, test_ids_are_unique_uuids);
    tcase_add_test(tc, test_body_id_fast_and_slow_paths);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
