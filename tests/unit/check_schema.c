/* ferry: unit tests of the JSON Schema validator: messages and paths, exact
 * multipleOf, file references, error positions and sharing between threads. */
#include <config.h>

#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ferry/schema.h"

#ifndef FERRY_TEST_SCHEMA_DIR
#define FERRY_TEST_SCHEMA_DIR "etc/schemas"
#endif

static const char good_event[] =
    "{\"event_id\":\"8c1f3a52-6d1e-4c39-9b7a-2f0e5d6c7b81\",\"user_id\":\"u-1042\","
    "\"file_name\":\"ubuntu-24.04-desktop-amd64.iso\",\"file_size\":6114656256,"
    "\"bytes_per_second\":12500000.5,\"latitude\":52.52,\"longitude\":13.405,"
    "\"timestamp\":\"2024-05-01T12:34:56Z\"}";

static struct ferry_schema *compile_ok(const char *text)
{
    char err[256];
    struct ferry_schema *s = ferry_schema_compile(text, NULL, NULL, err, sizeof err);
    ck_assert_msg(s != NULL, "compile failed: %s", err);
    return s;
}

/* Validate TEXT against SCHEMA and return the formatted errors ("" when valid). */
static char *check_text(const struct ferry_schema *s, const char *text)
{
    struct ferry_schema_result r;
    ck_assert_int_eq(ferry_schema_validate_text(s, text, strlen(text), &r), 0);
    char *msg = ferry_schema_result_format(&r); /* freed by the caller */
    ck_assert_ptr_nonnull(msg);
    ck_assert(r.valid == (r.n_errors == 0));
    ferry_schema_result_free(&r);
    return msg;
}

static void expect(const struct ferry_schema *s, const char *text, const char *want)
{
    char *got = check_text(s, text);
    ck_assert_str_eq(got, want);
    free(got);
}

static struct ferry_schema *load_event_schema(void)
{
    char err[256];
    struct ferry_schema *s =
        ferry_schema_load(FERRY_TEST_SCHEMA_DIR "/download-event.json", NULL, err, sizeof err);
    ck_assert_msg(s != NULL, "load failed: %s", err);
    return s;
}

START_TEST(test_event_schema)
{
    struct ferry_schema *s = load_event_schema();
    expect(s, good_event, "");
    char *bad = strdup(good_event);
    ck_assert_ptr_nonnull(bad);
    memcpy(strstr(bad, "52.52"), "123.4", 5);
    expect(s, bad,
           "/latitude: 123.4 is greater than the maximum 90 (#/properties/latitude/maximum)");
    free(bad);
    expect(
        s,
        "{\"event_id\":\"e\",\"user_id\":\"u\",\"file_name\":\"\",\"file_size\":-1,"
        "\"bytes_per_second\":1,\"latitude\":0,\"longitude\":-180.5,\"timestamp\":\"yesterday\"}",
        "/file_name: \"\" is shorter than the minimum length 1 (#/properties/file_name/minLength); "
        "/file_size: -1 is less than the minimum 0 (#/properties/file_size/minimum); "
        "/longitude: -180.5 is less than the minimum -180 (#/properties/longitude/minimum); "
        "/timestamp: \"yesterday\" is not a valid \"date-time\" (#/properties/timestamp/format)");
    expect(s, "{\"event_id\":1}",
           "/event_id: 1 is not of type \"string\" (#/properties/event_id/type); "
           "(root): required property \"user_id\" is missing (#/required); "
           "(root): required property \"file_name\" is missing (#/required); "
           "(root): required property \"file_size\" is missing (#/required); "
           "(root): required property \"bytes_per_second\" is missing (#/required); "
           "(root): required property \"latitude\" is missing (#/required); "
           "(root): required property \"longitude\" is missing (#/required); "
           "(root): required property \"timestamp\" is missing (#/required)");
    ferry_schema_free(s);
}
END_TEST

