/* cv_ratelimit_test: token buckets and the bounded table, on a fake clock. */
#include "cv_err.h"
#include "cv_ratelimit.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#define MS 1000000ull
#define SEC 1000000000ull

static void test_rate_valid(void **state)
{
    (void)state;
    assert_true(cv_rate_valid(&(cv_rate_t){0, 1}));
    assert_true(cv_rate_valid(&(cv_rate_t){0.5, 1}));
    assert_true(cv_rate_valid(&(cv_rate_t){100000, 100000}));
    assert_false(cv_rate_valid(&(cv_rate_t){-1, 10}));
    assert_false(cv_rate_valid(&(cv_rate_t){10, 0.5}));
    assert_false(cv_rate_valid(&(cv_rate_t){INFINITY, 10}));
    assert_false(cv_rate_valid(&(cv_rate_t){NAN, 10}));
    assert_false(cv_rate_valid(&(cv_rate_t){10, NAN}));
    assert_false(cv_rate_valid(&(cv_rate_t){10, 2e9}));
    assert_false(cv_rate_valid(NULL));
}

/* A full bucket lets `burst` through at once, then one per 1/rate. */
static void test_bucket_burst_then_rate(void **state)
{
    (void)state;
    cv_rate_t r = {10, 5};
    cv_bucket_t b;
    uint64_t t = 7 * SEC;
    cv_bucket_init(&b, &r, t);
    for (int i = 0; i < 5; i++)
        assert_true(cv_bucket_take(&b, &r, t));
    assert_false(cv_bucket_take(&b, &r, t));
    assert_false(cv_bucket_take(&b, &r, t + 99 * MS)); /* 0.99 token */
    assert_true(cv_bucket_take(&b, &r, t + 100 * MS));
    assert_false(cv_bucket_take(&b, &r, t + 100 * MS));
    /* Over one second, 10 more, whatever the spacing. */
    int ok = 0;
    for (uint64_t ms = 101; ms <= 1100; ms++)
        ok += cv_bucket_take(&b, &r, t + ms * MS);
    assert_int_equal(ok, 10);
    /* A long pause refills to the burst, not beyond. */
    assert_true(cv_bucket_level(&b, &r, t + 3600 * SEC) == 5.0);
    ok = 0;
    for (int i = 0; i < 20; i++)
        ok += cv_bucket_take(&b, &r, t + 3600 * SEC);
    assert_int_equal(ok, 5);
}

/* A refused request takes nothing; a clock going back adds nothing. */
static void test_bucket_refusal_and_clock(void **state)
{
    (void)state;
    cv_rate_t r = {1, 1};
    cv_bucket_t b;
    cv_bucket_init(&b, &r, 10 * SEC);
    assert_true(cv_bucket_take(&b, &r, 10 * SEC));
    for (int i = 0; i < 100; i++)
        assert_false(cv_bucket_take(&b, &r, 10 * SEC + 500 * MS));
    assert_true(cv_bucket_take(&b, &r, 11 * SEC)); /* the refusals cost nothing */
    assert_false(cv_bucket_take(&b, &r, 5 * SEC)); /* earlier: no refill */
    assert_true(cv_bucket_take(&b, &r, 12 * SEC));
}

static void test_bucket_unlimited(void **state)
{
    (void)state;
    cv_rate_t r = {0, 1};
    cv_bucket_t b;
    cv_bucket_init(&b, &r, 0);
    for (int i = 0; i < 100000; i++)
        assert_true(cv_bucket_take(&b, &r, 0));
}

