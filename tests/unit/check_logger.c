/* The logging API over the loopback plugin: envelopes and order, the
 * minimum level, each full-queue policy, outages with and without the
 * spool, recovery of a spool left by an earlier run, many threads. */
#include "config.h"

#include <check.h>
#include <cjson/cJSON.h>
#include <ferry/ferry.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "spool.h"

#if defined(__SANITIZE_THREAD__)
/* Any data race fails the run instead of only being printed. */
const char *__tsan_default_options(void);
const char *__tsan_default_options(void)
{
    return "halt_on_error=1:exitcode=66";
}
#endif

static char dir[256];  /* per test: spool and outage file live here */
static char down[300]; /* exists = broker down */

static void setup(void)
{
    snprintf(dir, sizeof dir, "%s/ferry-logger-%ld", P_tmpdir, (long)getpid());
    mkdir(dir, 0700);
    snprintf(down, sizeof down, "%s/down", dir);
    unlink(down);
}

static void teardown(void)
{
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static void broker(bool up)
{
    if (up) {
        unlink(down);
    } else {
        FILE *f = fopen(down, "w");
        ck_assert_ptr_nonnull(f);
        fclose(f);
    }
}

static struct ferry_config *config(const char *logger)
{
    char text[2048], err[512];
    snprintf(text, sizeof text,
             "[transport]\nplugin = loopback\n[loopback]\ndown_file = %s\n"
             "[logger]\nservice = svc\nbackoff_min = 5ms\nbackoff_max = 20ms\n%s\n",
             down, logger);
    struct ferry_config *c = ferry_config_new();
    ck_assert_int_eq(ferry_config_load_string(c, "t", text, err, sizeof err), FERRY_OK);
    return c;
}

static struct ferry_logger *open_logger(struct ferry_config *c)
{
    char err[512];
    int st;
    struct ferry_logger *lg = ferry_logger_open_config(NULL, c, &st, err, sizeof err);
    ck_assert_msg(lg != NULL, "%s", err);
    return lg;
}

static struct ferry_conn *consumer(const char *dest)
{
    char err[512];
    int st;
    struct ferry_config *c = config("");
    struct ferry_conn *conn = ferry_open(c, "consumer", &st, err, sizeof err);
    ck_assert_msg(conn != NULL, "%s", err);
    ferry_config_free(c);
    ck_assert_int_eq(ferry_subscribe(conn, dest, "g"), FERRY_OK);
    return conn;
}

/* Receive exactly n messages; each body is handed to check (may be NULL). */
static void drain(struct ferry_conn *conn, int n, void (*check)(const struct ferry_msg *m, int i))
{
    int got = 0;
    while (got < n) {
        struct ferry_msg *ms[256];
        size_t k;
        int rc = ferry_receive(conn, ms, 256, &k, 2000);
        ck_assert_msg(rc == FERRY_OK, "only %d of %d messages arrived", got, n);
        for (size_t i = 0; i < k; i++) {
            if (check)
                check(ms[i], got);
            got++;
            ferry_ack(conn, ms[i]);
        }
    }
    struct ferry_msg *m;
    size_t k;
    ck_assert_int_eq(ferry_receive(conn, &m, 1, &k, 50), FERRY_E_TIMEOUT);
}

/* information {"n": i}: the i-th message */
static int nth(const struct ferry_msg *m)
{
    cJSON *o = cJSON_ParseWithLength(m->body, m->body_len);
    ck_assert_ptr_nonnull(o);
    const cJSON *n = cJSON_GetObjectItem(cJSON_GetObjectItem(o, "information"), "n");
    ck_assert(cJSON_IsNumber(n));
    int v = n->valueint;
    cJSON_Delete(o);
    return v;
}

static void in_order(const struct ferry_msg *m, int i)
{
    ck_assert_int_eq(nth(m), i);
}

static int once_seen[1000];

/* lost confirms make the publisher send again: order may change, never the set */
static void exactly_once(const struct ferry_msg *m, int i)
{
    (void)i;
    int n = nth(m);
    ck_assert(n >= 0 && n < 1000);
    ck_assert_int_eq(once_seen[n]++, 0);
}

static void log_n(struct ferry_logger *lg, int from, int n)
{
    for (int i = from; i < from + n; i++) {
        char info[64];
        snprintf(info, sizeof info, "{\"n\":%d}", i);
        ck_assert_int_eq(ferry_log(lg, FERRY_INFO, "hello", info), FERRY_OK);
    }
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Poll the stats until pred holds or 5 s pass. */
static bool wait_stats(struct ferry_logger *lg,
                       bool (*pred)(const struct ferry_logger_stats *, uint64_t), uint64_t arg)
{
    for (int64_t end = now_ms() + 5000; now_ms() < end;) {
        struct ferry_logger_stats s;
        ferry_logger_stats(lg, &s);
        if (pred(&s, arg))
            return true;
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
    }
    return false;
}

static bool spooled_at_least(const struct ferry_logger_stats *s, uint64_t n)
{
    return s->spooled >= n;
}

static void check_envelope(const struct ferry_msg *m, int i)
{
    (void)i;
    ck_assert_int_eq((int)m->key_len, 8);
    ck_assert(!memcmp(m->key, "svc.info", 8));
    cJSON *o = cJSON_ParseWithLength(m->body, m->body_len);
    ck_assert_ptr_nonnull(o);
    ck_assert_str_eq(cJSON_GetObjectItem(o, "service")->valuestring, "svc");
    ck_assert_str_eq(cJSON_GetObjectItem(o, "level")->valuestring, "INFO");
    ck_assert_str_eq(cJSON_GetObjectItem(o, "message")->valuestring, "User logged in");
    ck_assert_str_eq(
        cJSON_GetObjectItem(cJSON_GetObjectItem(o, "information"), "user_id")->valuestring, "123");
    ck_assert_int_eq((int)strlen(cJSON_GetObjectItem(o, "id")->valuestring), 36);
    ck_assert_int_eq((int)strlen(cJSON_GetObjectItem(o, "timestamp")->valuestring), 24);
    ck_assert_ptr_nonnull(cJSON_GetObjectItem(o, "host"));
    cJSON_Delete(o);
}

START_TEST(test_envelope_fields_and_routing_key)
{
    struct ferry_conn *cons = consumer("env");
    struct ferry_config *c = config("destination = env");
    struct ferry_logger *lg = open_logger(c);
    ck_assert_int_eq(ferry_log(lg, FERRY_INFO, "User logged in", "{\"user_id\":\"123\"}"),
                     FERRY_OK);
    ck_assert_int_eq(ferry_logger_flush(lg, 5000), FERRY_OK);
    drain(cons, 1, check_envelope);
    struct ferry_logger_stats s;
    ck_assert_int_eq(ferry_logger_close(lg, 1000, &s), FERRY_OK);
    ck_assert_uint_eq(s.logged, 1);
    ck_assert_uint_eq(s.delivered, 1);
    ck_assert_uint_eq(s.pending, 0);
    ferry_close(cons);
    ferry_config_free(c);
}
END_TEST

static void printf_body(const struct ferry_msg *m, int i)
{
    cJSON *o = cJSON_ParseWithLength(m->body, m->body_len);
    const char *want[] = {"disk 93% full on /var", "plain"};
    ck_assert_str_eq(cJSON_GetObjectItem(o, "message")->valuestring, want[i]);
    if (i == 1) /* text that is not a JSON object is kept beside, not lost */
        ck_assert_str_eq(cJSON_GetObjectItem(o, "information_text")->valuestring, "not json");
    cJSON_Delete(o);
}

START_TEST(test_logf_and_bad_information_delivered)
{
    struct ferry_conn *cons = consumer("fmt");
    struct ferry_config *c = config("destination = fmt");
    struct ferry_logger *lg = open_logger(c);
    ck_assert_int_eq(ferry_logf(lg, FERRY_ERROR, "disk %d%% full on %s", 93, "/var"), FERRY_OK);
    ck_assert_int_eq(ferry_log(lg, FERRY_ERROR, "plain", "not json"), FERRY_OK);
    ck_assert_int_eq(ferry_logger_close(lg, 5000, NULL), FERRY_OK);
    drain(cons, 2, printf_body);
    ferry_close(cons);
    ferry_config_free(c);
}
END_TEST

START_TEST(test_minimum_level_discards_below)
{
    struct ferry_conn *cons = consumer("lvl");
    struct ferry_config *c = config("destination = lvl\nlevel = warning");
    struct ferry_logger *lg = open_logger(c);
    ck_assert_int_eq(ferry_log(lg, FERRY_DEBUG, "no", NULL), FERRY_OK);
    ck_assert_int_eq(ferry_log(lg, FERRY_INFO, "no", NULL), FERRY_OK);
    ck_assert_int_eq(ferry_log(lg, FERRY_WARNING, "yes", NULL), FERRY_OK);
    ck_assert_int_eq(ferry_log(lg, FERRY_CRITICAL, "yes", NULL), FERRY_OK);
    struct ferry_logger_stats s;
    ck_assert_int_eq(ferry_logger_close(lg, 5000, &s), FERRY_OK);
    ck_assert_uint_eq(s.logged, 2);
    ck_assert_uint_eq(s.delivered, 2);
    drain(cons, 2, NULL);
    ferry_close(cons);
    ferry_config_free(c);
}
END_TEST

START_TEST(test_order_kept_single_thread)
{
    struct ferry_conn *cons = consumer("order");
    struct ferry_config *c =
        config("destination = order\nfull_policy = block\nblock_timeout = 10s\nqueue_size = 64");
    struct ferry_logger *lg = open_logger(c);
    log_n(lg, 0, 20000);
    ck_assert_int_eq(ferry_logger_flush(lg, 10000), FERRY_OK);
    drain(cons, 20000, in_order);
    ck_assert_int_eq(ferry_logger_close(lg, 1000, NULL), FERRY_OK);
    ferry_close(cons);
    ferry_config_free(c);
}
END_TEST

START_TEST(test_retries_lost_publishes_and_confirms)
{
    struct ferry_conn *cons = consumer("retry");
    char extra[64];
    snprintf(extra, sizeof extra, "destination = retry");
    char text[512], err[512];
    snprintf(text, sizeof text,
             "[transport]\nplugin = loopback\n[loopback]\nfail_publish = 30\nfail_confirm = 30\n"
             "[logger]\nservice = svc\nbackoff_min = 1ms\nbackoff_max = 5ms\n%s\n",
             extra);
    struct ferry_config *c = ferry_config_new();
    ck_assert_int_eq(ferry_config_load_string(c, "t", text, err, sizeof err), FERRY_OK);
    struct ferry_logger *lg = open_logger(c);
    log_n(lg, 0, 200);
    struct ferry_logger_stats s;
    ck_assert_int_eq(ferry_logger_close(lg, 10000, &s), FERRY_OK);
    ck_assert_uint_eq(s.delivered, 200);
    drain(cons, 200, exactly_once);
    ferry_close(cons);
    ferry_config_free(c);
}
END_TEST

START_TEST(test_drop_newest_counts_and_close_reports_lost)
{
    broker(false);
    struct ferry_config *c = config("destination = drop\nqueue_size = 16");
    struct ferry_logger *lg = open_logger(c);
    int accepted = 0, refused = 0;
    for (int i = 0; i < 100; i++) {
        int rc = ferry_log(lg, FERRY_INFO, "x", NULL);
        rc == FERRY_OK ? accepted++ : refused++;
        if (rc != FERRY_OK)
            ck_assert_int_eq(rc, FERRY_E_AGAIN);
    }
    ck_assert_int_eq(accepted, 16);
    ck_assert_int_eq(refused, 84);
    struct ferry_logger_stats s;
    ferry_logger_stats(lg, &s);
    ck_assert_uint_eq(s.dropped, 84);
    ck_assert_uint_eq(s.pending, 16);
    int64_t t0 = now_ms();
    ck_assert_int_eq(ferry_logger_close(lg, 200, &s), FERRY_E_TIMEOUT);
    int64_t took = now_ms() - t0;
    ck_assert_msg(took >= 190 && took < 2000, "close took %lld ms", (long long)took);
    ck_assert_uint_eq(s.dropped, 100); /* 84 refused + 16 lost at close */
    ck_assert_uint_eq(s.delivered, 0);
    ck_assert_uint_eq(s.pending, 0);
    ferry_config_free(c);
}
END_TEST

START_TEST(test_block_waits_then_drops)
{
    broker(false);
    struct ferry_config *c =
        config("destination = block\nqueue_size = 16\nfull_policy = block\nblock_timeout = 80ms");
    struct ferry_logger *lg = open_logger(c);
    for (int i = 0; i < 16; i++)
        ck_assert_int_eq(ferry_log(lg, FERRY_INFO, "x", NULL), FERRY_OK);
    int64_t t0 = now_ms();
    ck_assert_int_eq(ferry_log(lg, FERRY_INFO, "x", NULL), FERRY_E_AGAIN);
    int64_t took = now_ms() - t0;
    ck_assert_msg(took >= 75 && took < 1000, "blocked %lld ms", (long long)took);
    ck_assert_int_eq(ferry_logger_close(lg, 50, NULL), FERRY_E_TIMEOUT);
    ferry_config_free(c);
}
END_TEST

START_TEST(test_block_resumes_when_broker_returns)
{
    struct ferry_conn *cons = consumer("resume");
    broker(false);
    struct ferry_config *c =
        config("destination = resume\nqueue_size = 16\nfull_policy = block\nblock_timeout = 20s");
    struct ferry_logger *lg = open_logger(c);
    log_n(lg, 0, 16);
    broker(true); /* the next calls wait until the sender reconnects and drains */
    log_n(lg, 16, 500);
    struct ferry_logger_stats s;
    ck_assert_int_eq(ferry_logger_close(lg, 5000, &s), FERRY_OK);
    ck_assert_uint_eq(s.delivered, 516);
    ck_assert_uint_eq(s.dropped, 0);
    drain(cons, 516, in_order);
    ferry_close(cons);
    ferry_config_free(c);
}
END_TEST

static char spool_opt[400];

static const char *spool_cfg(const char *extra)
{
    snprintf(spool_opt, sizeof spool_opt, "spool_dir = %s/spool\nspool_fsync = never\n%s", dir,
             extra);
    return spool_opt;
}

START_TEST(test_spool_holds_outage_and_delivers_in_order)
{
    struct ferry_conn *cons = consumer("out");
    broker(false);
    struct ferry_config *c = config(spool_cfg(
        "destination = out\nqueue_size = 1024\nfull_policy = block\nblock_timeout = 10s"));
    struct ferry_logger *lg = open_logger(c);
    log_n(lg, 0, 5000);
    ck_assert(wait_stats(lg, spooled_at_least, 5000));
    ck_assert_int_eq(ferry_logger_flush(lg, 0), FERRY_E_TIMEOUT);
    broker(true);
    ck_assert_int_eq(ferry_logger_flush(lg, 10000), FERRY_OK);
    struct ferry_logger_stats s;
    ck_assert_int_eq(ferry_logger_close(lg, 1000, &s), FERRY_OK);
    ck_assert_uint_eq(s.delivered, 5000);
    ck_assert_uint_eq(s.dropped, 0);
    drain(cons, 5000, in_order);
    ferry_close(cons);
    ferry_config_free(c);
}
END_TEST

START_TEST(test_spool_kept_across_close_and_reopen)
{
    struct ferry_conn *cons = consumer("again");
    broker(false);
    struct ferry_config *c = config(spool_cfg("destination = again"));
    struct ferry_logger *lg = open_logger(c);
    log_n(lg, 0, 300);
    struct ferry_logger_stats s;
    int64_t t0 = now_ms();
    ck_assert_int_eq(ferry_logger_close(lg, 100, &s), FERRY_E_TIMEOUT);
    ck_assert_msg(now_ms() - t0 < 2000, "close with the broker down overran its timeout");
    ck_assert_uint_eq(s.pending, 300);
    ck_assert_uint_eq(s.dropped, 0);
    broker(true);
    lg = open_logger(c);
    ferry_logger_stats(lg, &s);
    ck_assert_uint_eq(s.recovered, 300);
    log_n(lg, 300, 10);
    ck_assert_int_eq(ferry_logger_close(lg, 5000, &s), FERRY_OK);
    ck_assert_uint_eq(s.delivered, 310);
    drain(cons, 310, in_order);
    ferry_close(cons);
    ferry_config_free(c);
}
END_TEST

START_TEST(test_spill_writes_overflow_to_spool)
{
    struct ferry_conn *cons = consumer("spill");
    broker(false);
    struct ferry_config *c =
        config(spool_cfg("destination = spill\nqueue_size = 16\nfull_policy = spill"));
    struct ferry_logger *lg = open_logger(c);
    log_n(lg, 0, 3000); /* every call succeeds: overflow goes to disk */
    struct ferry_logger_stats s;
    ferry_logger_stats(lg, &s);
    ck_assert_uint_eq(s.dropped, 0);
    ck_assert_uint_eq(s.logged, 3000);
    broker(true);
    ck_assert_int_eq(ferry_logger_close(lg, 10000, &s), FERRY_OK);
    ck_assert_uint_eq(s.delivered, 3000);
    drain(cons, 3000, in_order);
    ferry_close(cons);
    ferry_config_free(c);
}
END_TEST

START_TEST(test_spool_full_drops_and_counts)
{
    broker(false);
    struct ferry_config *c = config(spool_cfg("destination = full\nspool_max = 1MiB\nqueue_size = "
                                              "256\nfull_policy = block\nblock_timeout = 10s"));
    struct ferry_logger *lg = open_logger(c);
    static char big[4000];
    memset(big, 'x', sizeof big - 1);
    for (int i = 0; i < 400; i++) /* ~1.6 MB of messages for a 1 MiB spool */
        ck_assert_int_eq(ferry_log(lg, FERRY_INFO, big, NULL), FERRY_OK);
    struct ferry_logger_stats s;
    ck_assert_int_eq(ferry_logger_close(lg, 100, &s), FERRY_E_TIMEOUT);
    ck_assert_uint_eq(s.logged, 400);
    ck_assert_msg(s.dropped > 100 && s.spooled < 300, "dropped=%llu spooled=%llu",
                  (unsigned long long)s.dropped, (unsigned long long)s.spooled);
    ck_assert_uint_eq(s.spooled + s.dropped, 400);
    ferry_config_free(c);
}
END_TEST

struct thr {
    struct ferry_logger *lg;
    int id, n;
};

static void *logging_thread(void *arg)
{
    struct thr *t = arg;
    for (int i = 0; i < t->n; i++) {
        char info[64];
        snprintf(info, sizeof info, "{\"t\":%d,\"n\":%d}", t->id, i);
        if (ferry_log(t->lg, FERRY_INFO, "threaded", info) != FERRY_OK)
            return (void *)1;
    }
    return NULL;
}

static int seen[8][20000];
static int last[8];

static void per_thread_order(const struct ferry_msg *m, int i)
{
    (void)i;
    cJSON *o = cJSON_ParseWithLength(m->body, m->body_len);
    const cJSON *inf = cJSON_GetObjectItem(o, "information");
    int t = cJSON_GetObjectItem(inf, "t")->valueint, n = cJSON_GetObjectItem(inf, "n")->valueint;
    cJSON_Delete(o);
    ck_assert(t >= 0 && t < 8 && n >= 0 && n < 20000);
    ck_assert_int_eq(seen[t][n]++, 0);
    ck_assert_int_eq(n, last[t]++); /* each thread's messages arrive in its order */
}

static void threads(const char *extra, const char *dest)
{
    struct ferry_conn *cons = consumer(dest);
    struct ferry_config *c = config(extra);
    struct ferry_logger *lg = open_logger(c);
    pthread_t th[8];
    struct thr a[8];
    for (int i = 0; i < 8; i++) {
        a[i] = (struct thr){lg, i, 20000};
        ck_assert_int_eq(pthread_create(&th[i], NULL, logging_thread, &a[i]), 0);
    }
    for (int i = 0; i < 8; i++) {
        void *r;
        pthread_join(th[i], &r);
        ck_assert_ptr_null(r);
    }
    struct ferry_logger_stats s;
    ck_assert_int_eq(ferry_logger_close(lg, 100000, &s), FERRY_OK); /* slow under TSan */
    ck_assert_uint_eq(s.delivered, 160000);
    memset(seen, 0, sizeof seen);
    memset(last, 0, sizeof last);
    drain(cons, 160000, per_thread_order);
    ferry_close(cons);
    ferry_config_free(c);
}

START_TEST(test_eight_threads_memory_queue)
{
    threads("destination = thr\nfull_policy = block\nblock_timeout = 30s\nqueue_size = 4096",
            "thr");
}
END_TEST

START_TEST(test_eight_threads_spool_and_spill)
{
    threads(spool_cfg("destination = thrs\nfull_policy = spill\nqueue_size = 256"), "thrs");
}
END_TEST

START_TEST(test_config_errors)
{
    char err[512];
    int st;
    struct ferry_config *c = config("full_policy = spill");
    ck_assert_ptr_null(ferry_logger_open_config(NULL, c, &st, err, sizeof err));
    ck_assert_int_eq(st, FERRY_E_CONFIG);
    ck_assert_msg(strstr(err, "spool_dir"), "%s", err);
    ferry_config_free(c);
    c = config("colour = blue");
    ck_assert_ptr_null(ferry_logger_open_config(NULL, c, &st, err, sizeof err));
    ck_assert_int_eq(st, FERRY_E_CONFIG);
    ck_assert_msg(strstr(err, "colour"), "%s", err);
    ferry_config_free(c);
    ck_assert_ptr_null(ferry_logger_open("x", "/nonexistent/ferry.conf", &st, err, sizeof err));
    ck_assert_int_eq(st, FERRY_E_CONFIG);
    ck_assert_int_eq(ferry_options_validate(ferry_logger_options, err, sizeof err), FERRY_OK);
}
END_TEST

START_TEST(test_spool_cuts_torn_tail_and_resumes_at_commit)
{
    char err[256], sd[300], path[400];
    uint64_t rec;
    snprintf(sd, sizeof sd, "%s/raw", dir);
    struct ferry_spool *s =
        ferry_spool_open(sd, 1 << 20, FERRY_SPOOL_FSYNC_ALWAYS, 1000, &rec, err, sizeof err);
    ck_assert_msg(s != NULL, "%s", err);
    ck_assert_uint_eq(rec, 0);
    for (int i = 0; i < 10; i++) {
        char b[16];
        snprintf(b, sizeof b, "m%d", i);
        ck_assert_int_eq(ferry_spool_append(s, "k", 1, b, strlen(b), err, sizeof err), 0);
    }
    ck_assert_int_eq(ferry_spool_sync(s, true, err, sizeof err), 0);
    const char *k, *b;
    size_t kl, bl;
    struct ferry_spool_pos pos;
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(ferry_spool_next(s, &k, &kl, &b, &bl, &pos, err, sizeof err), 1);
    ferry_spool_confirm(s, pos, 4, true);
    /* a second process cannot take the same spool */
    ck_assert_ptr_null(ferry_spool_open(sd, 1 << 20, 0, 1000, &rec, err, sizeof err));
    ferry_spool_close(s);
    /* a crash in the middle of a write leaves a torn record behind */
    snprintf(path, sizeof path, "%s/%016x.seg", sd, 1);
    FILE *f = fopen(path, "a");
    ck_assert_ptr_nonnull(f);
    fwrite("\x05\0\0\0\x40\0\0\0garbage", 1, 15, f);
    fclose(f);
    s = ferry_spool_open(sd, 1 << 20, FERRY_SPOOL_FSYNC_ALWAYS, 1000, &rec, err, sizeof err);
    ck_assert_msg(s != NULL, "%s", err);
    ck_assert_uint_eq(rec, 6);
    ck_assert_int_eq(ferry_spool_next(s, &k, &kl, &b, &bl, &pos, err, sizeof err), 1);
    ck_assert_int_eq((int)bl, 2);
    ck_assert(!memcmp(b, "m4", 2));
    ck_assert_int_eq(ferry_spool_append(s, "k", 1, "new", 3, err, sizeof err), 0);
    ck_assert_int_eq(ferry_spool_sync(s, true, err, sizeof err), 0);
    int more = 0;
    while (ferry_spool_next(s, &k, &kl, &b, &bl, &pos, err, sizeof err) == 1)
        more++;
    ck_assert_int_eq(more, 6); /* m5..m9 and the new one, nothing torn */
    ck_assert(!memcmp(b, "new", 3));
    ferry_spool_close(s);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("logger");
    TCase *t = tcase_create("logger");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_set_timeout(t, 300);
    tcase_add_test(t, test_envelope_fields_and_routing_key);
    tcase_add_test(t, test_logf_and_bad_information_delivered);
    tcase_add_test(t, test_minimum_level_discards_below);
    tcase_add_test(t, test_order_kept_single_thread);
    tcase_add_test(t, test_retries_lost_publishes_and_confirms);
    tcase_add_test(t, test_drop_newest_counts_and_close_reports_lost);
    tcase_add_test(t, test_block_waits_then_drops);
    tcase_add_test(t, test_block_resumes_when_broker_returns);
    tcase_add_test(t, test_spool_holds_outage_and_delivers_in_order);
    tcase_add_test(t, test_spool_kept_across_close_and_reopen);
    tcase_add_test(t, test_spill_writes_overflow_to_spool);
    tcase_add_test(t, test_spool_full_drops_and_counts);
    tcase_add_test(t, test_eight_threads_memory_queue);
    tcase_add_test(t, test_eight_threads_spool_and_spill);
    tcase_add_test(t, test_config_errors);
    tcase_add_test(t, test_spool_cuts_torn_tail_and_resumes_at_commit);
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
