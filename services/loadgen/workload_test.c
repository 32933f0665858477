/* workload_test: unit tests for the loadgen's vote stream and record
 * (workload.c): the random number generator, the Zipf CDF and its search,
 * the one-vote-in-flight-per-key rule, and the expected counts, which are
 * checked against a plain array model over a long random history.
 */
#include "workload.h"
#include "cv_err.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static void test_rng_repeatable_and_bounded(void **state)
{
    cv_rng_t a, b, c;
    cv_rng_seed(&a, 42);
    cv_rng_seed(&b, 42);
    cv_rng_seed(&c, 43);
    int differ = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t x = cv_rng_next(&a);
        assert_int_equal(x, cv_rng_next(&b));
        differ += x != cv_rng_next(&c);
    }
    assert_true(differ > 990);

    uint64_t counts[7] = {0};
    for (int i = 0; i < 70000; i++) {
        uint64_t v = cv_rng_below(&a, 7);
        assert_true(v < 7);
        counts[v]++;
        double u = cv_rng_unit(&a);
        assert_true(u >= 0 && u < 1);
    }
    for (int i = 0; i < 7; i++) /* 10000 expected, sd ~93 */
        assert_true(counts[i] > 9500 && counts[i] < 10500);
}

static void test_zipf_uniform(void **state)
{
    cv_zipf_t z;
    assert_int_equal(cv_zipf_init(&z, 4, 0), 0);
    for (size_t i = 0; i < 4; i++)
        assert_true(fabs(z.cdf[i] - (double)(i + 1) / 4) < 1e-12);
    assert_int_equal(cv_zipf_pick(&z, 0.0), 0);
    assert_int_equal(cv_zipf_pick(&z, 0.2499), 0);
    assert_int_equal(cv_zipf_pick(&z, 0.25), 1); /* first i with cdf[i] > u */
    assert_int_equal(cv_zipf_pick(&z, 0.74), 2);
    assert_int_equal(cv_zipf_pick(&z, 0.9999999), 3);
    cv_zipf_free(&z);
    assert_null(z.cdf);
}

static void test_zipf_skewed(void **state)
{
    cv_zipf_t z;
    const size_t n = 1000;
    const double s = 1.1;
    assert_int_equal(cv_zipf_init(&z, n, s), 0);
    double h = 0;
    for (size_t i = 1; i <= n; i++)
        h += pow((double)i, -s);
    assert_true(fabs(z.cdf[0] - 1 / h) < 1e-12);
    assert_true(fabs(z.cdf[1] - (1 + pow(2, -s)) / h) < 1e-12);
    assert_true(z.cdf[n - 1] == 1.0);
    for (size_t i = 1; i < n; i++)
        assert_true(z.cdf[i] > z.cdf[i - 1]);

    /* Sampled frequencies of the top ranks follow the weights. */
    cv_rng_t r;
    cv_rng_seed(&r, 7);
    const int samples = 200000;
    int top[3] = {0};
    for (int i = 0; i < samples; i++) {
        size_t k = cv_zipf_pick(&z, cv_rng_unit(&r));
        assert_true(k < n);
        if (k < 3)
            top[k]++;
    }
    for (int k = 0; k < 3; k++) {
        double want = pow(k + 1, -s) / h * samples;
        assert_true(fabs(top[k] - want) < 0.03 * want);
    }
    assert_true(top[0] > top[1] && top[1] > top[2]);
    cv_zipf_free(&z);
}

static void test_zipf_rejects_bad_input(void **state)
{
    cv_zipf_t z;
    assert_int_equal(cv_zipf_init(&z, 0, 1.0), CV_EINVAL);
    assert_int_equal(cv_zipf_init(&z, 10, -0.5), CV_EINVAL);
    assert_int_equal(cv_zipf_init(&z, 10, NAN), CV_EINVAL);
    assert_int_equal(cv_zipf_init(&z, 10, INFINITY), CV_EINVAL);
    assert_int_equal(cv_zipf_init(&z, 1, 3.0), 0);
    assert_int_equal(cv_zipf_pick(&z, 0.5), 0);
    cv_zipf_free(&z);
}

