/* The id sets behind de-duplication: the per-batch table is emptied by
 * taking out what was put (newest first), whatever the collisions, and
 * stays usable batch after batch. */
#include "config.h"
#include "idset.h"

#include <check.h>
#include <stdlib.h>

static size_t occupied(const struct idset_gen *g)
{
    size_t k = 0;
    for (size_t i = 0; i < g->cap; i++)
        k += g->v[i] != 0;
    return k;
}

START_TEST(test_forget_empties_with_collisions)
{
    struct idset_gen g = {0};
    ck_assert_int_eq(idset_batch_init(&g, 500), 0); /* 1024 slots */
    ck_assert_uint_eq(g.cap, 1024);
    uint64_t h[300];
    /* every id lands in one of three home slots: long probe chains that
     * wrap around the end of the table */
    for (size_t i = 0; i < 300; i++)
        h[i] = (uint64_t)(i + 1) << 20 | (i % 3 == 0 ? 1022 : i % 3 == 1 ? 1023 : 5);
    for (int round = 0; round < 3; round++) {
        for (size_t i = 0; i < 300; i++)
            ck_assert(idset_batch_put(&g, h[i]));
        ck_assert(!idset_batch_put(&g, h[150])); /* twice in the batch */
        ck_assert_uint_eq(g.n, 300);
        ck_assert_uint_eq(occupied(&g), 300);
        ck_assert_uint_eq(idset_batch_forget(&g, h, 300), 300);
        ck_assert_uint_eq(g.n, 0);
        ck_assert_uint_eq(occupied(&g), 0);
    }
    free(g.v);
}
END_TEST

START_TEST(test_forget_skips_zero_and_clears_the_rest)
{
    struct idset_gen g = {0};
    ck_assert_int_eq(idset_batch_init(&g, 64), 0);
    uint64_t h[4] = {17, 0, 17 + 128, 33};
    ck_assert(idset_batch_put(&g, 17));
    ck_assert(idset_batch_put(&g, 17 + 128));
    ck_assert(idset_batch_put(&g, 33));
    ck_assert(idset_batch_put(&g, 99)); /* put, but not in the list */
    ck_assert_uint_eq(idset_batch_forget(&g, h, 4), 3);
    ck_assert_uint_eq(g.n, 0);
    ck_assert_uint_eq(occupied(&g), 0);
    ck_assert(idset_batch_put(&g, 99));
    free(g.v);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("idset");
    TCase *tc = tcase_create("idset");
    tcase_add_test(tc, test_forget_empties_with_collisions);
    tcase_add_test(tc, test_forget_skips_zero_and_clears_the_rest);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
