/* Unit tests for lists.c over a real store (history.c, LMDB in a fresh
 * temporary directory per test).  Five cycles are closed with lists built by
 * cv_rank, as a close builds them; every list lists.c serves -- any cycle,
 * any order, any cut, kept or read again, before and after the latest moves
 * on, after a restart -- must be byte for byte what the straightforward
 * computation gives: unpack the stored list, re-sort it, take prev_rank from
 * the previous stored list re-sorted the same way, pack.
 *
 * Built as $(BUILD)/unit/publish_lists_test. */
#include "cv_err.h"
#include "cv_log.h"
#include "history.h"
#include "lists.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define CYCLES 5
#define FEATURES 300

typedef struct {
    char dir[64];
    pub_history_t *h;
} fx_t;

static const double weights[CV_TIERS] = {1, 3, 10};
static const cv_rank_order_t orders[] = {CV_RANK_SCORE, CV_RANK_WILSON, CV_RANK_TRENDING};

/* Cycle k's list: features k*20 .. k*20+FEATURES-1 (so consecutive cycles
 * share most of them), counts that change with k, a few shipped. */
static void store_cycle(pub_history_t *h, uint64_t k)
{
    static cv_standing_t st[FEATURES];
    static char ids[FEATURES][16];
    static const char *statuses[] = {"open", "planned", "in_progress", "shipped"};
    for (size_t i = 0; i < FEATURES; i++) {
        unsigned x = (unsigned)(k * 7919 + i * 104729);
        size_t f = k * 20 + i;
        snprintf(ids[i], sizeof ids[i], "f%zu", f);
        cv_standing_t *s = &st[i];
        memset(s, 0, sizeof *s);
        s->feature_id = ids[i];
        s->title = "a feature";
        s->status = statuses[x % 13 == 0 ? 3 : x % 3];
        s->created_ms = 1000 + f % 50; /* ties, broken by id */
        s->up[0] = (x >> 3) % 6;
        s->up[1] = (x >> 5) % 3;
        s->down[0] = (x >> 7) % 4;
        s->trend[0] = (double)((x >> 9) % 7) - 2;
        s->voters = s->up[0] + s->up[1] + s->down[0];
    }
    Canvass__V1__RankedList *prev = NULL;
    if (k > 1) {
        uint8_t *buf;
        size_t len;
        assert_int_equal(pub_history_get(h, k - 1, &buf, &len), 0);
        prev = canvass__v1__ranked_list__unpack(NULL, len, buf);
        free(buf);
        assert_non_null(prev);
    }
    cv_ranking_t *r;
    assert_int_equal(cv_rank_build(st, FEATURES, weights, CV_RANK_SCORE, prev, &r), 0);
    Canvass__V1__RankedList *l = cv_ranking_list(r);
    l->cycle = k;
    l->opened_at_ms = k * 1000;
    l->closed_at_ms = k * 1000 + 999;
    size_t len;
    uint8_t *buf = cv_codec_pack(&l->base, &len);
    pub_meta_t m = {k + 1, k * 1000 + 999, 0};
    assert_int_equal(pub_history_commit(h, &m, "manual", buf, len), 0);
    free(buf);
    cv_ranking_destroy(&r);
    if (prev)
        canvass__v1__ranked_list__free_unpacked(prev, NULL);
}

