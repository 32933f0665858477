/* cv_metrics_test: the registry and its text format.
 *
 * Renders a registry with every kind of series and compares the whole text
 * with the exposition format 0.0.4; checks get-or-create, escaping, the
 * saturating gauge, NULL safety, and that counts stay exact while another
 * thread renders and several threads update at once.
 */
#include "cv_metrics.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static char *render(cv_metrics_t *m)
{
    size_t len = 0;
    char *text = cv_metrics_render(m, &len);
    assert_non_null(text);
    assert_int_equal(len, strlen(text));
    return text;
}

static void test_render(void **state)
{
    (void)state;
    cv_metrics_t *m = cv_metrics_new();
    assert_non_null(m);
    cv_metric_t *ok = cv_metrics_counter(m, "canvass_requests_total", "Requests, by status",
                                         "status", "OK", NULL);
    cv_metric_t *bad = cv_metrics_counter(m, "canvass_requests_total", "Requests, by status",
                                          "status", "INVALID", NULL);
    cv_metric_t *conns = cv_metrics_gauge(m, "canvass_connections", "Open connections", NULL);
    static const uint64_t bounds[] = {1, 10, 100};
    cv_histogram_t *h = cv_metrics_histogram(m, "canvass_batch_size", "Commands per commit",
                                             bounds, 3, NULL);
    assert_non_null(ok);
    assert_non_null(bad);
    assert_ptr_not_equal(ok, bad);
    /* The same name and labels give the same series back. */
    assert_ptr_equal(ok, cv_metrics_counter(m, "canvass_requests_total", "Requests, by status",
                                            "status", "OK", NULL));

    cv_metric_add(ok, 41);
    cv_metric_inc(ok);
    cv_metric_inc(bad);
    cv_metric_set(conns, 7);
    cv_metric_sub(conns, 2);
    cv_histogram_observe(h, 0);
    cv_histogram_observe(h, 1);
    cv_histogram_observe(h, 5);
    cv_histogram_observe(h, 100);
    cv_histogram_observe(h, 5000);
    assert_int_equal(cv_metric_get(ok), 42);
    assert_int_equal(cv_metric_get(conns), 5);

    char *text = render(m);
    assert_string_equal(text, "# HELP canvass_requests_total Requests, by status\n"
                              "# TYPE canvass_requests_total counter\n"
                              "canvass_requests_total{status=\"OK\"} 42\n"
                              "canvass_requests_total{status=\"INVALID\"} 1\n"
                              "# HELP canvass_connections Open connections\n"
                              "# TYPE canvass_connections gauge\n"
                              "canvass_connections 5\n"
                              "# HELP canvass_batch_size Commands per commit\n"
                              "# TYPE canvass_batch_size histogram\n"
                              "canvass_batch_size_bucket{le=\"1\"} 2\n"
                              "canvass_batch_size_bucket{le=\"10\"} 3\n"
                              "canvass_batch_size_bucket{le=\"100\"} 4\n"
                              "canvass_batch_size_bucket{le=\"+Inf\"} 5\n"
                              "canvass_batch_size_sum 5106\n"
                              "canvass_batch_size_count 5\n");
    free(text);
    cv_metrics_destroy(&m);
    assert_null(m);
    cv_metrics_destroy(&m); /* twice is safe */
}

static void test_labels_and_escapes(void **state)
{
    (void)state;
    cv_metrics_t *m = cv_metrics_new();
    static const uint64_t bounds[] = {2};
    cv_histogram_t *h =
        cv_metrics_histogram(m, "x_seconds", "a\\b\nc", bounds, 1, "route", "/v1", NULL);
    cv_metric_t *g = cv_metrics_gauge(m, "x_value", "help", "a", "q\"uote", "b", "back\\slash\n",
                                      NULL);
    cv_histogram_observe(h, 3);
    cv_metric_set(g, 1);
    cv_metric_sub(g, 5); /* stops at 0 */
    char *text = render(m);
    assert_string_equal(text, "# HELP x_seconds a\\\\b\\nc\n"
                              "# TYPE x_seconds histogram\n"
                              "x_seconds_bucket{route=\"/v1\",le=\"2\"} 0\n"
                              "x_seconds_bucket{route=\"/v1\",le=\"+Inf\"} 1\n"
                              "x_seconds_sum{route=\"/v1\"} 3\n"
                              "x_seconds_count{route=\"/v1\"} 1\n"
                              "# HELP x_value help\n"
                              "# TYPE x_value gauge\n"
                              "x_value{a=\"q\\\"uote\",b=\"back\\\\slash\\n\"} 0\n");
    free(text);
    cv_metrics_destroy(&m);

    /* Updates on NULL (a failed registration) do nothing. */
    cv_metric_inc(NULL);
    cv_metric_add(NULL, 3);
    cv_metric_set(NULL, 3);
    cv_metric_sub(NULL, 3);
    cv_histogram_observe(NULL, 3);
    assert_int_equal(cv_metric_get(NULL), 0);
    assert_null(cv_metrics_counter(NULL, "a_total", "h", NULL));
}

#define THREADS 4
#define PER_THREAD 100000

typedef struct {
    cv_metrics_t *m;
    cv_metric_t *c;
    cv_histogram_t *h;
    int stop;
} shared_t;

static void *updater(void *arg)
{
    shared_t *s = arg;
    for (int i = 0; i < PER_THREAD; i++) {
        cv_metric_inc(s->c);
        cv_histogram_observe(s->h, (uint64_t)(i % 3));
    }
    return NULL;
}

/* Renders over and over while the updaters run; each render must show
 * cumulative buckets that never decrease. */
static void *renderer(void *arg)
{
    shared_t *s = arg;
    while (!__atomic_load_n(&s->stop, __ATOMIC_RELAXED)) {
        char *text = cv_metrics_render(s->m, NULL);
        if (!text)
            return (void *)1;
        unsigned long long b0 = 0, b1 = 0, inf = 0, count = 0;
        const char *p = strstr(text, "t_size_bucket{le=\"0\"} ");
        if (!p || sscanf(p, "t_size_bucket{le=\"0\"} %llu\nt_size_bucket{le=\"1\"} %llu\n"
                            "t_size_bucket{le=\"+Inf\"} %llu",
                         &b0, &b1, &inf) != 3)
            return (void *)2;
        p = strstr(text, "t_size_count ");
        if (!p || sscanf(p, "t_size_count %llu", &count) != 1)
            return (void *)3;
        free(text);
        if (b0 > b1 || b1 > inf || inf != count)
            return (void *)4;
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    static const uint64_t bounds[] = {0, 1};
    shared_t s = {.m = cv_metrics_new()};
    s.c = cv_metrics_counter(s.m, "t_total", "updates", NULL);
    s.h = cv_metrics_histogram(s.m, "t_size", "sizes", bounds, 2, NULL);
    pthread_t up[THREADS], rd;
    assert_int_equal(pthread_create(&rd, NULL, renderer, &s), 0);
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&up[i], NULL, updater, &s), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(up[i], NULL);
    __atomic_store_n(&s.stop, 1, __ATOMIC_RELAXED);
    void *rc;
    pthread_join(rd, &rc);
    assert_null(rc);
    assert_int_equal(cv_metric_get(s.c), THREADS * PER_THREAD);
    char *text = render(s.m);
    char want[128];
    snprintf(want, sizeof want, "t_size_count %d\n", THREADS * PER_THREAD);
    assert_non_null(strstr(text, want));
    free(text);
    cv_metrics_destroy(&s.m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render),
        cmocka_unit_test(test_labels_and_escapes),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
