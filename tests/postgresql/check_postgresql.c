/* The postgresql sink against a real PostgreSQL server: the plugin's source
 * is compiled in (no loader), the server comes from tests/brokers/pg-node.sh
 * through sink.test, which sets FERRY_TEST_PG_CONNINFO and FERRY_TEST_PG_NODE. */
#include "../../plugins/sinks/postgresql/postgresql.c"

#include <ferry/ferry.h>

#include <check.h>
#include <stdio.h>

static const char *conninfo;

/* An open sink on `table` with extra INI lines for [postgresql]. */
struct tsink {
    struct ferry_sink_conn s;
    struct fpg_cfg cfg;
    int st;
};

static struct tsink *tsink_open(const char *extra)
{
    struct tsink *t = calloc(1, sizeof *t);
    ck_assert_ptr_nonnull(t);
    char ini[2048], err[512];
    snprintf(ini, sizeof ini, "[postgresql]\nconninfo = %s\n%s\n", conninfo, extra ? extra : "");
    struct ferry_config *cfg = ferry_config_new();
    ck_assert_int_eq(ferry_config_load_string(cfg, "test.conf", ini, err, sizeof err), FERRY_OK);
    ck_assert_msg(ferry_config_bind(cfg, "postgresql", fpg_options, &t->cfg, NULL, NULL, err,
                                    sizeof err) == FERRY_OK,
                  "%s", err);
    ferry_config_free(cfg);
    t->s.size = sizeof t->s;
    t->s.sink = &ferry_sink_descriptor;
    t->s.cfg = &t->cfg;
    t->s.client_id = "check_postgresql";
    t->s.caps = ferry_sink_descriptor.caps;
    t->st = ferry_sink_descriptor.ops->open(&t->s);
    return t;
}

static void tsink_close(struct tsink *t)
{
    if (t->st == FERRY_OK)
        ferry_sink_descriptor.ops->close(&t->s);
    ferry_options_free(fpg_options, &t->cfg);
    free(t);
}

static PGconn *db(void)
{
    PGconn *c = PQconnectdb(conninfo);
    ck_assert_msg(PQstatus(c) == CONNECTION_OK, "%s", PQerrorMessage(c));
    return c;
}

/* The single value of a query, as text ("" for NULL); caller frees. */
static char *q1(const char *sql)
{
    PGconn *c = db();
    PGresult *r = PQexec(c, sql);
    ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "%s: %s", sql, PQerrorMessage(c));
    ck_assert_int_eq(PQntuples(r), 1);
    char *v = strdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    PQfinish(c);
    return v;
}

static long qn(const char *sql)
{
    char *v = q1(sql);
    long n = strtol(v, NULL, 10);
    free(v);
    return n;
}

static void run(const char *sql)
{
    PGconn *c = db();
    PGresult *r = PQexec(c, sql);
    ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK, "%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
}

struct tmsg {
    struct ferry_msg m;
    struct ferry_header h[2];
};

static void tmsg_set(struct tmsg *t, const char *dest, const char *key, const void *body,
                     size_t len)
{
    memset(t, 0, sizeof *t);
    t->m.dest = dest;
    t->m.key = key;
    t->m.key_len = key ? strlen(key) : 0;
    t->m.body = body;
    t->m.body_len = len;
}

static void rec_set(struct ferry_sink_record *r, const struct tmsg *m, const char *id)
{
    memset(r, 0, sizeof *r);
    r->size = sizeof *r;
    r->msg = &m->m;
    r->id = id;
    r->received_ms = 1764669600000; /* 2025-12-02T10:00:00Z */
}

static int batch(struct tsink *t, struct ferry_sink_record *recs, size_t n)
{
    int st = ferry_sink_descriptor.ops->write(&t->s, recs, n);
    if (st != FERRY_OK)
        return st;
    st = ferry_sink_descriptor.ops->commit(&t->s);
    if (st != FERRY_OK)
        ferry_sink_descriptor.ops->abort(&t->s);
    return st;
}

