/* cv_json_test: every shape of cv_json.h, compared byte for byte.
 *
 * The ranked list is the same sample the CLI's format_test renders, with the
 * same expected text minus the CLI's trailing newline: the two must never
 * drift apart.  The other shapes are checked whole, including the null
 * cases, and the body parser with each kind of bad body.
 */
#include "cv_err.h"
#include "cv_json.h"

#include <math.h>
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

/* Asserts that got (taken) equals want. */
static void expect(char *got, const char *want)
{
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
}

static void test_scalars(void **state)
{
    (void)state;
    char t[32], s[CV_JSON_SCORE_CAP];
    cv_json_time(CLOSED_MS + 42, t);
    assert_string_equal(t, "2026-11-27T17:00:00.042Z");
    cv_json_time(0, t);
    assert_string_equal(t, "1970-01-01T00:00:00.000Z");
    cv_json_time(UINT64_MAX, t); /* absurd, but must stay in its 32 bytes */
    assert_true(strlen(t) < 32);

    cv_json_score(14, s);
    assert_string_equal(s, "14");
    cv_json_score(-3, s);
    assert_string_equal(s, "-3");
    cv_json_score(-0.0, s);
    assert_string_equal(s, "0");
    cv_json_score(0.1, s);
    assert_string_equal(s, "0.1");
    cv_json_score(0.20654931418595394, s);
    assert_true(strtod(s, NULL) == 0.20654931418595394);
    cv_json_score(1e300, s); /* too big for an integer: printed as a double */
    assert_true(strtod(s, NULL) == 1e300);
}

static void test_ranked(void **state)
{
    (void)state;
    Canvass__V1__RankedList rl;
    sample(&rl, 1);
    expect(cv_json_ranked(&rl),
           "{\"cycle\": 3, \"closed_at\": \"2026-11-27T17:00:00.000Z\", \"order\": \"score\", "
           "\"entries\": ["
           "{\"rank\": 1, \"feature_id\": \"F1a2b3c\", \"title\": \"Dark mode for settings\", "
           "\"score\": 14, \"up\": 15, \"down\": 1, \"voters\": 12, \"prev_rank\": 3, "
           "\"status\": \"open\", \"tags\": []}, "
           "{\"rank\": 2, \"feature_id\": \"F9zz\", \"title\": \"Call \\\"recording\\\", "
           "please\", \"score\": 3, \"up\": 3, \"down\": 0, \"voters\": 3, \"prev_rank\": null, "
           "\"status\": \"open\", \"tags\": [\"ui\", \"settings\"]}, "
           "{\"rank\": 3, \"feature_id\": \"Fq\", \"title\": \"Battery, saver\", "
           "\"score\": 2.5, \"up\": 4, \"down\": 1, \"voters\": 4, \"prev_rank\": 2, "
           "\"status\": \"open\", \"tags\": [\"a;b\", \"x\"]}]}");

    sample(&rl, 0); /* live and empty; an unset order reads as score */
    rl.n_entries = 0;
    rl.order = "";
    expect(cv_json_ranked(&rl),
           "{\"cycle\": 3, \"closed_at\": null, \"order\": \"score\", \"entries\": []}");

    /* A title that is not UTF-8 is shown, not dropped. */
    sample(&rl, 1);
    ea.title = "caf\xe9";
    rl.n_entries = 1;
    char *j = cv_json_ranked(&rl);
    assert_non_null(j);
    assert_non_null(strstr(j, "\"title\": \"caf?\""));
    free(j);
}

static void test_ranked_csv(void **state)
{
    (void)state;
    Canvass__V1__RankedList rl;
    sample(&rl, 1);
    expect(cv_json_ranked_csv(&rl),
           "rank,feature_id,title,score,up,down,voters,prev_rank,status,tags\n"
           "1,F1a2b3c,Dark mode for settings,14,15,1,12,3,open,\n"
           "2,F9zz,\"Call \"\"recording\"\", please\",3,3,0,3,,open,ui;settings\n"
           "3,Fq,\"Battery, saver\",2.5,4,1,4,2,open,a;b;x\n");
    rl.n_entries = 0;
    expect(cv_json_ranked_csv(&rl),
           "rank,feature_id,title,score,up,down,voters,prev_rank,status,tags\n");
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
    expect(cv_json_cycles(&cl),
           "{\"cycles\": [{\"cycle\": 1, \"state\": \"closed\", "
           "\"opened_at\": \"2026-11-20T17:00:00.000Z\", "
           "\"closed_at\": \"2026-11-27T17:00:00.000Z\", "
           "\"scheduled_at\": \"2026-11-27T17:00:00.000Z\", \"entries\": 12, "
           "\"total_votes\": 40}, {\"cycle\": 2, \"state\": \"open\", "
           "\"opened_at\": \"2026-11-27T17:00:00.000Z\", \"closed_at\": null, "
           "\"scheduled_at\": null, \"entries\": 0, \"total_votes\": 0}]}");
    expect(cv_json_cycle(&a), "{\"cycle\": 1, \"state\": \"closed\", "
                              "\"opened_at\": \"2026-11-20T17:00:00.000Z\", "
                              "\"closed_at\": \"2026-11-27T17:00:00.000Z\", "
                              "\"scheduled_at\": \"2026-11-27T17:00:00.000Z\", \"entries\": 12, "
                              "\"total_votes\": 40}");
    cl.n_cycles = 0;
    expect(cv_json_cycles(&cl), "{\"cycles\": []}");
}

