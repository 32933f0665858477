/* cv_rank tests: hand-computed rankings for every rule of DESIGN A5 and
 * docs/ORDERS.md -- tier weights, each tie-break in turn, status filtering,
 * prev_rank, Wilson values and the wilson order, weighted trends and the
 * trending order (built and re-sorted from a stored list) -- plus the order
 * names and their errors, the table of previous ranks and ranking in
 * parts. */
#include "cv_err.h"
#include "cv_rank.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static const double default_weights[CV_TIERS] = {1, 3, 10};

/* A standing with member up/down counts only, status open. */
static cv_standing_t st(const char *id, uint64_t up, uint64_t down, uint64_t voters,
                        uint64_t created_ms)
{
    cv_standing_t s = {.feature_id = id,
                       .title = "t",
                       .status = "open",
                       .created_ms = created_ms,
                       .voters = voters};
    s.up[CV_TIER_MEMBER] = up;
    s.down[CV_TIER_MEMBER] = down;
    return s;
}

static Canvass__V1__RankedList *build(cv_ranking_t **r, const cv_standing_t *s, size_t n,
                                      cv_rank_order_t order, const Canvass__V1__RankedList *prev)
{
    assert_int_equal(cv_rank_build(s, n, default_weights, order, prev, r), 0);
    return cv_ranking_list(*r);
}

/* Asserts the list's feature ids, in rank order, and that ranks are 1..n. */
static void assert_ids(const Canvass__V1__RankedList *l, size_t n, const char *const *ids)
{
    assert_int_equal(l->n_entries, n);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(l->entries[i]->feature_id, ids[i]);
        assert_int_equal(l->entries[i]->rank, i + 1);
    }
}

/* ---- scores --------------------------------------------------------------- */

static void test_score_tier_weights(void **state)
{
    (void)state;
    /* up: 2 member, 1 core, 1 honorary; down: 1 member, 1 honorary.
     * default: 2*1 + 1*3 + 1*10 - 1*1 - 1*10 = 4 */
    cv_standing_t s = st("F1", 2, 1, 5, 0);
    s.up[CV_TIER_CORE] = 1;
    s.up[CV_TIER_HONORARY] = 1;
    s.down[CV_TIER_HONORARY] = 1;
    assert_true(cv_rank_score(&s, default_weights) == 4.0);
    /* weights 0.5 / 2 / 7: 2*0.5 + 2 + 7 - 0.5 - 7 = 2.5 */
    const double w[CV_TIERS] = {0.5, 2, 7};
    assert_true(cv_rank_score(&s, w) == 2.5);
}

static void test_honorary_outweighs_members(void **state)
{
    (void)state;
    /* A: 9 member ups = 9.  B: 1 honorary up = 10.  C: 4 core ups = 12. */
    cv_standing_t s[3] = {st("A", 9, 0, 9, 1), st("B", 0, 0, 1, 2), st("C", 0, 0, 4, 3)};
    s[1].up[CV_TIER_HONORARY] = 1;
    s[2].up[CV_TIER_CORE] = 4;
    cv_ranking_t *r = NULL;
    Canvass__V1__RankedList *l = build(&r, s, 3, CV_RANK_SCORE, NULL);
    assert_ids(l, 3, (const char *const[]){"C", "B", "A"});
    assert_true(l->entries[0]->score == 12.0);
    assert_true(l->entries[1]->score == 10.0);
    assert_true(l->entries[2]->score == 9.0);
    /* up and down are the unweighted sums over tiers */
    assert_int_equal(l->entries[0]->up, 4);
    assert_int_equal(l->entries[1]->up, 1);
    assert_int_equal(l->total_votes, 14);
    cv_ranking_destroy(&r);
    assert_null(r);
}

