/* The consume loop (core/app/consume.c) over the loopback broker into the
 * file sink: group commit (the next batch is received while the sink
 * commits the current one) and its promise, no ack before the commit. */
#include "config.h"
#include "app.h"

#include <ferry/ferry.h>
#include <ferry/sink.h>

#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define N 3000
#define BATCH 500
#define MAX_COMMITS 64

/* What the loop had done when each commit began and ended, and received
 * when the batch was handled (the commit's thread may start late). The
 * loop does not change acked or written while a commit runs (settling
 * follows it); received grows meanwhile, so it is read atomically. */
static struct {
    struct consume *c;
    int (*commit)(struct ferry_sink_conn *s); /* the file sink's own */
    size_t n;
    uint64_t acked_at_start[MAX_COMMITS], written_at_start[MAX_COMMITS];
    uint64_t received_at_handle, received_at_start[MAX_COMMITS], received_at_end[MAX_COMMITS];
    size_t handled, largest_later; /* batches handled; the largest after the first */
} rec;

/* The file sink's commit, made slow (a slow fsync) and watched. */
static int slow_commit(struct ferry_sink_conn *s)
{
    size_t k = rec.n < MAX_COMMITS ? rec.n++ : MAX_COMMITS - 1;
    rec.acked_at_start[k] = rec.c->acked;
    rec.written_at_start[k] = rec.c->written;
    rec.received_at_start[k] = rec.received_at_handle;
    usleep(100 * 1000);
    rec.received_at_end[k] = __atomic_load_n(&rec.c->received, __ATOMIC_RELAXED);
    return rec.commit(s);
}

/* Every message to the sink, its body as its id. */
static int write_all(void *ctx, struct consume_item *items, size_t n)
{
    (void)ctx;
    rec.received_at_handle = rec.c->received;
    if (rec.handled++ && n > rec.largest_later)
        rec.largest_later = n;
    for (size_t i = 0; i < n; i++) {
        struct consume_item *x = &items[i];
        const struct ferry_msg *m = x->it.msg;
        snprintf(x->id, sizeof x->id, "%.*s", (int)m->body_len, (const char *)m->body);
        x->rec.id = x->id;
        x->rec.received_ms = ferry_time_ms();
        x->verdict = CONSUME_WRITE;
    }
    return FERRY_OK;
}

/* N messages through the loop with batch BATCH and batch_bytes as given,
 * checked as the group commit promises. */
static void run_group_commit(int64_t batch_bytes)
{
    memset(&rec, 0, sizeof rec);
    char err[512], out[256], text[1024], dest[64];
    snprintf(out, sizeof out, "check_consume.%d.out", (int)getpid());
    snprintf(dest, sizeof dest, "gc.%d", (int)getpid());
    unlink(out);
    snprintf(text, sizeof text,
             "[transport]\nplugin = loopback\n[loopback]\n[file]\noutput = %s\nfsync = true\n",
             out);
    struct ferry_config *cfg = ferry_config_new(); /* freed below */
    ck_assert_int_eq(ferry_config_load_string(cfg, "t", text, err, sizeof err), FERRY_OK);
    int st;
    struct ferry_conn *pub = ferry_open(cfg, "check_consume", &st, err, sizeof err);
    struct ferry_conn *in = ferry_open(cfg, "check_consume", &st, err, sizeof err);
    ck_assert_msg(pub && in, "%s", err);
    ck_assert_int_eq(ferry_subscribe(in, dest, "g"), FERRY_OK);
    for (int i = 0; i < N; i++) {
        char body[32];
        snprintf(body, sizeof body, "m%05d", i);
        struct ferry_msg m = {.dest = dest, .body = body, .body_len = strlen(body)};
        ck_assert_int_eq(ferry_publish(pub, &m), FERRY_OK);
    }
    ck_assert_int_eq(ferry_flush(pub, 5000), FERRY_OK);

    struct ferry_sink_conn *sink =
        ferry_sink_open(cfg, "file", "check_consume", &st, err, sizeof err); /* closed below */
    ck_assert_msg(sink != NULL, "%s", err);
    static struct ferry_sink desc;
    static struct ferry_sink_ops ops;
    desc = *sink->sink;
    ops = *desc.ops;
    rec.commit = ops.commit;
    ops.commit = slow_commit;
    desc.ops = &ops;
    sink->sink = &desc;

    static const struct app_spec spec = {.prog = "check_consume"};
    static volatile sig_atomic_t stop, hup;
    struct app a = {.spec = &spec, .log_level = FERRY_LOG_WARN, .stop = &stop, .hup = &hup};
    struct consume c = {.app = &a,
                        .in = in,
                        .sink = sink,
                        .retry_in_place = true,
                        .batch = BATCH,
                        .batch_bytes = batch_bytes,
                        .batch_wait = 200,
                        .count = N,
                        .backoff_min = 10,
                        .backoff_max = 100,
                        .handle = write_all};
    rec.c = &c;
    ck_assert_int_eq(consume_init(&c), 0);
    ck_assert_int_eq(consume_run(&c), 0);
    ck_assert_uint_eq(c.written, N);
    ck_assert_uint_eq(c.acked, N);
    ck_assert_uint_ge(rec.n, N / BATCH);
    bool overlapped = false;
    for (size_t k = 0; k < rec.n; k++) {
        /* everything committed before was acked, nothing of this batch yet */
        ck_assert_uint_eq(rec.acked_at_start[k], rec.written_at_start[k]);
        if (rec.received_at_end[k] > rec.received_at_start[k])
            overlapped = true;
    }
    ck_assert_msg(overlapped, "no message was received while the sink committed");
    consume_fini(&c);
    ferry_sink_close(sink);

    FILE *f = fopen(out, "r");
    ck_assert_ptr_nonnull(f);
    char line[64];
    int lines = 0;
    while (fgets(line, sizeof line, f)) {
        char want[32];
        snprintf(want, sizeof want, "m%05d\n", lines);
        ck_assert_str_eq(line, want);
        lines++;
    }
    fclose(f);
    ck_assert_int_eq(lines, N);
    unlink(out);
    ferry_close(pub);
    ferry_close(in);
    ferry_config_free(cfg);
}

START_TEST(test_group_commit_receives_while_the_sink_commits)
{
    run_group_commit(0);
    /* unbounded by bytes, a 100 ms commit lets a whole batch arrive */
    ck_assert_uint_eq(rec.largest_later, BATCH);
}
END_TEST

/* 6-byte bodies, batch_bytes 600: the receive made during a commit stops
 * after its first step (256 messages, 1,536 bytes), not at BATCH. */
START_TEST(test_batch_bytes_bounds_the_next_batch)
{
    run_group_commit(600);
    ck_assert_uint_gt(rec.largest_later, 0);
    ck_assert_uint_le(rec.largest_later, 256);
    ck_assert_uint_ge(rec.handled, N / 256);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("consume");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_group_commit_receives_while_the_sink_commits);
    tcase_add_test(tc, test_batch_bytes_bounds_the_next_batch);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
