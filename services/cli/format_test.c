/* format_test: unit tests for the `canvass` output formats (format.c).
 *
 * Each renderer is run on a fixed ranked list (one long-standing feature that
 * climbed, one new one with tags and a title that needs CSV quoting, one with
 * a fractional score that fell) and its whole output is compared with the
 * exact text the A7 contract and the README promise.
 */
#include "cv_err.h"
#include "format.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define CLOSED_MS 1795798800000ULL /* 2026-11-27T17:00:00.000Z */
#define OPENED_MS 1795194000000ULL /* 2026-11-20T17:00:00.000Z */

static char *tags_b[] = {"ui", "settings"};
static char *tags_c[] = {"a;b", "x"};

static Canvass__V1__RankedEntry entry(uint32_t rank, const char *id, const char *title,
                                      double score, uint64_t up, uint64_t down, uint64_t voters,
                                      uint32_t prev, char **tags, size_t ntags)
{
    Canvass__V1__RankedEntry e = CANVASS__V1__RANKED_ENTRY__INIT;
    e.rank = rank;
    e.feature_id = (char *)id;
    e.title = (char *)title;
    e.score = score;
    e.up = up;
    e.down = down;
    e.voters = voters;
    e.prev_rank = prev;
    e.status = "open";
    e.tags = tags;
    e.n_tags = ntags;
    return e;
}

/* Renders rl as fmt into a string the caller frees; *rc is the result. */
static char *render_ranked(const Canvass__V1__RankedList *rl, cv_format_t fmt, int *rc)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    *rc = cv_format_ranked(f, rl, fmt);
    fclose(f);
    return buf;
}

static Canvass__V1__RankedEntry ea, eb, ec;
static Canvass__V1__RankedEntry *entries[3];

static void sample(Canvass__V1__RankedList *rl, int closed)
{
    ea = entry(1, "F1a2b3c", "Dark mode for settings", 14, 15, 1, 12, 3, NULL, 0);
    eb = entry(2, "F9zz", "Call \"recording\", please", 3, 3, 0, 3, 0, tags_b, 2);
    ec = entry(3, "Fq", "Battery, saver", 2.5, 4, 1, 4, 2, tags_c, 2);
    entries[0] = &ea;
    entries[1] = &eb;
    entries[2] = &ec;
    Canvass__V1__RankedList init = CANVASS__V1__RANKED_LIST__INIT;
    *rl = init;
    rl->cycle = 3;
    rl->opened_at_ms = OPENED_MS;
    rl->closed_at_ms = closed ? CLOSED_MS : 0;
    rl->order = "score";
    rl->entries = entries;
    rl->n_entries = 3;
    rl->total_votes = 24;
}

static void test_time_and_scalars(void **state)
{
    (void)state;
    char t[CV_TIME_CAP], s[CV_SCORE_CAP], m[CV_MOVE_CAP];
    cv_format_time_rfc3339(CLOSED_MS + 42, t);
    assert_string_equal(t, "2026-11-27T17:00:00.042Z");
    cv_format_time_human(CLOSED_MS + 5000, 0, t);
    assert_string_equal(t, "2026-11-27 17:00 UTC");
    cv_format_time_human(CLOSED_MS + 5000, 1, t);
    assert_string_equal(t, "2026-11-27 17:00:05 UTC");

    cv_format_score(14, 1, s);
    assert_string_equal(s, "14");
    cv_format_score(-3, 0, s);
    assert_string_equal(s, "-3");
    cv_format_score(-0.0, 1, s);
    assert_string_equal(s, "0");
    cv_format_score(0.1, 1, s);
    assert_string_equal(s, "0.1");
    cv_format_score(0.20654931418595394, 1, s);
    assert_true(strtod(s, NULL) == 0.20654931418595394);
    cv_format_score(0.20654931418595394, 0, s);
    assert_string_equal(s, "0.207");

    cv_format_movement(4, 0, m);
    assert_string_equal(m, "new");
    cv_format_movement(1, 3, m);
    assert_string_equal(m, "\u25b22");
    cv_format_movement(5, 4, m);
    assert_string_equal(m, "\u25bc1");
    cv_format_movement(2, 2, m);
    assert_string_equal(m, "=");

    assert_int_equal(cv_format_parse("json"), CV_FMT_JSON);
    assert_int_equal(cv_format_parse("csv"), CV_FMT_CSV);
    assert_int_equal(cv_format_parse("table"), CV_FMT_TABLE);
    assert_int_equal(cv_format_parse("xml"), -1);
}

static void test_csv_field(void **state)
{
    (void)state;
    static const char *in[] = {"plain", "a,b", "say \"hi\"", "two\nlines", "", "semi;colon"};
    static const char *want[] = {"plain",          "\"a,b\"", "\"say \"\"hi\"\"\"",
                                 "\"two\nlines\"", "",        "semi;colon"};
    for (size_t i = 0; i < sizeof in / sizeof in[0]; i++) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        assert_int_equal(cv_format_csv_field(f, in[i]), 0);
        fclose(f);
        assert_string_equal(buf, want[i]);
        free(buf);
    }
}

