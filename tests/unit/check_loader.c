/* Loader: finds plugins on the path, refuses a wrong ABI, a module without
 * a descriptor and a bad option table, each with a message naming the cause;
 * and checks every plugin this tree builds. */
#include "config.h"

#include <check.h>
#include <ferry/ferry.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

START_TEST(test_loads_by_name_and_caches)
{
    char err[1024];
    int st;
    const struct ferry_transport *t = ferry_plugin_load("loopback", NULL, &st, err, sizeof err);
    ck_assert_msg(t != NULL, "load failed: %s", err);
    ck_assert_str_eq(t->name, "loopback");
    ck_assert_int_eq(st, FERRY_OK);
    ck_assert_ptr_eq(ferry_plugin_load("loopback", NULL, &st, err, sizeof err), t);
}
END_TEST

START_TEST(test_missing_plugin_is_a_config_error_with_hint)
{
    char err[1024];
    int st;
    ck_assert_ptr_null(ferry_plugin_load("nosuchplugin", NULL, &st, err, sizeof err));
    ck_assert_int_eq(st, FERRY_E_CONFIG);
    ck_assert_msg(strstr(err, "unknown transport plugin 'nosuchplugin'") &&
                      strstr(err, "--list-plugins"),
                  "got: %s", err);
}
END_TEST

START_TEST(test_wrong_abi_names_both_versions)
{
    char err[1024], want[128];
    int st;
    ck_assert_ptr_null(ferry_plugin_load("wrongabi", NULL, &st, err, sizeof err));
    ck_assert_int_eq(st, FERRY_E_CONFIG);
    snprintf(want, sizeof want,
             "built for transport ABI %d, this ferry uses ABI %d (and loads ABI 1)",
             FERRY_TRANSPORT_ABI + 1, FERRY_TRANSPORT_ABI);
    ck_assert_msg(strstr(err, want) && strstr(err, "rebuild"), "got: %s", err);
}
END_TEST

START_TEST(test_module_without_descriptor_refused)
{
    char err[1024];
    int st;
    ck_assert_ptr_null(ferry_plugin_load("nodesc", NULL, &st, err, sizeof err));
    ck_assert_msg(strstr(err, "not a ferry transport plugin"), "got: %s", err);
}
END_TEST

START_TEST(test_bad_option_table_refused)
{
    char err[1024];
    int st;
    ck_assert_ptr_null(ferry_plugin_load("badopts", NULL, &st, err, sizeof err));
    ck_assert_msg(strstr(err, "bad option table") && strstr(err, "'host'"), "got: %s", err);
}
END_TEST

/* A plugin built before defer was appended: it loads, and the core does
 * not read past the descriptor size it declares. */
START_TEST(test_older_descriptor_loads_without_defer)
{
    char err[1024];
    int st;
    const struct ferry_transport *t = ferry_plugin_load("oldabi", NULL, &st, err, sizeof err);
    ck_assert_msg(t != NULL, "load failed: %s", err);
    ck_assert_uint_eq(t->abi, 1);
    ck_assert_ptr_nonnull(t->ops);
    ck_assert_uint_eq(t->ops->size, sizeof(struct ferry_transport_ops)); /* converted */
    struct ferry_config *c = ferry_config_new();
    ck_assert_int_eq(
        ferry_config_load_string(c, "x.conf", "[transport]\nplugin = oldabi\n", err, sizeof err),
        0);
    struct ferry_conn *conn = ferry_open(c, "t", &st, err, sizeof err);
    ck_assert_msg(conn != NULL, "open failed: %s", err);
    ck_assert(!ferry_can_defer(conn)); /* its defer member would abort */
    struct ferry_health h;
    ck_assert_int_eq(ferry_health(conn, &h), FERRY_OK);
    ck_assert_int_eq(h.state, FERRY_HEALTH_BLOCKED); /* the ABI 1 table's health */
    struct ferry_msg m = {0};
    ck_assert_int_eq(ferry_ack(conn, &m), FERRY_E_NOTSUP); /* no receive, no ack */
    ck_assert_msg(strstr(ferry_conn_error(conn), "cannot"), "got: %s", ferry_conn_error(conn));
    ck_assert_int_eq(ferry_publish(conn, &m), FERRY_E_NOTSUP);
    ferry_close(conn);
    ferry_config_free(c);
}
END_TEST

