/* feature_test: unit tests for feature.c, the text, tables and CSV of
 * `canvass feature ...`, `canvass features`, export and the movers line.
 *
 * Each renderer runs on fixed messages built here (a shipped feature with a
 * multi-line body, a ranked history and votes from every tier; a merged
 * duplicate; a feature with a title that needs CSV quoting) and its whole
 * output is compared with the exact text the README shows.
 */
#include "cv_err.h"
#include "feature.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define CREATED_MS 1795170900000ULL /* 2026-11-20T10:35:00.000Z */
#define PLANNED_MS 1795258262000ULL /* 2026-11-21T10:51:02.000Z */
#define SHIPPED_MS 1795799111000ULL /* 2026-11-27T17:05:11.000Z */

/* An in-memory stream to render into; mem_take() closes it and returns
 * what was written (the caller frees it). */
static char *mem_buf;
static size_t mem_len;

static FILE *mem_open(void)
{
    FILE *f = open_memstream(&mem_buf, &mem_len);
    assert_non_null(f);
    return f;
}

static char *mem_take(FILE *f)
{
    fclose(f);
    return mem_buf;
}

/* ---- sample messages ------------------------------------------------------ */

static char *tags[] = {"ui", "settings"};
static uint64_t up_a[] = {12, 1, 2}, down_a[] = {1, 0, 0};
static uint64_t up_b[] = {2, 0, 0}, down_b[] = {0, 0, 0};
static uint64_t up_c[] = {1, 1}, down_c[] = {0, 0, 1}; /* a short array: tier 2 is 0 */

static Canvass__V1__StatusChange h_open, h_planned, h_shipped;
static Canvass__V1__StatusChange *history[3];
static Canvass__V1__FeatureRecord rec_a, rec_b, rec_c;
static Canvass__V1__FeatureStanding st_a, st_b, st_c;

static Canvass__V1__StatusChange change(const char *status, uint64_t at, const char *release)
{
    Canvass__V1__StatusChange c = CANVASS__V1__STATUS_CHANGE__INIT;
    c.status = (char *)status;
    c.at_ms = at;
    c.release = (char *)release;
    return c;
}

static Canvass__V1__FeatureStanding standing(Canvass__V1__FeatureRecord *r, uint64_t *up,
                                             size_t nup, uint64_t *down, size_t ndown,
                                             uint64_t voters)
{
    Canvass__V1__FeatureStanding s = CANVASS__V1__FEATURE_STANDING__INIT;
    s.feature = r;
    s.up = up;
    s.n_up = nup;
    s.down = down;
    s.n_down = ndown;
    s.voters = voters;
    return s;
}

static void samples(void)
{
    h_open = change("open", CREATED_MS, "");
    h_planned = change("planned", PLANNED_MS, "");
    h_shipped = change("shipped", SHIPPED_MS, "2026.11.27");
    history[0] = &h_open;
    history[1] = &h_planned;
    history[2] = &h_shipped;

    Canvass__V1__FeatureRecord init = CANVASS__V1__FEATURE_RECORD__INIT;
    rec_a = init;
    rec_a.feature_id = "F1a2b3c";
    rec_a.title = "Dark mode for settings";
    rec_a.body = "Make every settings page dark.\nEven the about page.";
    rec_a.tags = tags;
    rec_a.n_tags = 2;
    rec_a.author = "alice";
    rec_a.created_ms = CREATED_MS;
    rec_a.status = "shipped";
    rec_a.release = "2026.11.27";
    rec_a.history = history;
    rec_a.n_history = 3;
    st_a = standing(&rec_a, up_a, 3, down_a, 3, 14);

    rec_b = init;
    rec_b.feature_id = "F9zz";
    rec_b.title = "Dark theme";
    rec_b.author = "bob";
    rec_b.created_ms = CREATED_MS + 1000;
    rec_b.status = "merged";
    rec_b.merged_into = "F1a2b3c";
    st_b = standing(&rec_b, up_b, 3, down_b, 3, 0);

    rec_c = init;
    rec_c.feature_id = "F0first";
    rec_c.title = "Call \"recording\", please";
    rec_c.author = "carol, the tester";
    rec_c.created_ms = CREATED_MS - 60000;
    rec_c.status = "open";
    st_c = standing(&rec_c, up_c, 2, down_c, 3, 3);
}

/* ---- counts --------------------------------------------------------------- */

