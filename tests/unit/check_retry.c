/* Retry policy (attempt counting, backoff growth and cap, header stamping)
 * and the retrier over the loopback plugin: local and topic modes defer,
 * then dead-letter with the right headers; the validator dead-letters
 * forwards that keep failing and ferry-producer --replay brings them back. */
#include "config.h"
#include "app.h"

#include <ferry/ledger.h>
#include <ferry/retry.h>

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "private.h"

static const char *hval(const struct ferry_msg *m, const char *name, char *buf, size_t n)
{
    const struct ferry_header *h = ferry_msg_header(m, name);
    if (!h)
        return NULL;
    snprintf(buf, n, "%.*s", (int)h->value_len, (const char *)h->value);
    return buf;
}

START_TEST(test_attempts_counted_from_header)
{
    struct ferry_header hs[] = {{"a", "1", 1}, {FERRY_HDR_ATTEMPTS, "12", 2}};
    struct ferry_msg m = {.headers = hs, .n_headers = 1};
    ck_assert_uint_eq(ferry_retry_attempts(&m), 0);
    m.n_headers = 2;
    ck_assert_uint_eq(ferry_retry_attempts(&m), 12);
    hs[1].value = "1x";
    ck_assert_uint_eq(ferry_retry_attempts(&m), 0); /* not a number: a first attempt */
    hs[1].value_len = 0;
    ck_assert_uint_eq(ferry_retry_attempts(&m), 0);
}
END_TEST

START_TEST(test_backoff_doubles_then_caps)
{
    struct ferry_retry_policy p = {.max_retries = 5, .backoff_min_ms = 100, .backoff_max_ms = 1000};
    ck_assert_int_eq(ferry_retry_delay(&p, 1), 100);
    ck_assert_int_eq(ferry_retry_delay(&p, 2), 200);
    ck_assert_int_eq(ferry_retry_delay(&p, 3), 400);
    ck_assert_int_eq(ferry_retry_delay(&p, 4), 800);
    ck_assert_int_eq(ferry_retry_delay(&p, 5), 1000);
    ck_assert_int_eq(ferry_retry_delay(&p, 4000000000u), 1000);
    struct ferry_retry_policy d = {0};
    ck_assert_int_eq(ferry_retry_delay(&d, 1), 100);
    ck_assert_int_eq(ferry_retry_delay(&d, 30), 10000);
    struct ferry_retry_policy inv = {.backoff_min_ms = 500, .backoff_max_ms = 200};
    ck_assert_int_eq(ferry_retry_delay(&inv, 3), 500); /* a cap below the minimum is the minimum */
}
END_TEST

START_TEST(test_exhausted_after_max_retries)
{
    struct ferry_retry_policy p = {.max_retries = 2};
    ck_assert(!ferry_retry_exhausted(&p, 1));
    ck_assert(!ferry_retry_exhausted(&p, 2));
    ck_assert(ferry_retry_exhausted(&p, 3)); /* the third failed attempt */
    p.max_retries = 0;
    ck_assert(ferry_retry_exhausted(&p, 1));
    p.max_retries = -1; /* forever */
    ck_assert(!ferry_retry_exhausted(&p, 1000000));
}
END_TEST

START_TEST(test_stamp_replaces_in_place_appends_and_drops)
{
    struct ferry_header hs[] = {{"trace", "t", 1},
                                {FERRY_HDR_ATTEMPTS, "1", 1},
                                {FERRY_HDR_DUE, "99", 2},
                                {FERRY_HDR_SEQ, "7", 1}};
    struct ferry_msg m = {.headers = hs, .n_headers = 4};
    struct ferry_header set[] = {{FERRY_HDR_ATTEMPTS, "2", 1},
                                 {FERRY_HDR_ORIGINAL_DEST, "logs", 4}};
    static const char *const drop[] = {FERRY_HDR_DUE, NULL};
    struct ferry_header out[8];
    size_t n = ferry_retry_stamp(&m, set, 2, drop, out, 8);
    ck_assert_uint_eq(n, 4);
    ck_assert_str_eq(out[0].name, "trace");
    ck_assert_str_eq(out[1].name, FERRY_HDR_ATTEMPTS);
    ck_assert_ptr_eq(out[1].value, set[0].value);
    ck_assert_str_eq(out[2].name, FERRY_HDR_SEQ);
    ck_assert_str_eq(out[3].name, FERRY_HDR_ORIGINAL_DEST);
    /* too small: the count needed, and no write past cap */
    struct ferry_header small[2] = {{0}};
    ck_assert_uint_eq(ferry_retry_stamp(&m, set, 2, drop, small, 1), 4);
    ck_assert_ptr_null(small[1].name);
    /* a duplicate header name in m is replaced once, not twice */
    struct ferry_header twice[] = {{FERRY_HDR_ATTEMPTS, "1", 1}, {FERRY_HDR_ATTEMPTS, "5", 1}};
    struct ferry_msg m2 = {.headers = twice, .n_headers = 2};
    ck_assert_uint_eq(ferry_retry_stamp(&m2, set, 1, NULL, out, 8), 1);
}
END_TEST