static void test_negative_scores_rank_last(void **state)
{
    (void)state;
    /* Z: 0 votes = 0; N: 1 up, 3 down = -2; P: 1 up = 1 */
    cv_standing_t s[3] = {st("Z", 0, 0, 0, 1), st("N", 1, 3, 4, 2), st("P", 1, 0, 1, 3)};
    cv_ranking_t *r = NULL;
    Canvass__V1__RankedList *l = build(&r, s, 3, CV_RANK_SCORE, NULL);
    assert_ids(l, 3, (const char *const[]){"P", "Z", "N"});
    assert_true(l->entries[2]->score == -2.0);
    assert_int_equal(l->entries[2]->down, 3);
    assert_int_equal(l->total_votes, 5);
    cv_ranking_destroy(&r);
}

/* ---- tie-breaks ------------------------------------------------------------ */

static void test_tiebreak_voters(void **state)
{
    (void)state;
    /* Both score 2: A = 2 ups from 2 voters, B = 4 up 2 down from 6 voters.
     * More distinct voters first, although A is older. */
    cv_standing_t s[2] = {st("A", 2, 0, 2, 100), st("B", 4, 2, 6, 200)};
    cv_ranking_t *r = NULL;
    Canvass__V1__RankedList *l = build(&r, s, 2, CV_RANK_SCORE, NULL);
    assert_ids(l, 2, (const char *const[]){"B", "A"});
    cv_ranking_destroy(&r);
}

static void test_tiebreak_older(void **state)
{
    (void)state;
    /* Same score and voters: the older feature (smaller created_ms) first,
     * although its id sorts later. */
    cv_standing_t s[2] = {st("A", 3, 0, 3, 2000), st("B", 3, 0, 3, 1000)};
    cv_ranking_t *r = NULL;
    Canvass__V1__RankedList *l = build(&r, s, 2, CV_RANK_SCORE, NULL);
    assert_ids(l, 2, (const char *const[]){"B", "A"});
    cv_ranking_destroy(&r);
}

static void test_tiebreak_id_bytewise(void **state)
{
    (void)state;
    /* Everything equal: bytewise id order, so '-' (0x2d) < '9' < 'Z' < '_' <
     * 'a', and a prefix sorts first. */
    cv_standing_t s[6] = {st("Fa", 1, 0, 1, 5), st("F_", 1, 0, 1, 5), st("FZ", 1, 0, 1, 5),
                          st("F9", 1, 0, 1, 5), st("F-", 1, 0, 1, 5), st("F", 1, 0, 1, 5)};
    cv_ranking_t *r = NULL;
    Canvass__V1__RankedList *l = build(&r, s, 6, CV_RANK_SCORE, NULL);
    assert_ids(l, 6, (const char *const[]){"F", "F-", "F9", "FZ", "F_", "Fa"});
    cv_ranking_destroy(&r);
}

static void test_tiebreak_order_of_keys(void **state)
{
    (void)state;
    /* Each key only matters when every key before it is equal:
     *   S: score 5 (5 voters, newest, id last)
     *   V: score 4, 9 voters
     *   O: score 4, 3 voters, created 10
     *   I1/I2: score 4, 3 voters, created 20 -> by id */
    cv_standing_t s[5] = {st("I2", 4, 0, 3, 20), st("O", 4, 0, 3, 10), st("zS", 5, 0, 5, 99),
                          st("I1", 4, 0, 3, 20), st("V", 5, 1, 9, 50)};
    cv_ranking_t *r = NULL;
    Canvass__V1__RankedList *l = build(&r, s, 5, CV_RANK_SCORE, NULL);
    assert_ids(l, 5, (const char *const[]){"zS", "V", "O", "I1", "I2"});
    cv_ranking_destroy(&r);
}

/* ---- statuses ---------------------------------------------------------------- */

