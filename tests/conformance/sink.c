/* ferry-conformance --sink NAME: one case per capability a sink claims,
 * checked by reading back what landed (the sink's count operation, or
 * --verify-cmd printing the landed ids). A claim that cannot be checked
 * is reported and fails the run. */
#include "config.h"

#include "conformance.h"

#include <check.h>
#include <ferry/ferry.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static struct ferry_config *sk_cfg;
static const char *sk_name;
static const char *sk_verify_cmd;  /* prints every landed id, one per line */
static const char *sk_reject_body; /* a body the sink refuses for good */
static unsigned sk_seq;

static struct ferry_sink_conn *sk_open(void)
{
    char err[1024];
    int st;
    struct ferry_sink_conn *s = ferry_sink_open(sk_cfg, sk_name, "ferry-conformance", &st, err,
                                                sizeof err);
    ck_assert_msg(s != NULL, "cannot open sink %s: %s", sk_name, err);
    return s;
}

/* n records with fresh ids and envelope bodies; freed with batch_free(). */
struct batch {
    size_t n;
    char (*ids)[96];
    char (*bodies)[256];
    struct ferry_msg *msgs;
    struct ferry_sink_record *recs;
};

static void batch_make(struct batch *b, size_t n, const char *what)
{
    b->n = n;
    b->ids = calloc(n, sizeof *b->ids); /* all freed in batch_free() */
    b->bodies = calloc(n, sizeof *b->bodies);
    b->msgs = calloc(n, sizeof *b->msgs);
    b->recs = calloc(n, sizeof *b->recs);
    ck_assert(b->ids && b->bodies && b->msgs && b->recs);
    unsigned run = ++sk_seq;
    for (size_t i = 0; i < n; i++) {
        snprintf(b->ids[i], sizeof b->ids[i], "conf-%s-%d-%ld-%u-%zu", what, (int)getpid(),
                 (long)time(NULL), run, i);
        int len = snprintf(b->bodies[i], sizeof b->bodies[i],
                           "{\"id\":\"%s\",\"service\":\"conformance\",\"level\":\"INFO\","
                           "\"message\":\"record %zu\",\"timestamp\":\"2026-12-02T10:00:00.000Z\"}",
                           b->ids[i], i);
        b->msgs[i] = (struct ferry_msg){.dest = "conformance", .key = "conformance.info",
                                        .key_len = 16, .body = b->bodies[i],
                                        .body_len = (size_t)len};
        b->recs[i] = (struct ferry_sink_record){.msg = &b->msgs[i], .id = b->ids[i],
                                                .received_ms = (int64_t)time(NULL) * 1000};
    }
}

static void batch_free(struct batch *b)
{
    free(b->ids);
    free(b->bodies);
    free(b->msgs);
    free(b->recs);
}

/* How many records with id have landed, by the sink's count or the
 * --verify-cmd output. */
static uint64_t landed(struct ferry_sink_conn *s, const char *id)
{
    uint64_t n = 0;
    if (s && ferry_sink_can_count(s)) {
        int st = ferry_sink_count(s, id, &n);
        if (st != FERRY_E_NOTSUP) {
            ck_assert_msg(st == FERRY_OK, "count failed: %s", ferry_sink_error(s));
            return n;
        }
    }
    ck_assert_msg(sk_verify_cmd != NULL, "no way to read back");
    FILE *p = popen(sk_verify_cmd, "r");
    ck_assert_msg(p != NULL, "cannot run %s", sk_verify_cmd);
    char line[512];
    while (fgets(line, sizeof line, p)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (!strcmp(line, id))
            n++;
    }
    ck_assert_msg(pclose(p) == 0, "--verify-cmd failed: %s", sk_verify_cmd);
    return n;
}

static void commit_ok(struct ferry_sink_conn *s, struct batch *b)
{
    int st = ferry_sink_write(s, b->recs, b->n);
    ck_assert_msg(st == FERRY_OK, "write: %s (%s)", ferry_strerror(st), ferry_sink_error(s));
    st = ferry_sink_commit(s);
    ck_assert_msg(st == FERRY_OK, "commit: %s (%s)", ferry_strerror(st), ferry_sink_error(s));
}

