/* Unit tests for publish's store (history.c) against a real LMDB store in a
 * fresh temporary directory per test: the pending merges table (put,
 * replace, list in order, delete, persistence across a reopen, a damaged
 * record skipped) and that it lives beside the cycles without touching
 * them.
 *
 * Built as $(BUILD)/unit/publish_history_test. */
#include "cv_err.h"
#include "cv_log.h"
#include "cv_store.h"
#include "history.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

typedef struct {
    char dir[64];
    pub_history_t *h;
} fx_t;

static int setup(void **state)
{
    fx_t *fx = calloc(1, sizeof *fx);
    snprintf(fx->dir, sizeof fx->dir, "/tmp/publish-history-test-XXXXXX");
    if (!fx || !mkdtemp(fx->dir))
        return -1;
    fx->h = pub_history_open(fx->dir);
    *state = fx;
    return fx->h ? 0 : -1;
}

static int teardown(void **state)
{
    fx_t *fx = *state;
    pub_history_close(&fx->h);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fx->dir);
    int rc = system(cmd);
    free(fx);
    return rc == 0 ? 0 : -1;
}

static void put(pub_history_t *h, const char *src, const char *dst, uint64_t at_ms,
                const char *title)
{
    Canvass__V1__FeatureEvent ev = CANVASS__V1__FEATURE_EVENT__INIT;
    ev.kind = "merged";
    ev.feature_id = (char *)src;
    ev.merged_into = (char *)dst;
    ev.status = "merged";
    ev.at_ms = at_ms;
    ev.title = (char *)title;
    assert_int_equal(pub_history_merge_put(h, &ev), 0);
}

/* Asserts the pending merges, as "src>dst" strings in order. */
static void assert_pending(pub_history_t *h, size_t n, const char *const *want)
{
    Canvass__V1__FeatureEvent **evs = NULL;
    size_t got = 99;
    assert_int_equal(pub_history_merges(h, &evs, &got), 0);
    assert_int_equal(got, n);
    for (size_t i = 0; i < n; i++) {
        char pair[160];
        snprintf(pair, sizeof pair, "%s>%s", evs[i]->feature_id, evs[i]->merged_into);
        assert_string_equal(pair, want[i]);
        assert_string_equal(evs[i]->kind, "merged");
    }
    pub_history_merges_free(evs, got);
}

static void test_merges_put_list_del(void **state)
{
    fx_t *fx = *state;
    assert_pending(fx->h, 0, NULL);
    put(fx->h, "Fb", "Fx", 10, "B");
    put(fx->h, "Fa", "Fx", 20, "A");
    put(fx->h, "F-", "Fy", 30, "dash");
    /* in source id order, bytewise */
    assert_pending(fx->h, 3, (const char *const[]){"F->Fy", "Fa>Fx", "Fb>Fx"});
    /* one record per source: a put replaces */
    put(fx->h, "Fa", "Fz", 40, "A again");
    assert_pending(fx->h, 3, (const char *const[]){"F->Fy", "Fa>Fz", "Fb>Fx"});
    assert_int_equal(pub_history_merge_del(fx->h, "Fa"), 0);
    assert_int_equal(pub_history_merge_del(fx->h, "Fa"), 0); /* already gone: fine */
    assert_int_equal(pub_history_merge_del(fx->h, "Fnever"), 0);
    assert_pending(fx->h, 2, (const char *const[]){"F->Fy", "Fb>Fx"});
    pub_history_merges_free(NULL, 0); /* safe */
}

static void test_merges_survive_reopen(void **state)
{
    fx_t *fx = *state;
    put(fx->h, "Fsrc", "Fdst", 1795577142706ULL, "Dark mode");
    pub_history_close(&fx->h);
    assert_null(fx->h);
    fx->h = pub_history_open(fx->dir);
    assert_non_null(fx->h);
    Canvass__V1__FeatureEvent **evs = NULL;
    size_t n = 0;
    assert_int_equal(pub_history_merges(fx->h, &evs, &n), 0);
    assert_int_equal(n, 1);
    /* the whole event comes back: time and title of the original request */
    assert_int_equal(evs[0]->at_ms, 1795577142706ULL);
    assert_string_equal(evs[0]->title, "Dark mode");
    assert_string_equal(evs[0]->status, "merged");
    pub_history_merges_free(evs, n);
}

static void test_merges_damaged_record_skipped(void **state)
{
    fx_t *fx = *state;
    put(fx->h, "Fok", "Fdst", 1, "ok");
    pub_history_close(&fx->h);
    /* Write two bad records behind history's back: bytes that do not
     * decode, and an event whose source is not its key. */
    static const char *const tables[] = {"cycles", "meta", "merges"};
    cv_store_t *s = cv_store_open(fx->dir, tables, 3, CV_DURABLE_OS, 0);
    assert_non_null(s);
    cv_txn_t *t;
    assert_int_equal(cv_store_begin(s, 0, &t), 0);
    assert_int_equal(cv_store_put(t, 2, "Fbad", 4, "\xff\xff\xff", 3), 0);
    Canvass__V1__FeatureEvent ev = CANVASS__V1__FEATURE_EVENT__INIT;
    ev.feature_id = "Fother";
    ev.merged_into = "Fdst";
    size_t len;
    uint8_t *buf = cv_codec_pack(&ev.base, &len);
    assert_int_equal(cv_store_put(t, 2, "Fkey", 4, buf, len), 0);
    free(buf);
    assert_int_equal(cv_store_commit(&t), 0);
    cv_store_close(&s);
    fx->h = pub_history_open(fx->dir);
    assert_non_null(fx->h);
    assert_pending(fx->h, 1, (const char *const[]){"Fok>Fdst"});
}

static void test_merges_beside_cycles(void **state)
{
    fx_t *fx = *state;
    pub_meta_t m = {2, 1000, 0};
    const uint8_t list[] = {0x08, 0x01}; /* RankedList{cycle: 1} */
    assert_int_equal(pub_history_commit(fx->h, &m, "manual", list, sizeof list), 0);
    put(fx->h, "Fa", "Fb", 5, "A");
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(pub_history_get(fx->h, 1, &buf, &len), 0);
    assert_int_equal(len, sizeof list);
    assert_memory_equal(buf, list, len);
    free(buf);
    Canvass__V1__CycleInfo *infos = NULL;
    size_t n = 0;
    assert_int_equal(pub_history_list(fx->h, 0, &infos, &n), 0);
    assert_int_equal(n, 1); /* the merge is not a cycle */
    free(infos);
    pub_meta_t got;
    int same = 0;
    assert_int_equal(pub_history_load(fx->h, "manual", &got, &same), 0);
    assert_int_equal(got.open, 2);
    assert_true(same);
    assert_int_equal(pub_history_merge_del(fx->h, "Fa"), 0);
    assert_int_equal(pub_history_get(fx->h, 1, &buf, &len), 0);
    free(buf);
}

int main(void)
{
    cv_log_init("publish-test", -1, CV_LOG_ERROR + 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_merges_put_list_del, setup, teardown),
        cmocka_unit_test_setup_teardown(test_merges_survive_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_merges_damaged_record_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_merges_beside_cycles, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