static void test_status_filter(void **state)
{
    (void)state;
    const char *status[] = {"open",   "planned", "in_progress", "shipped", "declined",
                            "merged", "",        "OPEN"};
    cv_standing_t s[8];
    char ids[8][4];
    for (int i = 0; i < 8; i++) {
        snprintf(ids[i], sizeof ids[i], "F%d", i);
        s[i] = st(ids[i], (uint64_t)(10 - i), 0, 1, 0);
        s[i].status = status[i];
    }
    assert_true(cv_rank_status_ranked("open"));
    assert_true(cv_rank_status_ranked("in_progress"));
    assert_false(cv_rank_status_ranked("merged"));
    cv_ranking_t *r = NULL;
    Canvass__V1__RankedList *l = build(&r, s, 8, CV_RANK_SCORE, NULL);
    assert_ids(l, 3, (const char *const[]){"F0", "F1", "F2"});
    assert_string_equal(l->entries[1]->status, "planned");
    assert_string_equal(l->entries[2]->status, "in_progress");
    /* total_votes counts the ranked features only: 10 + 9 + 8 */
    assert_int_equal(l->total_votes, 27);
    cv_ranking_destroy(&r);
}

static void test_empty_and_fields(void **state)
{
    (void)state;
    cv_ranking_t *r = NULL;
    Canvass__V1__RankedList *l = build(&r, NULL, 0, CV_RANK_SCORE, NULL);
    assert_int_equal(l->n_entries, 0);
    assert_int_equal(l->total_votes, 0);
    assert_string_equal(l->order, "score");
    cv_ranking_destroy(&r);

    char *tags[] = {"ui", "camera"};
    cv_standing_t s = st("F1", 2, 1, 3, 7);
    s.title = "Dark mode";
    s.tags = tags;
    s.ntags = 2;
    l = build(&r, &s, 1, CV_RANK_SCORE, NULL);
    Canvass__V1__RankedEntry *e = l->entries[0];
    assert_string_equal(e->title, "Dark mode");
    assert_int_equal(e->n_tags, 2);
    assert_string_equal(e->tags[1], "camera");
    assert_int_equal(e->voters, 3);
    assert_int_equal(e->prev_rank, 0);
    assert_int_equal(l->cycle, 0);
    assert_int_equal(l->closed_at_ms, 0);
    /* The list packs and unpacks to the same content. */
    size_t len;
    uint8_t *buf = cv_codec_pack(&l->base, &len);
    assert_non_null(buf);
    Canvass__V1__RankedList *back = canvass__v1__ranked_list__unpack(NULL, len, buf);
    assert_non_null(back);
    assert_int_equal(back->n_entries, 1);
    assert_string_equal(back->entries[0]->tags[0], "ui");
    assert_true(back->entries[0]->score == 1.0);
    canvass__v1__ranked_list__free_unpacked(back, NULL);
    free(buf);
    cv_ranking_destroy(&r);
    cv_ranking_destroy(&r); /* safe twice */
}

/* ---- prev_rank ------------------------------------------------------------------ */

static void test_prev_rank(void **state)
{
    (void)state;
    /* Last cycle: B 1st, A 2nd, X 3rd (X has shipped since). */
    cv_standing_t old[3] = {st("B", 9, 0, 9, 1), st("A", 5, 0, 5, 2), st("X", 1, 0, 1, 3)};
    cv_ranking_t *rp = NULL;
    Canvass__V1__RankedList *prev = build(&rp, old, 3, CV_RANK_SCORE, NULL);
    /* This cycle: A 1st (was 2), N 2nd (new), B 3rd (was 1). */
    cv_standing_t now[3] = {st("B", 9, 0, 9, 1), st("A", 20, 0, 20, 2), st("N", 10, 0, 1, 4)};
    cv_ranking_t *r = NULL;
    Canvass__V1__RankedList *l = build(&r, now, 3, CV_RANK_SCORE, prev);
    assert_ids(l, 3, (const char *const[]){"A", "N", "B"});
    assert_int_equal(l->entries[0]->prev_rank, 2);
    assert_int_equal(l->entries[1]->prev_rank, 0);
    assert_int_equal(l->entries[2]->prev_rank, 1);
    /* Refilled against no previous list: all new. */
    assert_int_equal(cv_rank_fill_prev(l->entries, l->n_entries, NULL), 0);
    assert_int_equal(l->entries[0]->prev_rank, 0);
    assert_int_equal(l->entries[2]->prev_rank, 0);
    cv_ranking_destroy(&r);
    cv_ranking_destroy(&rp);
}