static int pg_node(const char *cmd)
{
    char sh[1024];
    snprintf(sh, sizeof sh, "\"%s\" %s >/dev/null", getenv("FERRY_TEST_PG_NODE"), cmd);
    return system(sh);
}

START_TEST(test_batch_lands_with_layout)
{
    struct tsink *t = tsink_open("table = t_layout");
    ck_assert_msg(t->st == FERRY_OK, "%s", t->s.err);
    struct tmsg m[2];
    struct ferry_sink_record r[2];
    tmsg_set(&m[0], "logs", "auth.ERROR", "{\"id\":\"a1\",\"message\":\"disk\\tfull\\\\\"}", 36);
    m[0].h[0] = (struct ferry_header){"x-trace", "t\"1\\", 4};
    m[0].m.headers = m[0].h;
    m[0].m.n_headers = 1;
    tmsg_set(&m[1], "logs", NULL, "[1,2]", 5);
    rec_set(&r[0], &m[0], "a1");
    rec_set(&r[1], &m[1], "a2");
    ck_assert_int_eq(batch(t, r, 2), FERRY_OK);
    ck_assert_int_eq(r[0].status, FERRY_OK);
    ck_assert_int_eq(qn("SELECT count(*) FROM t_layout"), 2);
    char *v = q1("SELECT body->>'message' || '|' || destination || '|' || routing_key || '|' || "
                 "(headers->>'x-trace') || '|' || received_at AT TIME ZONE 'UTC' "
                 "FROM t_layout WHERE id = 'a1'");
    ck_assert_str_eq(v, "disk\tfull\\|logs|auth.ERROR|t\"1\\|2025-12-02 10:00:00");
    free(v);
    v = q1(
        "SELECT coalesce(routing_key, 'NULL') || jsonb_typeof(body) FROM t_layout WHERE id = 'a2'");
    ck_assert_str_eq(v, "NULLarray");
    free(v);
    struct ferry_sink_health h = {.size = sizeof h};
    ferry_sink_descriptor.ops->health(&t->s, &h);
    ck_assert_int_eq(h.state, FERRY_HEALTH_CONNECTED);
    ck_assert_uint_eq(h.committed, 2);
    tsink_close(t);
}
END_TEST

START_TEST(test_same_batch_twice_lands_once)
{
    struct tsink *t = tsink_open("table = t_twice");
    ck_assert_msg(t->st == FERRY_OK, "%s", t->s.err);
    struct tmsg m[3];
    struct ferry_sink_record r[3];
    static const char *ids[] = {"d1", "d2", "d1"}; /* a duplicate inside the batch too */
    for (int i = 0; i < 3; i++) {
        tmsg_set(&m[i], "logs", "k", "{}", 2);
        rec_set(&r[i], &m[i], ids[i]);
    }
    ck_assert_int_eq(batch(t, r, 3), FERRY_OK);
    ck_assert_int_eq(batch(t, r, 3), FERRY_OK);
    for (int i = 0; i < 3; i++) /* skipped, not refused */
        ck_assert_msg(r[i].status == FERRY_OK, "record %d: %s", i, r[i].reason ? r[i].reason : "");
    ck_assert_int_eq(qn("SELECT count(*) FROM t_twice"), 2);
    struct ferry_sink_health h = {.size = sizeof h};
    ferry_sink_descriptor.ops->health(&t->s, &h);
    ck_assert_uint_eq(h.committed, 2); /* the skipped duplicates do not count */
    uint64_t c = 9;
    ck_assert_int_eq(ferry_sink_descriptor.ops->count(&t->s, "d1", &c), FERRY_OK);
    ck_assert_uint_eq(c, 1);
    ck_assert_int_eq(ferry_sink_descriptor.ops->count(&t->s, "nope", &c), FERRY_OK);
    ck_assert_uint_eq(c, 0);
    tsink_close(t);
}
END_TEST

