/* Unit tests of kafka.so's helpers: the librdkafka error mapping and the
 * offset tracking that decides what may be committed. No broker needed. */
#include "config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <ferry/transport.h>

#include "../../plugins/kafka/fkafka.h"
#include "../../plugins/kafka/offsets.h"

START_TEST(test_stats_lag_sums_known_partitions)
{
    /* the shape of librdkafka 2.0's statistics, cut down */
    const char *j = "{\"topics\":{\"t\":{\"partitions\":{"
                    "\"0\":{\"partition\":0,\"consumer_lag\":5,\"consumer_lag_stored\":9},"
                    "\"1\":{\"partition\":1,\"consumer_lag\": 7},"
                    "\"2\":{\"partition\":2,\"consumer_lag\":-1},"
                    "\"-1\":{\"partition\":-1,\"consumer_lag\":-1}}}}}";
    ck_assert_int_eq(fkafka_stats_lag(j, strlen(j)), 12);
    const char *none = "{\"topics\":{\"t\":{\"partitions\":{\"-1\":{\"consumer_lag\":-1}}}}}";
    ck_assert_int_eq(fkafka_stats_lag(none, strlen(none)), -1);
    const char *zero = "{\"partitions\":{\"0\":{\"consumer_lag\":0}}}";
    ck_assert_int_eq(fkafka_stats_lag(zero, strlen(zero)), 0);
    ck_assert_int_eq(fkafka_stats_lag("{}", 2), -1);
}
END_TEST

START_TEST(test_status_maps_each_class)
{
    ck_assert_int_eq(fkafka_status(RD_KAFKA_RESP_ERR_NO_ERROR), FERRY_OK);
    ck_assert_int_eq(fkafka_status(RD_KAFKA_RESP_ERR__QUEUE_FULL), FERRY_E_AGAIN);
    ck_assert_int_eq(fkafka_status(RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS), FERRY_E_AGAIN);
    ck_assert_int_eq(fkafka_status(RD_KAFKA_RESP_ERR__MSG_TIMED_OUT), FERRY_E_TIMEOUT);
    ck_assert_int_eq(fkafka_status(RD_KAFKA_RESP_ERR__TIMED_OUT), FERRY_E_TIMEOUT);
    ck_assert_int_eq(fkafka_status(RD_KAFKA_RESP_ERR__TRANSPORT), FERRY_E_NOCONN);
    ck_assert_int_eq(fkafka_status(RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN), FERRY_E_NOCONN);
    ck_assert_int_eq(fkafka_status(RD_KAFKA_RESP_ERR__PURGE_QUEUE), FERRY_E_NOCONN);
    ck_assert_int_eq(fkafka_status(RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION), FERRY_E_NOCONN);
    ck_assert_int_eq(fkafka_status(RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE), FERRY_E_TOOBIG);
    ck_assert_int_eq(fkafka_status(RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE), FERRY_E_TOOBIG);
    ck_assert_int_eq(fkafka_status(RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC), FERRY_E_CONFIG);
    ck_assert_int_eq(fkafka_status(RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED), FERRY_E_CONFIG);
    ck_assert_int_eq(fkafka_status(RD_KAFKA_RESP_ERR__AUTHENTICATION), FERRY_E_CONFIG);
    ck_assert_int_eq(fkafka_status(RD_KAFKA_RESP_ERR_UNSUPPORTED_VERSION), FERRY_E_NOTSUP);
    ck_assert_int_eq(fkafka_status(RD_KAFKA_RESP_ERR__FATAL), FERRY_E_FATAL);
    ck_assert_int_eq(fkafka_status(RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER), FERRY_E_FATAL);
    ck_assert_int_eq(fkafka_status(RD_KAFKA_RESP_ERR_INVALID_MSG), FERRY_E_REJECTED);
    ck_assert_int_eq(fkafka_status(RD_KAFKA_RESP_ERR_POLICY_VIOLATION), FERRY_E_REJECTED);
}
END_TEST

START_TEST(test_status_retriable_only_for_transient_errors)
{
    ck_assert(ferry_status_retriable(fkafka_status(RD_KAFKA_RESP_ERR__TRANSPORT)));
    ck_assert(ferry_status_retriable(fkafka_status(RD_KAFKA_RESP_ERR__MSG_TIMED_OUT)));
    ck_assert(!ferry_status_retriable(fkafka_status(RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE)));
    ck_assert(!ferry_status_retriable(fkafka_status(RD_KAFKA_RESP_ERR__FENCED)));
    /* Every code librdkafka knows maps to a defined status. */
    const struct rd_kafka_err_desc *descs;
    size_t n;
    rd_kafka_get_err_descs(&descs, &n);
    for (size_t i = 0; i < n; i++) {
        if (!descs[i].name)
            continue;
        int st = fkafka_status(descs[i].code);
        ck_assert_msg(st <= 0 && st >= FERRY_E_REJECTED, "%s -> %d", descs[i].name, st);
        ck_assert_msg((st == FERRY_OK) == (descs[i].code == 0), "%s -> %d", descs[i].name, st);
    }
}
END_TEST