static void test_ranked_json(void **state)
{
    (void)state;
    Canvass__V1__RankedList rl;
    int rc;
    sample(&rl, 1);
    char *out = render_ranked(&rl, CV_FMT_JSON, &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(
        out, "{\"cycle\": 3, \"closed_at\": \"2026-11-27T17:00:00.000Z\", \"order\": \"score\", "
             "\"entries\": ["
             "{\"rank\": 1, \"feature_id\": \"F1a2b3c\", \"title\": \"Dark mode for settings\", "
             "\"score\": 14, \"up\": 15, \"down\": 1, \"voters\": 12, \"prev_rank\": 3, "
             "\"status\": \"open\", \"tags\": []}, "
             "{\"rank\": 2, \"feature_id\": \"F9zz\", \"title\": \"Call \\\"recording\\\", "
             "please\", \"score\": 3, \"up\": 3, \"down\": 0, \"voters\": 3, \"prev_rank\": null, "
             "\"status\": \"open\", \"tags\": [\"ui\", \"settings\"]}, "
             "{\"rank\": 3, \"feature_id\": \"Fq\", \"title\": \"Battery, saver\", "
             "\"score\": 2.5, \"up\": 4, \"down\": 1, \"voters\": 4, \"prev_rank\": 2, "
             "\"status\": \"open\", \"tags\": [\"a;b\", \"x\"]}]}\n");
    free(out);

    sample(&rl, 0); /* live: closed_at is null */
    rl.n_entries = 0;
    out = render_ranked(&rl, CV_FMT_JSON, &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(out, "{\"cycle\": 3, \"closed_at\": null, \"order\": \"score\", "
                             "\"entries\": []}\n");
    free(out);
}

static void test_ranked_csv(void **state)
{
    (void)state;
    Canvass__V1__RankedList rl;
    int rc;
    sample(&rl, 1);
    char *out = render_ranked(&rl, CV_FMT_CSV, &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(out, "rank,feature_id,title,score,up,down,voters,prev_rank,status,tags\n"
                             "1,F1a2b3c,Dark mode for settings,14,15,1,12,3,open,\n"
                             "2,F9zz,\"Call \"\"recording\"\", please\",3,3,0,3,,open,ui;settings\n"
                             "3,Fq,\"Battery, saver\",2.5,4,1,4,2,open,a;b;x\n");
    free(out);
}

static void test_ranked_table(void **state)
{
    (void)state;
    Canvass__V1__RankedList rl;
    int rc;
    sample(&rl, 1);
    char *out = render_ranked(&rl, CV_FMT_TABLE, &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(
        out,
        "cycle 3 (closed 2026-11-27 17:00 UTC, order score, 24 votes)\n"
        "RANK  MOVE  SCORE  UP  DOWN  VOTERS  FEATURE  STATUS  TITLE\n"
        "   1  \u25b22       14  15     1      12  F1a2b3c  open    Dark mode for settings\n"
        "   2  new       3   3     0       3  F9zz     open    Call \"recording\", please  "
        "[ui, settings]\n"
        "   3  \u25bc1    2.500   4     1       4  Fq       open    Battery, saver  [a;b, x]\n");
    free(out);

    sample(&rl, 0);
    rl.n_entries = 0;
    out = render_ranked(&rl, CV_FMT_TABLE, &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(out, "cycle 3 (live, open since 2026-11-20 17:00 UTC, order score, "
                             "24 votes)\nno ranked features\n");
    free(out);
}

static void test_cycles(void **state)
{
    (void)state;
    Canvass__V1__CycleInfo a = CANVASS__V1__CYCLE_INFO__INIT, b = CANVASS__V1__CYCLE_INFO__INIT;
    a.cycle = 1;
    a.state = "closed";
    a.opened_at_ms = OPENED_MS;
    a.closed_at_ms = CLOSED_MS;
    a.scheduled_at_ms = CLOSED_MS;
    a.entries = 12;
    a.total_votes = 40;
    b.cycle = 2;
    b.state = "open";
    b.opened_at_ms = CLOSED_MS;
    Canvass__V1__CycleInfo *cs[] = {&a, &b};
    Canvass__V1__CycleList cl = CANVASS__V1__CYCLE_LIST__INIT;
    cl.cycles = cs;
    cl.n_cycles = 2;

    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_int_equal(cv_format_cycles(f, &cl, CV_FMT_JSON), 0);
    fclose(f);
    assert_string_equal(buf, "{\"cycles\": [{\"cycle\": 1, \"state\": \"closed\", "
                             "\"opened_at\": \"2026-11-20T17:00:00.000Z\", "
                             "\"closed_at\": \"2026-11-27T17:00:00.000Z\", "
                             "\"scheduled_at\": \"2026-11-27T17:00:00.000Z\", \"entries\": 12, "
                             "\"total_votes\": 40}, {\"cycle\": 2, \"state\": \"open\", "
                             "\"opened_at\": \"2026-11-27T17:00:00.000Z\", \"closed_at\": null, "
                             "\"scheduled_at\": null, \"entries\": 0, \"total_votes\": 0}]}\n");
    free(buf);

    buf = NULL;
    f = open_memstream(&buf, &len);
    assert_int_equal(cv_format_cycles(f, &cl, CV_FMT_TABLE), 0);
    fclose(f);
    assert_string_equal(
        buf, "CYCLE  STATE   OPENED (UTC)         CLOSED (UTC)         DUE (UTC)            "
             "ENTRIES  VOTES\n"
             "    1  closed  2026-11-20 17:00:00  2026-11-27 17:00:00  2026-11-27 17:00:00  "
             "     12     40\n"
             "    2  open    2026-11-27 17:00:00  -                    -                    "
             "      0      0\n");
    free(buf);

    buf = NULL;
    f = open_memstream(&buf, &len);
    assert_int_equal(cv_format_cycles(f, &cl, CV_FMT_CSV), CV_EINVAL);
    fclose(f);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_time_and_scalars), cmocka_unit_test(test_csv_field),
        cmocka_unit_test(test_ranked_json),      cmocka_unit_test(test_ranked_csv),
        cmocka_unit_test(test_ranked_table),     cmocka_unit_test(test_cycles),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
