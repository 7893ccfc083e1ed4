/* Unit tests of the AMQP plugin helpers: status mapping, URL lists and
 * password masking. No broker needed. */
#include "config.h"

#include <amqp.h>
#include <amqp_framing.h>
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <ferry/transport.h>

#include "amqp-util.h"

START_TEST(test_status_maps_library_codes)
{
    ck_assert_int_eq(famqp_status(AMQP_STATUS_OK), FERRY_OK);
    ck_assert_int_eq(famqp_status(AMQP_STATUS_TIMEOUT), FERRY_E_TIMEOUT);
    ck_assert_int_eq(famqp_status(AMQP_STATUS_CONNECTION_CLOSED), FERRY_E_NOCONN);
    ck_assert_int_eq(famqp_status(AMQP_STATUS_SOCKET_ERROR), FERRY_E_NOCONN);
    ck_assert_int_eq(famqp_status(AMQP_STATUS_HEARTBEAT_TIMEOUT), FERRY_E_NOCONN);
    ck_assert_int_eq(famqp_status(AMQP_STATUS_HOSTNAME_RESOLUTION_FAILED), FERRY_E_NOCONN);
    ck_assert_int_eq(famqp_status(AMQP_STATUS_TCP_ERROR), FERRY_E_NOCONN);
    ck_assert_int_eq(famqp_status(AMQP_STATUS_BAD_URL), FERRY_E_CONFIG);
    ck_assert_int_eq(famqp_status(AMQP_STATUS_BROKER_UNSUPPORTED_SASL_METHOD), FERRY_E_CONFIG);
    ck_assert_int_eq(famqp_status(AMQP_STATUS_TABLE_TOO_BIG), FERRY_E_TOOBIG);
    ck_assert_int_eq(famqp_status(AMQP_STATUS_NO_MEMORY), FERRY_E_FATAL);
}
END_TEST

START_TEST(test_status_maps_reply_codes)
{
    ck_assert_int_eq(famqp_status(AMQP_REPLY_SUCCESS), FERRY_OK);
    ck_assert_int_eq(famqp_status(AMQP_CONNECTION_FORCED), FERRY_E_NOCONN);
    ck_assert_int_eq(famqp_status(AMQP_ACCESS_REFUSED), FERRY_E_CONFIG);
    ck_assert_int_eq(famqp_status(AMQP_NOT_ALLOWED), FERRY_E_CONFIG);
    ck_assert_int_eq(famqp_status(AMQP_PRECONDITION_FAILED), FERRY_E_CONFIG);
    ck_assert_int_eq(famqp_status(AMQP_NOT_FOUND), FERRY_E_CONFIG);
    ck_assert_int_eq(famqp_status(AMQP_CONTENT_TOO_LARGE), FERRY_E_TOOBIG);
    ck_assert_int_eq(famqp_status(AMQP_NO_ROUTE), FERRY_E_REJECTED);
    ck_assert_int_eq(famqp_status(AMQP_RESOURCE_LOCKED), FERRY_E_AGAIN);
    ck_assert_int_eq(famqp_status(AMQP_INTERNAL_ERROR), FERRY_E_NOCONN);
    ck_assert_int_eq(famqp_status(AMQP_FRAME_ERROR), FERRY_E_NOCONN);
}
END_TEST

START_TEST(test_mask_hides_password)
{
    char out[128];
    famqp_url_mask("amqp://guest:s3cret@127.0.0.1:5672/%2f", out, sizeof out);
    ck_assert_str_eq(out, "amqp://***@127.0.0.1:5672/%2f");
    ck_assert_ptr_null(strstr(out, "s3cret"));
    famqp_url_mask("amqp://127.0.0.1:5672", out, sizeof out);
    ck_assert_str_eq(out, "amqp://127.0.0.1:5672");
    /* the user name is a secret too */
    famqp_url_mask("amqp://SeCrEtUser@host", out, sizeof out);
    ck_assert_str_eq(out, "amqp://***@host");
    /* '@' and '/' in a password: all of it up to the last '@' is hidden */
    famqp_url_mask("amqp://u:pa@SeCrEt@127.0.0.1:1", out, sizeof out);
    ck_assert_str_eq(out, "amqp://***@127.0.0.1:1");
    famqp_url_mask("amqp://u:p/SeCrEt@127.0.0.1:1", out, sizeof out);
    ck_assert_str_eq(out, "amqp://***@127.0.0.1:1");
    /* so an '@' in the vhost hides the host as well: safe side */
    famqp_url_mask("amqp://host:5672/a:b@c", out, sizeof out);
    ck_assert_str_eq(out, "amqp://***@c");
}
END_TEST

START_TEST(test_urls_parse_list)
{
    struct famqp_url *u;
    size_t n;
    char err[256];
    ck_assert_int_eq(famqp_urls_parse("amqp://a:pw@h1:5673, amqp://h2 ,amqp://h3:1/v%2fx", &u, &n,
                                      err, sizeof err),
                     0);
    ck_assert_uint_eq(n, 3);
    ck_assert_str_eq(u[0].host, "h1");
    ck_assert_int_eq(u[0].port, 5673);
    ck_assert_str_eq(u[0].user, "a");
    ck_assert_str_eq(u[0].password, "pw");
    ck_assert_str_eq(u[0].vhost, "/");
    ck_assert_str_eq(u[0].masked, "amqp://***@h1:5673");
    ck_assert_str_eq(u[1].host, "h2");
    ck_assert_int_eq(u[1].port, 5672);
    ck_assert_str_eq(u[1].user, "guest");
    ck_assert_str_eq(u[2].vhost, "v/x");
    famqp_urls_free(u, n);
}
END_TEST

START_TEST(test_urls_parse_errors_hide_password)
{
    struct famqp_url *u;
    size_t n;
    char err[256];
    ck_assert_int_eq(famqp_urls_parse("http://x:topsecret@h", &u, &n, err, sizeof err), -1);
    ck_assert_ptr_null(strstr(err, "topsecret"));
    ck_assert_ptr_nonnull(strstr(err, "amqp://"));
    ck_assert_int_eq(famqp_urls_parse(" , ", &u, &n, err, sizeof err), -1);
    ck_assert_int_eq(famqp_urls_parse("amqp://u:topsecret@h:notaport", &u, &n, err, sizeof err),
                     -1);
    ck_assert_ptr_null(strstr(err, "topsecret"));
}
END_TEST

START_TEST(test_trailing_slash_is_empty_vhost)
{
    struct famqp_url *u;
    size_t n;
    char err[256];
    ck_assert_int_eq(famqp_urls_parse("amqp://h:5672/", &u, &n, err, sizeof err), 0);
    ck_assert_str_eq(u[0].vhost, "");
    famqp_urls_free(u, n);
}
END_TEST

static Suite *amqp_util_suite(void)
{
    Suite *s = suite_create("amqp_util");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_status_maps_library_codes);
    tcase_add_test(tc, test_status_maps_reply_codes);
    tcase_add_test(tc, test_mask_hides_password);
    tcase_add_test(tc, test_urls_parse_list);
    tcase_add_test(tc, test_urls_parse_errors_hide_password);
    tcase_add_test(tc, test_trailing_slash_is_empty_vhost);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(amqp_util_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
