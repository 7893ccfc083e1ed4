/* Unit tests of the zmq plugin's wire codec (plugins/zmq/wire.c): the
 * version 2 layout byte for byte, round trips, every malformed frame
 * refused with a reason, and the version 1 multipart rules. */
#include "config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <ferry/transport.h>

#include "wire.h"

static struct fzmq_wire_view v; /* large: kept off the stack */
static char why[256];

/* Encode m into a fresh buffer (freed by the caller); *len gets its size. */
static unsigned char *encode(const struct ferry_msg *m, size_t *len)
{
    *len = fzmq_wire_v2_size(m);
    ck_assert_uint_gt(*len, 0);
    unsigned char *buf = malloc(*len);
    ck_assert_ptr_nonnull(buf);
    ck_assert_uint_eq(fzmq_wire_v2_encode(m, buf), *len);
    return buf;
}

static void span_is(struct fzmq_wire_span s, const char *want)
{
    ck_assert_uint_eq(s.len, strlen(want));
    ck_assert_msg(memcmp(s.data, want, s.len) == 0, "span \"%.*s\" is not \"%s\"", (int)s.len,
                  (const char *)s.data, want);
}

START_TEST(test_v2_layout_byte_for_byte)
{
    /* what the README shows a pyzmq program building */
    struct ferry_header h[] = {{.name = "x-ferry-seq", .value = "7", .value_len = 1}};
    struct ferry_msg m = {.dest = "logs",
                          .key = "web.INFO",
                          .key_len = 8,
                          .headers = h,
                          .n_headers = 1,
                          .body = "{}",
                          .body_len = 2};
    static const unsigned char want[] = "logs\0\xff\x02\x00"
                                        "\x08web.INFO"
                                        "\x01"
                                        "\x0bx-ferry-seq\x01"
                                        "7"
                                        "{}";
    size_t len;
    unsigned char *buf = encode(&m, &len);
    ck_assert_uint_eq(len, sizeof want - 1);
    ck_assert_mem_eq(buf, want, len);
    free(buf);

    /* no key, no headers: nine bytes before the body */
    struct ferry_msg bare = {.dest = "logs", .body = "hello", .body_len = 5};
    buf = encode(&bare, &len);
    ck_assert_uint_eq(len, 4 + 4 + 2 + 5);
    ck_assert_mem_eq(buf, "logs\0\xff\x02\x00\x00\x00hello", len);
    free(buf);
}
END_TEST

START_TEST(test_v2_round_trip_with_long_fields)
{
    /* lengths of 300 and 20000 take two and three varint bytes */
    char key[300], value[20000], body[1000];
    memset(key, 'k', sizeof key);
    memset(value, 'v', sizeof value);
    for (size_t i = 0; i < sizeof body; i++)
        body[i] = (char)(i % 256); /* binary, NULs and 0xff included */
    struct ferry_header h[] = {{.name = "a", .value = value, .value_len = sizeof value},
                               {.name = "empty", .value = "", .value_len = 0},
                               {.name = "b", .value = "2", .value_len = 1}};
    struct ferry_msg m = {.dest = "a.b/c",
                          .key = key,
                          .key_len = sizeof key,
                          .headers = h,
                          .n_headers = 3,
                          .body = body,
                          .body_len = sizeof body};
    size_t len;
    unsigned char *buf = encode(&m, &len);
    ck_assert(fzmq_wire_is_v2(buf, len));
    ck_assert_int_eq(fzmq_wire_v2_decode(buf, len, &v, why, sizeof why), 0);
    span_is(v.dest, "a.b/c");
    ck_assert_uint_eq(v.key.len, sizeof key);
    ck_assert_mem_eq(v.key.data, key, sizeof key);
    ck_assert_uint_eq(v.n_headers, 3);
    span_is(v.name[0], "a");
    ck_assert_uint_eq(v.value[0].len, sizeof value);
    ck_assert_mem_eq(v.value[0].data, value, sizeof value);
    span_is(v.name[1], "empty");
    span_is(v.value[1], "");
    span_is(v.name[2], "b");
    span_is(v.value[2], "2");
    ck_assert_uint_eq(v.body.len, sizeof body);
    ck_assert_mem_eq(v.body.data, body, sizeof body);
    free(buf);
}
END_TEST

START_TEST(test_v2_empty_body_and_null_key)
{
    struct ferry_msg m = {.dest = "d", .key = NULL, .key_len = 5, .body = NULL, .body_len = 0};
    size_t len;
    unsigned char *buf = encode(&m, &len);
    ck_assert_int_eq(fzmq_wire_v2_decode(buf, len, &v, why, sizeof why), 0);
    span_is(v.dest, "d");
    ck_assert_uint_eq(v.key.len, 0); /* key_len without a key counts for nothing */
    ck_assert_uint_eq(v.body.len, 0);
    free(buf);
}
END_TEST