START_TEST(test_sink_batch_lands_once)
{
    struct ferry_sink_conn *s = sk_open();
    struct batch b;
    batch_make(&b, 20, "lands");
    commit_ok(s, &b);
    for (size_t i = 0; i < b.n; i++) {
        ck_assert_msg(b.recs[i].status == FERRY_OK, "record %zu refused: %s", i,
                      b.recs[i].reason ? b.recs[i].reason : "");
        uint64_t n = landed(s, b.ids[i]);
        ck_assert_msg(n == 1, "id %s landed %" PRIu64 " times, want 1", b.ids[i], n);
    }
    batch_free(&b);
    ferry_sink_close(s);
}
END_TEST

START_TEST(test_sink_idempotent_batch_written_twice_lands_once)
{
    struct ferry_sink_conn *s = sk_open();
    struct batch b;
    batch_make(&b, 20, "twice");
    commit_ok(s, &b);
    commit_ok(s, &b); /* a redelivery: the same ids again */
    for (size_t i = 0; i < b.n; i++) {
        uint64_t n = landed(s, b.ids[i]);
        ck_assert_msg(n == 1, "idempotent: id %s landed %" PRIu64 " times after two writes",
                      b.ids[i], n);
    }
    batch_free(&b);
    ferry_sink_close(s);
    /* and across a new handle, as after a crash */
    s = sk_open();
    batch_make(&b, 5, "twice-reopen");
    commit_ok(s, &b);
    ferry_sink_close(s);
    s = sk_open();
    commit_ok(s, &b);
    for (size_t i = 0; i < b.n; i++)
        ck_assert_msg(landed(s, b.ids[i]) == 1,
                      "idempotent: id %s landed twice when written again by a new handle",
                      b.ids[i]);
    batch_free(&b);
    ferry_sink_close(s);
}
END_TEST

START_TEST(test_sink_transactional_abort_lands_nothing)
{
    struct ferry_sink_conn *s = sk_open();
    struct batch b;
    batch_make(&b, 20, "abort");
    int st = ferry_sink_write(s, b.recs, b.n);
    ck_assert_msg(st == FERRY_OK, "write: %s", ferry_sink_error(s));
    ferry_sink_abort(s);
    for (size_t i = 0; i < b.n; i++) {
        uint64_t n = landed(s, b.ids[i]);
        ck_assert_msg(n == 0, "transactional: id %s landed %" PRIu64 " times after abort",
                      b.ids[i], n);
    }
    commit_ok(s, &b); /* the same batch written again after the abort lands */
    for (size_t i = 0; i < b.n; i++)
        ck_assert_msg(landed(s, b.ids[i]) == 1, "id %s did not land after abort and rewrite",
                      b.ids[i]);
    batch_free(&b);
    ferry_sink_close(s);
}
END_TEST

START_TEST(test_sink_durable_survives_close_and_reopen)
{
    struct ferry_sink_conn *s = sk_open();
    struct batch b;
    batch_make(&b, 20, "durable");
    commit_ok(s, &b);
    ferry_sink_close(s);
    s = sk_open();
    for (size_t i = 0; i < b.n; i++)
        ck_assert_msg(landed(s, b.ids[i]) == 1, "durable: id %s gone after close and reopen",
                      b.ids[i]);
    batch_free(&b);
    ferry_sink_close(s);
}
END_TEST

START_TEST(test_sink_per_record_refusal_reported)
{
    struct ferry_sink_conn *s = sk_open();
    struct batch b;
    batch_make(&b, 3, "per-record");
    b.msgs[1].body = sk_reject_body;
    b.msgs[1].body_len = strlen(sk_reject_body);
    commit_ok(s, &b);
    ck_assert_msg(b.recs[1].status == FERRY_E_REJECTED,
                  "per-record: the refused body was not reported (status %d)", b.recs[1].status);
    ck_assert_msg(b.recs[1].reason && *b.recs[1].reason, "per-record: refusal without a reason");
    ck_assert_msg(b.recs[0].status == FERRY_OK && b.recs[2].status == FERRY_OK,
                  "per-record: the good records of the batch were refused too");
    ck_assert_msg(landed(s, b.ids[0]) == 1 && landed(s, b.ids[2]) == 1,
                  "per-record: the good records did not land");
    ck_assert_msg(landed(s, b.ids[1]) == 0, "per-record: the refused record landed");
    batch_free(&b);
    ferry_sink_close(s);
}
END_TEST