static struct fkafka_track track;

static struct fkafka_tp *fresh(void)
{
    fkafka_track_free(&track);
    struct fkafka_tp *tp = fkafka_track_assign(&track, "logs", 3);
    ck_assert_ptr_nonnull(tp);
    return tp;
}

START_TEST(test_nothing_lent_nothing_to_commit)
{
    struct fkafka_tp *tp = fresh();
    ck_assert_int_eq(fkafka_tp_position(tp), -1);
    ck_assert(!fkafka_tp_dirty(tp));
    fkafka_track_free(&track);
}
END_TEST

START_TEST(test_in_order_acks_commit_after_last)
{
    struct fkafka_tp *tp = fresh();
    for (int64_t o = 10; o < 15; o++)
        ck_assert_int_eq(fkafka_tp_lend(tp, o), 0);
    ck_assert_int_eq(fkafka_tp_position(tp), 10);
    for (int64_t o = 10; o < 15; o++)
        ck_assert(fkafka_tp_done(tp, o));
    ck_assert_int_eq(fkafka_tp_position(tp), 15);
    ck_assert(fkafka_tp_dirty(tp));
    tp->committed = 15;
    ck_assert(!fkafka_tp_dirty(tp));
    fkafka_track_free(&track);
}
END_TEST

START_TEST(test_out_of_order_acks_never_skip_unacked)
{
    struct fkafka_tp *tp = fresh();
    for (int64_t o = 0; o < 5; o++)
        fkafka_tp_lend(tp, o);
    ck_assert(fkafka_tp_done(tp, 3));
    ck_assert(fkafka_tp_done(tp, 1));
    ck_assert(fkafka_tp_done(tp, 4));
    ck_assert_int_eq(fkafka_tp_position(tp), 0);
    ck_assert(fkafka_tp_done(tp, 0));
    ck_assert_int_eq(fkafka_tp_position(tp), 2);
    ck_assert(fkafka_tp_done(tp, 2));
    ck_assert_int_eq(fkafka_tp_position(tp), 5);
    ck_assert(!fkafka_tp_done(tp, 2));
    fkafka_track_free(&track);
}
END_TEST

START_TEST(test_released_offset_pins_the_position)
{
    struct fkafka_tp *tp = fresh();
    for (int64_t o = 0; o < 4; o++)
        fkafka_tp_lend(tp, o);
    /* 1 is released: it stays lent in the tracker */
    fkafka_tp_done(tp, 0);
    fkafka_tp_done(tp, 2);
    fkafka_tp_done(tp, 3);
    ck_assert_int_eq(fkafka_tp_position(tp), 1);
    fkafka_track_free(&track);
}
END_TEST

START_TEST(test_rewind_holds_position_until_redelivered)
{
    struct fkafka_tp *tp = fresh();
    for (int64_t o = 0; o < 10; o++)
        fkafka_tp_lend(tp, o);
    for (int64_t o = 0; o < 5; o++)
        fkafka_tp_done(tp, o);
    ck_assert_int_eq(fkafka_tp_rewind(tp, 5), 5);
    for (int64_t o = 6; o < 10; o++)
        fkafka_tp_done(tp, o);
    ck_assert_int_eq(fkafka_tp_position(tp), 5);
    /* a message fetched before the seek trickles in: still pinned */
    fkafka_tp_lend(tp, 7);
    fkafka_tp_done(tp, 7);
    ck_assert_int_eq(fkafka_tp_position(tp), 5);
    /* the redelivery arrives, flagged as such */
    ck_assert_int_eq(fkafka_tp_lend(tp, 5), 1);
    ck_assert_int_eq(fkafka_tp_position(tp), 5);
    fkafka_tp_done(tp, 5);
    ck_assert_int_eq(fkafka_tp_position(tp), 6);
    fkafka_track_free(&track);
}
END_TEST

