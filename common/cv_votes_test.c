/* Unit tests for cv_votes: the exact byte layout of the shard records (other
 * tools read these files), the votes key, the vote-is-state decision and the
 * counters, including a randomised check that incrementally moved counters
 * always equal a recount of the final votes.
 *
 * Run all: cv_votes_test; only those matching a pattern: cv_votes_test 'test_key*'. */
#include "cv_err.h"
#include "cv_votes.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static void test_vote_rec_layout(void **state)
{
    cv_vote_rec_t r = {.value = -1, .tier = CV_TIER_HONORARY, .stamp = 0x0102030405060708ULL};
    uint8_t buf[CV_VOTE_REC_SIZE];
    cv_vote_rec_encode(&r, buf);
    const uint8_t want[CV_VOTE_REC_SIZE] = {0xff, 2, 8, 7, 6, 5, 4, 3, 2, 1};
    assert_memory_equal(buf, want, sizeof want);

    cv_vote_rec_t back = {0};
    assert_int_equal(cv_vote_rec_decode(buf, sizeof buf, &back), 0);
    assert_int_equal(back.value, -1);
    assert_int_equal(back.tier, CV_TIER_HONORARY);
    assert_true(back.stamp == r.stamp);
}

static void test_vote_rec_rejects_bad(void **state)
{
    uint8_t buf[CV_VOTE_REC_SIZE] = {1, 0, 1, 0, 0, 0, 0, 0, 0, 0};
    cv_vote_rec_t r = {.value = 0, .tier = 0, .stamp = 99};
    assert_int_equal(cv_vote_rec_decode(buf, sizeof buf - 1, &r), CV_EDECODE);
    assert_int_equal(cv_vote_rec_decode(buf, sizeof buf + 0, &r), 0);
    assert_int_equal(r.value, 1);

    r.stamp = 99;
    buf[0] = 2; /* value out of range */
    assert_int_equal(cv_vote_rec_decode(buf, sizeof buf, &r), CV_EDECODE);
    buf[0] = 0xfe; /* -2 */
    assert_int_equal(cv_vote_rec_decode(buf, sizeof buf, &r), CV_EDECODE);
    buf[0] = 0;
    buf[1] = CV_TIERS; /* unknown tier */
    assert_int_equal(cv_vote_rec_decode(buf, sizeof buf, &r), CV_EDECODE);
    assert_true(r.stamp == 99); /* untouched on failure */
}

static void test_counts_layout(void **state)
{
    cv_counts_t c = {.up = {1, 2, 3}, .down = {4, 5, 6}, .voters = 0x1122334455667788ULL};
    uint8_t buf[CV_COUNTS_REC_SIZE];
    cv_counts_encode(&c, buf);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(buf[8 * i], i + 1);
        for (int j = 1; j < 8; j++)
            assert_int_equal(buf[8 * i + j], 0);
    }
    assert_int_equal(buf[48], 0x88);
    assert_int_equal(buf[55], 0x11);

    cv_counts_t back;
    memset(&back, 0xaa, sizeof back);
    assert_int_equal(cv_counts_decode(buf, sizeof buf, &back), 0);
    assert_true(cv_counts_equal(&back, &c));
    assert_int_equal(cv_counts_decode(buf, sizeof buf - 8, &back), CV_EDECODE);
}

static void test_u64(void **state)
{
    uint8_t buf[CV_U64_SIZE];
    cv_u64_encode(0x8000000000000001ULL, buf);
    assert_int_equal(buf[0], 1);
    assert_int_equal(buf[7], 0x80);
    uint64_t v = 0;
    assert_int_equal(cv_u64_decode(buf, sizeof buf, &v), 0);
    assert_true(v == 0x8000000000000001ULL);
    assert_int_equal(cv_u64_decode(buf, 4, &v), CV_EDECODE);
}

static void test_be64(void **state)
{
    uint8_t a[CV_BE64_SIZE], b[CV_BE64_SIZE];
    cv_be64_encode(0x0102030405060708ULL, a);
    const uint8_t want[CV_BE64_SIZE] = {1, 2, 3, 4, 5, 6, 7, 8};
    assert_memory_equal(a, want, sizeof want);
    assert_true(cv_be64_decode(a) == 0x0102030405060708ULL);
    /* Byte order is numeric order, which is what LMDB sorts keys by. */
    cv_be64_encode(255, a);
    cv_be64_encode(256, b);
    assert_true(memcmp(a, b, sizeof a) < 0);
    cv_be64_encode(UINT64_MAX, a);
    assert_true(cv_be64_decode(a) == UINT64_MAX);
}