START_TEST(test_error_fields)
{
    struct ferry_schema *s =
        compile_ok("{\"definitions\":{\"pos\":{\"type\":\"integer\",\"minimum\":0}},"
                   "\"properties\":{\"a/b~c\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/"
                   "definitions/pos\"}}},"
                   "\"additionalProperties\":false}");
    struct ferry_schema_result r;
    const char *text = "{\"a/b~c\":[1,-2,\"x\"],\"zz\":true}";
    ck_assert_int_eq(ferry_schema_validate_text(s, text, strlen(text), &r), 0);
    ck_assert(!r.valid);
    ck_assert_uint_eq(r.n_errors, 3);
    ck_assert(!r.truncated);
    ck_assert_str_eq(r.errors[0].instance_path, "/a~1b~0c/1");
    ck_assert_str_eq(r.errors[0].keyword, "minimum");
    ck_assert_str_eq(r.errors[0].schema_path, "#/definitions/pos/minimum");
    ck_assert_str_eq(r.errors[0].message, "-2 is less than the minimum 0");
    ck_assert_str_eq(r.errors[1].instance_path, "/a~1b~0c/2");
    ck_assert_str_eq(r.errors[1].keyword, "type");
    ck_assert_str_eq(r.errors[1].message, "\"x\" is not of type \"integer\"");
    ck_assert_str_eq(r.errors[2].instance_path, "");
    ck_assert_str_eq(r.errors[2].keyword, "additionalProperties");
    ck_assert_str_eq(r.errors[2].schema_path, "#/additionalProperties");
    ck_assert_str_eq(r.errors[2].message, "additional property \"zz\" is not allowed");
    ferry_schema_result_free(&r);
    ck_assert_uint_eq(r.n_errors, 0);
    ferry_schema_free(s);
}
END_TEST

START_TEST(test_combinators)
{
    struct ferry_schema *s = compile_ok(
        "{\"properties\":{\"n\":{\"oneOf\":[{\"type\":\"integer\"},{\"minimum\":2}]},"
        "\"s\":{\"anyOf\":[{\"type\":\"null\"},{\"type\":\"string\",\"pattern\":\"^[a-z]+$\"}]},"
        "\"t\":{\"not\":{\"const\":\"x\"}},\"e\":{\"enum\":[1,\"a\",null]},"
        "\"u\":{\"if\":{\"type\":\"string\"},\"then\":{\"maxLength\":2},\"else\":{\"type\":"
        "\"number\"}}}}");
    expect(s, "{\"n\":2.5,\"s\":null,\"t\":\"y\",\"e\":1.0,\"u\":\"ab\"}", "");
    expect(s, "{\"n\":3,\"s\":\"A\",\"t\":\"x\",\"e\":2,\"u\":\"abc\"}",
           "/n: 3 matches more than one schema in \"oneOf\" (0 and 1) (#/properties/n/oneOf); "
           "/s: \"A\" does not match any of the schemas in \"anyOf\" (#/properties/s/anyOf); "
           "/t: \"x\" must not match the \"not\" schema (#/properties/t/not); "
           "/e: 2 is not one of [1,\"a\",null] (#/properties/e/enum); "
           "/u: \"abc\" is longer than the maximum length 2 (#/properties/u/then/maxLength)");
    expect(s, "{\"u\":true}", "/u: true is not of type \"number\" (#/properties/u/else/type)");
    ferry_schema_free(s);
}
END_TEST