/* A shipped feature with votes in every tier and a two-step history. */
static char *ftags[] = {"ui"};
static uint64_t fup[3] = {5, 1, 1}, fdown[3] = {2, 0, 0};
static Canvass__V1__StatusChange h1 = CANVASS__V1__STATUS_CHANGE__INIT,
                                 h2 = CANVASS__V1__STATUS_CHANGE__INIT;
static Canvass__V1__StatusChange *hist[] = {&h1, &h2};
static Canvass__V1__FeatureRecord rec = CANVASS__V1__FEATURE_RECORD__INIT;
static Canvass__V1__FeatureStanding standing = CANVASS__V1__FEATURE_STANDING__INIT;

static void feature_sample(void)
{
    rec.feature_id = "Fdark";
    rec.title = "Dark mode";
    rec.body = "Please\nthanks";
    rec.tags = ftags;
    rec.n_tags = 1;
    rec.author = "alice";
    rec.created_ms = OPENED_MS;
    rec.status = "shipped";
    rec.release = "2026.11.27";
    rec.merged_into = "";
    h1.status = "open";
    h1.at_ms = OPENED_MS;
    h1.release = "";
    h1.merged_into = "";
    h2.status = "shipped";
    h2.at_ms = CLOSED_MS;
    h2.release = "2026.11.27";
    h2.merged_into = "";
    rec.history = hist;
    rec.n_history = 2;
    standing.feature = &rec;
    standing.up = fup;
    standing.n_up = 3;
    standing.down = fdown;
    standing.n_down = 3;
    standing.voters = 9;
}

#define FEATURE_HEAD                                                                            \
    "{\"feature_id\": \"Fdark\", \"title\": \"Dark mode\", \"body\": \"Please\\nthanks\", "     \
    "\"tags\": [\"ui\"], \"author\": \"alice\", \"created_at\": \"2026-11-20T17:00:00.000Z\", " \
    "\"status\": \"shipped\", \"release\": \"2026.11.27\", \"merged_into\": null, \"up\": 7, "  \
    "\"down\": 2, \"voters\": 9, \"score\": 16"

static void test_feature(void **state)
{
    (void)state;
    feature_sample();
    Canvass__V1__CycleRank r1 = CANVASS__V1__CYCLE_RANK__INIT;
    r1.cycle = 1;
    r1.rank = 2;
    r1.score = 4.5;
    r1.up = 5;
    r1.down = 1;
    Canvass__V1__CycleRank *ranks[] = {&r1};
    Canvass__V1__FeatureDetail d = CANVASS__V1__FEATURE_DETAIL__INIT;
    d.standing = &standing;
    d.ranks = ranks;
    d.n_ranks = 1;
    /* score: 5-2 members, 1 core (3), 1 honorary (10) = 16 */
    expect(cv_json_feature(&d),
           FEATURE_HEAD ", \"history\": [{\"status\": \"open\", \"at\": "
                        "\"2026-11-20T17:00:00.000Z\", \"release\": null, \"merged_into\": null}, "
                        "{\"status\": \"shipped\", \"at\": \"2026-11-27T17:00:00.000Z\", "
                        "\"release\": \"2026.11.27\", \"merged_into\": null}], "
                        "\"ranks\": [{\"cycle\": 1, \"rank\": 2, \"score\": 4.5, \"up\": 5, "
                        "\"down\": 1}], \"live_rank\": null, \"live_score\": 0}");

    d.live_rank = 3;
    d.live_score = 16;
    d.n_ranks = 0;
    rec.n_history = 0;
    char *j = cv_json_feature(&d);
    assert_non_null(j);
    assert_non_null(strstr(j, "\"history\": [], \"ranks\": [], \"live_rank\": 3, "
                              "\"live_score\": 16}"));
    free(j);

    /* A detail without a standing (a malformed reply) still renders. */
    Canvass__V1__FeatureDetail empty = CANVASS__V1__FEATURE_DETAIL__INIT;
    j = cv_json_feature(&empty);
    assert_non_null(j);
    assert_non_null(strstr(j, "\"feature_id\": \"\", "));
    free(j);
}

