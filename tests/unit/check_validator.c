/* ferry-validator logic: the verdict and reason for each kind of body, and
 * the routing of a whole stream over the loopback plugin (valid to output,
 * invalid to reject with x-ferry-error and x-ferry-source, nothing lost). */
#include "config.h"
#include "app.h"

#include <check.h>
#include <ferry/schema.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *schema_file(void)
{
    static char path[4096];
    const char *src = getenv("FERRY_SRCDIR");
    snprintf(path, sizeof path, "%s/etc/schemas/download-event.json", src ? src : ".");
    return path;
}

static struct ferry_schema *download_schema(void)
{
    char err[512];
    struct ferry_schema *s = ferry_schema_load(schema_file(), NULL, err, sizeof err);
    ck_assert_msg(s != NULL, "%s", err);
    return s;
}

static int verdict(const struct ferry_schema *s, const char *body, char *why, size_t n)
{
    why[0] = '\0';
    return app_validate_body(s, body, strlen(body), why, n);
}

START_TEST(test_generated_downloads_match_their_verdict)
{
    struct ferry_schema *s = download_schema();
    uint64_t rng = 12345;
    int kinds_seen = 0;
    for (uint64_t i = 1; i <= 3000; i++) {
        bool bad = i % 5 == 0;
        char buf[1024], why[2048];
        size_t len;
        app_make_download(i, bad, &rng, buf, sizeof buf, &len);
        why[0] = '\0';
        int ok = app_validate_body(s, buf, len, why, sizeof why);
        ck_assert_msg(ok == !bad, "event %llu (%s) judged %d", (unsigned long long)i, buf, ok);
        if (bad) {
            ck_assert_msg(why[0] != '\0', "no reason for %s", buf);
            kinds_seen |= strstr(why, "/latitude") ? 1 : 0;
            kinds_seen |= strstr(why, "/file_size: -") ? 2 : 0;
            kinds_seen |= strstr(why, "required") ? 4 : 0;
            kinds_seen |= strstr(why, "type") ? 8 : 0;
            kinds_seen |= strstr(why, "/longitude") ? 16 : 0;
            kinds_seen |= strstr(why, "invalid JSON") ? 32 : 0;
        }
    }
    ck_assert_int_eq(kinds_seen, 63);
    ferry_schema_free(s);
}
END_TEST

START_TEST(test_reasons_name_path_and_keyword)
{
    struct ferry_schema *s = download_schema();
    char why[2048];
    ck_assert_int_eq(verdict(s,
                             "{\"event_id\":\"a\",\"user_id\":\"u\",\"file_name\":\"f\","
                             "\"file_size\":-3,\"bytes_per_second\":1,\"latitude\":91,"
                             "\"longitude\":0,\"timestamp\":\"2024-05-01T12:34:56Z\"}",
                             why, sizeof why),
                     0);
    ck_assert_str_eq(
        why, "/file_size: -3 is less than the minimum 0 (#/properties/file_size/minimum); "
             "/latitude: 91 is greater than the maximum 90 (#/properties/latitude/maximum)");
    ck_assert_int_eq(verdict(s, "dl-7 this is not JSON {", why, sizeof why), 0);
    ck_assert_str_eq(why, "(root): invalid JSON at byte offset 0 (#)");
    ferry_schema_free(s);
}
END_TEST

START_TEST(test_schema_true_accepts_only_json)
{
    char err[256], why[512];
    struct ferry_schema *s = ferry_schema_compile("true", NULL, NULL, err, sizeof err);
    ck_assert_msg(s != NULL, "%s", err);
    ck_assert_int_eq(verdict(s, "{}", why, sizeof why), 1);
    ck_assert_int_eq(verdict(s, "[1, \"x\"]", why, sizeof why), 1);
    ck_assert_int_eq(verdict(s, "nope", why, sizeof why), 0);
    ck_assert_int_eq(verdict(s, "{} trailing", why, sizeof why), 0);
    ck_assert_str_eq(why, "(root): unexpected data after the JSON value at byte offset 3 (#)");
    ck_assert_int_eq(verdict(s, "", why, sizeof why), 0);
    ck_assert_ptr_nonnull(strstr(why, "empty message"));
    ferry_schema_free(s);
}
END_TEST

START_TEST(test_long_reason_is_cut_not_overrun)
{
    struct ferry_schema *s = download_schema();
    char why[40];
    memset(why, 'x', sizeof why);
    ck_assert_int_eq(verdict(s, "{\"event_id\":1}", why, sizeof why), 0);
    ck_assert_uint_eq(strlen(why), sizeof why - 1);
    ferry_schema_free(s);
}
END_TEST

/* ---- the whole program over the loopback broker ---- */

static struct ferry_conn *open_lb(void)
{
    char err[512];
    int st;
    struct ferry_config *c = ferry_config_new();
    ck_assert_int_eq(
        ferry_config_load_string(c, "t", "[transport]\nplugin = loopback\n", err, sizeof err),
        FERRY_OK);
    struct ferry_conn *conn = ferry_open(c, "t", &st, err, sizeof err);
    ck_assert_msg(conn != NULL, "%s", err);
    ferry_config_free(c);
    return conn;
}

static const char *header(const struct ferry_msg *m, const char *name, char *buf, size_t n)
{
    const struct ferry_header *h = ferry_msg_header(m, name);
    if (!h)
        return NULL;
    snprintf(buf, n, "%.*s", (int)h->value_len, (const char *)h->value);
    return buf;
}

/* Publish N generated events (every 4th invalid) with a "trace" header and a
 * stale x-ferry-error, run the validator until it has handled them all, and
 * check where each one went. extra: [loopback] lines for the validator. */