START_TEST(test_multiple_of_decimal)
{
    struct ferry_schema *s = compile_ok("{\"multipleOf\":0.0001}");
    expect(s, "0.0075", "");
    expect(s, "0.0001", "");
    expect(s, "12345.6789", "");
    expect(s, "-3.1416", "");
    expect(s, "0", "");
    expect(s, "0.00751", "(root): 0.00751 is not a multiple of 0.0001 (#/multipleOf)");
    ferry_schema_free(s);
    s = compile_ok("{\"multipleOf\":0.1}");
    expect(s, "0.3", "");
    expect(s, "1.7", "");
    expect(s, "1e300", "");
    expect(s, "0.35", "(root): 0.35 is not a multiple of 0.1 (#/multipleOf)");
    ferry_schema_free(s);
    s = compile_ok("{\"multipleOf\":0.01}");
    expect(s, "19.99", "");
    expect(s, "4.35", "");
    ferry_schema_free(s);
    s = compile_ok("{\"multipleOf\":1.5}");
    expect(s, "4.5", "");
    expect(s, "35", "(root): 35 is not a multiple of 1.5 (#/multipleOf)");
    ferry_schema_free(s);
    s = compile_ok("{\"multipleOf\":3}");
    expect(s, "3e20", "");
    expect(s, "1e20", "(root): 1e+20 is not a multiple of 3 (#/multipleOf)");
    expect(s, "10", "(root): 10 is not a multiple of 3 (#/multipleOf)");
    ferry_schema_free(s);
}
END_TEST

START_TEST(test_strings_and_arrays)
{
    struct ferry_schema *s =
        compile_ok("{\"properties\":{\"s\":{\"maxLength\":3,\"minLength\":3},"
                   "\"a\":{\"uniqueItems\":true,\"maxItems\":3,\"contains\":{\"const\":\"k\"}}}}");
    /* three code points, nine bytes */
    expect(s, "{\"s\":\"\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\",\"a\":[\"k\"]}", "");
    expect(s, "{\"a\":[1,\"k\",1.0,{\"x\":[1]}]}",
           "/a: array has 4 items, more than the maximum 3 (#/properties/a/maxItems); "
           "/a: items at index 0 and 2 are equal (#/properties/a/uniqueItems)");
    expect(s, "{\"a\":[{\"x\":1,\"y\":2},{\"y\":2,\"x\":1}]}",
           "/a: items at index 0 and 1 are equal (#/properties/a/uniqueItems); "
           "/a: no item of the array matches the \"contains\" schema (#/properties/a/contains)");
    ferry_schema_free(s);
}
END_TEST

START_TEST(test_ecma_regex)
{
    struct ferry_schema *s = compile_ok(
        "{\"properties\":{\"sp\":{\"pattern\":\"^\\\\s$\"},\"u\":{\"pattern\":\"^\\\\u0041+$\"},"
        "\"d\":{\"pattern\":\"^\\\\d+$\"},\"e\":{\"pattern\":\"a[]\"},\"any\":{\"pattern\":\"^[^]$"
        "\"},"
        "\"end\":{\"pattern\":\"^abc$\"},\"dragon\":{\"pattern\":\"^\xf0\x9f\x90\xb2*$\","
        "\"maxLength\":2}}}");
    /* U+00A0 and U+FEFF are white space in ECMA-262 */
    expect(s,
           "{\"sp\":\"\xc2\xa0\",\"u\":\"AA\",\"d\":\"042\",\"any\":\"\\n\",\"end\":\"abc\","
           "\"dragon\":\"\xf0\x9f\x90\xb2\xf0\x9f\x90\xb2\"}",
           "");
    expect(s, "{\"sp\":\"\xef\xbb\xbf\"}", "");
    char *msg =
        check_text(s, "{\"d\":\"\xd9\xa3\",\"e\":\"a\",\"end\":\"abc\\n\",\"u\":\"u0041\"}");
    ck_assert_ptr_nonnull(strstr(msg, "/d: "));
    ck_assert_ptr_nonnull(strstr(msg, "/e: "));
    ck_assert_ptr_nonnull(strstr(msg, "/end: "));
    ck_assert_ptr_nonnull(strstr(msg, "/u: "));
    free(msg);
    ferry_schema_free(s);
}
END_TEST