START_TEST(test_abort_lands_nothing)
{
    struct tsink *t = tsink_open("table = t_abort");
    ck_assert_msg(t->st == FERRY_OK, "%s", t->s.err);
    struct tmsg m;
    struct ferry_sink_record r;
    tmsg_set(&m, "logs", "k", "{}", 2);
    rec_set(&r, &m, "x1");
    ck_assert_int_eq(ferry_sink_descriptor.ops->write(&t->s, &r, 1), FERRY_OK);
    ferry_sink_descriptor.ops->abort(&t->s);
    ck_assert_int_eq(qn("SELECT count(*) FROM t_abort"), 0);
    /* and the handle still works */
    ck_assert_int_eq(batch(t, &r, 1), FERRY_OK);
    ck_assert_int_eq(qn("SELECT count(*) FROM t_abort"), 1);
    tsink_close(t);
}
END_TEST

START_TEST(test_bodies_jsonb_refuses_are_kept)
{
    struct tsink *t = tsink_open("table = t_nonjson");
    ck_assert_msg(t->st == FERRY_OK, "%s", t->s.err);
    static const char *const bodies[] = {
        "plain text line",              /* not JSON -> body_text */
        "{\"m\":\"nul \\u0000 here\"}", /* \u0000: jsonb refuses -> body_text */
        "\xff\xfe not utf-8",           /* -> body_raw */
        "{\"m\":\"\\ud800\"}",          /* lone surrogate -> body_text */
        "{\"ok\":true}",                /* JSON -> body */
    };
    struct tmsg m[6];
    struct ferry_sink_record r[6];
    char ids[6][8];
    for (int i = 0; i < 5; i++) {
        snprintf(ids[i], sizeof ids[i], "n%d", i);
        tmsg_set(&m[i], "logs", "k", bodies[i], strlen(bodies[i]));
        rec_set(&r[i], &m[i], ids[i]);
    }
    tmsg_set(&m[5], "logs", "k", "a\0b", 3); /* a NUL byte -> body_raw */
    rec_set(&r[5], &m[5], "n5");
    ck_assert_int_eq(batch(t, r, 6), FERRY_OK);
    for (int i = 0; i < 6; i++)
        ck_assert_int_eq(r[i].status, FERRY_OK);
    ck_assert_int_eq(qn("SELECT count(*) FROM t_nonjson"), 6);
    ck_assert_int_eq(qn("SELECT count(*) FROM t_nonjson WHERE body IS NOT NULL"), 1);
    ck_assert_int_eq(
        qn("SELECT count(*) FROM t_nonjson WHERE num_nonnulls(body, body_text, body_raw) = 1"), 6);
    char *v = q1("SELECT string_agg(id || '=' || body_text, ',' ORDER BY id) FROM t_nonjson "
                 "WHERE body_text IS NOT NULL");
    ck_assert_str_eq(v,
                     "n0=plain text line,n1={\"m\":\"nul \\u0000 here\"},n3={\"m\":\"\\ud800\"}");
    free(v);
    v = q1("SELECT string_agg(encode(body_raw, 'hex'), ',' ORDER BY id) FROM t_nonjson "
           "WHERE body_raw IS NOT NULL");
    ck_assert_str_eq(v, "fffe206e6f74207574662d38,610062");
    free(v);
    tsink_close(t);
}
END_TEST