static void test_features(void **state)
{
    (void)state;
    feature_sample();
    Canvass__V1__FeatureStanding *fs[] = {&standing};
    Canvass__V1__FeatureTable t = CANVASS__V1__FEATURE_TABLE__INIT;
    t.features = fs;
    t.n_features = 1;
    expect(cv_json_features(&t), "{\"features\": [" FEATURE_HEAD "}]}");
    t.n_features = 0;
    expect(cv_json_features(&t), "{\"features\": []}");
}

static void test_voters_merge_error(void **state)
{
    (void)state;
    Canvass__V1__Voter a = CANVASS__V1__VOTER__INIT, b = CANVASS__V1__VOTER__INIT;
    a.user_id = "alice";
    a.value = 1;
    a.tier = "";
    b.user_id = "bob";
    b.value = -1;
    b.tier = "honorary";
    Canvass__V1__Voter *vs[] = {&a, &b};
    Canvass__V1__VoterPage p = CANVASS__V1__VOTER_PAGE__INIT;
    p.feature_id = "Fdark";
    p.voters = vs;
    p.n_voters = 2;
    p.next_after = "bob";
    p.total = 5;
    expect(cv_json_voters(&p),
           "{\"feature_id\": \"Fdark\", \"total\": 5, \"next_after\": \"bob\", \"voters\": "
           "[{\"user_id\": \"alice\", \"value\": 1, \"tier\": \"member\"}, "
           "{\"user_id\": \"bob\", \"value\": -1, \"tier\": \"honorary\"}]}");
    p.next_after = "";
    p.n_voters = 0;
    expect(cv_json_voters(&p),
           "{\"feature_id\": \"Fdark\", \"total\": 5, \"next_after\": null, \"voters\": []}");

    Canvass__V1__MergeResult m = CANVASS__V1__MERGE_RESULT__INIT;
    m.src = "Fa";
    m.dst = "Fb";
    m.moved = 3;
    m.kept = 1;
    expect(cv_json_merge(&m), "{\"src\": \"Fa\", \"dst\": \"Fb\", \"moved\": 3, \"kept\": 1}");

    expect(cv_json_error(CANVASS__V1__STATUS__NOT_FOUND, "no feature 'x'"),
           "{\"status\": \"NOT_FOUND\", \"error\": \"no feature 'x'\"}");
    expect(cv_json_error(CANVASS__V1__STATUS__INVALID, "a \"quote\"\n"),
           "{\"status\": \"INVALID\", \"error\": \"a \\\"quote\\\"\\n\"}");
    expect(cv_json_status("ok"), "{\"status\": \"ok\"}");
}

static void test_parse_strings(void **state)
{
    (void)state;
    static const char *const names[] = {"status", "release"};
    char *v[2];
    char err[256];

    const char *ok = "{\"status\": \"shipped\", \"release\": \"2026.11.27\"}";
    assert_int_equal(cv_json_parse_strings(ok, strlen(ok), names, v, 2, err, sizeof err), 0);
    assert_string_equal(v[0], "shipped");
    assert_string_equal(v[1], "2026.11.27");
    free(v[0]);
    free(v[1]);

    const char *some = " {\"status\":\"planned\"} \n";
    assert_int_equal(cv_json_parse_strings(some, strlen(some), names, v, 2, err, sizeof err), 0);
    assert_string_equal(v[0], "planned");
    assert_null(v[1]);
    free(v[0]);

    static const struct {
        const char *body, *error;
    } bad[] = {
        {"", "body is empty: expected a JSON object"},
        {"{\"status\": ", "body is not valid JSON: "},
        {"[\"planned\"]", "body must be a JSON object"},
        {"{\"status\": 3}", "'status' must be a string"},
        {"{\"status\": null}", "'status' must be a string"},
        {"{\"into\": \"x\"}", "unknown field 'into' (expected status, release)"},
        {"{\"status\": \"a\", \"status\": \"b\"}", "body is not valid JSON: duplicate"},
        {"{\"status\": \"a\\u0000b\"}", "body is not valid JSON: "},
        {"{\"status\": \"a\"} {}", "body is not valid JSON: end of file expected"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        v[0] = v[1] = (char *)"untouched";
        int rc = cv_json_parse_strings(bad[i].body, strlen(bad[i].body), names, v, 2, err,
                                       sizeof err);
        assert_int_equal(rc, CV_EINVAL);
        assert_null(v[0]);
        assert_null(v[1]);
        if (strncmp(err, bad[i].error, strlen(bad[i].error)) != 0)
            fail_msg("body %s: got error '%s', want it to start with '%s'", bad[i].body, err,
                     bad[i].error);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scalars),   cmocka_unit_test(test_ranked),
        cmocka_unit_test(test_ranked_csv), cmocka_unit_test(test_cycles),
        cmocka_unit_test(test_feature),   cmocka_unit_test(test_features),
        cmocka_unit_test(test_voters_merge_error), cmocka_unit_test(test_parse_strings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
