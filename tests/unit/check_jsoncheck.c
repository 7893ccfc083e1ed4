/* The JSON text checks beyond cJSON: UTF-8, NUL, duplicate keys, numbers
 * out of range, each reported with its byte offset. */
#include "config.h"
#include "jsoncheck.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

static int check(const char *text, unsigned flags, size_t *off, char *err, size_t errlen)
{
    return ferry_json_check(text, strlen(text), flags, off, err, errlen);
}

START_TEST(test_utf8_strict)
{
    ck_assert_uint_eq(ferry_utf8_check("plain", 5), 5);
    ck_assert_uint_eq(ferry_utf8_check("caf\xc3\xa9 \xf0\x9f\x98\x80", 10), 10);
    ck_assert_uint_eq(ferry_utf8_check("bad\xff\xfeutf8", 9), 3);
    ck_assert_uint_eq(ferry_utf8_check("\xc0\xaf", 2), 0);         /* overlong '/' */
    ck_assert_uint_eq(ferry_utf8_check("x\xed\xa0\x80", 4), 1);    /* a surrogate */
    ck_assert_uint_eq(ferry_utf8_check("ab\xe2\x82", 4), 2);       /* cut short */
    ck_assert_uint_eq(ferry_utf8_check("\xf4\x90\x80\x80", 4), 0); /* beyond U+10FFFF */
    char s[] = "a\xff"
               "b\xc3";
    ck_assert_uint_eq(ferry_utf8_scrub(s, strlen(s)), 2);
    ck_assert_str_eq(s, "a?b?");
}
END_TEST

/* ASCII is skipped eight bytes at a time: a bad byte or a sequence cut
 * short at every place after a run of ASCII is still found there, and a
 * valid sequence anywhere passes. */
START_TEST(test_utf8_after_ascii_runs)
{
    char s[64];
    for (size_t at = 0; at < 40; at++) {
        memset(s, 'a', sizeof s);
        s[at] = (char)0xff;
        ck_assert_uint_eq(ferry_utf8_check(s, 48), at);
        memset(s, 'a', sizeof s);
        memcpy(s + at, "\xc3\xa9", 2);
        ck_assert_uint_eq(ferry_utf8_check(s, 48), 48);
        ck_assert_uint_eq(ferry_utf8_check(s, at + 1), at); /* cut short */
    }
}
END_TEST

START_TEST(test_invalid_utf8_named_with_offset)
{
    char err[256];
    size_t off = 0;
    ck_assert_int_eq(check("{\"a\":\"\xff\xfe\"}", 0, &off, err, sizeof err), -1);
    ck_assert_uint_eq(off, 6);
    ck_assert_str_eq(err, "invalid UTF-8 at byte 6");
    ck_assert_uint_eq(ferry_utf8_check(err, strlen(err)), strlen(err));
}
END_TEST

START_TEST(test_nul_refused_when_asked)
{
    char err[256];
    size_t off = 0;
    ck_assert_int_eq(check("{\"message\":\"a\\u0000b\"}", 0, &off, err, sizeof err), 0);
    ck_assert_int_eq(check("{\"message\":\"a\\u0000b\"}", FERRY_JSON_NO_NUL, &off, err, sizeof err),
                     -1);
    ck_assert_uint_eq(off, 13);
    ck_assert_ptr_nonnull(strstr(err, "\\u0000"));
    const char raw[] = "{\"m\":\"a\0b\"}";
    ck_assert_int_eq(
        ferry_json_check(raw, sizeof raw - 1, FERRY_JSON_NO_NUL, &off, err, sizeof err), -1);
    ck_assert_uint_eq(off, 7);
}
END_TEST

START_TEST(test_duplicate_keys_named)
{
    char err[256];
    size_t off = 0;
    ck_assert_int_eq(check("{\"message\":\"a\",\"message\":\"b\"}", 0, &off, err, sizeof err), 0);
    ck_assert_int_eq(check("{\"message\":\"a\",\"message\":\"b\"}", FERRY_JSON_NO_DUP_KEYS, &off,
                           err, sizeof err),
                     -1);
    ck_assert_str_eq(err, "duplicate key \"message\" at byte 15 (first at byte 1)");
    /* the same key spelt with an escape is the same key */
    ck_assert_int_eq(
        check("{\"id\":\"X1\",\"\\u0069d\":\"X2\"}", FERRY_JSON_NO_DUP_KEYS, &off, err, sizeof err),
        -1);
    ck_assert_ptr_nonnull(strstr(err, "duplicate key \"id\""));
    /* nested objects have their own keys; equal keys in sibling objects are fine */
    ck_assert_int_eq(check("{\"messages\":[{\"id\":1},{\"id\":2}],\"x\":{\"id\":3}}",
                           FERRY_JSON_NO_DUP_KEYS, &off, err, sizeof err),
                     0);
    ck_assert_int_eq(check("{\"messages\":[{\"id\":1,\"message\":\"m\",\"id\":2}]}",
                           FERRY_JSON_NO_DUP_KEYS, &off, err, sizeof err),
                     -1);
    ck_assert_ptr_nonnull(strstr(err, "duplicate key \"id\""));
}
END_TEST