START_TEST(test_mapped_columns_and_refused_rows)
{
    struct tsink *t = tsink_open("table = t_map\n"
                                 "columns = service:text, level:varchar(5), timestamp:timestamptz, "
                                 "information:jsonb");
    ck_assert_msg(t->st == FERRY_OK, "%s", t->s.err);
    static const char *const bodies[] = {
        "{\"service\":\"auth\",\"level\":\"ERROR\",\"timestamp\":\"2026-12-02T10:00:00.000Z\","
        "\"information\":{\"a\":1}}",
        "{\"service\":\"auth\",\"level\":\"CRITICAL\",\"timestamp\":\"2026-12-02T10:00:00.000Z\"}",
        "{\"service\":\"db\",\"level\":\"INFO\",\"timestamp\":\"not a time\"}",
        "42", /* JSON but not an object: mapped columns stay NULL */
        "not json",
    };
    struct tmsg m[5];
    struct ferry_sink_record r[5];
    char ids[5][8];
    for (int i = 0; i < 5; i++) {
        snprintf(ids[i], sizeof ids[i], "m%d", i);
        tmsg_set(&m[i], "logs", "k", bodies[i], strlen(bodies[i]));
        rec_set(&r[i], &m[i], ids[i]);
    }
    ck_assert_int_eq(batch(t, r, 5), FERRY_OK);
    ck_assert_int_eq(r[0].status, FERRY_OK);
    ck_assert_int_eq(r[1].status, FERRY_E_REJECTED);
    ck_assert_msg(strstr(r[1].reason, "value too long for type character varying(5)"), "%s",
                  r[1].reason);
    ck_assert_int_eq(r[2].status, FERRY_E_REJECTED);
    ck_assert_msg(strstr(r[2].reason, "invalid input syntax for type timestamp with time zone"),
                  "%s", r[2].reason);
    ck_assert_int_eq(r[3].status, FERRY_OK);
    ck_assert_int_eq(r[4].status, FERRY_OK);
    char *v =
        q1("SELECT string_agg(id || ':' || coalesce(service, '-') || ':' || "
           "coalesce(level, '-') || ':' || coalesce((timestamp AT TIME ZONE 'UTC')::text, '-') "
           "|| ':' || coalesce(information::text, '-'), ',' ORDER BY id) FROM t_map");
    ck_assert_str_eq(v, "m0:auth:ERROR:2026-12-02 10:00:00:{\"a\": 1},m3:-:-:-:-,m4:-:-:-:-");
    free(v);
    struct ferry_sink_health h = {.size = sizeof h};
    ferry_sink_descriptor.ops->health(&t->s, &h);
    ck_assert_uint_eq(h.committed, 3);
    ck_assert_uint_eq(h.rejected, 2);
    /* the refused rows were not stored: a second run of the good ones adds nothing */
    ck_assert_int_eq(qn("SELECT count(*) FROM t_map"), 3);
    tsink_close(t);
}
END_TEST

START_TEST(test_records_without_id_each_get_a_row)
{
    struct tsink *t = tsink_open("table = t_noid");
    ck_assert_msg(t->st == FERRY_OK, "%s", t->s.err);
    struct tmsg m[2];
    struct ferry_sink_record r[2];
    for (int i = 0; i < 2; i++) {
        tmsg_set(&m[i], "logs", "k", "{\"same\":1}", 10);
        rec_set(&r[i], &m[i], NULL);
    }
    ck_assert_int_eq(batch(t, r, 2), FERRY_OK);
    ck_assert_int_eq(qn("SELECT count(DISTINCT id) FROM t_noid WHERE id LIKE 'noid-%'"), 2);
    tsink_close(t);
}
END_TEST

START_TEST(test_refused_login_is_config_without_password)
{
    char ci[512];
    snprintf(ci, sizeof ci, "%s", conninfo);
    const char *saved = conninfo;
    char bad[600];
    /* the last user= wins */
    snprintf(bad, sizeof bad, "%s user=nosuchrole password=hunter2", ci);
    conninfo = bad;
    struct tsink *t = tsink_open(NULL);
    conninfo = saved;
    ck_assert_int_eq(t->st, FERRY_E_CONFIG);
    ck_assert_msg(strstr(t->s.err, "role \"nosuchrole\" does not exist"), "%s", t->s.err);
    ck_assert_msg(!strstr(t->s.err, "hunter2"), "%s", t->s.err);
    tsink_close(t);
}
END_TEST

START_TEST(test_bad_conninfo_is_config_and_redacted)
{
    const char *saved = conninfo;
    conninfo = "host=127.0.0.1 password=hunter2 nosuchkey=1";
    struct tsink *t = tsink_open(NULL);
    conninfo = saved;
    ck_assert_int_eq(t->st, FERRY_E_CONFIG);
    ck_assert_msg(!strstr(t->s.err, "hunter2"), "%s", t->s.err);
    tsink_close(t);
    char text[64] = "x password=hunter2 y postgresql://u:pw@h/db";
    fpg_redact(text, sizeof text);
    ck_assert_str_eq(text, "x password=(redacted) y postgresql://u:(redacted)@h/db");
    char tight[24] = "password='a b c' tail";
    fpg_redact(tight, sizeof tight);
    ck_assert_str_eq(tight, "password=(redacted) tai");
}
END_TEST

