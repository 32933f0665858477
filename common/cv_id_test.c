/* cv_id_test: hybrid-clock stamps and feature ids. */
#include "cv_id.h"
#include "cv_validate.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#define NODE(stamp) ((uint32_t)((stamp) >> 12 & CV_NODE_MAX))
#define COUNTER(stamp) ((uint32_t)((stamp)&0xFFF))
#define STAMP(ms, node, counter) ((uint64_t)(ms) << 22 | (uint64_t)(node) << 12 | (counter))

static void test_now_ms(void **state)
{
    (void)state;
    uint64_t before = (uint64_t)time(NULL) * 1000;
    uint64_t now = cv_now_ms();
    uint64_t after = ((uint64_t)time(NULL) + 1) * 1000;
    assert_true(now >= before && now <= after);
}

/* 100 000 stamps come far faster than one per millisecond, so this also
 * runs the 12-bit counter past 4096 within a millisecond many times. */
static void test_stamps_increase(void **state)
{
    (void)state;
    static const uint32_t nodes[] = {0, 1, 513, CV_NODE_MAX};
    for (size_t k = 0; k < sizeof nodes / sizeof nodes[0]; k++) {
        cv_clock_t c;
        cv_clock_init(&c, nodes[k]);
        uint64_t start = cv_now_ms(), prev = 0;
        for (int i = 0; i < 100000; i++) {
            uint64_t s = cv_clock_stamp(&c);
            if (s <= prev)
                fail_msg("node %u: stamp %d (%llu) not above %llu", nodes[k], i,
                         (unsigned long long)s, (unsigned long long)prev);
            if (NODE(s) != nodes[k])
                fail_msg("node %u: stamp %d carries node %u", nodes[k], i, NODE(s));
            prev = s;
        }
        /* The clock may run ahead of the wall by at most stamps/4096 ms. */
        uint64_t end = cv_now_ms();
        assert_true(cv_stamp_ms(prev) >= start);
        assert_true(cv_stamp_ms(prev) <= end + 100000 / 4096 + 1);
        assert_int_equal(c.last, prev);
    }
}

/* The clock is ahead of the wall (after a burst, or the wall stepped back):
 * the counter goes on, and when it is full the stamp moves to the next ms. */
static void test_counter_overflow(void **state)
{
    (void)state;
    cv_clock_t c;
    cv_clock_init(&c, 77);
    uint64_t ahead = cv_now_ms() + 3600 * 1000; /* an hour ahead of the wall */

    c.last = STAMP(ahead, 77, 4094);
    uint64_t s = cv_clock_stamp(&c);
    assert_true(s == STAMP(ahead, 77, 4095));
    s = cv_clock_stamp(&c);
    assert_true(s == STAMP(ahead + 1, 77, 0)); /* not into the node bits */
    s = cv_clock_stamp(&c);
    assert_true(s == STAMP(ahead + 1, 77, 1));

    /* Node 1023, counter full: the carry must not touch the ms either. */
    cv_clock_init(&c, CV_NODE_MAX);
    c.last = STAMP(ahead, CV_NODE_MAX, 4095);
    s = cv_clock_stamp(&c);
    assert_true(s == STAMP(ahead + 1, CV_NODE_MAX, 0));

    /* Once the wall catches up, stamps follow it again. */
    cv_clock_init(&c, 5);
    c.last = STAMP(cv_now_ms() - 3600 * 1000, 5, 4095);
    s = cv_clock_stamp(&c);
    assert_int_equal(NODE(s), 5);
    assert_true(cv_stamp_ms(s) >= cv_now_ms() - 1000);
}

static int parse_base36(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    for (; *s; s++) {
        int d = *s >= '0' && *s <= '9' ? *s - '0' : *s >= 'a' && *s <= 'z' ? *s - 'a' + 10 : -1;
        if (d < 0)
            return -1;
        v = v * 36 + (uint64_t)d;
    }
    *out = v;
    return 0;
}

static void test_feature_id_known_values(void **state)
{
    (void)state;
    static const struct {
        uint64_t stamp;
        const char *id;
    } cases[] = {
        {0, "F0"},
        {35, "Fz"},
        {36, "F10"},
        {STAMP(1700000000000ULL, 5, 7), "F1i67yctfnu3gn"},
        {UINT64_MAX, "F3w5e11264sgsf"}, /* the longest id */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char id[CV_FEATURE_ID_CAP];
        memset(id, 'x', sizeof id);
        int n = cv_feature_id_format(cases[i].stamp, id);
        assert_string_equal(id, cases[i].id);
        assert_int_equal(n, strlen(cases[i].id));
    }
}

static void test_feature_id_format(void **state)
{
    (void)state;
    cv_clock_t c;
    cv_clock_init(&c, 42);
    char prev[CV_FEATURE_ID_CAP] = "";
    for (int i = 0; i < 100000; i++) {
        uint64_t s = cv_clock_stamp(&c), back;
        char id[CV_FEATURE_ID_CAP];
        int n = cv_feature_id_format(s, id);
        assert_int_equal(n, strlen(id));
        assert_true(n >= 2 && n < CV_FEATURE_ID_CAP);
        assert_int_equal(id[0], 'F');
        for (int k = 1; k < n; k++)
            if (!((id[k] >= 'a' && id[k] <= 'z') || (id[k] >= '0' && id[k] <= '9')))
                fail_msg("id %s has '%c' after F", id, id[k]);
        if (!cv_feature_id_valid(id, (size_t)n))
            fail_msg("id %s is not a valid feature id", id);
        /* The id gives back its stamp, so distinct stamps give distinct ids. */
        assert_int_equal(parse_base36(id + 1, &back), 0);
        assert_true(back == s);
        assert_string_not_equal(id, prev);
        /* Same-length ids of later stamps sort later. */
        if (strlen(prev) == (size_t)n)
            assert_true(strcmp(prev, id) < 0);
        memcpy(prev, id, sizeof id);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_now_ms),
        cmocka_unit_test(test_stamps_increase),
        cmocka_unit_test(test_counter_overflow),
        cmocka_unit_test(test_feature_id_known_values),
        cmocka_unit_test(test_feature_id_format),
    };
    return cmocka_run_group_tests_name("cv_id", tests, NULL, NULL);
}
