/* Reliable publisher over the loopback plugin: failed publishes and lost
 * confirms are retried until every message is delivered exactly once per
 * report, permanent errors are reported and not retried, order is kept. */
#include "config.h"

#include <check.h>
#include <ferry/ferry.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct done {
    int ok, failed, reports[1000];
};

/* The decimal number a body holds; bodies are not NUL-terminated. */
static int body_int(const struct ferry_msg *m)
{
    char text[32];
    int n = m->body_len < sizeof text ? (int)m->body_len : (int)sizeof text - 1;
    snprintf(text, sizeof text, "%.*s", n, (const char *)m->body);
    return atoi(text);
}

static void on_done(void *ctx, uint64_t tag, int st, const char *reason)
{
    (void)reason;
    struct done *d = ctx;
    st == FERRY_OK ? d->ok++ : d->failed++;
    if (tag < 1000)
        d->reports[tag]++;
}

static struct ferry_conn *open_lb(const char *extra)
{
    char text[512], err[512];
    int st;
    snprintf(text, sizeof text, "[transport]\nplugin = loopback\n[loopback]\n%s\n", extra);
    struct ferry_config *c = ferry_config_new();
    ck_assert_int_eq(ferry_config_load_string(c, "t", text, err, sizeof err), FERRY_OK);
    struct ferry_conn *conn = ferry_open(c, "t", &st, err, sizeof err);
    ck_assert_msg(conn != NULL, "%s", err);
    ferry_config_free(c);
    return conn;
}

static void run(const char *extra, int n, const char *dest)
{
    struct ferry_conn *cons = open_lb("");
    ck_assert_int_eq(ferry_subscribe(cons, dest, "g"), FERRY_OK);
    struct ferry_conn *c = open_lb(extra);
    struct done d = {0};
    struct ferry_pub_opts o = {.backoff_min_ms = 1, .backoff_max_ms = 5};
    struct ferry_pub *p = ferry_pub_new(c, &o, on_done, &d);
    for (int i = 0; i < n; i++) {
        char body[32];
        snprintf(body, sizeof body, "%d", i);
        struct ferry_msg m = {
            .dest = dest, .body = body, .body_len = strlen(body), .tag = (uint64_t)i};
        ck_assert_int_eq(ferry_pub_send(p, &m, 1000), FERRY_OK);
    }
    ck_assert_int_eq(ferry_pub_flush(p, 5000), FERRY_OK);
    ck_assert_int_eq(d.ok, n);
    ck_assert_int_eq(d.failed, 0);
    for (int i = 0; i < n; i++)
        ck_assert_msg(d.reports[i] == 1, "message %d reported %d times", i, d.reports[i]);
    struct ferry_pub_stats st;
    ferry_pub_stats(p, &st);
    ck_assert_uint_eq(st.pending, 0);
    /* each message reached the consumer; duplicates only from lost confirms */
    int seen[1000] = {0}, got = 0;
    struct ferry_msg *r[64];
    size_t k;
    while (ferry_receive(cons, r, 64, &k, 50) == FERRY_OK)
        for (size_t i = 0; i < k; i++, got++) {
            seen[body_int(r[i])]++;
            ferry_ack(cons, r[i]);
        }
    for (int i = 0; i < n; i++)
        ck_assert_msg(seen[i] >= 1, "message %d never arrived", i);
    ferry_pub_free(p);
    ferry_close(c);
    ferry_close(cons);
}

START_TEST(test_plain_publish_confirms_all)
{
    run("", 500, "plain");
}
END_TEST

START_TEST(test_failed_publishes_are_retried)
{
    run("fail_publish = 25", 200, "failpub");
}
END_TEST

START_TEST(test_lost_confirms_are_republished)
{
    run("fail_confirm = 40", 200, "failconf");
}
END_TEST

START_TEST(test_reports_from_inside_publish_count)
{
    run("confirm_in_publish = true", 300, "syncconf");
}
END_TEST

START_TEST(test_lost_confirms_reported_inside_publish)
{
    run("confirm_in_publish = true\nfail_confirm = 30", 200, "syncfail");
}
END_TEST