START_TEST(test_unreachable_is_noconn)
{
    const char *saved = conninfo;
    /* a port nobody listens on: bind one, learn it, close it */
    conninfo = "host=127.0.0.1 port=1 user=ferry dbname=postgres";
    struct tsink *t = tsink_open("connect_timeout = 1s");
    conninfo = saved;
    ck_assert_int_eq(t->st, FERRY_E_NOCONN);
    ck_assert_msg(strstr(t->s.err, "connect"), "%s", t->s.err);
    tsink_close(t);
}
END_TEST

START_TEST(test_missing_table_without_create_is_config)
{
    struct tsink *t = tsink_open("table = t_absent\ncreate_table = false");
    ck_assert_int_eq(t->st, FERRY_E_CONFIG);
    ck_assert_msg(strstr(t->s.err, "t_absent"), "%s", t->s.err);
    tsink_close(t);
    t = tsink_open("table = t_badcols\ncolumns = level");
    ck_assert_int_eq(t->st, FERRY_E_CONFIG);
    tsink_close(t);
    t = tsink_open("table = t_badcols\ncolumns = level:text; drop table x");
    ck_assert_int_eq(t->st, FERRY_E_CONFIG);
    tsink_close(t);
}
END_TEST

START_TEST(test_server_restart_reconnects)
{
    struct tsink *t = tsink_open("table = t_restart\nreconnect_min = 10ms\nreconnect_max = 200ms");
    ck_assert_msg(t->st == FERRY_OK, "%s", t->s.err);
    struct tmsg m;
    struct ferry_sink_record r;
    tmsg_set(&m, "logs", "k", "{}", 2);
    rec_set(&r, &m, "r1");
    ck_assert_int_eq(batch(t, &r, 1), FERRY_OK);
    ck_assert_int_eq(pg_node("halt"), 0);
    rec_set(&r, &m, "r2");
    int st = batch(t, &r, 1);
    ck_assert_msg(st == FERRY_E_NOCONN, "status %d: %s", st, t->s.err);
    struct ferry_sink_health h = {.size = sizeof h};
    ferry_sink_descriptor.ops->health(&t->s, &h);
    ck_assert_int_eq(h.state, FERRY_HEALTH_CONNECTING);
    ck_assert_str_ne(h.reason, "");
    st = batch(t, &r, 1);
    ck_assert_msg(st == FERRY_E_NOCONN, "status %d: %s", st, t->s.err);
    ck_assert_int_eq(pg_node("start"), 0);
    for (int i = 0; i < 200 && (st = batch(t, &r, 1)) != FERRY_OK; i++)
        usleep(20000);
    ck_assert_msg(st == FERRY_OK, "status %d: %s", st, t->s.err);
    ferry_sink_descriptor.ops->health(&t->s, &h);
    ck_assert_int_eq(h.state, FERRY_HEALTH_CONNECTED);
    ck_assert_uint_eq(h.reconnects, 1);
    ck_assert_int_eq(qn("SELECT count(*) FROM t_restart"), 2);
    tsink_close(t);
}
END_TEST

START_TEST(test_table_dropped_under_us_is_recreated)
{
    struct tsink *t = tsink_open("table = t_dropped");
    ck_assert_msg(t->st == FERRY_OK, "%s", t->s.err);
    struct tmsg m;
    struct ferry_sink_record r;
    tmsg_set(&m, "logs", "k", "{}", 2);
    rec_set(&r, &m, "q1");
    ck_assert_int_eq(batch(t, &r, 1), FERRY_OK);
    run("DROP TABLE t_dropped");
    rec_set(&r, &m, "q2");
    int st = batch(t, &r, 1);
    ck_assert_msg(ferry_status_retriable(st), "status %d", st);
    ck_assert_int_eq(batch(t, &r, 1), FERRY_OK);
    ck_assert_int_eq(qn("SELECT count(*) FROM t_dropped"), 1);
    tsink_close(t);
}
END_TEST