static void test_counts(void **state)
{
    (void)state;
    samples();
    assert_int_equal(cv_feature_up(&st_a), 15);
    assert_int_equal(cv_feature_down(&st_a), 1);
    /* 12*1 + 1*3 + 2*10 - 1*1 */
    assert_true(cv_feature_score(&st_a) == 34.0);
    /* A short up array counts the missing tier as 0: 1 + 3 - 10. */
    assert_int_equal(cv_feature_up(&st_c), 2);
    assert_true(cv_feature_score(&st_c) == -6.0);
    Canvass__V1__FeatureStanding empty = CANVASS__V1__FEATURE_STANDING__INIT;
    assert_int_equal(cv_feature_up(&empty), 0);
    assert_true(cv_feature_score(&empty) == 0.0);
}

/* ---- feature show --------------------------------------------------------- */

static void test_detail(void **state)
{
    (void)state;
    samples();
    Canvass__V1__CycleRank r1 = CANVASS__V1__CYCLE_RANK__INIT, r2 = CANVASS__V1__CYCLE_RANK__INIT;
    r1.cycle = 1;
    r1.rank = 4;
    r1.score = 5;
    r1.up = 6;
    r1.down = 1;
    r2.cycle = 12;
    r2.rank = 1;
    r2.score = 33.5;
    r2.up = 15;
    r2.down = 1;
    Canvass__V1__CycleRank *ranks[] = {&r1, &r2};
    Canvass__V1__FeatureDetail d = CANVASS__V1__FEATURE_DETAIL__INIT;
    d.standing = &st_a;
    d.ranks = ranks;
    d.n_ranks = 2;

    /* Shipped: no longer in the live list. */
    int rc;
    FILE *f = mem_open();
    rc = cv_feature_print_detail(f, &d);
    char *out = mem_take(f);
    assert_int_equal(rc, 0);
    assert_string_equal(out,
                        "F1a2b3c  Dark mode for settings\n"
                        "  status    shipped in 2026.11.27\n"
                        "  author    alice\n"
                        "  created   2026-11-20 10:35 UTC\n"
                        "  tags      ui, settings\n"
                        "  votes     15 up (member 12, core 1, honorary 2), 1 down (member 1)\n"
                        "  voters    14\n"
                        "  score     34 (weights member 1, core 3, honorary 10)\n"
                        "\n"
                        "    Make every settings page dark.\n"
                        "    Even the about page.\n"
                        "\n"
                        "status history\n"
                        "  2026-11-20 10:35:00 UTC  open\n"
                        "  2026-11-21 10:51:02 UTC  planned\n"
                        "  2026-11-27 17:05:11 UTC  shipped in 2026.11.27\n"
                        "\n"
                        "rank history\n"
                        "  CYCLE  RANK   SCORE  UP  DOWN\n"
                        "      1     4       5   6     1\n"
                        "     12     1  33.500  15     1\n"
                        "   live     -  not ranked (shipped)\n");
    free(out);

    /* Ranked in the live list; no body, no tags, no history, no ranks; a
     * control character in the title does not break the line. */
    rec_a.status = "in_progress";
    rec_a.body = "";
    rec_a.n_tags = 0;
    rec_a.n_history = 0;
    rec_a.title = "Dark\nmode";
    d.n_ranks = 0;
    d.live_rank = 2;
    d.live_score = 34;
    f = mem_open();
    rc = cv_feature_print_detail(f, &d);
    out = mem_take(f);
    assert_int_equal(rc, 0);
    assert_string_equal(out,
                        "F1a2b3c  Dark mode\n"
                        "  status    in_progress\n"
                        "  author    alice\n"
                        "  created   2026-11-20 10:35 UTC\n"
                        "  tags      (none)\n"
                        "  votes     15 up (member 12, core 1, honorary 2), 1 down (member 1)\n"
                        "  voters    14\n"
                        "  score     34 (weights member 1, core 3, honorary 10)\n"
                        "\n"
                        "    (no description)\n"
                        "\n"
                        "status history\n"
                        "  (no changes recorded)\n"
                        "\n"
                        "rank history\n"
                        "  CYCLE  RANK  SCORE  UP  DOWN\n"
                        "   live     2     34  15     1\n");
    free(out);

    /* A reply without a standing prints empty fields, never crashes. */
    Canvass__V1__FeatureDetail bare = CANVASS__V1__FEATURE_DETAIL__INIT;
    f = mem_open();
    rc = cv_feature_print_detail(f, &bare);
    out = mem_take(f);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "  votes     0 up, 0 down\n"));
    assert_non_null(strstr(out, "   live     -  not ranked (open)\n"));
    free(out);
}