START_TEST(test_ref_loops)
{
    char err[256];
    ck_assert_ptr_null(
        ferry_schema_compile("{\"definitions\":{\"a\":{\"$ref\":\"#/definitions/b\"},"
                             "\"b\":{\"$ref\":\"#/definitions/a\"}},\"$ref\":\"#/definitions/a\"}",
                             NULL, NULL, err, sizeof err));
    ck_assert_msg(strstr(err, "$ref refers to itself") != NULL, "error was: %s", err);
    struct ferry_schema *s = compile_ok("{\"allOf\":[{\"$ref\":\"#\"}]}");
    expect(s, "1", "(root): schema nesting is too deep (a reference loop?) (#/$ref)");
    ferry_schema_free(s);
    /* deep but finite recursion is fine */
    s = compile_ok("{\"items\":{\"$ref\":\"#\"},\"type\":\"array\"}");
    char deep[1000];
    memset(deep, '[', 400);
    memset(deep + 400, ']', 400);
    deep[800] = '\0';
    expect(s, deep, "");
    ferry_schema_free(s);
}
END_TEST

START_TEST(test_max_errors)
{
    struct ferry_schema_opts o = {.max_errors = 2};
    char err[256];
    struct ferry_schema *s =
        ferry_schema_compile("{\"items\":{\"type\":\"string\"}}", NULL, &o, err, sizeof err);
    ck_assert_ptr_nonnull(s);
    struct ferry_schema_result r;
    const char *text = "[1,2,3,4]";
    ck_assert_int_eq(ferry_schema_validate_text(s, text, strlen(text), &r), 0);
    ck_assert(!r.valid);
    ck_assert_uint_eq(r.n_errors, 2);
    ck_assert(r.truncated);
    char *msg = ferry_schema_result_format(&r);
    ck_assert_str_eq(msg, "/0: 1 is not of type \"string\" (#/items/type); "
                          "/1: 2 is not of type \"string\" (#/items/type); ...");
    free(msg);
    ferry_schema_result_free(&r);
    ferry_schema_free(s);
}
END_TEST

START_TEST(test_not_json)
{
    struct ferry_schema *s = compile_ok("true");
    struct ferry_schema_result r;
    const char *text = "{\"a\": 1,,}";
    ck_assert_int_eq(ferry_schema_validate_text(s, text, strlen(text), &r), 0);
    ck_assert(!r.valid);
    ck_assert_uint_eq(r.n_errors, 1);
    ck_assert_str_eq(r.errors[0].keyword, "json");
    ck_assert_str_eq(r.errors[0].instance_path, "");
    ck_assert_msg(strncmp(r.errors[0].message, "invalid JSON at byte offset ", 28) == 0, "%s",
                  r.errors[0].message);
    ferry_schema_result_free(&r);
    /* trailing data and a length that stops before the NUL */
    ck_assert_int_eq(ferry_schema_validate_text(s, "{} x", 4, &r), 0);
    ck_assert(!r.valid);
    ferry_schema_result_free(&r);
    ck_assert_int_eq(ferry_schema_validate_text(s, "[1]garbage", 3, &r), 0);
    ck_assert(r.valid);
    ferry_schema_result_free(&r);
    ferry_schema_free(s);
}
END_TEST

static char tmpdir[64];

static void write_file(const char *name, const char *text)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static void setup_tmp(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/ferry-schema-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    char sub[128];
    snprintf(sub, sizeof sub, "%s/lib", tmpdir);
    ck_assert_int_eq(mkdir(sub, 0700), 0);
}

static void teardown_tmp(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    ck_assert_int_eq(system(cmd), 0);
}