START_TEST(test_second_rewind_keeps_the_lower_offset)
{
    struct fkafka_tp *tp = fresh();
    for (int64_t o = 0; o < 10; o++)
        fkafka_tp_lend(tp, o);
    ck_assert_int_eq(fkafka_tp_rewind(tp, 4), 4);
    ck_assert_int_eq(fkafka_tp_rewind(tp, 8), 4);
    ck_assert_int_eq(fkafka_tp_rewind(tp, 2), 2);
    ck_assert_int_eq(fkafka_tp_rewind(tp, 2), -1);
    ck_assert_int_eq(fkafka_tp_position(tp), 0);
    fkafka_tp_done(tp, 0);
    fkafka_tp_done(tp, 1);
    ck_assert_int_eq(fkafka_tp_position(tp), 2);
    fkafka_track_free(&track);
}
END_TEST

START_TEST(test_duplicate_loans_after_rewind)
{
    struct fkafka_tp *tp = fresh();
    for (int64_t o = 0; o < 3; o++)
        fkafka_tp_lend(tp, o);
    fkafka_tp_rewind(tp, 0);
    /* 1 and 2 are still on their first loan when they come again */
    fkafka_tp_lend(tp, 0);
    fkafka_tp_lend(tp, 1);
    fkafka_tp_lend(tp, 2);
    fkafka_tp_done(tp, 0);
    fkafka_tp_done(tp, 1);
    fkafka_tp_done(tp, 2);
    ck_assert_int_eq(fkafka_tp_position(tp), 1);
    fkafka_tp_done(tp, 1);
    ck_assert_int_eq(fkafka_tp_position(tp), 2);
    fkafka_tp_done(tp, 2);
    ck_assert_int_eq(fkafka_tp_position(tp), 3);
    fkafka_track_free(&track);
}
END_TEST

START_TEST(test_revoke_makes_loans_stale)
{
    struct fkafka_tp *tp = fresh();
    fkafka_tp_lend(tp, 0);
    uint32_t gen = tp->gen;
    fkafka_tp_revoke(tp);
    ck_assert(!tp->assigned);
    ck_assert(!fkafka_tp_dirty(tp));
    struct fkafka_tp *again = fkafka_track_assign(&track, "logs", 3);
    ck_assert_ptr_eq(again, tp);
    ck_assert_uint_ne(again->gen, gen);
    ck_assert_int_eq(fkafka_tp_position(again), -1);
    ck_assert_ptr_null(fkafka_track_find(&track, "logs", 4));
    ck_assert_ptr_nonnull(fkafka_track_assign(&track, "logs", 4));
    ck_assert_ptr_eq(fkafka_track_find(&track, "logs", 3), tp);
    fkafka_track_free(&track);
}
END_TEST

START_TEST(test_many_loans_grow_and_compact)
{
    struct fkafka_tp *tp = fresh();
    int64_t next_done = 0;
    for (int64_t o = 0; o < 100000; o++) {
        ck_assert_int_ge(fkafka_tp_lend(tp, o), 0);
        if (o % 3 == 2) {
            fkafka_tp_done(tp, next_done++);
            fkafka_tp_done(tp, next_done++);
        }
    }
    ck_assert_int_eq(fkafka_tp_position(tp), next_done);
    ck_assert_uint_lt(tp->cap, 200000);
    fkafka_track_free(&track);
}
END_TEST

/* The security options mapped onto librdkafka properties. */
static const char *prop(const struct fkafka_prop *p, int n, const char *key, bool *secret)
{
    for (int i = 0; i < n; i++)
        if (strcmp(p[i].key, key) == 0) {
            if (secret)
                *secret = p[i].secret;
            return p[i].value;
        }
    return NULL;
}

START_TEST(test_security_plaintext_sets_only_the_protocol)
{
    struct fkafka_security s = {.protocol = FKAFKA_PLAINTEXT};
    struct fkafka_prop p[FKAFKA_SECURITY_PROPS];
    char err[256];
    bool clear;
    ck_assert_int_eq(fkafka_security_props(&s, p, &clear, err, sizeof err), 1);
    ck_assert_str_eq(prop(p, 1, "security.protocol", NULL), "plaintext");
    ck_assert(!clear);
}
END_TEST