static void test_detail_merged(void **state)
{
    (void)state;
    samples();
    Canvass__V1__FeatureDetail d = CANVASS__V1__FEATURE_DETAIL__INIT;
    d.standing = &st_b;
    int rc;
    FILE *f = mem_open();
    rc = cv_feature_print_detail(f, &d);
    char *out = mem_take(f);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "F9zz  Dark theme\n  status    merged into F1a2b3c\n"));
    assert_non_null(strstr(out, "  votes     2 up (member 2), 0 down\n"));
    free(out);
}

/* ---- feature lists -------------------------------------------------------- */

static Canvass__V1__FeatureTable table(Canvass__V1__FeatureStanding **rows, size_t n)
{
    Canvass__V1__FeatureTable t = CANVASS__V1__FEATURE_TABLE__INIT;
    t.features = rows;
    t.n_features = n;
    return t;
}

static void test_sort(void **state)
{
    (void)state;
    samples();
    Canvass__V1__FeatureStanding *rows[] = {&st_b, &st_a, &st_c};
    Canvass__V1__FeatureTable t = table(rows, 3);
    cv_feature_sort(&t);
    assert_ptr_equal(rows[0], &st_c); /* oldest */
    assert_ptr_equal(rows[1], &st_a);
    assert_ptr_equal(rows[2], &st_b);
    /* Same creation time: by id. */
    rec_b.created_ms = rec_a.created_ms;
    rec_b.feature_id = "F0aaa";
    cv_feature_sort(&t);
    assert_ptr_equal(rows[1], &st_b);
    assert_ptr_equal(rows[2], &st_a);
}

static void test_table(void **state)
{
    (void)state;
    samples();
    Canvass__V1__FeatureStanding *rows[] = {&st_c, &st_a, &st_b};
    Canvass__V1__FeatureTable t = table(rows, 3);
    int rc;
    FILE *f = mem_open();
    rc = cv_feature_print_table(f, &t);
    char *out = mem_take(f);
    assert_int_equal(rc, 0);
    assert_string_equal(out,
                        "FEATURE  STATUS              UP  DOWN  VOTERS  SCORE  TITLE\n"
                        "F0first  open                 2     1       3     -6  "
                        "Call \"recording\", please\n"
                        "F1a2b3c  shipped 2026.11.27  15     1      14     34  "
                        "Dark mode for settings\n"
                        "F9zz     merged \u2192 F1a2b3c     2     0       0      2  Dark theme\n");
    free(out);

    t.n_features = 0;
    f = mem_open();
    rc = cv_feature_print_table(f, &t);
    out = mem_take(f);
    assert_int_equal(rc, 0);
    assert_string_equal(out, "no features yet\n");
    free(out);
}

static void test_csv(void **state)
{
    (void)state;
    samples();
    Canvass__V1__FeatureStanding *rows[] = {&st_c, &st_a, &st_b};
    Canvass__V1__FeatureTable t = table(rows, 3);
    int rc;
    FILE *f = mem_open();
    rc = cv_feature_print_csv(f, &t);
    char *out = mem_take(f);
    assert_int_equal(rc, 0);
    assert_string_equal(
        out, "feature_id,title,status,release,merged_into,author,created_at,tags,up,down,voters\n"
             "F0first,\"Call \"\"recording\"\", please\",open,,,\"carol, the tester\","
             "2026-11-20T10:34:00.000Z,,2,1,3\n"
             "F1a2b3c,Dark mode for settings,shipped,2026.11.27,,alice,2026-11-20T10:35:00.000Z,"
             "ui;settings,15,1,14\n"
             "F9zz,Dark theme,merged,,F1a2b3c,bob,2026-11-20T10:35:01.000Z,,2,0,0\n");
    free(out);

    /* A feature that reached the CLI without a status is open. */
    rec_c.status = "";
    t.n_features = 1;
    f = mem_open();
    rc = cv_feature_print_csv(f, &t);
    out = mem_take(f);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "\nF0first,\"Call \"\"recording\"\", please\",open,"));
    free(out);
}

/* ---- voters --------------------------------------------------------------- */