/* ---- wilson ------------------------------------------------------------------------ */

static void test_wilson_values(void **state)
{
    (void)state;
    const double z2 = 1.96 * 1.96;
    assert_true(cv_rank_wilson(0, 0) == 0.0);
    /* With no down votes the bound is n / (n + z^2). */
    assert_float_equal(cv_rank_wilson(1, 0), 1 / (1 + z2), 1e-12);
    assert_float_equal(cv_rank_wilson(1, 0), 0.20654329147389294, 1e-12);
    assert_float_equal(cv_rank_wilson(5, 0), 5 / (5 + z2), 1e-12);
    assert_float_equal(cv_rank_wilson(5, 0), 0.565508505247919, 1e-12);
    /* With no up votes the bound is 0. */
    assert_float_equal(cv_rank_wilson(0, 5), 0.0, 1e-12);
    /* p = 1/2, n = 20: (0.5 + z2/40 - 1.96 sqrt((0.25 + z2/80)/20)) / (1 + z2/20) */
    assert_float_equal(cv_rank_wilson(10, 10), 0.2992949144298199, 1e-12);
    assert_float_equal(cv_rank_wilson(1, 1), 0.09452865480086611, 1e-12);
    assert_float_equal(cv_rank_wilson(3, 1), 0.30063605244263664, 1e-12);
    assert_float_equal(cv_rank_wilson(6, 2), 0.40926987910258916, 1e-12);
    assert_float_equal(cv_rank_wilson(90, 10), 0.8256326956323347, 1e-12);
    /* More evidence at the same ratio raises the bound. */
    assert_true(cv_rank_wilson(6, 2) > cv_rank_wilson(3, 1));
}

static void test_wilson_order(void **state)
{
    (void)state;
    /* Member votes only, except T1:
     *   A: 90 up 10 down  score 80  wilson 0.8256
     *   B: 100 up 40 down score 60  wilson 0.6345
     *   C: 5 up 0 down    score 5   wilson 0.5655
     *   D: 2 up 0 down    score 2   wilson 0.3424
     *   E: 6 up 2 down    score 4   wilson 0.4093
     *   T1: honorary 1 up score 10, wilson 0.2065 (1 up)
     *   T2: member 1 up   score 1,  wilson 0.2065: ties with T1, T1 first
     *                     (higher score), although T2 is older.
     *   Z: no votes, score 0, wilson 0 */
    cv_standing_t s[8] = {st("A", 90, 10, 100, 1), st("B", 100, 40, 140, 2), st("C", 5, 0, 5, 3),
                          st("D", 2, 0, 2, 4),     st("E", 6, 2, 8, 5),      st("T2", 1, 0, 1, 6),
                          st("T1", 0, 0, 1, 7),    st("Z", 0, 0, 0, 8)};
    s[6].up[CV_TIER_HONORARY] = 1;
    cv_ranking_t *r = NULL;
    Canvass__V1__RankedList *l = build(&r, s, 8, CV_RANK_SCORE, NULL);
    assert_ids(l, 8, (const char *const[]){"A", "B", "T1", "C", "E", "D", "T2", "Z"});
    assert_int_equal(cv_rank_reorder(l->entries, l->n_entries, CV_RANK_WILSON), 0);
    assert_ids(l, 8, (const char *const[]){"A", "B", "C", "E", "D", "T1", "T2", "Z"});
    cv_ranking_destroy(&r);

    /* Building in wilson order gives the same list, with order "wilson". */
    l = build(&r, s, 8, CV_RANK_WILSON, NULL);
    assert_ids(l, 8, (const char *const[]){"A", "B", "C", "E", "D", "T1", "T2", "Z"});
    assert_string_equal(l->order, "wilson");
    cv_ranking_destroy(&r);
}