static cv_workload_t *make(size_t features, uint32_t users, double retract, double down)
{
    cv_workload_opts_t o = {features, users, 1.1, retract, down, 99};
    cv_workload_t *w = cv_workload_new(&o);
    assert_non_null(w);
    return w;
}

static void test_bad_options(void **state)
{
    cv_workload_opts_t o = {10, 10, 1.0, 0.6, 0.6, 1};
    assert_null(cv_workload_new(&o)); /* shares over 1 */
    o.retract_share = -0.1;
    o.down_share = 0;
    assert_null(cv_workload_new(&o));
    o.retract_share = 0;
    o.users = 0;
    assert_null(cv_workload_new(&o));
    o.users = 1;
    o.features = 0;
    assert_null(cv_workload_new(&o));
}

static void test_feature_ids(void **state)
{
    cv_workload_t *w = make(3, 10, 0, 0);
    assert_null(cv_workload_feature_id(w, 0));
    assert_int_equal(cv_workload_set_feature_id(w, 0, "Fabc_12-x"), 0);
    assert_string_equal(cv_workload_feature_id(w, 0), "Fabc_12-x");
    assert_int_equal(cv_workload_set_feature_id(w, 0, "Fnew"), 0);
    assert_string_equal(cv_workload_feature_id(w, 0), "Fnew");
    assert_int_equal(cv_workload_set_feature_id(w, 3, "F1"), CV_EINVAL);
    assert_int_equal(cv_workload_set_feature_id(w, 1, "bad id"), CV_EINVAL);
    assert_int_equal(cv_workload_set_feature_id(w, 1, ""), CV_EINVAL);
    assert_null(cv_workload_feature_id(w, 1));
    assert_null(cv_workload_feature_id(w, 3));
    cv_workload_destroy(&w);
    assert_null(w);
    cv_workload_destroy(&w);
}

/* With one feature and two users, only two votes can be out at once; ending
 * one frees its key again. */
static void test_one_vote_in_flight_per_key(void **state)
{
    cv_workload_t *w = make(1, 2, 0, 0);
    cv_vote_t a, b, c;
    assert_int_equal(cv_workload_next(w, &a), 1);
    assert_int_equal(cv_workload_next(w, &b), 1);
    assert_int_equal(a.feature, 0);
    assert_int_equal(b.feature, 0);
    assert_int_not_equal(a.user, b.user);
    assert_int_equal(cv_workload_in_flight(w), 2);
    assert_int_equal(cv_workload_next(w, &c), 0);
    cv_workload_done(w, &a, CV_VOTE_STORED);
    assert_int_equal(cv_workload_in_flight(w), 1);
    assert_int_equal(cv_workload_next(w, &c), 1);
    assert_int_equal(c.user, a.user);
    assert_int_equal(cv_workload_keys(w), 2);
    cv_workload_destroy(&w);
}

static void test_record_follows_acks(void **state)
{
    cv_workload_t *w = make(1, 1, 0, 0);
    cv_expect_t e;
    cv_vote_t v;
    assert_int_equal(cv_workload_next(w, &v), 1);
    assert_int_equal(v.value, 1); /* no retract or down share */
    cv_workload_done(w, &v, CV_VOTE_STORED);
    cv_workload_expect(w, 0, &e);
    assert_int_equal(e.up, 1);
    assert_int_equal(e.down, 0);
    assert_int_equal(e.voters, 1);

    /* The same user votes down, then retracts: the record keeps one vote. */
    assert_int_equal(cv_workload_next(w, &v), 1);
    v.value = -1;
    cv_workload_done(w, &v, CV_VOTE_STORED);
    cv_workload_expect(w, 0, &e);
    assert_int_equal(e.up, 0);
    assert_int_equal(e.down, 1);
    assert_int_equal(e.voters, 1);

    assert_int_equal(cv_workload_next(w, &v), 1);
    v.value = 1;
    cv_workload_done(w, &v, CV_VOTE_REJECTED); /* not stored: no change */
    cv_workload_expect(w, 0, &e);
    assert_int_equal(e.down, 1);
    assert_int_equal(e.unknown, 0);

    assert_int_equal(cv_workload_next(w, &v), 1);
    v.value = 0;
    cv_workload_done(w, &v, CV_VOTE_STORED);
    cv_workload_expect(w, 0, &e);
    assert_int_equal(e.up + e.down + e.voters, 0);

    assert_int_equal(cv_workload_next(w, &v), 1);
    cv_workload_done(w, &v, CV_VOTE_UNKNOWN);
    cv_workload_expect(w, 0, &e);
    assert_int_equal(e.unknown, 1);
    assert_int_equal(e.up + e.down, 0);
    cv_workload_destroy(&w);
}