/* ---- the retrier over the loopback broker ---- */

static struct ferry_config *lb_config(const char *extra)
{
    char err[512], text[512];
    snprintf(text, sizeof text, "[transport]\nplugin = loopback\n[loopback]\n%s\n", extra);
    struct ferry_config *c = ferry_config_new();
    ck_assert_int_eq(ferry_config_load_string(c, "t", text, err, sizeof err), FERRY_OK);
    return c;
}

static struct ferry_conn *open_lb(const struct ferry_config *cfg)
{
    char err[512];
    int st;
    struct ferry_conn *conn = ferry_open(cfg, "check_retry", &st, err, sizeof err);
    ck_assert_msg(conn != NULL, "%s", err);
    return conn;
}

/* Publish n stamped messages to dest, consume them and fail every attempt
 * with max_retries 2: each is deferred twice (coming back with attempts 1
 * and 2, not before its delay), then dead-lettered once with the reason,
 * the attempt count and the original destination, its other headers, key
 * and body intact; nothing is left at dest. */
static void fail_until_dead(enum ferry_retry_mode mode, const char *tag)
{
    char dest[64], dlq[64], other[80];
    snprintf(dest, sizeof dest, "r.%s.%d", tag, (int)getpid());
    snprintf(dlq, sizeof dlq, "r.%s.dl.%d", tag, (int)getpid());
    snprintf(other, sizeof other, "%s.retry", dest);
    struct ferry_config *cfg = lb_config("");
    struct ferry_conn *pub = open_lb(cfg), *in = open_lb(cfg), *dl = open_lb(cfg);
    ck_assert_int_eq(ferry_subscribe(in, dest, "g"), FERRY_OK);
    ck_assert_int_eq(ferry_subscribe(dl, dlq, "d"), FERRY_OK);
    enum { N = 5 };
    for (int i = 0; i < N; i++) {
        char seq[8], body[32];
        snprintf(seq, sizeof seq, "%d", i + 1);
        snprintf(body, sizeof body, "{\"n\":%d}", i + 1);
        struct ferry_header hs[] = {{FERRY_HDR_PRODUCER, "p1", 2},
                                    {FERRY_HDR_SEQ, seq, strlen(seq)}};
        struct ferry_msg m = {.dest = dest,
                              .key = "k.v",
                              .key_len = 3,
                              .headers = hs,
                              .n_headers = 2,
                              .body = body,
                              .body_len = strlen(body)};
        ck_assert_int_eq(ferry_publish(pub, &m), FERRY_OK);
    }
    if (mode == FERRY_RETRY_TOPIC) { /* another group's retry: skipped, not handled */
        struct ferry_header hs[] = {{FERRY_HDR_RETRY_GROUP, "someone-else", 12},
                                    {FERRY_HDR_DUE, "0", 1}};
        struct ferry_msg m = {
            .dest = other, .headers = hs, .n_headers = 2, .body = "x", .body_len = 1};
        ck_assert_int_eq(ferry_publish(pub, &m), FERRY_OK);
    }
    ck_assert_int_eq(ferry_flush(pub, 1000), FERRY_OK);

    struct ferry_retry_opts o = {
        .policy = {.max_retries = 2, .backoff_min_ms = 150, .backoff_max_ms = 1000},
        .mode = mode,
        .dest = dest,
        .group = "g",
        .dead_letter = dlq};
    char err[512];
    int st;
    struct ferry_retry *r = ferry_retry_new(cfg, "check_retry", in, &o, &st, err, sizeof err);
    ck_assert_msg(r != NULL, "%s", err);
    ck_assert_int_eq(ferry_retry_get_mode(r), mode);

    struct ferry_msg *got[16];
    size_t n = 0;
    ck_assert_int_eq(ferry_receive(in, got, 16, &n, 1000), FERRY_OK);
    ck_assert_uint_eq(n, N);
    for (size_t i = 0; i < n; i++) {
        struct ferry_retry_item it = {in, got[i], ferry_retry_attempts(got[i])};
        bool dead = true;
        ck_assert_int_eq(ferry_retry_fail(r, &it, "disk full", &dead), FERRY_OK);
        ck_assert(!dead);
    }
    for (uint32_t round = 1; round <= 2; round++) {
        struct ferry_retry_item items[16];
        /* not before the delay: 150 ms, then 300 ms */
        ck_assert_uint_eq(ferry_retry_poll(r, items, 16), 0);
        size_t k = 0;
        for (int w = 0; w < 400 && k < N; w++) {
            k += ferry_retry_poll(r, items + k, 16 - k);
            if (k < N)
                ferry_sleep_ms(10);
        }
        ck_assert_uint_eq(k, N);
        for (size_t i = 0; i < k; i++) {
            ck_assert_uint_eq(items[i].attempts, round);
            bool dead = false;
            ck_assert_int_eq(ferry_retry_fail(r, &items[i], "disk full", &dead), FERRY_OK);
            ck_assert(dead == (round == 2));
        }
    }
    struct ferry_retry_stats rs;
    ferry_retry_stats(r, &rs);
    ck_assert_uint_eq(rs.deferred, 2 * N);
    ck_assert_uint_eq(rs.dead_lettered, N);
    ck_assert_uint_eq(rs.held, 0);

    bool seen[N] = {false};
    size_t total = 0;
    while (ferry_receive(dl, got, 16, &n, 200) == FERRY_OK && n) {
        for (size_t i = 0; i < n; i++) {
            char v[256];
            ck_assert_str_eq(hval(got[i], FERRY_HDR_ATTEMPTS, v, sizeof v), "3");
            ck_assert_str_eq(hval(got[i], FERRY_HDR_ERROR, v, sizeof v), "disk full");
            ck_assert_str_eq(hval(got[i], FERRY_HDR_ORIGINAL_DEST, v, sizeof v), dest);
            ck_assert_str_eq(hval(got[i], FERRY_HDR_PRODUCER, v, sizeof v), "p1");
            ck_assert_ptr_null(ferry_msg_header(got[i], FERRY_HDR_DUE));
            ck_assert_ptr_null(ferry_msg_header(got[i], FERRY_HDR_RETRY_GROUP));
            ck_assert_uint_eq(got[i]->key_len, 3);
            ck_assert(!memcmp(got[i]->key, "k.v", 3));
            int seq = atoi(hval(got[i], FERRY_HDR_SEQ, v, sizeof v));
            ck_assert(seq >= 1 && seq <= N && !seen[seq - 1]);
            seen[seq - 1] = true;
            char body[32];
            snprintf(body, sizeof body, "{\"n\":%d}", seq);
            ck_assert_uint_eq(got[i]->body_len, strlen(body));
            ck_assert(!memcmp(got[i]->body, body, strlen(body)));
            ferry_ack(dl, got[i]);
            total++;
        }
    }
    ck_assert_uint_eq(total, N);
    ferry_retry_free(r);
    /* every original was acked: nothing comes back at dest */
    ck_assert_int_eq(ferry_receive(in, got, 16, &n, 100) == FERRY_OK ? (int)n : 0, 0);
    ferry_close(pub);
    ferry_close(in);
    ferry_close(dl);
    ferry_config_free(cfg);
}