static void test_reorder_score_is_identity(void **state)
{
    (void)state;
    cv_standing_t s[3] = {st("A", 3, 0, 3, 1), st("B", 2, 0, 2, 2), st("C", 1, 0, 1, 3)};
    cv_ranking_t *r = NULL;
    Canvass__V1__RankedList *l = build(&r, s, 3, CV_RANK_SCORE, NULL);
    l->entries[0]->rank = 7; /* renumbered even when the order stays */
    assert_int_equal(cv_rank_reorder(l->entries, l->n_entries, CV_RANK_SCORE), 0);
    assert_ids(l, 3, (const char *const[]){"A", "B", "C"});
    cv_ranking_destroy(&r);
}

/* ---- trending ---------------------------------------------------------------- */

static void test_trending_values(void **state)
{
    (void)state;
    /* docs/ORDERS.md: trend (member, core, honorary) = (0.5, 0.5, 0.25) with
     * weights 1/3/10 gives 0.5 + 1.5 + 2.5 = 4.5 */
    cv_standing_t s = st("F1", 0, 0, 0, 0);
    s.trend[CV_TIER_MEMBER] = 0.5;
    s.trend[CV_TIER_CORE] = 0.5;
    s.trend[CV_TIER_HONORARY] = 0.25;
    assert_true(cv_rank_trending(&s, default_weights) == 4.5);
    const double w[CV_TIERS] = {2, 0, 1};
    assert_true(cv_rank_trending(&s, w) == 1.25);
    /* Down votes gained make it negative. */
    s.trend[CV_TIER_CORE] = -1.5;
    assert_true(cv_rank_trending(&s, default_weights) == 0.5 - 4.5 + 2.5);
    /* A shard sending NaN or infinity is not trusted: that tier counts 0. */
    s.trend[CV_TIER_CORE] = NAN;
    assert_true(cv_rank_trending(&s, default_weights) == 3.0);
    s.trend[CV_TIER_HONORARY] = -INFINITY;
    assert_true(cv_rank_trending(&s, default_weights) == 0.5);
}

/* The trending example of docs/ORDERS.md, weights 1/3/10:
 *   C: honorary trend 0.25             -> 2.5
 *   B: member 0.5, core 0.5, 3 voters  -> 2.0
 *   A: member 2.0, 2 voters            -> 2.0 (fewer voters than B)
 *   O: member 2.0, 2 voters, older     -> 2.0 (older than A, same voters)
 *   E: no change this cycle, score 50  -> 0
 *   D: member -1.0 (a down vote)       -> -1.0
 * Score order: E (50), A (5), O (5), B (4), D (3), C (1). */
static void trending_example(cv_standing_t s[6])
{
    s[0] = st("A", 5, 0, 2, 200);
    s[0].trend[CV_TIER_MEMBER] = 2.0;
    s[1] = st("B", 4, 0, 3, 300);
    s[1].trend[CV_TIER_MEMBER] = 0.5;
    s[1].trend[CV_TIER_CORE] = 0.5;
    s[2] = st("C", 1, 0, 1, 400);
    s[2].trend[CV_TIER_HONORARY] = 0.25;
    s[3] = st("D", 4, 1, 5, 500);
    s[3].trend[CV_TIER_MEMBER] = -1.0;
    s[4] = st("E", 50, 0, 50, 600);
    s[5] = st("O", 5, 0, 2, 100);
    s[5].trend[CV_TIER_MEMBER] = 2.0;
}

static void test_trending_order(void **state)
{
    (void)state;
    cv_standing_t s[6];
    trending_example(s);
    cv_ranking_t *r = NULL;
    Canvass__V1__RankedList *l = build(&r, s, 6, CV_RANK_TRENDING, NULL);
    assert_string_equal(l->order, "trending");
    assert_ids(l, 6, (const char *const[]){"C", "B", "O", "A", "E", "D"});
    /* score stays the weighted score; trend and created_ms are carried */
    assert_true(l->entries[0]->trend == 2.5);
    assert_true(l->entries[0]->score == 1.0);
    assert_int_equal(l->entries[0]->created_ms, 400);
    assert_true(l->entries[1]->trend == 2.0);
    assert_true(l->entries[4]->trend == 0.0);
    assert_true(l->entries[4]->score == 50.0);
    assert_true(l->entries[5]->trend == -1.0);
    assert_true(l->entries[5]->score == 3.0);
    cv_ranking_destroy(&r);
}

