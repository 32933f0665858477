/* cv_hash_test: FNV-1a-64 against published vectors, and the shard rule
 * every service must agree on (DESIGN B1). */
#include "cv_hash.h"
#include "cv_id.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#define NELEMS(a) (sizeof(a) / sizeof((a)[0]))

static void test_fnv1a64_vectors(void **state)
{
    (void)state;
    /* From the FNV reference test suite (Fowler/Noll/Vo). */
    assert_true(cv_fnv1a64("", 0) == 0xcbf29ce484222325ULL);
    assert_true(cv_fnv1a64("a", 1) == 0xaf63dc4c8601ec8cULL);
    assert_true(cv_fnv1a64("b", 1) == 0xaf63df4c8601f1a5ULL);
    assert_true(cv_fnv1a64("foobar", 6) == 0x85944171f73967e8ULL);
    /* Bytes are unsigned: high bits and NULs count. */
    assert_true(cv_fnv1a64("\xff\x00\x80", 3) == 0xf920891be415651eULL);
    assert_true(cv_fnv1a64(NULL, 0) == 0xcbf29ce484222325ULL);
    /* Only len bytes are read. */
    assert_true(cv_fnv1a64("foobarbaz", 6) == 0x85944171f73967e8ULL);
}

/* The shard of the test-vector feature id for 1..8 shards: fixed forever,
 * since a change would move every feature to another shard's store. */
static void test_shard_known_values(void **state)
{
    (void)state;
    static const uint32_t want[] = {0, 1, 1, 1, 1, 1, 0, 1}; /* n = 1..8 */
    assert_true(cv_fnv1a64("F1a2b3c", 7) == 0x9b2ace63c2472bf1ULL);
    for (uint32_t n = 1; n <= NELEMS(want); n++)
        assert_int_equal(cv_shard_for_feature("F1a2b3c", 7, n), want[n - 1]);
}

static void test_shard_stable_and_in_range(void **state)
{
    (void)state;
    char id[32];
    for (int i = 0; i < 2000; i++) {
        int len = snprintf(id, sizeof id, "feature-%d", i);
        uint64_t h = cv_fnv1a64(id, (size_t)len);
        assert_int_equal(cv_shard_for_feature(id, (size_t)len, 1), 0);
        for (uint32_t n = 2; n <= 64; n++) {
            uint32_t s = cv_shard_for_feature(id, (size_t)len, n);
            assert_true(s < n);
            assert_int_equal(s, (uint32_t)(h % n));
            assert_int_equal(cv_shard_for_feature(id, (size_t)len, n), s); /* stable */
        }
    }
}

/* Counts, for n shards, how 10 000 ids spread, and checks every shard gets
 * within 10% of its fair share (the worst case here is about 4%). */
static void check_spread(const char ids[][CV_FEATURE_ID_CAP], size_t count, const char *what)
{
    for (uint32_t n = 2; n <= 8; n++) {
        unsigned per[8] = {0};
        for (size_t i = 0; i < count; i++)
            per[cv_shard_for_feature(ids[i], strlen(ids[i]), n)]++;
        double fair = (double)count / n;
        for (uint32_t s = 0; s < n; s++)
            if (per[s] < fair * 0.9 || per[s] > fair * 1.1)
                fail_msg("%s over %u shards: shard %u has %u ids, fair share %.0f", what, n, s,
                         per[s], fair);
    }
}

static void test_spread(void **state)
{
    (void)state;
    static char ids[10000][CV_FEATURE_ID_CAP];
    /* Real feature ids: stamps a few per millisecond from node 3. */
    uint64_t base = (uint64_t)1700000000000 << 22 | (uint64_t)3 << 12;
    for (uint64_t i = 0; i < 10000; i++)
        cv_feature_id_format(base + (i / 5 << 22) + i % 5, ids[i]);
    check_spread((const char(*)[CV_FEATURE_ID_CAP])ids, 10000, "feature ids");
    /* Client-chosen looking ids. */
    for (int i = 0; i < 10000; i++)
        snprintf(ids[i], CV_FEATURE_ID_CAP, "feature-%d", i);
    check_spread((const char(*)[CV_FEATURE_ID_CAP])ids, 10000, "feature-N ids");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fnv1a64_vectors),
        cmocka_unit_test(test_shard_known_values),
        cmocka_unit_test(test_shard_stable_and_in_range),
        cmocka_unit_test(test_spread),
    };
    return cmocka_run_group_tests_name("cv_hash", tests, NULL, NULL);
}