START_TEST(test_malformed_file)
{
    write_file("broken.json", "{\n  \"type\": \"object\",\n  \"properties\": {\"a\": }\n}\n");
    char path[256], err[512], want[400];
    snprintf(path, sizeof path, "%s/broken.json", tmpdir);
    ck_assert_ptr_null(ferry_schema_load(path, NULL, err, sizeof err));
    snprintf(want, sizeof want, "%s:3:", path);
    ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "error was: %s", err);
    ck_assert_ptr_nonnull(strstr(err, "invalid JSON"));

    write_file("badre.json", "{\"properties\":{\"a\":{\"pattern\":\"(\"}}}");
    snprintf(path, sizeof path, "%s/badre.json", tmpdir);
    ck_assert_ptr_null(ferry_schema_load(path, NULL, err, sizeof err));
    snprintf(want, sizeof want, "%s: #/properties/a/pattern: invalid regular expression", path);
    ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "error was: %s", err);

    write_file("badref.json", "{\"$ref\":\"missing.json\"}");
    snprintf(path, sizeof path, "%s/badref.json", tmpdir);
    ck_assert_ptr_null(ferry_schema_load(path, NULL, err, sizeof err));
    ck_assert_msg(strstr(err, "cannot resolve $ref \"missing.json\"") != NULL, "error was: %s",
                  err);

    snprintf(path, sizeof path, "%s/none.json", tmpdir);
    ck_assert_ptr_null(ferry_schema_load(path, NULL, err, sizeof err));
    snprintf(want, sizeof want, "%s: No such file or directory", path);
    ck_assert_str_eq(err, want);

    ck_assert_ptr_null(ferry_schema_compile("{\"type\":\"strnig\"}", NULL, NULL, err, sizeof err));
    ck_assert_str_eq(err, "#/type: unknown type");
}
END_TEST

START_TEST(test_file_refs)
{
    write_file("main.json", "{\"properties\":{\"a\":{\"$ref\":\"common.json#/definitions/id\"},"
                            "\"b\":{\"$ref\":\"units.json\"}}}");
    write_file("common.json",
               "{\"definitions\":{\"id\":{\"type\":\"string\",\"pattern\":\"^id-\"}}}");
    write_file("lib/units.json", "{\"enum\":[\"B\",\"KiB\"]}");
    char path[256], sp[256], err[512];
    snprintf(path, sizeof path, "%s/main.json", tmpdir);
    ck_assert_ptr_null(ferry_schema_load(path, NULL, err, sizeof err));
    snprintf(sp, sizeof sp, "/nonexistent:%s/lib", tmpdir);
    struct ferry_schema_opts o = {.search_path = sp};
    struct ferry_schema *s = ferry_schema_load(path, &o, err, sizeof err);
    ck_assert_msg(s != NULL, "load failed: %s", err);
    expect(s, "{\"a\":\"id-7\",\"b\":\"KiB\"}", "");
    char *msg = check_text(s, "{\"a\":\"x\",\"b\":\"MB\"}");
    ck_assert_ptr_nonnull(strstr(msg, "/a: \"x\" does not match the pattern \"^id-\" ("));
    ck_assert_ptr_nonnull(strstr(msg, "common.json#/definitions/id/pattern)"));
    ck_assert_ptr_nonnull(strstr(msg, "/b: \"MB\" is not one of [\"B\",\"KiB\"]"));
    free(msg);
    ferry_schema_free(s);

    /* a URI prefix mapped onto a directory */
    const char *map[] = {"https://schemas.example.com/v1/", tmpdir, NULL};
    struct ferry_schema_opts o2 = {.uri_map = map};
    s = ferry_schema_compile("{\"$id\":\"https://schemas.example.com/v1/root.json\","
                             "\"items\":{\"$ref\":\"lib/units.json\"}}",
                             NULL, &o2, err, sizeof err);
    ck_assert_msg(s != NULL, "compile failed: %s", err);
    expect(s, "[\"B\"]", "");
    ferry_schema_free(s);
}
END_TEST

START_TEST(test_meta_schema)
{
    struct ferry_schema *s = compile_ok("{\"$ref\":\"http://json-schema.org/draft-07/schema#\"}");
    expect(s, "{\"type\":\"string\",\"minLength\":2}", "");
    char *msg = check_text(s, "{\"minLength\":-1}");
    ck_assert_str_ne(msg, "");
    free(msg);
    ferry_schema_free(s);
}
END_TEST