static void test_trending_from_stored_list(void **state)
{
    (void)state;
    /* A list stored in score order (packed, unpacked: only the wire fields
     * survive) re-sorts into the same trending list as one built so. */
    cv_standing_t s[6];
    trending_example(s);
    cv_ranking_t *r = NULL;
    Canvass__V1__RankedList *l = build(&r, s, 6, CV_RANK_SCORE, NULL);
    assert_ids(l, 6, (const char *const[]){"E", "O", "A", "B", "D", "C"});
    size_t len;
    uint8_t *buf = cv_codec_pack(&l->base, &len);
    assert_non_null(buf);
    cv_ranking_destroy(&r);
    Canvass__V1__RankedList *back = canvass__v1__ranked_list__unpack(NULL, len, buf);
    free(buf);
    assert_non_null(back);
    assert_int_equal(back->entries[0]->created_ms, 600);
    assert_true(back->entries[1]->trend == 2.0);
    assert_int_equal(cv_rank_reorder(back->entries, back->n_entries, CV_RANK_TRENDING), 0);
    assert_ids(back, 6, (const char *const[]){"C", "B", "O", "A", "E", "D"});
    /* and on to wilson: E 50/0 .9286, A and O 5/0 .5655, B 4/0 .5101,
     * D 4/1 .3755, C 1/0 .2065; A and O tie on the bound and keep the score
     * order (O older). */
    assert_int_equal(cv_rank_reorder(back->entries, back->n_entries, CV_RANK_WILSON), 0);
    assert_ids(back, 6, (const char *const[]){"E", "O", "A", "B", "D", "C"});
    canvass__v1__ranked_list__free_unpacked(back, NULL);
}

static void test_trending_ties_skip_score(void **state)
{
    (void)state;
    /* Equal trends are not split by score: more voters first even with a
     * lower score, then the older feature, then the id. */
    cv_standing_t s[4] = {st("HI", 100, 0, 2, 10), st("LO", 1, 0, 3, 20), st("N2", 7, 0, 2, 5),
                          st("N1", 7, 0, 2, 5)};
    for (int i = 0; i < 4; i++)
        s[i].trend[CV_TIER_CORE] = 1.0 / 3; /* weighted: 1 */
    cv_ranking_t *r = NULL;
    Canvass__V1__RankedList *l = build(&r, s, 4, CV_RANK_TRENDING, NULL);
    assert_ids(l, 4, (const char *const[]){"LO", "N1", "N2", "HI"});
    cv_ranking_destroy(&r);
}

static void test_trending_prev_rank(void **state)
{
    (void)state;
    /* prev is the previous list in the same order: A was 2nd by trend. */
    cv_standing_t old[2] = {st("A", 9, 0, 9, 1), st("B", 1, 0, 1, 2)};
    old[1].trend[CV_TIER_MEMBER] = 1;
    cv_ranking_t *rp = NULL;
    Canvass__V1__RankedList *prev = build(&rp, old, 2, CV_RANK_TRENDING, NULL);
    assert_ids(prev, 2, (const char *const[]){"B", "A"});
    cv_standing_t now[2] = {st("A", 9, 0, 9, 1), st("B", 1, 0, 1, 2)};
    now[0].trend[CV_TIER_MEMBER] = 3;
    cv_ranking_t *r = NULL;
    Canvass__V1__RankedList *l = build(&r, now, 2, CV_RANK_TRENDING, prev);
    assert_ids(l, 2, (const char *const[]){"A", "B"});
    assert_int_equal(l->entries[0]->prev_rank, 2);
    assert_int_equal(l->entries[1]->prev_rank, 1);
    cv_ranking_destroy(&r);
    cv_ranking_destroy(&rp);
}