START_TEST(test_local_mode_defers_then_dead_letters)
{
    fail_until_dead(FERRY_RETRY_LOCAL, "local");
}
END_TEST

START_TEST(test_topic_mode_defers_then_dead_letters)
{
    fail_until_dead(FERRY_RETRY_TOPIC, "topic");
}
END_TEST

START_TEST(test_auto_mode_and_broker_mode_need_defer)
{
    struct ferry_config *cfg = lb_config("");
    struct ferry_conn *in = open_lb(cfg);
    ck_assert(!ferry_can_defer(in)); /* loopback has no defer operation */
    struct ferry_retry_opts o = {.policy = {.max_retries = 1}, .dest = "x", .dead_letter = "x.dl"};
    char err[512];
    int st;
    struct ferry_retry *r = ferry_retry_new(cfg, "t", in, &o, &st, err, sizeof err);
    ck_assert_ptr_nonnull(r);
    /* loopback acks but is not durable: auto holds retries in the process */
    ck_assert_int_eq(ferry_retry_get_mode(r), FERRY_RETRY_LOCAL);
    ferry_retry_free(r);
    o.mode = FERRY_RETRY_BROKER;
    ck_assert_ptr_null(ferry_retry_new(cfg, "t", in, &o, &st, err, sizeof err));
    ck_assert_int_eq(st, FERRY_E_CONFIG);
    ck_assert_ptr_nonnull(strstr(err, "cannot defer"));
    o.mode = FERRY_RETRY_AUTO;
    o.dead_letter = NULL;
    ck_assert_ptr_null(ferry_retry_new(cfg, "t", in, &o, &st, err, sizeof err));
    ferry_close(in);
    ferry_config_free(cfg);
}
END_TEST

