/* Config: INI parsing with line numbers, typed values, precedence
 * flag > environment > file > default, secrets from files, and errors that
 * name the file, line and key. */
#include "config.h"

#include <check.h>
#include <ferry/ferry.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "private.h"

struct demo {
    char *name, *password;
    int64_t count, wait, size;
    bool on;
    int mode;
};

static const struct ferry_option demo_opts[] = {
    {.name = "name",
     .type = FERRY_OPT_STR,
     .def = "dflt",
     .offset = offsetof(struct demo, name),
     .help = "A name."},
    {.name = "password",
     .type = FERRY_OPT_STR,
     .flags = FERRY_OPTF_SECRET,
     .offset = offsetof(struct demo, password),
     .help = "A secret."},
    {.name = "count",
     .type = FERRY_OPT_INT,
     .def = "3",
     .min = 0,
     .max = 10,
     .offset = offsetof(struct demo, count),
     .help = "A count."},
    {.name = "wait",
     .type = FERRY_OPT_DURATION,
     .def = "5s",
     .offset = offsetof(struct demo, wait),
     .help = "A wait."},
    {.name = "size",
     .type = FERRY_OPT_SIZE,
     .def = "1MiB",
     .offset = offsetof(struct demo, size),
     .help = "A size."},
    {.name = "on",
     .type = FERRY_OPT_BOOL,
     .def = "no",
     .offset = offsetof(struct demo, on),
     .help = "A switch."},
    {.name = "mode",
     .type = FERRY_OPT_ENUM,
     .def = "b",
     .choices = "a|b|c",
     .offset = offsetof(struct demo, mode),
     .help = "A mode."},
    {.name = "lib.", .type = FERRY_OPT_PREFIX, .help = "Passed through."},
    {0}};

static struct ferry_config *load(const char *text, int expect)
{
    struct ferry_config *c = ferry_config_new();
    char err[512] = "";
    ck_assert_int_eq(ferry_config_load_string(c, "t.conf", text, err, sizeof err), expect);
    return c;
}

START_TEST(test_defaults_fill_every_type)
{
    struct ferry_config *c = load("", FERRY_OK);
    struct demo d = {0};
    char err[512];
    ck_assert_int_eq(ferry_config_bind(c, "demo", demo_opts, &d, NULL, NULL, err, sizeof err),
                     FERRY_OK);
    ck_assert_str_eq(d.name, "dflt");
    ck_assert_ptr_null(d.password);
    ck_assert_int_eq(d.count, 3);
    ck_assert_int_eq(d.wait, 5000);
    ck_assert_int_eq(d.size, 1048576);
    ck_assert(!d.on);
    ck_assert_int_eq(d.mode, 1);
    ferry_options_free(demo_opts, &d);
    ferry_config_free(c);
}
END_TEST

START_TEST(test_file_values_and_units)
{
    struct ferry_config *c =
        load("; comment\n# another\n[demo]\nname = x y\ncount=7\nwait = 250ms\n"
             "size = 64KiB\non = yes\nmode = C\nlib.a.b = 1\n",
             FERRY_OK);
    struct demo d = {0};
    struct ferry_kv *kv;
    size_t n;
    char err[512];
    ck_assert_int_eq(ferry_config_bind(c, "demo", demo_opts, &d, &kv, &n, err, sizeof err),
                     FERRY_OK);
    ck_assert_str_eq(d.name, "x y");
    ck_assert_int_eq(d.count, 7);
    ck_assert_int_eq(d.wait, 250);
    ck_assert_int_eq(d.size, 65536);
    ck_assert(d.on);
    ck_assert_int_eq(d.mode, 2);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(kv[0].key, "lib.a.b");
    ck_assert_str_eq(kv[0].value, "1");
    ferry_kv_free(kv, n);
    ferry_options_free(demo_opts, &d);
    ferry_config_free(c);
}
END_TEST

START_TEST(test_unknown_key_names_file_line_and_key)
{
    struct ferry_config *c = load("[demo]\nname = a\n\ncuont = 3\n", FERRY_OK);
    struct demo d = {0};
    char err[512];
    ck_assert_int_eq(ferry_config_bind(c, "demo", demo_opts, &d, NULL, NULL, err, sizeof err),
                     FERRY_E_CONFIG);
    ck_assert_msg(strstr(err, "t.conf:4") && strstr(err, "cuont"), "got: %s", err);
    ferry_config_free(c);
}
END_TEST