START_TEST(test_numbers_out_of_range_keep_their_text)
{
    char err[256];
    size_t off = 0;
    ck_assert_int_eq(check("1e999999", 0, &off, err, sizeof err), -1);
    ck_assert_str_eq(err, "number 1e999999 at byte 0 is out of range (beyond a double)");
    ck_assert_int_eq(check("[1, -2.5e3, 1e308, 0.0]", 0, &off, err, sizeof err), 0);
    ck_assert_int_eq(check("{\"x\":-1e400}", 0, &off, err, sizeof err), -1);
    ck_assert_uint_eq(off, 5);
}
END_TEST

START_TEST(test_syntax_and_depth)
{
    char err[256];
    size_t off = 0;
    ck_assert_int_eq(check("{\"a\":1,}", 0, &off, err, sizeof err), -1);
    ck_assert_int_eq(check("{\"a\":1} x", 0, &off, err, sizeof err), -1);
    ck_assert_int_eq(check("\"\\ud800\"", 0, &off, err, sizeof err), -1);
    ck_assert_int_eq(check("\"\\", 0, &off, err, sizeof err), -1); /* found by the fuzzer */
    ck_assert_int_eq(check("\"\\ud83d\\ude00\"", 0, &off, err, sizeof err), 0);
    /* RFC 8259: no leading zero; 0, -0 and 0.5 are numbers */
    ck_assert_int_eq(check("01", 0, &off, err, sizeof err), -1);
    ck_assert_int_eq(check("[-012]", 0, &off, err, sizeof err), -1);
    ck_assert_uint_eq(off, 1);
    ck_assert_int_eq(check("[0, -0, 0.5, 10]", 0, &off, err, sizeof err), 0);
    /* RFC 8259: a raw control character in a string is not JSON (a raw
     * newline would also split a line-oriented output file) */
    ck_assert_int_eq(check("{\"m\": \"a\nb\"}", 0, &off, err, sizeof err), -1);
    ck_assert_uint_eq(off, 8);
    ck_assert_str_eq(err, "a string holds control character 0x0a at byte 8; JSON strings carry "
                          "it escaped (\\u000a)");
    ck_assert_int_eq(check("\"a\tb\"", 0, &off, err, sizeof err), -1);
    ck_assert_int_eq(check("\"a\\tb\\n\\u0001\"", 0, &off, err, sizeof err), 0);
    size_t n = 5000;
    char *deep = malloc(2 * n + 1);
    memset(deep, '[', n);
    memset(deep + n, ']', n);
    deep[2 * n] = '\0';
    ck_assert_int_eq(check(deep, 0, &off, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "nested"));
    free(deep);
}
END_TEST

START_TEST(test_any_number_when_asked)
{
    size_t off;
    char err[160];
    ck_assert_int_eq(check("{\"n\": 1e400}", 0, &off, err, sizeof err), -1);
    ck_assert_int_eq(check("{\"n\": 1e400}", FERRY_JSON_ANY_NUMBER, &off, err, sizeof err), 0);
    ck_assert_int_eq(check("{\"n\": 1e}", FERRY_JSON_ANY_NUMBER, &off, err, sizeof err), -1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("jsoncheck");
    TCase *tc = tcase_create("jsoncheck");
    tcase_add_test(tc, test_utf8_strict);
    tcase_add_test(tc, test_utf8_after_ascii_runs);
    tcase_add_test(tc, test_invalid_utf8_named_with_offset);
    tcase_add_test(tc, test_nul_refused_when_asked);
    tcase_add_test(tc, test_duplicate_keys_named);
    tcase_add_test(tc, test_numbers_out_of_range_keep_their_text);
    tcase_add_test(tc, test_syntax_and_depth);
    tcase_add_test(tc, test_any_number_when_asked);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