static void test_created_key(void **state)
{
    uint8_t key[CV_CREATED_KEY_MAX];
    size_t klen = 0;
    assert_int_equal(cv_created_key_make(0x0a0b, "Fxy", 3, key, &klen), 0);
    assert_int_equal(klen, CV_BE64_SIZE + 3);
    assert_memory_equal(key, "\0\0\0\0\0\0\x0a\x0b" "Fxy", klen);
    uint64_t stamp = 0;
    const char *f;
    size_t flen;
    assert_int_equal(cv_created_key_split(key, klen, &stamp, &f, &flen), 0);
    assert_true(stamp == 0x0a0b);
    assert_int_equal(flen, 3);
    assert_memory_equal(f, "Fxy", 3);

    char big[CV_FEATURE_ID_MAX + 1];
    memset(big, 'x', sizeof big);
    assert_int_equal(cv_created_key_make(1, "", 0, key, &klen), CV_EINVAL);
    assert_int_equal(cv_created_key_make(1, big, CV_FEATURE_ID_MAX + 1, key, &klen), CV_EINVAL);
    assert_int_equal(cv_created_key_make(1, big, CV_FEATURE_ID_MAX, key, &klen), 0);
    assert_int_equal(klen, CV_CREATED_KEY_MAX);
    assert_int_equal(cv_created_key_split(key, CV_BE64_SIZE, &stamp, &f, &flen), CV_EDECODE);
    assert_int_equal(cv_created_key_split(key, 3, &stamp, &f, &flen), CV_EDECODE);
    assert_int_equal(cv_created_key_split(key, CV_CREATED_KEY_MAX + 1, &stamp, &f, &flen),
                     CV_EDECODE);
}

static void test_key_roundtrip(void **state)
{
    uint8_t key[CV_VOTE_KEY_MAX];
    size_t klen = 0;
    /* A user id may hold any bytes, even NUL: the first NUL still splits. */
    const char user[] = {'a', '\0', 'b'};
    assert_int_equal(cv_vote_key_make("Fabc", 4, user, sizeof user, key, &klen), 0);
    assert_int_equal(klen, 4 + 1 + 3);
    assert_memory_equal(key, "Fabc\0a\0b", klen);

    const char *f, *u;
    size_t flen, ulen;
    assert_int_equal(cv_vote_key_split(key, klen, &f, &flen, &u, &ulen), 0);
    assert_int_equal(flen, 4);
    assert_memory_equal(f, "Fabc", 4);
    assert_int_equal(ulen, 3);
    assert_memory_equal(u, user, 3);
}

static void test_key_limits(void **state)
{
    uint8_t key[CV_VOTE_KEY_MAX];
    size_t klen;
    char big[CV_USER_ID_MAX + 2];
    memset(big, 'x', sizeof big);
    assert_int_equal(cv_vote_key_make("", 0, "u", 1, key, &klen), CV_EINVAL);
    assert_int_equal(cv_vote_key_make("F", 1, "", 0, key, &klen), CV_EINVAL);
    assert_int_equal(cv_vote_key_make("F\0x", 3, "u", 1, key, &klen), CV_EINVAL);
    assert_int_equal(cv_vote_key_make(big, CV_FEATURE_ID_MAX + 1, "u", 1, key, &klen), CV_EINVAL);
    assert_int_equal(cv_vote_key_make("F", 1, big, CV_USER_ID_MAX + 1, key, &klen), CV_EINVAL);
    /* The largest key fits the buffer exactly. */
    assert_int_equal(cv_vote_key_make(big, CV_FEATURE_ID_MAX, big, CV_USER_ID_MAX, key, &klen), 0);
    assert_int_equal(klen, CV_VOTE_KEY_MAX);

    const char *f, *u;
    size_t flen, ulen;
    assert_int_equal(cv_vote_key_split("Fuser", 5, &f, &flen, &u, &ulen), CV_EDECODE);
    assert_int_equal(cv_vote_key_split("\0user", 5, &f, &flen, &u, &ulen), CV_EDECODE);
    assert_int_equal(cv_vote_key_split("F\0", 2, &f, &flen, &u, &ulen), CV_EDECODE);
}