/* A long random history with many votes in flight at once, checked against
 * a plain features x users array, with the table growing several times. */
static void test_record_matches_model(void **state)
{
    enum { F = 40, U = 500, OUT = 300, STEPS = 200000 };
    cv_workload_t *w = make(F, U, 0.2, 0.3);
    static int8_t model[F][U];
    static cv_vote_t out[OUT];
    size_t nout = 0;
    uint64_t values[3] = {0};
    cv_rng_t r;
    cv_rng_seed(&r, 5);
    for (int step = 0; step < STEPS; step++) {
        if (nout < OUT && (nout == 0 || cv_rng_below(&r, 2))) {
            int got = cv_workload_next(w, &out[nout]);
            assert_true(got == 1);
            for (size_t i = 0; i < nout; i++) /* never a busy key */
                assert_false(out[i].feature == out[nout].feature &&
                             out[i].user == out[nout].user);
            values[out[nout].value + 1]++;
            nout++;
        } else {
            size_t i = (size_t)cv_rng_below(&r, nout);
            cv_vote_fate_t fate = cv_rng_below(&r, 10) ? CV_VOTE_STORED : CV_VOTE_REJECTED;
            cv_workload_done(w, &out[i], fate);
            if (fate == CV_VOTE_STORED)
                model[out[i].feature][out[i].user] = out[i].value;
            out[i] = out[--nout];
        }
    }
    assert_int_equal(cv_workload_in_flight(w), nout);
    size_t keys = 0;
    for (size_t f = 0; f < F; f++) {
        uint64_t up = 0, down = 0;
        for (size_t u = 0; u < U; u++) {
            up += model[f][u] > 0;
            down += model[f][u] < 0;
        }
        cv_expect_t e;
        cv_workload_expect(w, f, &e);
        assert_int_equal(e.up, up);
        assert_int_equal(e.down, down);
        assert_int_equal(e.voters, up + down);
        assert_int_equal(e.unknown, 0);
        keys += up + down;
    }
    assert_true(cv_workload_keys(w) >= keys);
    assert_true(cv_workload_keys(w) > 4096); /* the table grew past its first sizes */
    /* Shares: retract 0.2, down 0.3, up 0.5. */
    double n = (double)(values[0] + values[1] + values[2]);
    assert_true(fabs(values[1] / n - 0.2) < 0.01);
    assert_true(fabs(values[0] / n - 0.3) < 0.01);
    assert_true(fabs(values[2] / n - 0.5) < 0.01);
    cv_workload_destroy(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rng_repeatable_and_bounded),
        cmocka_unit_test(test_zipf_uniform),
        cmocka_unit_test(test_zipf_skewed),
        cmocka_unit_test(test_zipf_rejects_bad_input),
        cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_feature_ids),
        cmocka_unit_test(test_one_vote_in_flight_per_key),
        cmocka_unit_test(test_record_follows_acks),
        cmocka_unit_test(test_record_matches_model),
    };
    return cmocka_run_group_tests_name("loadgen_workload", tests, NULL, NULL);
}