static int setup(void **state)
{
    fx_t *fx = calloc(1, sizeof *fx);
    snprintf(fx->dir, sizeof fx->dir, "/tmp/publish-lists-test-XXXXXX");
    if (!fx || !mkdtemp(fx->dir))
        return -1;
    fx->h = pub_history_open(fx->dir);
    if (!fx->h)
        return -1;
    for (uint64_t k = 1; k <= CYCLES; k++)
        store_cycle(fx->h, k);
    *state = fx;
    return 0;
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

/* The reference: cycle's stored list in order, cut to limit (0: all),
 * computed the long way. */
static uint8_t *reference(pub_history_t *h, uint64_t cycle, cv_rank_order_t order, size_t limit,
                          size_t *len)
{
    uint8_t *buf;
    size_t blen;
    assert_int_equal(pub_history_get(h, cycle, &buf, &blen), 0);
    Canvass__V1__RankedList *l = canvass__v1__ranked_list__unpack(NULL, blen, buf);
    free(buf);
    assert_non_null(l);
    char *stored_order = l->order;
    size_t full = l->n_entries;
    if (order != CV_RANK_SCORE) {
        Canvass__V1__RankedList *prev = NULL;
        if (cycle > 1) {
            assert_int_equal(pub_history_get(h, cycle - 1, &buf, &blen), 0);
            prev = canvass__v1__ranked_list__unpack(NULL, blen, buf);
            free(buf);
            assert_int_equal(cv_rank_reorder(prev->entries, prev->n_entries, order), 0);
        }
        assert_int_equal(cv_rank_reorder(l->entries, full, order), 0);
        assert_int_equal(cv_rank_fill_prev(l->entries, full, prev), 0);
        if (prev)
            canvass__v1__ranked_list__free_unpacked(prev, NULL);
        l->order = (char *)cv_rank_order_name(order);
    }
    if (limit && limit < full)
        l->n_entries = limit;
    uint8_t *out = cv_codec_pack(&l->base, len);
    l->n_entries = full;
    l->order = stored_order;
    canvass__v1__ranked_list__free_unpacked(l, NULL);
    return out;
}

/* Asserts that ls serves cycle in order, whole and cut, as the reference. */
static void assert_served(pub_lists_t *ls, pub_history_t *h, uint64_t cycle, cv_rank_order_t order)
{
    const size_t limits[] = {0, 1, 7, FEATURES - 1, FEATURES + 3};
    for (size_t j = 0; j < sizeof limits / sizeof *limits; j++) {
        const pub_list_t *l;
        assert_int_equal(pub_lists_get(ls, cycle, order, &l), 0);
        assert_int_equal(l->cycle, cycle);
        assert_int_equal(l->order, order);
        const uint8_t *part[3];
        size_t size[3];
        pub_wire_list_cut(l->buf, l->len, &l->idx, limits[j] ? limits[j] : l->idx.n, part, size);
        size_t wlen;
        uint8_t *want = reference(h, cycle, order, limits[j], &wlen);
        assert_int_equal(size[0] + size[1] + size[2], wlen);
        assert_memory_equal(part[0], want, size[0]);
        assert_memory_equal(part[1], want + size[0], size[1]);
        assert_memory_equal(part[2], want + size[0] + size[1], size[2]);
        free(want);
    }
}

static void test_every_cycle_and_order_as_computed(void **state)
{
    fx_t *fx = *state;
    pub_lists_t *ls = pub_lists_new(fx->h, CYCLES);
    assert_non_null(ls);
    for (int round = 0; round < 2; round++) /* computed, then kept */
        for (uint64_t k = 1; k <= CYCLES; k++)
            for (size_t o = 0; o < 3; o++)
                assert_served(ls, fx->h, k, orders[o]);
    /* The stored score list is served as stored. */
    const pub_list_t *l;
    uint8_t *stored;
    size_t slen;
    assert_int_equal(pub_lists_get(ls, CYCLES, CV_RANK_SCORE, &l), 0);
    assert_int_equal(pub_history_get(fx->h, CYCLES, &stored, &slen), 0);
    assert_int_equal(l->len, slen);
    assert_memory_equal(l->buf, stored, slen);
    free(stored);
    assert_int_equal(pub_lists_get(ls, 0, CV_RANK_SCORE, &l), CV_ENOTFOUND);
    assert_int_equal(pub_lists_get(ls, CYCLES + 1, CV_RANK_SCORE, &l), CV_ENOTFOUND);
    pub_lists_destroy(&ls);
    pub_lists_destroy(&ls); /* twice: harmless */
    assert_null(ls);
}

static void test_ranks_tables(void **state)
{
    fx_t *fx = *state;
    pub_lists_t *ls = pub_lists_new(fx->h, CYCLES);
    for (uint64_t k = CYCLES - 2; k <= CYCLES; k++) { /* an old cycle and both kept ones */
        for (size_t o = 0; o < 3; o++) {
            size_t len;
            uint8_t *want = reference(fx->h, k, orders[o], 0, &len);
            Canvass__V1__RankedList *l = canvass__v1__ranked_list__unpack(NULL, len, want);
            const cv_rank_prev_t *t;
            assert_int_equal(pub_lists_ranks(ls, k, orders[o], &t), 0);
            for (size_t i = 0; i < l->n_entries; i++) {
                const char *id = l->entries[i]->feature_id;
                assert_int_equal(cv_rank_prev_get(t, id, strlen(id)), l->entries[i]->rank);
            }
            assert_int_equal(cv_rank_prev_get(t, "nosuch", 6), 0);
            canvass__v1__ranked_list__free_unpacked(l, NULL);
            free(want);
        }
    }
    pub_lists_destroy(&ls);
}

/* A new close: the old latest becomes the previous cycle, the one before it
 * is read from the store again, and everything still serves as computed. */
static void test_add_moves_the_latest_on(void **state)
{
    fx_t *fx = *state;
    pub_lists_t *ls = pub_lists_new(fx->h, CYCLES);
    assert_int_equal(pub_lists_prepare(ls), 1); /* reads the latest, builds its ranks */
    assert_int_equal(pub_lists_prepare(ls), 0); /* nothing left */
    for (size_t o = 0; o < 3; o++)
        assert_served(ls, fx->h, CYCLES, orders[o]);

    store_cycle(fx->h, CYCLES + 1);
    pub_list_t l;
    uint8_t *buf;
    size_t len;
    assert_int_equal(pub_history_get(fx->h, CYCLES + 1, &buf, &len), 0);
    assert_int_equal(pub_list_set(&l, CYCLES + 1, CV_RANK_SCORE, buf, len), 0);
    pub_lists_add(ls, &l);
    assert_null(l.buf); /* taken */
    assert_int_equal(pub_lists_prepare(ls), 1);
    for (uint64_t k = CYCLES - 1; k <= CYCLES + 1; k++)
        for (size_t o = 0; o < 3; o++)
            assert_served(ls, fx->h, k, orders[o]);
    pub_lists_destroy(&ls);

    /* A restart: nothing in memory, the same answers. */
    ls = pub_lists_new(fx->h, CYCLES + 1);
    for (size_t o = 0; o < 3; o++)
        assert_served(ls, fx->h, CYCLES + 1, orders[o]);
    pub_lists_destroy(&ls);
}

static void test_unreadable_list(void **state)
{
    fx_t *fx = *state;
    const uint8_t garbage[] = {0x2a, 0x7f, 0x01}; /* an entry longer than the list */
    pub_meta_t m = {CYCLES + 2, 1, 0};
    assert_int_equal(pub_history_commit(fx->h, &m, "manual", garbage, sizeof garbage), 0);
    pub_lists_t *ls = pub_lists_new(fx->h, CYCLES + 1);
    const pub_list_t *l;
    assert_int_equal(pub_lists_get(ls, CYCLES + 1, CV_RANK_SCORE, &l), CV_EDECODE);
    assert_int_equal(pub_lists_get(ls, CYCLES + 1, CV_RANK_WILSON, &l), CV_EDECODE);
    const cv_rank_prev_t *t;
    assert_int_equal(pub_lists_ranks(ls, CYCLES + 1, CV_RANK_SCORE, &t), CV_EDECODE);
    assert_int_equal(pub_lists_prepare(ls), CV_EDECODE);
    assert_int_equal(pub_lists_prepare(ls), 0); /* not again until the next close */
    /* The previous cycle still serves; its own lists do not need the bad one. */
    assert_served(ls, fx->h, CYCLES, CV_RANK_TRENDING);
    pub_lists_destroy(&ls);
}

int main(void)
{
    cv_log_init("test", -1, CV_LOG_ERROR + 1); /* the unreadable list logs on purpose */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_every_cycle_and_order_as_computed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ranks_tables, setup, teardown),
        cmocka_unit_test_setup_teardown(test_add_moves_the_latest_on, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unreadable_list, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
