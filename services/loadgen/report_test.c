/* report_test: unit tests for the loadgen's latency histogram and report
 * (report.c): exact percentiles for small values, the promised relative
 * error for large ones, the text report's verdict lines, and the JSON report
 * read back with jansson.
 */
#include "report.h"
#include "cv_codec.h"

#include <jansson.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

static cv_hist_t h; /* 58 KiB: not on the stack */

static void test_hist_small_values_exact(void **state)
{
    cv_hist_init(&h);
    assert_int_equal(cv_hist_quantile(&h, 0.5), 0);
    for (uint64_t v = 1; v <= 100; v++)
        cv_hist_add(&h, v);
    assert_int_equal(h.n, 100);
    assert_int_equal(h.min, 1);
    assert_int_equal(h.max, 100);
    assert_int_equal(cv_hist_quantile(&h, 0.0), 1);
    assert_int_equal(cv_hist_quantile(&h, 0.5), 50);
    assert_int_equal(cv_hist_quantile(&h, 0.99), 99);
    assert_int_equal(cv_hist_quantile(&h, 0.999), 100);
    assert_int_equal(cv_hist_quantile(&h, 1.0), 100);
    assert_true(fabs(cv_hist_mean(&h) - 50.5) < 1e-9);
}

static void test_hist_relative_error(void **state)
{
    /* Over 1 .. 2^40, the median of {v, v, huge} is v's bucket top, which
     * is never below v and at most 1/128 above it. */
    for (uint64_t v = 1; v < (1ULL << 40); v = v * 3 + 1) {
        for (uint64_t d = 0; d < 3; d++) {
            uint64_t x = v + d;
            cv_hist_init(&h);
            cv_hist_add(&h, x);
            cv_hist_add(&h, x);
            cv_hist_add(&h, 1ULL << 50);
            uint64_t q = cv_hist_quantile(&h, 0.5);
            assert_true(q >= x);
            assert_true((double)q <= (double)x * (1.0 + 1.0 / 128));
        }
    }
    /* The top of the range is capped at the exact maximum. */
    cv_hist_init(&h);
    cv_hist_add(&h, 1000003);
    assert_int_equal(cv_hist_quantile(&h, 0.999), 1000003);
    cv_hist_add(&h, UINT64_MAX);
    assert_int_equal(cv_hist_quantile(&h, 1.0), UINT64_MAX);
}

static void test_hist_tail(void **state)
{
    cv_hist_init(&h);
    for (int i = 0; i < 990; i++)
        cv_hist_add(&h, 1000);
    for (int i = 0; i < 10; i++)
        cv_hist_add(&h, 50000);
    uint64_t p99 = cv_hist_quantile(&h, 0.99), p999 = cv_hist_quantile(&h, 0.999);
    assert_true(p99 >= 1000 && p99 < 1010);
    assert_true(p999 >= 50000 && p999 <= 50000);
}

static cv_report_t rep;

static void fill_report(void)
{
    cv_report_init(&rep);
    rep.server = "127.0.0.1:7700";
    rep.connections = 50;
    rep.depth = 32;
    rep.features = 3;
    rep.users = 100;
    rep.votes_target = 1000;
    rep.zipf = 1.1;
    rep.features_created = 3;
    rep.sent = 1000;
    rep.finished = 1000;
    rep.by_status[CV_ST_OK] = 990;
    rep.by_status[CV_ST_NOT_FOUND] = 10;
    rep.retries = 4;
    rep.retries_unavailable = 4;
    rep.wall_s = 0.5;
    for (int i = 0; i < 990; i++)
        cv_hist_add(&rep.latency, 200);
    rep.verify = CV_VERIFY_OK;
    rep.verify_features = 3;
}

static char *print_report(void)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    cv_report_print(&rep, f);
    fclose(f);
    return buf;
}

static void test_text_report(void **state)
{
    fill_report();
    assert_true(fabs(cv_report_rate(&rep) - 1980) < 1e-9);
    char *text = print_report();
    assert_non_null(strstr(text, "throughput:  1980 acknowledged votes/s (990 OK in 0.500 s)\n"));
    assert_non_null(strstr(text, "latency us:  p50 200  p99 200  p99.9 200  max 200"));
    assert_non_null(strstr(text, "status:      OK 990 NOT_FOUND 10\n"));
    assert_non_null(strstr(text, "\nverify: ok 3 features\n"));
    assert_null(strstr(text, "FAILED"));
    free(text);

    rep.verify = CV_VERIFY_MISMATCH;
    rep.verify_mismatches = 2;
    snprintf(rep.failure, sizeof rep.failure, "no answer");
    text = print_report();
    assert_non_null(strstr(text, "FAILED:      no answer\n"));
    assert_non_null(strstr(text, "verify: FAILED, 2 of 3 features differ\n"));
    free(text);
}

static void test_json_report(void **state)
{
    fill_report();
    char path[] = "/tmp/loadgen-report-test-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(cv_report_write_json(&rep, path), 0);
    json_error_t err;
    json_t *o = json_load_file(path, 0, &err);
    unlink(path);
    assert_non_null(o);
    assert_int_equal(json_integer_value(json_object_get(o, "acked_ok")), 990);
    assert_int_equal(json_integer_value(json_object_get(o, "votes_target")), 1000);
    assert_true(json_is_null(json_object_get(o, "duration_s")));
    assert_true(fabs(json_real_value(json_object_get(o, "acked_votes_per_s")) - 1980) < 1e-6);
    json_t *lat = json_object_get(o, "latency_us");
    assert_int_equal(json_integer_value(json_object_get(lat, "p50")), 200);
    assert_int_equal(json_integer_value(json_object_get(lat, "samples")), 990);
    json_t *st = json_object_get(o, "status");
    assert_int_equal(json_integer_value(json_object_get(st, "OK")), 990);
    assert_int_equal(json_integer_value(json_object_get(st, "NOT_FOUND")), 10);
    assert_null(json_object_get(st, "UNAVAILABLE"));
    assert_int_equal(json_integer_value(json_object_get(o, "retries")), 4);
    assert_string_equal(json_string_value(json_object_get(o, "verify")), "ok");
    assert_true(json_is_null(json_object_get(o, "failure")));
    json_decref(o);

    assert_int_not_equal(cv_report_write_json(&rep, "/nonexistent-dir/report.json"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hist_small_values_exact),
        cmocka_unit_test(test_hist_relative_error),
        cmocka_unit_test(test_hist_tail),
        cmocka_unit_test(test_text_report),
        cmocka_unit_test(test_json_report),
    };
    return cmocka_run_group_tests_name("loadgen_report", tests, NULL, NULL);
}