/* ---- the validator and --replay, in process ---- */

static const char *schema_file(void)
{
    static char path[1024];
    const char *src = getenv("FERRY_SRCDIR");
    snprintf(path, sizeof path, "%s/etc/schemas/download-event.json", src ? src : ".");
    return path;
}

static void write_conf(const char *path, const char *extra)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "[transport]\nplugin = loopback\n[loopback]\n%s\n", extra);
    fclose(f);
}

/* Drain what c consumes: count each event id (dl-N) into seen; with dead,
 * check and count the dead letters; with repub, publish each message again
 * to the same destination before acking it (so it can be read twice). */
static int drain(struct ferry_conn *c, int *seen, int n, const char *in, const char *out, int *dead,
                 struct ferry_conn *repub)
{
    struct ferry_msg *r[64];
    size_t k;
    int total = 0;
    /* with repub the copies come round again: read each message once */
    while ((!repub || total < n) &&
           ferry_receive(c, r, repub ? (size_t)(n - total) : 64, &k, 200) == FERRY_OK && k) {
        for (size_t i = 0; i < k; i++) {
            char b[256], v[1024];
            int bl = r[i]->body_len < sizeof b ? (int)r[i]->body_len : (int)sizeof b - 1;
            snprintf(b, sizeof b, "%.*s", bl, (const char *)r[i]->body);
            int id = -1;
            if (sscanf(b, "{\"event_id\":\"dl-%d\"", &id) != 1)
                sscanf(b, "dl-%d this", &id);
            ck_assert_msg(id >= 0 && id < n, "unknown body %s", b);
            seen[id]++;
            if (dead && hval(r[i], FERRY_HDR_ATTEMPTS, v, sizeof v)) {
                ck_assert_str_eq(v, "3");
                ck_assert_str_eq(hval(r[i], FERRY_HDR_ORIGINAL_DEST, v, sizeof v), in);
                ck_assert_ptr_nonnull(strstr(hval(r[i], FERRY_HDR_ERROR, v, sizeof v), out));
                (*dead)++;
            }
            if (repub)
                ck_assert_int_eq(ferry_publish(repub, r[i]), FERRY_OK);
            ferry_ack(c, r[i]);
            total++;
        }
    }
    return total;
}