static void test_trending_nan_from_shard(void **state)
{
    (void)state;
    /* A NaN trend counts 0 and the sort stays total. */
    cv_standing_t s[3] = {st("A", 1, 0, 1, 1), st("B", 1, 0, 1, 2), st("C", 1, 0, 1, 3)};
    s[0].trend[CV_TIER_MEMBER] = NAN;
    s[1].trend[CV_TIER_MEMBER] = -0.5;
    s[2].trend[CV_TIER_MEMBER] = 0.5;
    cv_ranking_t *r = NULL;
    Canvass__V1__RankedList *l = build(&r, s, 3, CV_RANK_TRENDING, NULL);
    assert_ids(l, 3, (const char *const[]){"C", "A", "B"});
    assert_true(l->entries[1]->trend == 0.0);
    l->entries[0]->trend = NAN; /* a stored entry holding NaN: also 0 */
    assert_int_equal(cv_rank_reorder(l->entries, 3, CV_RANK_TRENDING), 0);
    assert_ids(l, 3, (const char *const[]){"A", "C", "B"});
    cv_ranking_destroy(&r);
}

/* ---- orders ----------------------------------------------------------------- */

static void test_order_parse(void **state)
{
    (void)state;
    cv_rank_order_t o = CV_RANK_WILSON;
    char err[128] = "";
    assert_int_equal(cv_rank_order_parse("", &o, err, sizeof err), 0);
    assert_int_equal(o, CV_RANK_SCORE);
    assert_int_equal(cv_rank_order_parse("wilson", &o, err, sizeof err), 0);
    assert_int_equal(o, CV_RANK_WILSON);
    assert_int_equal(cv_rank_order_parse("score", &o, err, sizeof err), 0);
    assert_int_equal(o, CV_RANK_SCORE);
    assert_int_equal(cv_rank_order_parse("trending", &o, err, sizeof err), 0);
    assert_int_equal(o, CV_RANK_TRENDING);
    assert_int_equal(cv_rank_order_parse("Score", &o, err, sizeof err), CV_EINVAL);
    assert_string_equal(err, "unknown order 'Score' (score, trending, wilson)");
    assert_int_equal(o, CV_RANK_TRENDING); /* untouched on failure */
    assert_int_equal(cv_rank_order_parse("hot", &o, err, sizeof err), CV_EINVAL);
    assert_string_equal(err, "unknown order 'hot' (score, trending, wilson)");
    assert_string_equal(cv_rank_order_name(CV_RANK_WILSON), "wilson");
    assert_string_equal(cv_rank_order_name(CV_RANK_TRENDING), "trending");
    assert_string_equal(cv_rank_order_name(CV_RANK_SCORE), "score");
}

/* ---- previous ranks as a table, ranking in parts --------------------------------- */

static void test_prev_table(void **state)
{
    (void)state;
    cv_rank_prev_t *t = cv_rank_prev_new(2); /* grows well past its first size */
    assert_non_null(t);
    char ids[5000][12];
    for (size_t i = 0; i < 5000; i++) {
        snprintf(ids[i], sizeof ids[i], "id-%zu", i);
        assert_int_equal(cv_rank_prev_put(t, ids[i], strlen(ids[i]), (uint32_t)i + 1), 0);
    }
    for (size_t i = 0; i < 5000; i++)
        assert_int_equal(cv_rank_prev_get(t, ids[i], strlen(ids[i])), i + 1);
    /* ids are bytes with a length: a prefix or a longer id is another id */
    assert_int_equal(cv_rank_prev_get(t, "id-12", 3), 0);
    assert_int_equal(cv_rank_prev_get(t, "id-12", 4), 2); /* "id-1" */
    assert_int_equal(cv_rank_prev_get(t, "id-12x", 6), 0);
    assert_int_equal(cv_rank_prev_get(t, "", 0), 0);
    /* the first rank recorded for an id stays */
    assert_int_equal(cv_rank_prev_put(t, "id-7", 4, 99), 0);
    assert_int_equal(cv_rank_prev_get(t, "id-7", 4), 8);
    cv_rank_prev_destroy(&t);
    cv_rank_prev_destroy(&t); /* twice: harmless */
    assert_null(t);
    /* an empty table knows nothing */
    t = cv_rank_prev_new(0);
    assert_int_equal(cv_rank_prev_get(t, "id-1", 4), 0);
    cv_rank_prev_destroy(&t);
}