START_TEST(test_plain_bodies_are_not_v2)
{
    ck_assert(!fzmq_wire_is_v2("", 0));
    ck_assert(!fzmq_wire_is_v2("{\"id\":\"py-2\"}", 13));
    ck_assert(!fzmq_wire_is_v2("logs\0", 5));         /* NUL at the end */
    ck_assert(!fzmq_wire_is_v2("logs\0\x02\xff", 7)); /* no marker after the NUL */
    ck_assert(!fzmq_wire_is_v2("a\0b\0\xff\x02", 6)); /* only the first NUL counts */
    ck_assert(fzmq_wire_is_v2("\0\xff", 2));          /* empty dest: v2, then refused */
    ck_assert_int_eq(fzmq_wire_v2_decode("\0\xff", 2, &v, why, sizeof why), -1);
}
END_TEST

START_TEST(test_v2_unknown_version_and_flags_refused)
{
    ck_assert_int_eq(fzmq_wire_v2_decode("logs\0\xff\x03\x00\x00\x00x", 11, &v, why, sizeof why),
                     -1);
    ck_assert_msg(strstr(why, "wire version 3") != NULL, "%s", why);
    ck_assert_int_eq(fzmq_wire_v2_decode("logs\0\xff\x02\x01\x00\x00x", 11, &v, why, sizeof why),
                     -1);
    ck_assert_msg(strstr(why, "flags 0x01") != NULL, "%s", why);
}
END_TEST

/* Every cut inside the header part is refused, never read past. */
START_TEST(test_v2_truncated_header_refused)
{
    struct ferry_header h[] = {{.name = "n", .value = "val", .value_len = 3}};
    struct ferry_msg m = {.dest = "logs",
                          .key = "key",
                          .key_len = 3,
                          .headers = h,
                          .n_headers = 1,
                          .body = "body",
                          .body_len = 4};
    size_t len;
    unsigned char *buf = encode(&m, &len);
    size_t header_end = len - 4;
    for (size_t cut = 6; cut < header_end; cut++) {
        /* a copy of exactly cut bytes, so valgrind/ASan see any over-read */
        unsigned char *part = malloc(cut);
        memcpy(part, buf, cut);
        ck_assert(fzmq_wire_is_v2(part, cut));
        ck_assert_msg(fzmq_wire_v2_decode(part, cut, &v, why, sizeof why) == -1,
                      "a frame cut to %zu of %zu bytes was accepted", cut, len);
        ck_assert_msg(why[0] != '\0', "no reason for a cut at %zu", cut);
        free(part);
    }
    free(buf);
}
END_TEST

START_TEST(test_v2_bad_lengths_refused)
{
    /* key length beyond the frame */
    ck_assert_int_eq(fzmq_wire_v2_decode("d\0\xff\x02\x00\x7f"
                                         "abc",
                                         9, &v, why, sizeof why),
                     -1);
    ck_assert_msg(strstr(why, "cut short or has a bad length") != NULL, "%s", why);
    /* an eleven-byte varint */
    ck_assert_int_eq(fzmq_wire_v2_decode("d\0\xff\x02\x00\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"
                                         "\x01",
                                         16, &v, why, sizeof why),
                     -1);
    /* a key length of 2^64 - 1 */
    ck_assert_int_eq(fzmq_wire_v2_decode("d\0\xff\x02\x00\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",
                                         15, &v, why, sizeof why),
                     -1);
    /* 257 headers */
    ck_assert_int_eq(fzmq_wire_v2_decode("d\0\xff\x02\x00\x00\x81\x02", 8, &v, why, sizeof why),
                     -1);
    ck_assert_msg(strstr(why, "more than 256 headers") != NULL, "%s", why);
}
END_TEST

START_TEST(test_v2_header_names_checked)
{
    struct ferry_header dup[] = {{.name = "a", .value = "1", .value_len = 1},
                                 {.name = "a", .value = "2", .value_len = 1}};
    struct ferry_header empty[] = {{.name = "", .value = "1", .value_len = 1}};
    struct ferry_msg m = {.dest = "d", .headers = dup, .n_headers = 2, .body = "x", .body_len = 1};
    size_t len;
    unsigned char *buf = encode(&m, &len);
    ck_assert_int_eq(fzmq_wire_v2_decode(buf, len, &v, why, sizeof why), -1);
    ck_assert_msg(strstr(why, "repeated header name") != NULL, "%s", why);
    free(buf);
    m.headers = empty;
    m.n_headers = 1;
    buf = encode(&m, &len);
    ck_assert_int_eq(fzmq_wire_v2_decode(buf, len, &v, why, sizeof why), -1);
    ck_assert_msg(strstr(why, "empty header name") != NULL, "%s", why);
    free(buf);
}
END_TEST