static void route_stream(const char *extra, int n)
{
    char in[64], out[64], rej[64], conf[64], cnt[16];
    snprintf(in, sizeof in, "v.in.%d", (int)getpid());
    snprintf(out, sizeof out, "v.out.%d", (int)getpid());
    snprintf(rej, sizeof rej, "v.rej.%d", (int)getpid());
    snprintf(conf, sizeof conf, "check_validator.%d.conf", (int)getpid());
    snprintf(cnt, sizeof cnt, "%d", n);
    FILE *f = fopen(conf, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "[transport]\nplugin = loopback\n[loopback]\n%s\n", extra);
    fclose(f);

    struct ferry_conn *c = open_lb(), *cout = open_lb(), *crej = open_lb();
    ck_assert_int_eq(ferry_subscribe(cout, out, "o"), FERRY_OK);
    ck_assert_int_eq(ferry_subscribe(crej, rej, "r"), FERRY_OK);
    uint64_t rng = 99;
    bool bad[1000] = {false};
    for (int i = 0; i < n; i++) {
        char buf[1024];
        size_t len;
        bad[i] = i % 4 == 3;
        app_make_download((uint64_t)i, bad[i], &rng, buf, sizeof buf, &len);
        struct ferry_header hs[] = {{"trace", "t1", 2}, {"x-ferry-error", "stale", 5}};
        struct ferry_msg m = {.dest = in,
                              .key = "k",
                              .key_len = 1,
                              .headers = hs,
                              .n_headers = 2,
                              .body = buf,
                              .body_len = len};
        ck_assert_int_eq(ferry_publish(c, &m), FERRY_OK);
    }
    ck_assert_int_eq(ferry_flush(c, 1000), FERRY_OK);

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
                    "--count",
                    cnt,
                    "--publish-timeout",
                    "2s",
                    NULL};
    ck_assert_int_eq(ferry_validator_main((int)(sizeof argv / sizeof *argv) - 1, argv), 0);
    unlink(conf);

    int seen[1000] = {0}, nout = 0, nrej = 0;
    struct ferry_msg *r[64];
    size_t k;
    for (struct ferry_conn *rc = cout; rc; rc = rc == cout ? crej : NULL) {
        while (ferry_receive(rc, r, 64, &k, 100) == FERRY_OK && k) {
            for (size_t i = 0; i < k; i++) {
                char eid[64] = "", hv[2048];
                char b[256]; /* bodies are not NUL-terminated */
                int bl = r[i]->body_len < sizeof b ? (int)r[i]->body_len : (int)sizeof b - 1;
                snprintf(b, sizeof b, "%.*s", bl, (const char *)r[i]->body);
                int id = -1;
                if (sscanf(b, "{\"event_id\":\"dl-%d\"", &id) != 1)
                    sscanf(b, "dl-%d this", &id);
                snprintf(eid, sizeof eid, "%d", id);
                ck_assert_msg(id >= 0 && id < n, "unknown body %.*s", (int)r[i]->body_len, b);
                seen[id]++;
                ck_assert_str_eq(header(r[i], "trace", hv, sizeof hv), "t1");
                ck_assert_uint_eq(r[i]->key_len, 1);
                if (!strcmp(r[i]->dest, out)) {
                    nout++;
                    ck_assert_msg(!bad[id], "invalid event %s forwarded", eid);
                    ck_assert_ptr_null(ferry_msg_header(r[i], "x-ferry-error"));
                } else {
                    ck_assert_str_eq(r[i]->dest, rej);
                    nrej++;
                    ck_assert_msg(bad[id], "valid event %s rejected", eid);
                    ck_assert_ptr_nonnull(header(r[i], "x-ferry-error", hv, sizeof hv));
                    ck_assert_msg(strcmp(hv, "stale") && hv[0], "reason of %s: '%s'", eid, hv);
                    ck_assert_str_eq(header(r[i], "x-ferry-source", hv, sizeof hv), in);
                }
                ferry_ack(rc, r[i]);
            }
        }
    }
    for (int i = 0; i < n; i++) /* without failures: exactly once */
        ck_assert_msg(*extra ? seen[i] >= 1 : seen[i] == 1, "event %d seen %d times", i, seen[i]);
    ck_assert_int_ge(nout, n - n / 4);
    ck_assert_int_ge(nrej, n / 4);
    /* nothing left unacked at the input */
    ck_assert_int_eq(ferry_subscribe(c, in, "validator"), FERRY_OK);
    ck_assert_int_eq(ferry_receive(c, r, 64, &k, 50) == FERRY_OK ? (int)k : 0, 0);
    ferry_close(c);
    ferry_close(cout);
    ferry_close(crej);
}

START_TEST(test_routes_valid_and_invalid)
{
    route_stream("", 400);
}
END_TEST

START_TEST(test_lost_confirms_lose_nothing)
{
    route_stream("fail_confirm = 30", 400);
}
END_TEST

START_TEST(test_failed_publishes_lose_nothing)
{
    route_stream("fail_publish = 3", 200);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("validator");
    TCase *t = tcase_create("verdict");
    tcase_add_test(t, test_generated_downloads_match_their_verdict);
    tcase_add_test(t, test_reasons_name_path_and_keyword);
    tcase_add_test(t, test_schema_true_accepts_only_json);
    tcase_add_test(t, test_long_reason_is_cut_not_overrun);
    suite_add_tcase(s, t);
    t = tcase_create("routing");
    tcase_set_timeout(t, 60);
    tcase_add_test(t, test_routes_valid_and_invalid);
    tcase_add_test(t, test_lost_confirms_lose_nothing);
    tcase_add_test(t, test_failed_publishes_lose_nothing);
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
