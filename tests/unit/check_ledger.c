/* The end-to-end ledger: ranges merge, gaps and duplicates are counted,
 * arrival order does not matter, memory stays bounded. */
#include "config.h"
#include <ferry/ledger.h>

#include <check.h>
#include <stdlib.h>
#include <string.h>

static struct ferry_ledger_totals totals(const struct ferry_ledger *l)
{
    struct ferry_ledger_totals t;
    ferry_ledger_totals(l, &t);
    return t;
}

static char *report(const struct ferry_ledger *l)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ck_assert_ptr_nonnull(f);
    ferry_ledger_report(l, f, 0);
    fclose(f);
    return buf; /* freed by the caller */
}

START_TEST(test_in_order_is_complete)
{
    struct ferry_ledger *l = ferry_ledger_new(0, 0);
    for (uint64_t s = 1; s <= 1000; s++)
        ck_assert_int_eq(ferry_ledger_add(l, "p1", s), 1);
    struct ferry_ledger_totals t = totals(l);
    ck_assert_uint_eq(t.unique, 1000);
    ck_assert_uint_eq(t.missing, 0);
    ck_assert_uint_eq(t.duplicates, 0);
    char *r = report(l);
    ck_assert_str_eq(r,
                     "producer=p1 received=1000 unique=1000 max_seq=1000 missing=0 duplicates=0\n");
    free(r);
    ferry_ledger_free(l);
}
END_TEST

START_TEST(test_gaps_are_missing_ranges)
{
    struct ferry_ledger *l = ferry_ledger_new(0, 0);
    for (uint64_t s = 1; s <= 100; s++)
        if (s != 1 && (s < 40 || s > 49) && s != 77)
            ferry_ledger_add(l, "p", s);
    struct ferry_ledger_totals t = totals(l);
    ck_assert_uint_eq(t.missing, 12);
    char *r = report(l);
    ck_assert_ptr_nonnull(strstr(r, "  missing 1\n  missing 40-49\n  missing 77\n"));
    free(r);
    /* the tail is only known missing once the expected count is given */
    ferry_ledger_expect(l, 105);
    ck_assert_uint_eq(totals(l).missing, 17);
    r = report(l);
    ck_assert_ptr_nonnull(strstr(r, "  missing 101-105\n"));
    free(r);
    ferry_ledger_free(l);
}
END_TEST

START_TEST(test_duplicates_counted_and_listed)
{
    struct ferry_ledger *l = ferry_ledger_new(0, 0);
    for (uint64_t s = 1; s <= 10; s++)
        ferry_ledger_add(l, "p", s);
    ck_assert_int_eq(ferry_ledger_add(l, "p", 3), 0);
    ck_assert_int_eq(ferry_ledger_add(l, "p", 4), 0);
    ck_assert_int_eq(ferry_ledger_add(l, "p", 4), 0);
    ck_assert_int_eq(ferry_ledger_add(l, "p", 9), 0);
    struct ferry_ledger_totals t = totals(l);
    ck_assert_uint_eq(t.duplicates, 4);
    ck_assert_uint_eq(t.received, 14);
    ck_assert_uint_eq(t.unique, 10);
    ck_assert_uint_eq(t.missing, 0);
    char *r = report(l);
    ck_assert_ptr_nonnull(strstr(r, "  duplicate 3-4\n  duplicate 9\n"));
    free(r);
    ferry_ledger_free(l);
}
END_TEST

START_TEST(test_out_of_order_merges)
{
    struct ferry_ledger *l = ferry_ledger_new(0, 0);
    /* odd ones first, then the even ones fill the holes backwards */
    for (uint64_t s = 1; s <= 999; s += 2)
        ferry_ledger_add(l, "p", s);
    ck_assert_uint_eq(totals(l).missing, 499);
    for (uint64_t s = 1000; s >= 2; s -= 2)
        ck_assert_int_eq(ferry_ledger_add(l, "p", s), 1);
    struct ferry_ledger_totals t = totals(l);
    ck_assert_uint_eq(t.missing, 0);
    ck_assert_uint_eq(t.unique, 1000);
    ck_assert(ferry_ledger_has(l, "p", 1000));
    ck_assert(!ferry_ledger_has(l, "p", 1001));
    ck_assert(!ferry_ledger_has(l, "q", 1));
    char *r = report(l);
    ck_assert_str_eq(r,
                     "producer=p received=1000 unique=1000 max_seq=1000 missing=0 duplicates=0\n");
    free(r);
    ferry_ledger_free(l);
}
END_TEST

START_TEST(test_producers_kept_apart)
{
    struct ferry_ledger *l = ferry_ledger_new(0, 0);
    char id[32];
    for (int p = 0; p < 300; p++) { /* forces the table to grow */
        snprintf(id, sizeof id, "host:%d", p);
        for (uint64_t s = 1; s <= 5; s++)
            ck_assert_int_eq(ferry_ledger_add(l, id, s), 1);
    }
    ck_assert_int_eq(ferry_ledger_add(l, "host:7", 5), 0);
    struct ferry_ledger_totals t = totals(l);
    ck_assert_uint_eq(t.producers, 300);
    ck_assert_uint_eq(t.unique, 1500);
    ck_assert_uint_eq(t.duplicates, 1);
    ferry_ledger_free(l);
}
END_TEST