START_TEST(test_validator_dead_letters_and_replay_brings_back)
{
    enum { N = 40 };
    char in[64], out[64], rej[64], conf[64], fine[64];
    snprintf(in, sizeof in, "rv.in.%d", (int)getpid());
    snprintf(out, sizeof out, "rv.out.%d", (int)getpid());
    snprintf(rej, sizeof rej, "rv.rej.%d", (int)getpid());
    snprintf(conf, sizeof conf, "check_retry.%d.conf", (int)getpid());
    snprintf(fine, sizeof fine, "check_retry.%d.ok.conf", (int)getpid());
    char knob[128];
    snprintf(knob, sizeof knob, "fail_destination = %s", out);
    write_conf(conf, knob);
    write_conf(fine, "");
    struct ferry_config *cfg = lb_config("");
    struct ferry_conn *c = open_lb(cfg), *cout = open_lb(cfg), *crej = open_lb(cfg);
    ck_assert_int_eq(ferry_subscribe(cout, out, "o"), FERRY_OK);
    ck_assert_int_eq(ferry_subscribe(crej, rej, "r"), FERRY_OK);
    uint64_t rng = 7;
    bool bad[N];
    int nbad = 0;
    for (int i = 0; i < N; i++) {
        char buf[1024];
        size_t len;
        bad[i] = i % 4 == 3;
        nbad += bad[i];
        app_make_download((uint64_t)i, bad[i], &rng, buf, sizeof buf, &len);
        struct ferry_msg m = {.dest = in, .body = buf, .body_len = len};
        ck_assert_int_eq(ferry_publish(c, &m), FERRY_OK);
    }
    ck_assert_int_eq(ferry_flush(c, 1000), FERRY_OK);

    /* every forward to out fails: valid events end at reject after 3 attempts */
    char *argv[] = {"ferry-validator",
                    "-q",
                    "-c",
                    conf,
                    "--input",
                    in,
                    "--output",
                    out,
                    "--reject",
                    rej,
                    "--schema",
                    (char *)schema_file(),
                    "--idle-exit",
                    "600ms",
                    "--publish-timeout",
                    "150ms",
                    "--max-retries",
                    "2",
                    "--retry-backoff-min",
                    "20ms",
                    "--retry-backoff-max",
                    "40ms",
                    NULL};
    ck_assert_int_eq(ferry_validator_main((int)(sizeof argv / sizeof *argv) - 1, argv), 0);
    int seen_out[N] = {0}, seen_rej[N] = {0}, dead = 0;
    ck_assert_int_eq(drain(cout, seen_out, N, in, out, NULL, NULL), 0);
    ck_assert_int_eq(drain(crej, seen_rej, N, in, out, &dead, c), N);
    ck_assert_int_eq(ferry_flush(c, 1000), FERRY_OK);
    /* every valid one; rejects of invalid ones queue behind the failing
     * forwards in the publisher, so they may be dead-lettered too */
    ck_assert_int_ge(dead, N - nbad);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(seen_rej[i], 1);
    unlink(conf);

    /* after the fix: replay, then the validator forwards each valid event once */
    char *rargv[] = {"ferry-producer", "-q",    "-c", fine, "--replay", rej, "--replay-group", "r",
                     "--replay-wait",  "300ms", NULL};
    ck_assert_int_eq(ferry_producer_main((int)(sizeof rargv / sizeof *rargv) - 1, rargv), 0);
    char *vargv[] = {"ferry-validator",
                     "-q",
                     "-c",
                     fine,
                     "--input",
                     in,
                     "--output",
                     out,
                     "--reject",
                     rej,
                     "--schema",
                     (char *)schema_file(),
                     "--idle-exit",
                     "400ms",
                     "--max-retries",
                     "2",
                     NULL};
    ck_assert_int_eq(ferry_validator_main((int)(sizeof vargv / sizeof *vargv) - 1, vargv), 0);
    unlink(fine);
    int seen2[N] = {0};
    ck_assert_int_eq(drain(cout, seen2, N, in, out, NULL, NULL), N - nbad);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(seen2[i], bad[i] ? 0 : 1);
    memset(seen2, 0, sizeof seen2);
    ck_assert_int_eq(drain(crej, seen2, N, in, out, NULL, NULL),
                     nbad); /* invalid: rejected again */
    ferry_close(c);
    ferry_close(cout);
    ferry_close(crej);
    ferry_config_free(cfg);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("retry");
    TCase *t = tcase_create("policy");
    tcase_add_test(t, test_attempts_counted_from_header);
    tcase_add_test(t, test_backoff_doubles_then_caps);
    tcase_add_test(t, test_exhausted_after_max_retries);
    tcase_add_test(t, test_stamp_replaces_in_place_appends_and_drops);
    suite_add_tcase(s, t);
    t = tcase_create("retrier");
    tcase_set_timeout(t, 60);
    tcase_add_test(t, test_local_mode_defers_then_dead_letters);
    tcase_add_test(t, test_topic_mode_defers_then_dead_letters);
    tcase_add_test(t, test_auto_mode_and_broker_mode_need_defer);
    tcase_add_test(t, test_validator_dead_letters_and_replay_brings_back);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