static void test_decide(void **state)
{
    cv_vote_rec_t up_m = {1, CV_TIER_MEMBER, 100};
    cv_vote_rec_t r;

    /* Nothing stored. */
    r = (cv_vote_rec_t){1, CV_TIER_MEMBER, 5};
    assert_int_equal(cv_vote_decide(NULL, &r), CV_VOTE_CHANGE);
    r = (cv_vote_rec_t){0, CV_TIER_CORE, 5};
    assert_int_equal(cv_vote_decide(NULL, &r), CV_VOTE_SAME);

    /* Not newer: a resend (equal stamp) or a late older vote. */
    r = (cv_vote_rec_t){-1, CV_TIER_MEMBER, 100};
    assert_int_equal(cv_vote_decide(&up_m, &r), CV_VOTE_STALE);
    r.stamp = 99;
    assert_int_equal(cv_vote_decide(&up_m, &r), CV_VOTE_STALE);

    /* Newer. */
    r = (cv_vote_rec_t){1, CV_TIER_MEMBER, 101};
    assert_int_equal(cv_vote_decide(&up_m, &r), CV_VOTE_SAME);
    r = (cv_vote_rec_t){1, CV_TIER_CORE, 101};
    assert_int_equal(cv_vote_decide(&up_m, &r), CV_VOTE_CHANGE);
    r = (cv_vote_rec_t){-1, CV_TIER_MEMBER, 101};
    assert_int_equal(cv_vote_decide(&up_m, &r), CV_VOTE_CHANGE);
    r = (cv_vote_rec_t){0, CV_TIER_MEMBER, 101};
    assert_int_equal(cv_vote_decide(&up_m, &r), CV_VOTE_CHANGE);

    /* A retract over a retract changes nothing, whatever the tiers. */
    cv_vote_rec_t gone = {0, CV_TIER_MEMBER, 200};
    r = (cv_vote_rec_t){0, CV_TIER_HONORARY, 201};
    assert_int_equal(cv_vote_decide(&gone, &r), CV_VOTE_SAME);
    /* ... but a late resend of the vote it retracted stays out. */
    assert_int_equal(cv_vote_decide(&gone, &up_m), CV_VOTE_STALE);
}

static void test_counts_move(void **state)
{
    cv_counts_t c = {0};
    cv_vote_rec_t up_m = {1, CV_TIER_MEMBER, 1};
    cv_vote_rec_t down_c = {-1, CV_TIER_CORE, 2};
    cv_vote_rec_t gone = {0, CV_TIER_CORE, 3};

    assert_int_equal(cv_counts_move(&c, NULL, &up_m), 0);
    assert_true(c.up[CV_TIER_MEMBER] == 1 && c.voters == 1);
    assert_int_equal(cv_counts_move(&c, &up_m, &down_c), 0);
    assert_true(c.up[CV_TIER_MEMBER] == 0 && c.down[CV_TIER_CORE] == 1 && c.voters == 1);
    assert_int_equal(cv_counts_move(&c, &down_c, &gone), 0);
    cv_counts_t zero = {0};
    assert_true(cv_counts_equal(&c, &zero));
    /* A retract over a retract moves nothing. */
    assert_int_equal(cv_counts_move(&c, &gone, &gone), 0);
    assert_true(cv_counts_equal(&c, &zero));

    /* Counters out of step: reported, never wrapped below zero. */
    assert_int_equal(cv_counts_move(&c, &down_c, NULL), CV_EINVAL);
    assert_true(cv_counts_equal(&c, &zero));
}

/* Plays random votes (with stale resends) for a few users through
 * decide + move, as the shard does, and checks the counters against a
 * recount of the stored records after every step. */
static void test_counts_match_recount(void **state)
{
    enum { USERS = 7, STEPS = 5000 };
    cv_vote_rec_t stored[USERS];
    int has[USERS] = {0};
    cv_counts_t c = {0};
    uint64_t clock = 1000;
    srand(12345);
    for (int step = 0; step < STEPS; step++) {
        int u = rand() % USERS;
        cv_vote_rec_t next = {(int8_t)(rand() % 3 - 1), (uint8_t)(rand() % CV_TIERS), 0};
        /* One in four commands is a late resend with an old stamp. */
        next.stamp = rand() % 4 == 0 ? clock - (uint64_t)(rand() % 50) : ++clock;
        const cv_vote_rec_t *old = has[u] ? &stored[u] : NULL;
        cv_vote_outcome_t o = cv_vote_decide(old, &next);
        if (o == CV_VOTE_STALE) {
            assert_non_null(old);
            assert_true(old->stamp >= next.stamp);
            continue;
        }
        if (o == CV_VOTE_CHANGE)
            assert_int_equal(cv_counts_move(&c, old, &next), 0);
        stored[u] = next;
        has[u] = 1;

        cv_counts_t want = {0};
        for (int i = 0; i < USERS; i++)
            if (has[i])
                assert_int_equal(cv_counts_move(&want, NULL, &stored[i]), 0);
        assert_true(cv_counts_equal(&c, &want));
    }
}

