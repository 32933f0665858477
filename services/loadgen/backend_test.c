/* backend_test: unit tests for what the back ends share (backend.c): the
 * table, the comparison of a store's counters with the workload's record,
 * address parsing, feature ids and the back-off.  The peers themselves need
 * a running Redis or PostgreSQL and are exercised by bench/run.sh, whose
 * every run is verified.
 */
#include "backend.h"
#include "cv_err.h"
#include "cv_validate.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static void test_find(void **state)
{
    assert_string_equal(cv_backend_find("canvass")->name, "canvass");
    assert_string_equal(cv_backend_find("redis")->name, "redis");
    assert_string_equal(cv_backend_find("postgres")->name, "postgres");
    assert_null(cv_backend_find("mysql"));
    assert_null(cv_backend_find(""));
}

/* A workload of 3 features, two named, with votes acknowledged as given. */
static cv_workload_t *small_workload(void)
{
    cv_workload_opts_t o = {.features = 3, .users = 2, .zipf = 0, .seed = 7};
    cv_workload_t *w = cv_workload_new(&o);
    assert_non_null(w);
    assert_int_equal(cv_workload_set_feature_id(w, 0, "fa"), 0);
    assert_int_equal(cv_workload_set_feature_id(w, 1, "fb"), 0);
    /* feature 0: user 0 up, user 1 down; feature 1: user 0 up, then retracted */
    cv_vote_t v;
    const cv_vote_t want[] = {{0, 0, 1}, {0, 1, -1}, {1, 0, 1}, {1, 0, 0}};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        /* Mark the key in flight the way the run does, then end it. */
        int got = 0;
        for (int tries = 0; tries < 10000 && !got; tries++) {
            assert_int_equal(cv_workload_next(w, &v), 1);
            if (v.feature == want[i].feature && v.user == want[i].user)
                got = 1;
            else
                cv_workload_done(w, &v, CV_VOTE_REJECTED);
        }
        assert_true(got);
        v.value = want[i].value;
        cv_workload_done(w, &v, CV_VOTE_STORED);
    }
    return w;
}

static void test_compare_match_and_mismatch(void **state)
{
    cv_workload_t *w = small_workload();
    cv_report_t rep;
    cv_report_init(&rep);
    char buf[1024] = "";
    FILE *out = fmemopen(buf, sizeof buf, "w");
    assert_non_null(out);

    /* fb's votes were all retracted: a store with no row for it matches. */
    cv_counts_t have[3] = {{true, 1, 1, 2}, {false, 0, 0, 0}, {false, 0, 0, 0}};
    assert_int_equal(cv_backend_compare(w, have, 0, &rep, out), 0);
    assert_int_equal(rep.verify, CV_VERIFY_OK);
    assert_int_equal(rep.verify_features, 2);
    assert_int_equal(rep.verify_mismatches, 0);

    have[0].up = 2; /* a vote the loadgen never had acknowledged */
    assert_int_equal(cv_backend_compare(w, have, 0, &rep, out), CV_EMISMATCH);
    assert_int_equal(rep.verify, CV_VERIFY_MISMATCH);
    assert_int_equal(rep.verify_mismatches, 1);
    have[0].up = 1;
    have[0].voters = 3;
    assert_int_equal(cv_backend_compare(w, have, 0, &rep, out), CV_EMISMATCH);

    /* The caller's own findings count too. */
    have[0].voters = 2;
    assert_int_equal(cv_backend_compare(w, have, 1, &rep, out), CV_EMISMATCH);
    assert_int_equal(rep.verify_mismatches, 1);
    fclose(out);
    assert_non_null(strstr(buf, "verify: fa: store has up 2 down 1 voters 2; want up 1 down 1 "
                                "voters 2"));
    cv_workload_destroy(&w);
}

static void test_split_hostport(void **state)
{
    char host[64];
    int port = 0;
    assert_int_equal(cv_backend_split_hostport("127.0.0.1:6379", host, sizeof host, &port), 0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 6379);
    assert_int_equal(cv_backend_split_hostport("[::1]:5432", host, sizeof host, &port), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 5432);
    const char *bad[] = {"", "host", ":80", "host:", "host:0", "host:65536", "host:12x",
                         "[::1:80", "[]:80"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(cv_backend_split_hostport(bad[i], host, sizeof host, &port), CV_EINVAL);
    char tiny[4];
    assert_int_equal(cv_backend_split_hostport("localhost:1", tiny, sizeof tiny, &port), CV_EINVAL);
}

static void test_feature_ids_are_valid_and_distinct(void **state)
{
    char a[32], b[32];
    cv_backend_feature_id(a);
    cv_backend_feature_id(b);
    assert_true(cv_feature_id_valid(a, strlen(a)));
    assert_true(cv_feature_id_valid(b, strlen(b)));
    assert_string_not_equal(a, b);
}

static void test_backoff(void **state)
{
    assert_int_equal(cv_backend_backoff_ms(1), 50);
    assert_int_equal(cv_backend_backoff_ms(2), 100);
    assert_int_equal(cv_backend_backoff_ms(3), 200);
    assert_int_equal(cv_backend_backoff_ms(7), 2000);
    assert_int_equal(cv_backend_backoff_ms(1000), 2000);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_find),
        cmocka_unit_test(test_compare_match_and_mismatch),
        cmocka_unit_test(test_split_hostport),
        cmocka_unit_test(test_feature_ids_are_valid_and_distinct),
        cmocka_unit_test(test_backoff),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