START_TEST(test_order_kept_across_retries)
{
    struct ferry_conn *cons = open_lb("");
    ck_assert_int_eq(ferry_subscribe(cons, "ordered", "g"), FERRY_OK);
    struct ferry_conn *c = open_lb("fail_publish = 7");
    struct ferry_pub_opts o = {.backoff_min_ms = 1, .backoff_max_ms = 2};
    struct ferry_pub *p = ferry_pub_new(c, &o, NULL, NULL);
    for (int i = 0; i < 50; i++) {
        char body[16];
        snprintf(body, sizeof body, "%d", i);
        struct ferry_msg m = {.dest = "ordered", .body = body, .body_len = strlen(body)};
        ck_assert_int_eq(ferry_pub_send(p, &m, 1000), FERRY_OK);
    }
    ck_assert_int_eq(ferry_pub_flush(p, 5000), FERRY_OK);
    int next = 0;
    struct ferry_msg *r[64];
    size_t k;
    while (ferry_receive(cons, r, 64, &k, 50) == FERRY_OK)
        for (size_t i = 0; i < k; i++) {
            ck_assert_int_eq(body_int(r[i]), next);
            next++;
            ferry_ack(cons, r[i]);
        }
    ck_assert_int_eq(next, 50);
    ferry_pub_free(p);
    ferry_close(c);
    ferry_close(cons);
}
END_TEST

/* A full send queue is back-pressure: the message goes out as soon as there
 * is room, not after the 100 ms outage backoff, and it is no retry. */
START_TEST(test_full_send_queue_waits_not_backs_off)
{
    struct ferry_conn *cons = open_lb("");
    ck_assert_int_eq(ferry_subscribe(cons, "busy", "g"), FERRY_OK);
    struct ferry_conn *c = open_lb("busy_publish = 6");
    struct done d = {0};
    struct ferry_pub *p = ferry_pub_new(c, NULL, on_done, &d); /* default 100 ms backoff */
    struct ferry_msg m = {.dest = "busy", .body = "x", .body_len = 1, .tag = 1};
    ck_assert_int_eq(ferry_pub_send(p, &m, -1), FERRY_OK);
    ck_assert_int_eq(ferry_pub_flush(p, 0), FERRY_OK); /* nothing parked for a retry */
    ck_assert_int_eq(d.ok, 1);
    struct ferry_pub_stats st;
    ferry_pub_stats(p, &st);
    ck_assert_int_eq(st.retries, 0);
    ck_assert_int_eq(st.reconnects, 0);
    struct ferry_msg *r[4];
    size_t k;
    ck_assert_int_eq(ferry_receive(cons, r, 4, &k, 1000), FERRY_OK);
    ck_assert_uint_eq(k, 1);
    ferry_ack(cons, r[0]);
    ferry_pub_free(p);
    ferry_close(c);
    ferry_close(cons);
}
END_TEST

START_TEST(test_too_big_is_refused_not_retried)
{
    struct ferry_conn *c = open_lb("max_message_size = 10");
    struct done d = {0};
    struct ferry_pub *p = ferry_pub_new(c, NULL, on_done, &d);
    struct ferry_msg m = {.dest = "big", .body = "0123456789abcdef", .body_len = 16};
    ck_assert_int_eq(ferry_pub_send(p, &m, 1000), FERRY_E_TOOBIG);
    ck_assert_int_eq(ferry_pub_flush(p, 100), FERRY_OK);
    struct ferry_pub_stats st;
    ferry_pub_stats(p, &st);
    ck_assert_uint_eq(st.sent, 0);
    ck_assert_uint_eq(st.pending, 0);
    ferry_pub_free(p);
    ferry_close(c);
}
END_TEST

START_TEST(test_give_up_reports_failure)
{
    struct ferry_conn *c = open_lb("fail_publish = 1000000");
    struct done d = {0};
    struct ferry_pub_opts o = {.backoff_min_ms = 1, .backoff_max_ms = 5, .give_up_ms = 50};
    struct ferry_pub *p = ferry_pub_new(c, &o, on_done, &d);
    struct ferry_msg m = {.dest = "down", .body = "x", .body_len = 1, .tag = 3};
    ck_assert_int_eq(ferry_pub_send(p, &m, 1000), FERRY_OK);
    ck_assert_int_eq(ferry_pub_flush(p, 2000), FERRY_OK);
    ck_assert_int_eq(d.failed, 1);
    ck_assert_int_eq(d.reports[3], 1);
    ck_assert_msg(strstr(ferry_pub_error(p), "simulated connection loss"), "got %s",
                  ferry_pub_error(p));
    ferry_pub_free(p);
    ferry_close(c);
}
END_TEST