static void test_trend_layout(void **state)
{
    cv_trend_t tr = {.cycle = 7, .base_ms = 0x0102030405060708ULL, .gain = {1.0, -2.5, 0.0}};
    uint8_t buf[CV_TREND_REC_SIZE];
    cv_trend_encode(&tr, buf);
    assert_int_equal(buf[0], 7);
    assert_int_equal(buf[8], 0x08);
    assert_int_equal(buf[15], 0x01);
    /* 1.0 is 0x3ff0000000000000, little-endian. */
    const uint8_t one[8] = {0, 0, 0, 0, 0, 0, 0xf0, 0x3f};
    assert_memory_equal(buf + 16, one, 8);

    cv_trend_t back;
    assert_int_equal(cv_trend_decode(buf, sizeof buf, &back), 0);
    assert_true(back.cycle == 7 && back.base_ms == tr.base_ms);
    assert_true(back.gain[0] == 1.0 && back.gain[1] == -2.5 && back.gain[2] == 0.0);

    assert_int_equal(cv_trend_decode(buf, sizeof buf - 1, &back), CV_EDECODE);
    /* A NaN gain (all exponent and mantissa bits set) is refused. */
    memset(buf + 24, 0xff, 8);
    back.cycle = 99;
    assert_int_equal(cv_trend_decode(buf, sizeof buf, &back), CV_EDECODE);
    assert_true(back.cycle == 99);
}

/* Half-life 1000 ms from base 10000: an up vote at 11000 weighs 2, a down
 * vote at 12000 weighs -4; re-cast from member to core at 12000 moves 4
 * from member to core. */
static void test_trend_math(void **state)
{
    const uint64_t hl = 1000;
    cv_trend_t tr = {.cycle = 1, .base_ms = 10000};
    cv_vote_rec_t up = {1, CV_TIER_MEMBER, 0}, down = {-1, CV_TIER_MEMBER, 0};
    cv_vote_rec_t up_core = {1, CV_TIER_CORE, 0}, gone = {0, CV_TIER_MEMBER, 0};

    cv_trend_add(&tr, NULL, &up, 11000, hl);
    assert_float_equal(tr.gain[0], 2.0, 1e-12);
    cv_trend_add(&tr, NULL, &down, 12000, hl);
    assert_float_equal(tr.gain[0], -2.0, 1e-12);
    cv_trend_add(&tr, &up, &up_core, 12000, hl);
    assert_float_equal(tr.gain[0], -6.0, 1e-12);
    assert_float_equal(tr.gain[1], 4.0, 1e-12);
    cv_trend_add(&tr, &gone, &gone, 12000, hl); /* no change in any tier */
    assert_float_equal(tr.gain[0], -6.0, 1e-12);

    /* At 12000: the gains decay by 2^-2. */
    assert_float_equal(cv_trend_at(&tr, CV_TIER_MEMBER, 12000, hl), -1.5, 1e-12);
    assert_float_equal(cv_trend_at(&tr, CV_TIER_CORE, 13000, hl), 0.5, 1e-12);
    assert_float_equal(cv_trend_at(&tr, CV_TIER_HONORARY, 13000, hl), 0.0, 1e-12);
    /* A time before the base counts as the base. */
    assert_float_equal(cv_trend_at(&tr, CV_TIER_CORE, 5000, hl), 4.0, 1e-12);
    assert_float_equal(cv_trend_at(&tr, 7, 13000, hl), 0.0, 1e-12);
}

/* Far past the base the record is rebased, and the values are those of
 * the plain sum of decayed changes. */
static void test_trend_rebase(void **state)
{
    const uint64_t hl = 1000;
    cv_trend_t tr = {.cycle = 1, .base_ms = 0};
    cv_vote_rec_t up = {1, CV_TIER_MEMBER, 0};
    cv_trend_add(&tr, NULL, &up, 20000, hl); /* 2^20: no rebase */
    assert_true(tr.base_ms == 0);
    cv_trend_add(&tr, NULL, &up, 2000000, hl); /* 2^2000 would overflow */
    assert_true(tr.base_ms == 2000000);
    assert_true(isfinite(tr.gain[0]));
    assert_float_equal(cv_trend_at(&tr, CV_TIER_MEMBER, 2000000, hl), 1.0, 1e-12);
    cv_trend_add(&tr, NULL, &up, 2001000, hl);
    assert_float_equal(cv_trend_at(&tr, CV_TIER_MEMBER, 2001000, hl), 1.5, 1e-12);
    assert_float_equal(cv_trend_at(&tr, CV_TIER_MEMBER, 10000000, hl), 0.0, 1e-12);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vote_rec_layout),
        cmocka_unit_test(test_vote_rec_rejects_bad),
        cmocka_unit_test(test_counts_layout),
        cmocka_unit_test(test_be64),
        cmocka_unit_test(test_created_key),
        cmocka_unit_test(test_u64),
        cmocka_unit_test(test_key_roundtrip),
        cmocka_unit_test(test_key_limits),
        cmocka_unit_test(test_decide),
        cmocka_unit_test(test_counts_move),
        cmocka_unit_test(test_counts_match_recount),
        cmocka_unit_test(test_trend_layout),
        cmocka_unit_test(test_trend_math),
        cmocka_unit_test(test_trend_rebase),
    };
    return cmocka_run_group_tests_name("cv_votes", tests, NULL, NULL);
}