START_TEST(test_open_unknown_plugin_from_config)
{
    struct ferry_config *c = ferry_config_new();
    char err[1024];
    int st;
    ferry_config_load_string(c, "x.conf", "[transport]\nplugin = nats\n", err, sizeof err);
    ck_assert_ptr_null(ferry_open(c, "t", &st, err, sizeof err));
    ck_assert_int_eq(st, FERRY_E_CONFIG);
    ck_assert_msg(strstr(err, "'nats'"), "got: %s", err);
    ferry_config_free(c);
}
END_TEST

START_TEST(test_plugin_section_unknown_key_refused)
{
    struct ferry_config *c = ferry_config_new();
    char err[1024];
    int st;
    ferry_config_load_string(c, "x.conf",
                             "[transport]\nplugin = loopback\n[loopback]\nfail_publsh = 1\n", err,
                             sizeof err);
    ck_assert_ptr_null(ferry_open(c, "t", &st, err, sizeof err));
    ck_assert_int_eq(st, FERRY_E_CONFIG);
    ck_assert_msg(strstr(err, "x.conf:4") && strstr(err, "fail_publsh"), "got: %s", err);
    ferry_config_free(c);
}
END_TEST

struct seen {
    int good, bad;
    char names[16][32];
};

static void collect(const struct ferry_transport *t, const char *file, const char *why, void *ctx)
{
    (void)file;
    struct seen *s = ctx;
    if (t) {
        if (s->good < 16)
            snprintf(s->names[s->good], sizeof s->names[0], "%s", t->name);
        s->good++;
    } else {
        ck_assert_ptr_nonnull(why);
        s->bad++;
    }
}

/* Every plugin built in this tree passes the loader's descriptor checks
 * (ABI, name, ops against caps, option table with help). */
START_TEST(test_every_built_plugin_is_well_formed)
{
    struct seen s = {0};
    ferry_plugin_foreach(NULL, collect, &s);
    const char *built = getenv("FERRY_BUILT_PLUGINS");
    ck_assert_msg(built != NULL, "FERRY_BUILT_PLUGINS not set by the harness");
    char copy[256];
    snprintf(copy, sizeof copy, "%s", built);
    for (char *save = NULL, *n = strtok_r(copy, " ", &save); n; n = strtok_r(NULL, " ", &save)) {
        bool found = false;
        for (int i = 0; i < s.good && i < 16; i++)
            found = found || !strcmp(s.names[i], n);
        ck_assert_msg(found, "built plugin %s did not load cleanly", n);
    }
    ck_assert_int_ge(s.bad, 3); /* wrongabi, nodesc, badopts */
}
END_TEST

START_TEST(test_version_macros_match_the_library)
{
    ck_assert_str_eq(ferry_version(), FERRY_VERSION_STRING);
    char v[32];
    snprintf(v, sizeof v, "%d.%d.%d", FERRY_VERSION_MAJOR, FERRY_VERSION_MINOR,
             FERRY_VERSION_PATCH);
    ck_assert_str_eq(v, FERRY_VERSION_STRING);
    ck_assert_int_eq(FERRY_VERSION_NUM, FERRY_MAKE_VERSION(FERRY_VERSION_MAJOR, FERRY_VERSION_MINOR,
                                                           FERRY_VERSION_PATCH));
    ck_assert(FERRY_MAKE_VERSION(0, 10, 0) > FERRY_MAKE_VERSION(0, 9, 99));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("loader");
    TCase *tc = tcase_create("loader");
    tcase_add_test(tc, test_loads_by_name_and_caches);
    tcase_add_test(tc, test_missing_plugin_is_a_config_error_with_hint);
    tcase_add_test(tc, test_wrong_abi_names_both_versions);
    tcase_add_test(tc, test_older_descriptor_loads_without_defer);
    tcase_add_test(tc, test_module_without_descriptor_refused);
    tcase_add_test(tc, test_bad_option_table_refused);
    tcase_add_test(tc, test_open_unknown_plugin_from_config);
    tcase_add_test(tc, test_plugin_section_unknown_key_refused);
    tcase_add_test(tc, test_every_built_plugin_is_well_formed);
    tcase_add_test(tc, test_version_macros_match_the_library);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