/* Without confirms the caller's buffer is published as is: the body buffer
 * run() rewrites for every message must not be needed afterwards, and the
 * messages that fail at once (copied for their retry) still arrive whole. */
START_TEST(test_no_confirms_publishes_borrowed)
{
    run("confirms = false", 500, "nocopy");
    run("confirms = false\nfail_publish = 25", 200, "nocopyfail");
    run("confirms = false\nconfirm_in_publish = true", 300, "nocopysync");
}
END_TEST

/* No copy is held for a message the transport took: max_bytes does not
 * fill up while reports are pending (with confirms it does). */
START_TEST(test_no_confirms_holds_no_bytes)
{
    char body[64];
    memset(body, 'b', sizeof body);
    struct ferry_msg m = {.dest = "bytes", .body = body, .body_len = sizeof body};
    struct ferry_pub_opts o = {.max_bytes = 100};
    struct ferry_conn *c = open_lb("");
    struct ferry_pub *p = ferry_pub_new(c, &o, NULL, NULL);
    ck_assert_int_eq(ferry_pub_send(p, &m, 0), FERRY_OK);
    ck_assert_int_eq(ferry_pub_send(p, &m, 0), FERRY_OK);
    ck_assert_int_eq(ferry_pub_send(p, &m, 0), FERRY_E_TIMEOUT); /* two copies held */
    ferry_pub_free(p);
    ferry_close(c);

    c = open_lb("confirms = false");
    p = ferry_pub_new(c, &o, NULL, NULL);
    for (int i = 0; i < 20; i++)
        ck_assert_int_eq(ferry_pub_send(p, &m, 0), FERRY_OK);
    struct ferry_pub_stats st;
    ferry_pub_stats(p, &st);
    ck_assert_uint_eq(st.pending, 20); /* reports come at flush */
    ck_assert_int_eq(ferry_pub_flush(p, 1000), FERRY_OK);
    ferry_pub_free(p);
    ferry_close(c);
}
END_TEST

/* A transport without confirms that reports a message lost after taking it
 * cannot have it re-sent (no copy): the message is settled as failed, once,
 * and the others go through. */
START_TEST(test_no_confirms_loss_after_publish_fails)
{
    struct ferry_conn *c = open_lb("confirms = false\nfail_confirm = 3");
    struct done d = {0};
    struct ferry_pub_opts o = {.backoff_min_ms = 1, .backoff_max_ms = 5};
    struct ferry_pub *p = ferry_pub_new(c, &o, on_done, &d);
    for (int i = 0; i < 10; i++) {
        struct ferry_msg m = {.dest = "lost", .body = "x", .body_len = 1, .tag = (uint64_t)i};
        ck_assert_int_eq(ferry_pub_send(p, &m, 1000), FERRY_OK);
    }
    ck_assert_int_eq(ferry_pub_flush(p, 2000), FERRY_OK);
    ck_assert_int_eq(d.failed, 3);
    ck_assert_int_eq(d.ok, 7);
    for (int i = 0; i < 10; i++)
        ck_assert_msg(d.reports[i] == 1, "message %d reported %d times", i, d.reports[i]);
    struct ferry_pub_stats st;
    ferry_pub_stats(p, &st);
    ck_assert_uint_eq(st.retries, 0);
    ck_assert_uint_eq(st.failed, 3);
    ferry_pub_free(p);
    ferry_close(c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("pub");
    TCase *tc = tcase_create("pub");
    tcase_add_test(tc, test_plain_publish_confirms_all);
    tcase_add_test(tc, test_failed_publishes_are_retried);
    tcase_add_test(tc, test_lost_confirms_are_republished);
    tcase_add_test(tc, test_reports_from_inside_publish_count);
    tcase_add_test(tc, test_lost_confirms_reported_inside_publish);
    tcase_add_test(tc, test_order_kept_across_retries);
    tcase_add_test(tc, test_full_send_queue_waits_not_backs_off);
    tcase_add_test(tc, test_too_big_is_refused_not_retried);
    tcase_add_test(tc, test_give_up_reports_failure);
    tcase_add_test(tc, test_no_confirms_publishes_borrowed);
    tcase_add_test(tc, test_no_confirms_holds_no_bytes);
    tcase_add_test(tc, test_no_confirms_loss_after_publish_fails);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