START_TEST(test_bounded_ranges_and_producers)
{
    struct ferry_ledger *l = ferry_ledger_new(8, 4);
    for (uint64_t s = 2; s <= 200; s += 2) /* 100 holes, only 8 ranges kept */
        ferry_ledger_add(l, "p", s);
    ck_assert_uint_eq(totals(l).missing, 100);
    for (int p = 0; p < 10; p++) { /* p retires first, its counts stay */
        char id[16];
        snprintf(id, sizeof id, "q%d", p);
        ferry_ledger_add(l, id, 2);
    }
    struct ferry_ledger_totals t = totals(l);
    ck_assert_uint_eq(t.producers, 11);
    ck_assert_uint_eq(t.missing, 110);
    ck_assert_uint_eq(t.unique, 110);
    ferry_ledger_free(l);
}
END_TEST

START_TEST(test_stalled_partition_exact_unbounded)
{
    /* Eight partitions, seq s on partition s % 8; partitions 0, 3 and 6
     * stall and catch up after the others: 37,500 gaps open at once. Every
     * seq arrives once, so no duplicate may be reported (the bounded
     * ledger used to call each late seq a duplicate). */
    struct ferry_ledger *l = ferry_ledger_new(SIZE_MAX, 0);
    const uint64_t n = 100000;
    for (uint64_t s = 1; s <= n; s++)
        if (s % 8 != 0 && s % 8 != 3 && s % 8 != 6)
            ck_assert_int_eq(ferry_ledger_add(l, "p", s), 1);
    ck_assert_uint_eq(totals(l).missing, 37499); /* below the highest seen, 99999 */
    for (uint64_t s = 1; s <= n; s++)
        if (s % 8 == 0 || s % 8 == 3 || s % 8 == 6)
            ck_assert_int_eq(ferry_ledger_add(l, "p", s), 1);
    struct ferry_ledger_totals t = totals(l);
    ck_assert_uint_eq(t.unique, n);
    ck_assert_uint_eq(t.missing, 0);
    ck_assert_uint_eq(t.duplicates, 0);
    ferry_ledger_free(l);
}
END_TEST

START_TEST(test_given_up_gaps_are_not_duplicates)
{
    struct ferry_ledger *l = ferry_ledger_new(8, 0);
    for (uint64_t s = 2; s <= 40; s += 2) /* 20 holes, 8 ranges kept */
        ferry_ledger_add(l, "p", s);
    ferry_ledger_add(l, "p", 3);  /* in a given-up gap: late, not a repeat */
    ferry_ledger_add(l, "p", 2);  /* a real repeat there: cannot be told */
    ferry_ledger_add(l, "p", 39); /* above the given-up part: exact */
    ferry_ledger_add(l, "p", 40); /* a real repeat, told */
    struct ferry_ledger_totals t = totals(l);
    ck_assert_uint_eq(t.received, 24);
    ck_assert_uint_eq(t.unique, 21);
    ck_assert_uint_eq(t.duplicates, 1);
    char *r = report(l);
    ck_assert_msg(strstr(r, "approximate up to seq") && strstr(r, "2 seqs arrived there later"),
                  "%s", r);
    free(r);
    ferry_ledger_free(l);
}
END_TEST

START_TEST(test_bad_input_refused)
{
    struct ferry_ledger *l = ferry_ledger_new(0, 0);
    ck_assert_int_eq(ferry_ledger_add(l, "p", 0), -1);
    ck_assert_int_eq(ferry_ledger_add(l, NULL, 1), -1);
    ck_assert_uint_eq(totals(l).received, 0);
    uint64_t v = 0;
    ck_assert(ferry_ledger_parse_seq("42", 2, &v) && v == 42);
    ck_assert(ferry_ledger_parse_seq("18446744073709551615", 20, &v) && v == UINT64_MAX);
    ck_assert(!ferry_ledger_parse_seq("18446744073709551616", 20, &v));
    ck_assert(!ferry_ledger_parse_seq("0", 1, &v));
    ck_assert(!ferry_ledger_parse_seq("-1", 2, &v));
    ck_assert(!ferry_ledger_parse_seq("", 0, &v));
    ck_assert(!ferry_ledger_parse_seq("1x", 2, &v));
    ferry_ledger_free(l);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ledger");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_in_order_is_complete);
    tcase_add_test(tc, test_gaps_are_missing_ranges);
    tcase_add_test(tc, test_duplicates_counted_and_listed);
    tcase_add_test(tc, test_out_of_order_merges);
    tcase_add_test(tc, test_producers_kept_apart);
    tcase_add_test(tc, test_bounded_ranges_and_producers);
    tcase_add_test(tc, test_stalled_partition_exact_unbounded);
    tcase_add_test(tc, test_given_up_gaps_are_not_duplicates);
    tcase_add_test(tc, test_bad_input_refused);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