START_TEST(test_big_batch)
{
    struct tsink *t = tsink_open("table = t_big");
    ck_assert_msg(t->st == FERRY_OK, "%s", t->s.err);
    enum { N = 5000 };
    struct tmsg *m = calloc(N, sizeof *m);
    struct ferry_sink_record *r = calloc(N, sizeof *r);
    char(*ids)[16] = calloc(N, sizeof *ids);
    char(*bodies)[96] = calloc(N, sizeof *bodies);
    for (int i = 0; i < N; i++) {
        snprintf(ids[i], sizeof ids[i], "b%d", i);
        int n = snprintf(bodies[i], sizeof bodies[i],
                         "{\"id\":\"b%d\",\"level\":\"INFO\",\"n\":%d}", i, i);
        tmsg_set(&m[i], "logs", "svc.INFO", bodies[i], (size_t)n);
        rec_set(&r[i], &m[i], ids[i]);
    }
    ck_assert_int_eq(batch(t, r, N), FERRY_OK);
    ck_assert_int_eq(batch(t, r, N), FERRY_OK);
    ck_assert_int_eq(qn("SELECT count(*) FROM t_big"), N);
    ck_assert_int_eq(qn("SELECT sum((body->>'n')::int) FROM t_big"), (long)N * (N - 1) / 2);
    free(m);
    free(r);
    free(ids);
    free(bodies);
    tsink_close(t);
}
END_TEST

START_TEST(test_json_validator)
{
    static const char *const good[] = {"{}",
                                       "[]",
                                       "0",
                                       "-1.5e+3",
                                       "\"\\u00e9\\ud83d\\ude00\"",
                                       " {\"a\" : [true, false, null]} ",
                                       "\"\xc3\xa9\""};
    static const char *const bad[] = {"",
                                      "{",
                                      "{\"a\"}",
                                      "[1,]",
                                      "01",
                                      "1.",
                                      "\"\\u0000\"",
                                      "\"\\ud800x\"",
                                      "\"\\udc00\"",
                                      "\"\xc3\"",
                                      "\"\xed\xa0\x80\"",
                                      "\"a\tb\"",
                                      "nul",
                                      "{} x",
                                      "'a'"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        ck_assert_msg(fpg_jsonb_ok(good[i], strlen(good[i])), "%s", good[i]);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(!fpg_jsonb_ok(bad[i], strlen(bad[i])), "%s", bad[i]);
}
END_TEST

int main(void)
{
    conninfo = getenv("FERRY_TEST_PG_CONNINFO");
    if (!conninfo || !getenv("FERRY_TEST_PG_NODE")) {
        fprintf(stderr, "run through tests/postgresql/sink.test (FERRY_TEST_PG_CONNINFO unset)\n");
        return 99;
    }
    Suite *su = suite_create("postgresql");
    TCase *tc = tcase_create("sink");
    tcase_add_test(tc, test_json_validator);
    tcase_add_test(tc, test_batch_lands_with_layout);
    tcase_add_test(tc, test_same_batch_twice_lands_once);
    tcase_add_test(tc, test_abort_lands_nothing);
    tcase_add_test(tc, test_bodies_jsonb_refuses_are_kept);
    tcase_add_test(tc, test_mapped_columns_and_refused_rows);
    tcase_add_test(tc, test_records_without_id_each_get_a_row);
    tcase_add_test(tc, test_refused_login_is_config_without_password);
    tcase_add_test(tc, test_bad_conninfo_is_config_and_redacted);
    tcase_add_test(tc, test_unreachable_is_noconn);
    tcase_add_test(tc, test_missing_table_without_create_is_config);
    tcase_add_test(tc, test_table_dropped_under_us_is_recreated);
    tcase_add_test(tc, test_big_batch);
    tcase_add_test(tc, test_server_restart_reconnects);
    suite_add_tcase(su, tc);
    SRunner *sr = srunner_create(su);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