START_TEST(test_security_sasl_ssl_maps_every_option)
{
    struct fkafka_security s = {
        .protocol = FKAFKA_SASL_SSL,
        .ssl_ca = "/ca.pem",
        .ssl_cert = "/c.pem",
        .ssl_key = "/c.key",
        .mechanism = FKAFKA_SCRAM_SHA_512,
        .username = "ferry",
        .password = "pw-value",
    };
    struct fkafka_prop p[FKAFKA_SECURITY_PROPS];
    char err[256];
    bool clear = true, secret = false;
    int n = fkafka_security_props(&s, p, &clear, err, sizeof err);
    ck_assert_int_eq(n, 9);
    ck_assert_str_eq(prop(p, n, "security.protocol", NULL), "sasl_ssl");
    ck_assert_str_eq(prop(p, n, "enable.ssl.certificate.verification", NULL), "true");
    ck_assert_str_eq(prop(p, n, "ssl.endpoint.identification.algorithm", NULL), "https");
    ck_assert_str_eq(prop(p, n, "ssl.ca.location", NULL), "/ca.pem");
    ck_assert_str_eq(prop(p, n, "ssl.certificate.location", NULL), "/c.pem");
    ck_assert_str_eq(prop(p, n, "ssl.key.location", &secret), "/c.key");
    ck_assert(secret);
    ck_assert_str_eq(prop(p, n, "sasl.mechanism", NULL), "SCRAM-SHA-512");
    ck_assert_str_eq(prop(p, n, "sasl.username", &secret), "ferry");
    ck_assert(!secret);
    ck_assert_str_eq(prop(p, n, "sasl.password", &secret), "pw-value");
    ck_assert(secret);
    ck_assert(!clear);
}
END_TEST

START_TEST(test_security_mechanism_names)
{
    static const char *const want[] = {"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"};
    for (int m = FKAFKA_SASL_PLAIN; m <= FKAFKA_SCRAM_SHA_512; m++) {
        struct fkafka_security s = {
            .protocol = FKAFKA_SASL_PLAINTEXT, .mechanism = m, .username = "u", .password = "p"};
        struct fkafka_prop p[FKAFKA_SECURITY_PROPS];
        char err[256];
        bool clear;
        int n = fkafka_security_props(&s, p, &clear, err, sizeof err);
        ck_assert_int_eq(n, 4);
        ck_assert_str_eq(prop(p, n, "sasl.mechanism", NULL), want[m]);
        ck_assert_ptr_null(prop(p, n, "ssl.ca.location", NULL));
        /* only PLAIN puts the password itself on an unencrypted wire */
        ck_assert(clear == (m == FKAFKA_SASL_PLAIN));
    }
}
END_TEST

START_TEST(test_security_refuses_incoherent_options_without_secrets)
{
    struct fkafka_prop p[FKAFKA_SECURITY_PROPS];
    char err[256];
    bool clear;
    struct fkafka_security tls_on_plain = {.protocol = FKAFKA_PLAINTEXT, .ssl_ca = "/ca"};
    ck_assert_int_eq(fkafka_security_props(&tls_on_plain, p, &clear, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "security_protocol = ssl"));
    struct fkafka_security half = {.protocol = FKAFKA_SSL, .ssl_cert = "/c"};
    ck_assert_int_eq(fkafka_security_props(&half, p, &clear, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "ssl_cert and ssl_key"));
    struct fkafka_security sasl_off = {
        .protocol = FKAFKA_SSL, .username = "u", .password = "hidden-pw"};
    ck_assert_int_eq(fkafka_security_props(&sasl_off, p, &clear, err, sizeof err), -1);
    ck_assert_ptr_null(strstr(err, "hidden-pw"));
    struct fkafka_security no_pw = {.protocol = FKAFKA_SASL_SSL, .username = "u"};
    ck_assert_int_eq(fkafka_security_props(&no_pw, p, &clear, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "sasl_password"));
}
END_TEST

static Suite *kafka_suite(void)
{
    Suite *s = suite_create("kafka");
    TCase *st = tcase_create("status");
    tcase_add_test(st, test_status_maps_each_class);
    tcase_add_test(st, test_stats_lag_sums_known_partitions);
    tcase_add_test(st, test_status_retriable_only_for_transient_errors);
    suite_add_tcase(s, st);
    TCase *of = tcase_create("offsets");
    tcase_add_test(of, test_nothing_lent_nothing_to_commit);
    tcase_add_test(of, test_in_order_acks_commit_after_last);
    tcase_add_test(of, test_out_of_order_acks_never_skip_unacked);
    tcase_add_test(of, test_released_offset_pins_the_position);
    tcase_add_test(of, test_rewind_holds_position_until_redelivered);
    tcase_add_test(of, test_second_rewind_keeps_the_lower_offset);
    tcase_add_test(of, test_duplicate_loans_after_rewind);
    tcase_add_test(of, test_revoke_makes_loans_stale);
    tcase_add_test(of, test_many_loans_grow_and_compact);
    suite_add_tcase(s, of);
    TCase *sec = tcase_create("security");
    tcase_add_test(sec, test_security_plaintext_sets_only_the_protocol);
    tcase_add_test(sec, test_security_sasl_ssl_maps_every_option);
    tcase_add_test(sec, test_security_mechanism_names);
    tcase_add_test(sec, test_security_refuses_incoherent_options_without_secrets);
    suite_add_tcase(s, sec);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(kafka_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