struct worker {
    const struct ferry_schema *s;
    int bad; /* results that were not as expected */
};

static void *work(void *arg)
{
    struct worker *w = arg;
    char buf[512];
    for (int i = 0; i < 2000; i++) {
        bool valid = i % 3 != 0;
        snprintf(
            buf, sizeof buf,
            "{\"event_id\":\"e-%d\",\"user_id\":\"u\",\"file_name\":\"f.iso\",\"file_size\":%d,"
            "\"bytes_per_second\":1.5,\"latitude\":%s,\"longitude\":1,"
            "\"timestamp\":\"2024-05-01T12:34:56.%03dZ\"}",
            i, i, valid ? "45.0" : "95.5", i % 1000);
        struct ferry_schema_result r;
        if (ferry_schema_validate_text(w->s, buf, strlen(buf), &r) != 0 || r.valid != valid ||
            (!valid && !strstr(r.errors[0].schema_path, "#/properties/latitude/maximum")))
            w->bad++;
        ferry_schema_result_free(&r);
    }
    return NULL;
}

START_TEST(test_threads)
{
    /* patterns too, so that regular expressions run in parallel */
    char err[256];
    const char *text =
        "{\"allOf\":[{\"$ref\":\"file://" FERRY_TEST_SCHEMA_DIR "/download-event.json\"}],"
        "\"properties\":{\"event_id\":{\"pattern\":\"^e-[0-9]+$\"}},"
        "\"patternProperties\":{\"_id$\":{\"minLength\":1}}}";
    struct ferry_schema *s = ferry_schema_compile(text, NULL, NULL, err, sizeof err);
    if (!s) {
        /* relative FERRY_TEST_SCHEMA_DIR: plain file reference instead */
        char abs[4096], t2[8192];
        ck_assert_ptr_nonnull(getcwd(abs, sizeof abs));
        snprintf(t2, sizeof t2,
                 "{\"allOf\":[{\"$ref\":\"file://%s/%s/download-event.json\"}],"
                 "\"properties\":{\"event_id\":{\"pattern\":\"^e-[0-9]+$\"}},"
                 "\"patternProperties\":{\"_id$\":{\"minLength\":1}}}",
                 abs, FERRY_TEST_SCHEMA_DIR);
        s = ferry_schema_compile(t2, NULL, NULL, err, sizeof err);
    }
    ck_assert_msg(s != NULL, "compile failed: %s", err);
    enum { N = 8 };
    pthread_t th[N];
    struct worker w[N];
    for (int i = 0; i < N; i++) {
        w[i].s = s;
        w[i].bad = 0;
        ck_assert_int_eq(pthread_create(&th[i], NULL, work, &w[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(pthread_join(th[i], NULL), 0);
        ck_assert_int_eq(w[i].bad, 0);
    }
    ferry_schema_free(s);
}
END_TEST

static Suite *schema_suite(void)
{
    Suite *s = suite_create("schema");
    TCase *tc = tcase_create("validate");
    tcase_add_test(tc, test_event_schema);
    tcase_add_test(tc, test_error_fields);
    tcase_add_test(tc, test_combinators);
    tcase_add_test(tc, test_multiple_of_decimal);
    tcase_add_test(tc, test_strings_and_arrays);
    tcase_add_test(tc, test_ecma_regex);
    tcase_add_test(tc, test_ref_loops);
    tcase_add_test(tc, test_max_errors);
    tcase_add_test(tc, test_not_json);
    tcase_add_test(tc, test_meta_schema);
    tcase_add_test(tc, test_threads);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    TCase *files = tcase_create("files");
    tcase_add_checked_fixture(files, setup_tmp, teardown_tmp);
    tcase_add_test(files, test_malformed_file);
    tcase_add_test(files, test_file_refs);
    suite_add_tcase(s, files);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(schema_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