/* Keys have buckets of their own. */
static void test_table_per_key(void **state)
{
    (void)state;
    cv_ratelimit_t *rl = cv_ratelimit_new(&(cv_rate_t){2, 3}, 100);
    assert_non_null(rl);
    uint64_t t = SEC;
    for (int i = 0; i < 3; i++)
        assert_int_equal(cv_ratelimit_take(rl, "alice", 5, t), 1);
    assert_int_equal(cv_ratelimit_take(rl, "alice", 5, t), 0);
    assert_int_equal(cv_ratelimit_take(rl, "bob", 3, t), 1);
    assert_int_equal(cv_ratelimit_take(rl, "alic", 4, t), 1); /* a prefix is another key */
    assert_int_equal(cv_ratelimit_size(rl), 3);
    assert_int_equal(cv_ratelimit_take(rl, "alice", 5, t + 499 * MS), 0);
    assert_int_equal(cv_ratelimit_take(rl, "alice", 5, t + 500 * MS), 1);
    /* Keys are bytes: embedded NULs are part of the key. */
    assert_int_equal(cv_ratelimit_take(rl, "x\0y", 3, t), 1);
    assert_int_equal(cv_ratelimit_take(rl, "x\0z", 3, t), 1);
    assert_int_equal(cv_ratelimit_size(rl), 5);
    assert_true(cv_ratelimit_rate(rl)->rate == 2);
    cv_ratelimit_destroy(&rl);
    assert_null(rl);
    cv_ratelimit_destroy(&rl);
}

/* Many keys, far more than the capacity: the table never holds more than
 * its capacity, and a key that is over its limit and was used recently is
 * still limited afterwards. */
static void test_table_bounded(void **state)
{
    (void)state;
    cv_ratelimit_t *rl = cv_ratelimit_new(&(cv_rate_t){1, 2}, 1000);
    uint64_t t = SEC;
    char key[32];
    assert_int_equal(cv_ratelimit_take(rl, "hot", 3, t), 1);
    assert_int_equal(cv_ratelimit_take(rl, "hot", 3, t), 1);
    assert_int_equal(cv_ratelimit_take(rl, "hot", 3, t), 0);
    for (int i = 0; i < 100000; i++) {
        int n = snprintf(key, sizeof key, "user-%d", i);
        assert_int_equal(cv_ratelimit_take(rl, key, (size_t)n, t), 1);
        assert_true(cv_ratelimit_size(rl) <= 1000);
        if (i % 500 == 0) /* "hot" stays recently used, so it is kept */
            assert_int_equal(cv_ratelimit_take(rl, "hot", 3, t), 0);
    }
    assert_int_equal(cv_ratelimit_size(rl), 1000);
    assert_true(cv_ratelimit_early_evictions(rl) >= 99000);
    cv_ratelimit_destroy(&rl);
}

/* Keys idle long enough to refill are forgotten as new keys come, without
 * any early eviction: the table holds about the keys of the last burst/rate
 * seconds. */
static void test_table_sweeps_idle(void **state)
{
    (void)state;
    cv_ratelimit_t *rl = cv_ratelimit_new(&(cv_rate_t){10, 10}, 100000);
    char key[32];
    for (int i = 0; i < 50000; i++) {
        int n = snprintf(key, sizeof key, "u%d", i);
        /* 1000 new keys a second; a bucket refills 1 token in 100 ms */
        assert_int_equal(cv_ratelimit_take(rl, key, (size_t)n, (uint64_t)i * MS), 1);
    }
    assert_true(cv_ratelimit_size(rl) <= 200);
    assert_int_equal(cv_ratelimit_early_evictions(rl), 0);
    cv_ratelimit_destroy(&rl);
}

static void test_table_unlimited_keeps_nothing(void **state)
{
    (void)state;
    cv_ratelimit_t *rl = cv_ratelimit_new(&(cv_rate_t){0, 1}, 10);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(cv_ratelimit_take(rl, "k", 1, 0), 1);
    assert_int_equal(cv_ratelimit_size(rl), 0);
    cv_ratelimit_destroy(&rl);
}

static void test_table_bad_args(void **state)
{
    (void)state;
    assert_null(cv_ratelimit_new(&(cv_rate_t){1, 0}, 10));
    assert_null(cv_ratelimit_new(&(cv_rate_t){1, 1}, 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rate_valid),
        cmocka_unit_test(test_bucket_burst_then_rate),
        cmocka_unit_test(test_bucket_refusal_and_clock),
        cmocka_unit_test(test_bucket_unlimited),
        cmocka_unit_test(test_table_per_key),
        cmocka_unit_test(test_table_bounded),
        cmocka_unit_test(test_table_sweeps_idle),
        cmocka_unit_test(test_table_unlimited_keeps_nothing),
        cmocka_unit_test(test_table_bad_args),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