static void test_voters(void **state)
{
    (void)state;
    Canvass__V1__Voter a = CANVASS__V1__VOTER__INIT, b = CANVASS__V1__VOTER__INIT;
    a.user_id = "alice";
    a.value = 1;
    a.tier = "";
    b.user_id = "bob, jr";
    b.value = -1;
    b.tier = "honorary";
    Canvass__V1__Voter *vs[] = {&a, &b};
    Canvass__V1__VoterPage p = CANVASS__V1__VOTER_PAGE__INIT;
    p.feature_id = "F1a2b3c";
    p.voters = vs;
    p.n_voters = 2;
    p.total = 2;

    int rc;
    FILE *f = mem_open();
    rc = cv_feature_print_voters(f, &p, CV_VOTERS_TEXT, 1);
    char *out = mem_take(f);
    assert_int_equal(rc, 0);
    assert_string_equal(out, "alice +1 member\nbob, jr -1 honorary\n");
    free(out);

    f = mem_open();
    rc = cv_feature_print_voters(f, &p, CV_VOTERS_CSV, 1);
    out = mem_take(f);
    assert_int_equal(rc, 0);
    assert_string_equal(out, "user_id,value,tier\nalice,1,member\n\"bob, jr\",-1,honorary\n");
    free(out);

    /* A later page: rows only. */
    f = mem_open();
    rc = cv_feature_print_voters(f, &p, CV_VOTERS_CSV, 0);
    out = mem_take(f);
    assert_int_equal(rc, 0);
    assert_string_equal(out, "alice,1,member\n\"bob, jr\",-1,honorary\n");
    free(out);

    f = mem_open();
    rc = cv_feature_print_votes_csv(f, &p);
    out = mem_take(f);
    assert_int_equal(rc, 0);
    assert_string_equal(out, "F1a2b3c,alice,1,member\nF1a2b3c,\"bob, jr\",-1,honorary\n");
    free(out);

    f = mem_open();
    rc = cv_feature_print_voters(f, &p, (cv_voters_format_t)7, 1);
    out = mem_take(f);
    assert_int_equal(rc, CV_EINVAL);
    free(out);
}

/* ---- movers --------------------------------------------------------------- */

static Canvass__V1__RankedEntry ranked(uint32_t rank, const char *id, uint32_t prev)
{
    Canvass__V1__RankedEntry e = CANVASS__V1__RANKED_ENTRY__INIT;
    e.rank = rank;
    e.feature_id = (char *)id;
    e.prev_rank = prev;
    return e;
}

static char *movers(Canvass__V1__RankedEntry *es, size_t n, int *rc)
{
    Canvass__V1__RankedEntry *ptrs[16];
    assert_true(n <= 16);
    for (size_t i = 0; i < n; i++)
        ptrs[i] = &es[i];
    Canvass__V1__RankedList rl = CANVASS__V1__RANKED_LIST__INIT;
    rl.entries = ptrs;
    rl.n_entries = n;
    FILE *f = mem_open();
    *rc = cv_feature_print_movers(f, &rl);
    return mem_take(f);
}

static void test_movers(void **state)
{
    (void)state;
    int rc;
    /* F9 fell 3, F2 rose 5, F4 rose 1, F5 is new, F6 stayed. */
    Canvass__V1__RankedEntry es[] = {ranked(1, "F5", 0), ranked(2, "F2", 7), ranked(3, "F6", 3),
                                     ranked(4, "F9", 1), ranked(5, "F4", 6)};
    char *out = movers(es, 5, &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(out, "biggest movers: F2 \u25b25 (7 \u2192 2), F9 \u25bc3 (1 \u2192 4), "
                             "F4 \u25b21 (6 \u2192 5)\n");
    free(out);

    /* At most three; equal moves list the better rank first. */
    Canvass__V1__RankedEntry ties[] = {ranked(1, "Fa", 3), ranked(2, "Fb", 4), ranked(3, "Fc", 1),
                                       ranked(4, "Fd", 2), ranked(5, "Fe", 8)};
    out = movers(ties, 5, &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(out, "biggest movers: Fe \u25b23 (8 \u2192 5), Fa \u25b22 (3 \u2192 1), "
                             "Fb \u25b22 (4 \u2192 2)\n");
    free(out);

    /* The first cycle: everything is new, nothing to say. */
    Canvass__V1__RankedEntry fresh[] = {ranked(1, "Fa", 0), ranked(2, "Fb", 0)};
    out = movers(fresh, 2, &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(out, "");
    free(out);

    /* Nobody moved. */
    Canvass__V1__RankedEntry still[] = {ranked(1, "Fa", 1), ranked(2, "Fb", 2)};
    out = movers(still, 2, &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(out, "");
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counts),        cmocka_unit_test(test_detail),
        cmocka_unit_test(test_detail_merged), cmocka_unit_test(test_sort),
        cmocka_unit_test(test_table),         cmocka_unit_test(test_csv),
        cmocka_unit_test(test_voters),        cmocka_unit_test(test_movers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