START_TEST(test_bad_value_names_line_and_reason)
{
    struct ferry_config *c = load("[demo]\ncount = 11\n", FERRY_OK);
    struct demo d = {0};
    char err[512];
    ck_assert_int_eq(ferry_config_bind(c, "demo", demo_opts, &d, NULL, NULL, err, sizeof err),
                     FERRY_E_CONFIG);
    ck_assert_msg(strstr(err, "t.conf:2") && strstr(err, "count") && strstr(err, "range"),
                  "got: %s", err);
    ferry_config_free(c);
    c = load("[demo]\nwait = soon\n", FERRY_OK);
    ck_assert_int_eq(ferry_config_bind(c, "demo", demo_opts, &d, NULL, NULL, err, sizeof err),
                     FERRY_E_CONFIG);
    ck_assert_msg(strstr(err, "duration"), "got: %s", err);
    ferry_config_free(c);
    c = load("[demo]\nmode = d\n", FERRY_OK);
    ck_assert_int_eq(ferry_config_bind(c, "demo", demo_opts, &d, NULL, NULL, err, sizeof err),
                     FERRY_E_CONFIG);
    ck_assert_msg(strstr(err, "a|b|c"), "got: %s", err);
    ferry_config_free(c);
}
END_TEST

START_TEST(test_syntax_error_names_line)
{
    struct ferry_config *c = ferry_config_new();
    char err[512];
    ck_assert_int_eq(ferry_config_load_string(c, "s.conf", "[demo]\nname = a\nthis is not ini\n",
                                              err, sizeof err),
                     FERRY_E_CONFIG);
    ck_assert_msg(strstr(err, "s.conf:3"), "got: %s", err);
    ferry_config_free(c);
    c = ferry_config_new();
    ck_assert_int_eq(ferry_config_load_string(c, "s.conf", "name = a\n", err, sizeof err),
                     FERRY_E_CONFIG);
    ck_assert_msg(strstr(err, "s.conf:1") && strstr(err, "outside"), "got: %s", err);
    ferry_config_free(c);
}
END_TEST

START_TEST(test_precedence_flag_env_file_default)
{
    struct ferry_config *c = load("[demo]\nname = file\ncount = 1\nwait = 1s\n", FERRY_OK);
    setenv("FERRY_DEMO_NAME", "env", 1);
    setenv("FERRY_DEMO_COUNT", "2", 1);
    ferry_config_set(c, "demo", "name", "flag", FERRY_SRC_FLAG);
    struct demo d = {0};
    char err[512];
    ck_assert_int_eq(ferry_config_bind(c, "demo", demo_opts, &d, NULL, NULL, err, sizeof err),
                     FERRY_OK);
    ck_assert_str_eq(d.name, "flag");  /* flag beats env */
    ck_assert_int_eq(d.count, 2);      /* env beats file */
    ck_assert_int_eq(d.wait, 1000);    /* file beats default */
    ck_assert_int_eq(d.size, 1048576); /* default */
    ferry_options_free(demo_opts, &d);
    unsetenv("FERRY_DEMO_NAME");
    unsetenv("FERRY_DEMO_COUNT");
    ferry_config_free(c);
}
END_TEST

START_TEST(test_secret_from_file_and_redacted_in_dump)
{
    char path[] = "/tmp/ferry-secret-XXXXXX";
    int fd = mkstemp(path);
    ck_assert(fd >= 0);
    ck_assert(write(fd, "s3cr3t\n", 7) == 7);
    close(fd);
    char text[256];
    snprintf(text, sizeof text, "[demo]\npassword_file = %s\n", path);
    struct ferry_config *c = load(text, FERRY_OK);
    struct demo d = {0};
    char err[512];
    ck_assert_int_eq(ferry_config_bind(c, "demo", demo_opts, &d, NULL, NULL, err, sizeof err),
                     FERRY_OK);
    ck_assert_str_eq(d.password, "s3cr3t");
    ferry_config_set(c, "demo", "password", "flagsecret", FERRY_SRC_FLAG);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ferry_config_dump(c, "demo", demo_opts, f);
    fclose(f);
    ck_assert_msg(!strstr(buf, "flagsecret") && !strstr(buf, "s3cr3t") && strstr(buf, "redacted"),
                  "dump leaks: %s", buf);
    free(buf);
    ferry_options_free(demo_opts, &d);
    ferry_config_free(c);
    unlink(path);
}
END_TEST