START_TEST(test_sink_health_connected_and_counts)
{
    struct ferry_sink_conn *s = sk_open();
    struct ferry_sink_health h;
    ck_assert_int_eq(ferry_sink_health(s, &h), FERRY_OK);
    ck_assert_msg(h.state == FERRY_HEALTH_CONNECTED, "health after open: state %d (%s)",
                  (int)h.state, h.reason);
    uint64_t before = h.committed;
    struct batch b;
    batch_make(&b, 7, "health");
    commit_ok(s, &b);
    ck_assert_int_eq(ferry_sink_health(s, &h), FERRY_OK);
    ck_assert_msg(h.state == FERRY_HEALTH_CONNECTED, "health after commit: %s", h.reason);
    ck_assert_msg(h.committed - before == 7, "health: committed grew by %" PRIu64 ", want 7",
                  h.committed - before);
    batch_free(&b);
    ferry_sink_close(s);
}
END_TEST

int sink_conformance(const char *name, struct ferry_config *cfg, const char *verify_cmd,
                     const char *reject_body, double scale)
{
    sk_cfg = cfg;
    sk_name = name;
    sk_verify_cmd = verify_cmd;
    sk_reject_body = reject_body;
    char err[1024];
    int st;
    struct ferry_sink_conn *probe = ferry_sink_open(cfg, name, "ferry-conformance", &st, err,
                                                    sizeof err);
    if (!probe) {
        fprintf(stderr, "ferry-conformance: cannot open sink %s: %s\n", name, err);
        return ferry_status_retriable(st) ? 69 : 78;
    }
    uint32_t caps = probe->caps;
    bool readback = ferry_sink_can_count(probe) || verify_cmd;
    if (ferry_sink_can_count(probe) && !verify_cmd) {
        uint64_t n;
        readback = ferry_sink_count(probe, "ferry-conformance-probe", &n) == FERRY_OK;
    }
    char sname[64], capn[160];
    snprintf(sname, sizeof sname, "%s", probe->sink->name);
    fprintf(stderr, "conformance[sink %s]: capabilities %s; read back: %s\n", sname,
            ferry_sink_caps_str(caps, capn, sizeof capn),
            !readback ? "none" : verify_cmd ? "--verify-cmd" : "count operation");
    ferry_sink_close(probe);

    Suite *su = suite_create(sname);
    TCase *tc = tcase_create("sink");
    tcase_set_timeout(tc, 120 * scale);
    struct {
        const char *what;
        uint32_t need;
        const TTest *t;
        bool readback, reject_body;
    } cases[] = {
        {"health", 0, test_sink_health_connected_and_counts, false, false},
        {"a batch lands", 0, test_sink_batch_lands_once, true, false},
        {"idempotent", FERRY_SINK_CAP_IDEMPOTENT, test_sink_idempotent_batch_written_twice_lands_once,
         true, false},
        {"transactional", FERRY_SINK_CAP_TRANSACTIONAL, test_sink_transactional_abort_lands_nothing,
         true, false},
        {"durable", FERRY_SINK_CAP_DURABLE, test_sink_durable_survives_close_and_reopen, true,
         false},
        {"per-record", FERRY_SINK_CAP_PER_RECORD, test_sink_per_record_refusal_reported, true,
         true},
    };
    int unverified = 0;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        bool claimed = cases[i].need && (caps & cases[i].need);
        if (cases[i].need && !claimed) {
            fprintf(stderr, "conformance[sink %s]: not run: %s (not claimed)\n", sname,
                    cases[i].what);
            continue;
        }
        const char *why = cases[i].readback && !readback
                              ? "no read-back: the sink has no count operation; give --verify-cmd"
                          : cases[i].reject_body && !reject_body
                              ? "no --reject-body BODY that the sink refuses"
                              : NULL;
        if (why) {
            fprintf(stderr, "conformance[sink %s]: %s: %s (%s)\n", sname,
                    claimed ? "CLAIM NOT VERIFIED" : "not run", cases[i].what, why);
            unverified += claimed;
            continue;
        }
        tcase_add_test(tc, cases[i].t);
    }
    suite_add_tcase(su, tc);
    SRunner *sr = srunner_create(su);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    if (unverified)
        fprintf(stderr, "conformance[sink %s]: %d claimed capabilit%s not verified\n", sname,
                unverified, unverified == 1 ? "y" : "ies");
    return failed || unverified ? 1 : 0;
}