static struct fzmq_wire_span fr(const char *s)
{
    return (struct fzmq_wire_span){s, strlen(s)};
}

START_TEST(test_v1_frames_mapped)
{
    struct fzmq_wire_span one[] = {fr("body")};
    ck_assert_int_eq(fzmq_wire_v1_view(one, 1, &v, why, sizeof why), 0);
    ck_assert_ptr_null(v.dest.data);
    span_is(v.body, "body");
    ck_assert_uint_eq(v.key.len, 0);

    struct fzmq_wire_span two[] = {fr("logs"), fr("body")};
    ck_assert_int_eq(fzmq_wire_v1_view(two, 2, &v, why, sizeof why), 0);
    span_is(v.dest, "logs");
    span_is(v.body, "body");

    struct fzmq_wire_span all[] = {fr("logs"), fr("k"), fr("body"), fr("a"),
                                   fr("1"),    fr("b"), fr("")};
    ck_assert_int_eq(fzmq_wire_v1_view(all, 7, &v, why, sizeof why), 0);
    span_is(v.dest, "logs");
    span_is(v.key, "k");
    span_is(v.body, "body");
    ck_assert_uint_eq(v.n_headers, 2);
    span_is(v.name[1], "b");
    span_is(v.value[1], "");
}
END_TEST

START_TEST(test_v1_malformed_refused_with_reason)
{
    struct fzmq_wire_span odd[] = {fr("logs"), fr("k"), fr("body"), fr("name")};
    ck_assert_int_eq(fzmq_wire_v1_view(odd, 4, &v, why, sizeof why), -1);
    ck_assert_msg(strstr(why, "header frame without a value (4 frames") != NULL, "%s", why);

    /* a list of bodies sent as frames: [logs] + [x] * 50 */
    struct fzmq_wire_span list[51];
    list[0] = fr("logs");
    for (int i = 1; i < 51; i++)
        list[i] = fr("x");
    ck_assert_int_eq(fzmq_wire_v1_view(list, 51, &v, why, sizeof why), -1);
    ck_assert_str_eq(why, "repeated header name in frame 6 of 51 (frames: dest, key, body, "
                          "then name/value pairs)");

    struct fzmq_wire_span empty[] = {fr("logs"), fr("k"), fr("body"), fr(""), fr("v")};
    ck_assert_int_eq(fzmq_wire_v1_view(empty, 5, &v, why, sizeof why), -1);
    ck_assert_msg(strstr(why, "empty header name in frame 4 of 5") != NULL, "%s", why);
}
END_TEST

START_TEST(test_v1_too_many_headers_refused)
{
    static struct fzmq_wire_span many[3 + 2 * 257];
    static char names[257][8];
    many[0] = fr("d");
    many[1] = fr("k");
    many[2] = fr("b");
    for (int h = 0; h < 257; h++) {
        snprintf(names[h], sizeof names[h], "h%d", h);
        many[3 + 2 * h] = fr(names[h]);
        many[4 + 2 * h] = fr("v");
    }
    ck_assert_int_eq(fzmq_wire_v1_view(many, 3 + 2 * 256, &v, why, sizeof why), 0);
    ck_assert_uint_eq(v.n_headers, 256);
    ck_assert_int_eq(fzmq_wire_v1_view(many, 3 + 2 * 257, &v, why, sizeof why), -1);
    ck_assert_msg(strstr(why, "more than 256 headers") != NULL, "%s", why);
}
END_TEST

static Suite *zmq_wire_suite(void)
{
    Suite *s = suite_create("zmq_wire");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_v2_layout_byte_for_byte);
    tcase_add_test(tc, test_v2_round_trip_with_long_fields);
    tcase_add_test(tc, test_v2_empty_body_and_null_key);
    tcase_add_test(tc, test_plain_bodies_are_not_v2);
    tcase_add_test(tc, test_v2_unknown_version_and_flags_refused);
    tcase_add_test(tc, test_v2_truncated_header_refused);
    tcase_add_test(tc, test_v2_bad_lengths_refused);
    tcase_add_test(tc, test_v2_header_names_checked);
    tcase_add_test(tc, test_v1_frames_mapped);
    tcase_add_test(tc, test_v1_malformed_refused_with_reason);
    tcase_add_test(tc, test_v1_too_many_headers_refused);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(zmq_wire_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