/* Ranking in parts is ranking the parts concatenated, the input order
 * deciding between duplicate ids; and prev_rank from a table is prev_rank
 * from the list. */
static void test_build_parts_and_table(void **state)
{
    (void)state;
    cv_standing_t all[6] = {st("A", 1, 0, 1, 5), st("B", 3, 0, 3, 5), st("C", 1, 0, 1, 5),
                            st("B", 3, 0, 3, 5), st("D", 0, 0, 0, 1), st("E", 2, 1, 3, 2)};
    all[3].title = "second B";
    cv_ranking_t *rp;
    Canvass__V1__RankedList *prev = build(
        &rp, (cv_standing_t[]){st("C", 9, 0, 9, 0), st("A", 1, 0, 1, 0)}, 2, CV_RANK_SCORE, NULL);
    cv_rank_prev_t *t = cv_rank_prev_new(prev->n_entries);
    assert_int_equal(cv_rank_prev_add(t, prev->entries, prev->n_entries), 0);

    cv_ranking_t *whole, *split;
    Canvass__V1__RankedList *w = build(&whole, all, 6, CV_RANK_SCORE, prev);
    const cv_standing_t *parts[3] = {all, all + 2, all + 5};
    size_t counts[3] = {2, 3, 1};
    assert_int_equal(
        cv_rank_build_parts(parts, counts, 3, default_weights, CV_RANK_SCORE, t, &split), 0);
    Canvass__V1__RankedList *p = cv_ranking_list(split);
    assert_ids(w, 6, (const char *const[]){"B", "B", "E", "A", "C", "D"});
    assert_string_equal(w->entries[0]->title, "t"); /* the first B of the input first */
    assert_string_equal(w->entries[1]->title, "second B");
    assert_int_equal(p->n_entries, w->n_entries);
    for (size_t i = 0; i < w->n_entries; i++) {
        assert_string_equal(p->entries[i]->feature_id, w->entries[i]->feature_id);
        assert_string_equal(p->entries[i]->title, w->entries[i]->title);
        assert_int_equal(p->entries[i]->prev_rank, w->entries[i]->prev_rank);
    }
    assert_int_equal(w->entries[3]->prev_rank, 2); /* A */
    assert_int_equal(w->entries[4]->prev_rank, 1); /* C */
    assert_int_equal(w->entries[0]->prev_rank, 0); /* B: new */
    assert_int_equal(p->total_votes, w->total_votes);
    cv_ranking_destroy(&whole);
    cv_ranking_destroy(&split);
    cv_ranking_destroy(&rp);
    cv_rank_prev_destroy(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_score_tier_weights),
        cmocka_unit_test(test_honorary_outweighs_members),
        cmocka_unit_test(test_negative_scores_rank_last),
        cmocka_unit_test(test_tiebreak_voters),
        cmocka_unit_test(test_tiebreak_older),
        cmocka_unit_test(test_tiebreak_id_bytewise),
        cmocka_unit_test(test_tiebreak_order_of_keys),
        cmocka_unit_test(test_status_filter),
        cmocka_unit_test(test_empty_and_fields),
        cmocka_unit_test(test_prev_rank),
        cmocka_unit_test(test_wilson_values),
        cmocka_unit_test(test_wilson_order),
        cmocka_unit_test(test_reorder_score_is_identity),
        cmocka_unit_test(test_trending_values),
        cmocka_unit_test(test_trending_order),
        cmocka_unit_test(test_trending_from_stored_list),
        cmocka_unit_test(test_trending_ties_skip_score),
        cmocka_unit_test(test_trending_prev_rank),
        cmocka_unit_test(test_trending_nan_from_shard),
        cmocka_unit_test(test_order_parse),
        cmocka_unit_test(test_prev_table),
        cmocka_unit_test(test_build_parts_and_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