START_TEST(test_option_table_rules)
{
    char err[256];
    ck_assert_int_eq(ferry_options_validate(demo_opts, err, sizeof err), FERRY_OK);
    struct ferry_option nohelp[] = {{.name = "x", .type = FERRY_OPT_INT, .help = ""}, {0}};
    ck_assert_int_eq(ferry_options_validate(nohelp, err, sizeof err), FERRY_E_CONFIG);
    ck_assert_msg(strstr(err, "'x'"), "got: %s", err);
    struct ferry_option baddef[] = {
        {.name = "x", .type = FERRY_OPT_DURATION, .def = "later", .help = "X."}, {0}};
    ck_assert_int_eq(ferry_options_validate(baddef, err, sizeof err), FERRY_E_CONFIG);
    struct ferry_option upper[] = {{.name = "Bad", .type = FERRY_OPT_INT, .help = "X."}, {0}};
    ck_assert_int_eq(ferry_options_validate(upper, err, sizeof err), FERRY_E_CONFIG);
    struct ferry_option twice[] = {{.name = "a", .type = FERRY_OPT_INT, .help = "X."},
                                   {.name = "a", .type = FERRY_OPT_INT, .help = "X."},
                                   {0}};
    ck_assert_int_eq(ferry_options_validate(twice, err, sizeof err), FERRY_E_CONFIG);
}
END_TEST

START_TEST(test_sections_checked)
{
    struct ferry_config *c = load("[demo]\nname = a\n[oops]\nx = 1\n", FERRY_OK);
    const char *known[] = {"demo", NULL};
    char err[256];
    ck_assert_int_eq(ferry_config_check_sections(c, known, err, sizeof err), FERRY_E_CONFIG);
    ck_assert_msg(strstr(err, "t.conf:3") && strstr(err, "[oops]"), "got: %s", err);
    ferry_config_free(c);
}
END_TEST

START_TEST(test_file_secrets_lists_only_inline_secrets)
{
    struct ferry_config *c = load("[demo]\nname = a\npassword = hunter2\nlib.sasl.password = x\n"
                                  "lib.linger = 5\n[other]\npassword = y\n",
                                  FERRY_OK);
    char keys[128] = "";
    ck_assert_uint_eq(ferry_config_file_secrets(c, "demo", demo_opts, keys, sizeof keys), 2);
    ck_assert_str_eq(keys, "demo.password,demo.lib.sasl.password");
    ferry_config_free(c);

    c = load("[demo]\npassword_file = /run/secret\n", FERRY_OK);
    keys[0] = '\0';
    ck_assert_uint_eq(ferry_config_file_secrets(c, "demo", demo_opts, keys, sizeof keys), 0);
    ck_assert_str_eq(keys, "");
    ferry_config_free(c);
}
END_TEST

START_TEST(test_log_level_words_one_rule)
{
    ck_assert_int_eq(ferry_log_level_parse("debug"), FERRY_LOG_DEBUG);
    ck_assert_int_eq(ferry_log_level_parse("DEBUG"), FERRY_LOG_DEBUG);
    ck_assert_int_eq(ferry_log_level_parse("Warn"), FERRY_LOG_WARN);
    ck_assert_int_eq(ferry_log_level_parse("error"), FERRY_LOG_ERROR);
    ck_assert_int_eq(ferry_log_level_parse("verbose"), -1);
    ck_assert_int_eq(ferry_log_level_parse(NULL), -1);
    ck_assert_str_eq(ferry_log_level_name(FERRY_LOG_INFO), "info");
    setenv("FERRY_LOG_LEVEL", "ERROR", 1);
    ck_assert_int_eq(ferry_env_log_level(), FERRY_LOG_ERROR);
    setenv("FERRY_LOG_LEVEL", "nonsense", 1);
    ck_assert_int_eq(ferry_env_log_level(), FERRY_LOG_INFO);
    unsetenv("FERRY_LOG_LEVEL");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("config");
    tcase_add_test(tc, test_defaults_fill_every_type);
    tcase_add_test(tc, test_log_level_words_one_rule);
    tcase_add_test(tc, test_file_values_and_units);
    tcase_add_test(tc, test_unknown_key_names_file_line_and_key);
    tcase_add_test(tc, test_bad_value_names_line_and_reason);
    tcase_add_test(tc, test_syntax_error_names_line);
    tcase_add_test(tc, test_precedence_flag_env_file_default);
    tcase_add_test(tc, test_secret_from_file_and_redacted_in_dump);
    tcase_add_test(tc, test_option_table_rules);
    tcase_add_test(tc, test_sections_checked);
    tcase_add_test(tc, test_file_secrets_lists_only_inline_secrets);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
