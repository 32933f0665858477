/* Unit tests for the feature lifecycle of a tally shard (lifecycle.c,
 * standing.c), against a real LMDB store per test: status changes and their
 * history, refusals with their texts, changes ordered inside a group with
 * votes, the feature and voters queries (paging across pages), both merge
 * steps with users on both sides, re-runs that change nothing, an
 * interrupted merge completed later, and the redirect of votes for merged
 * features.
 *
 * Built as $(BUILD)/unit/tally_lifecycle_test.  Run all, or only those
 * matching a pattern: tally_lifecycle_test 'test_merge*'. */
#include "shard_test.h"

/* ---- helpers ------------------------------------------------------------------- */

static const Canvass__V1__FeatureStanding *standing_of(const cv_shard_reply_t *r)
{
    const Canvass__V1__TallyReply *m = cv_shard_reply_msg(r);
    assert_int_equal(m->status, CV_ST_OK);
    assert_int_equal(m->result_case, CANVASS__V1__TALLY_REPLY__RESULT_FEATURE);
    assert_int_equal(m->feature->n_up, 3);
    assert_int_equal(m->feature->n_down, 3);
    assert_int_equal(m->feature->n_trend, 3);
    return m->feature;
}

static const Canvass__V1__MergeResult *merge_of(const cv_shard_reply_t *r)
{
    const Canvass__V1__TallyReply *m = cv_shard_reply_msg(r);
    assert_int_equal(m->status, CV_ST_OK);
    assert_int_equal(m->result_case, CANVASS__V1__TALLY_REPLY__RESULT_MERGE);
    return m->merge;
}

static void assert_change(const Canvass__V1__StatusChange *c, const char *status, uint64_t at,
                          const char *release, const char *merged_into)
{
    assert_string_equal(c->status, status);
    assert_true(c->at_ms == at);
    assert_string_equal(c->release, release);
    assert_string_equal(c->merged_into, merged_into);
}

static void assert_check_ok(fx_t *fx)
{
    char *out = NULL;
    assert_int_equal(audit(cv_audit_check, fx->dir, &out), 0);
    assert_non_null(strstr(out, "ok features="));
    free(out);
}

/* ---- lifecycle ----------------------------------------------------------------- */

static void test_status_history(void **state)
{
    fx_t *fx = *state;
    use_test_clock(fx, 5000000);
    create1(fx, "F1", "", ""); /* stamp 1000: created_ms = cv_stamp_ms(1000) = 0 */
    vote1(fx, "F1", "u1", 1, "core", NULL, NULL, 0);

    cv_shard_reply_t *r = feature1(fx, "F1");
    const Canvass__V1__FeatureStanding *f = standing_of(r);
    assert_string_equal(f->feature->status, "open");
    assert_int_equal(f->feature->n_history, 1);
    assert_change(f->feature->history[0], "open", f->feature->created_ms, "", "");
    assert_int_equal(f->up[1], 1);
    assert_int_equal(f->voters, 1);
    cv_shard_reply_destroy(&r);

    r = set_status1(fx, "F1", "planned", "", 0); /* at_ms 0: the shard's clock */
    f = standing_of(r);
    assert_string_equal(f->feature->status, "planned");
    assert_int_equal(f->feature->n_history, 2);
    assert_change(f->feature->history[1], "planned", 5000000, "", "");
    assert_int_equal(f->up[1], 1); /* the standing comes with the change */
    cv_shard_reply_destroy(&r);

    /* The same status again is a no-op: no new history entry. */
    r = set_status1(fx, "F1", "planned", "", 6000000);
    assert_int_equal(standing_of(r)->feature->n_history, 2);
    cv_shard_reply_destroy(&r);

    r = set_status1(fx, "F1", "shipped", "2026.11.27", 7000000);
    f = standing_of(r);
    assert_string_equal(f->feature->status, "shipped");
    assert_string_equal(f->feature->release, "2026.11.27");
    assert_int_equal(f->feature->n_history, 3);
    assert_change(f->feature->history[2], "shipped", 7000000, "2026.11.27", "");
    cv_shard_reply_destroy(&r);

    char err[256];
    assert_int_equal(vote1(fx, "F1", "u2", 1, "", NULL, err, sizeof err), CV_ST_CLOSED);
    assert_string_equal(err, "feature 'F1' is shipped");

    /* A new release name is a change, the same one is not. */
    r = set_status1(fx, "F1", "shipped", "2026.12.04", 7500000);
    assert_int_equal(standing_of(r)->feature->n_history, 4);
    cv_shard_reply_destroy(&r);
    r = set_status1(fx, "F1", "shipped", "2026.12.04", 7600000);
    assert_int_equal(standing_of(r)->feature->n_history, 4);
    cv_shard_reply_destroy(&r);

    /* Re-opened, it takes votes again. */
    r = set_status1(fx, "F1", "open", "", 8000000);
    assert_int_equal(standing_of(r)->feature->n_history, 5);
    cv_shard_reply_destroy(&r);
    assert_int_equal(vote1(fx, "F1", "u2", 1, "", NULL, NULL, 0), CV_ST_OK);

    r = set_status1(fx, "F1", "declined", "", 9000000);
    cv_shard_reply_destroy(&r);
    assert_int_equal(vote1(fx, "F1", "u3", 1, "", NULL, err, sizeof err), CV_ST_CLOSED);
    assert_string_equal(err, "feature 'F1' is declined");

    /* The history is stored, oldest first. */
    r = feature1(fx, "F1");
    f = standing_of(r);
    assert_int_equal(f->feature->n_history, 6);
    const char *want[] = {"open", "planned", "shipped", "shipped", "open", "declined"};
    for (int i = 0; i < 6; i++)
        assert_string_equal(f->feature->history[i]->status, want[i]);
    assert_counts(fx, "F1", 1, 1, 0, 0, 0, 0, 2);
    cv_shard_reply_destroy(&r);
    assert_check_ok(fx);
}

static void test_status_refusals(void **state)
{
    fx_t *fx = *state;
    create1(fx, "F1", "", "");
    char long_release[CV_SHARD_RELEASE_MAX + 2];
    memset(long_release, 'r', sizeof long_release - 1);
    long_release[sizeof long_release - 1] = '\0';

    cv_shard_reply_t *r = set_status1(fx, "F1", "bogus", "", 0);
    assert_reply(r, CV_ST_INVALID, "unknown status 'bogus'");
    cv_shard_reply_destroy(&r);
    r = set_status1(fx, "F1", "", "", 0);
    assert_reply(r, CV_ST_INVALID, "unknown status ''");
    cv_shard_reply_destroy(&r);
    r = set_status1(fx, "F1", "merged", "", 0);
    assert_reply(r, CV_ST_INVALID, "status 'merged' is set only by merging");
    cv_shard_reply_destroy(&r);
    r = set_status1(fx, "F1", "shipped", long_release, 0);
    assert_reply(r, CV_ST_INVALID, "release must be at most 128 bytes of UTF-8");
    cv_shard_reply_destroy(&r);
    r = set_status1(fx, "F1", "shipped", "\xff", 0);
    assert_reply(r, CV_ST_INVALID, "release must be at most 128 bytes of UTF-8");
    cv_shard_reply_destroy(&r);
    r = set_status1(fx, "NOPE", "planned", "", 0);
    assert_reply(r, CV_ST_NOT_FOUND, "no feature 'NOPE'");
    cv_shard_reply_destroy(&r);
    r = set_status1(fx, "F 1", "planned", "", 0);
    assert_reply(r, CV_ST_INVALID, "set_status.feature_id must be 1-64 bytes of [A-Za-z0-9_-]");
    cv_shard_reply_destroy(&r);

    /* None of it touched the feature. */
    r = feature1(fx, "F1");
    assert_string_equal(standing_of(r)->feature->status, "open");
    assert_int_equal(standing_of(r)->feature->n_history, 1);
    cv_shard_reply_destroy(&r);

    /* A merged feature keeps its status. */
    create1(fx, "F2", "", "");
    r = merge_out1(fx, "F1", "F2", 0);
    cv_shard_reply_destroy(&r);
    r = set_status1(fx, "F1", "open", "", 0);
    assert_reply(r, CV_ST_INVALID, "feature 'F1' was merged into 'F2'; its status cannot change");
    cv_shard_reply_destroy(&r);
}

/* Changes and votes of one group apply in order. */
static void test_status_in_group(void **state)
{
    fx_t *fx = *state;
    create1(fx, "F1", "", "");
    batch_t b[2];
    batch_init(&b[0]);
    add_vote(&b[0], fx->clock++, "F1", "before", 1, "");
    batch_init(&b[1]);
    add_vote(&b[1], fx->clock++, "F1", "after", 1, "");

    Canvass__V1__SetStatus ss = CANVASS__V1__SET_STATUS__INIT;
    ss.feature_id = (char *)"F1";
    ss.status = (char *)"shipped";
    ss.release = (char *)"r1";
    Canvass__V1__TallyRequest req = CANVASS__V1__TALLY_REQUEST__INIT;
    req.corr = 9;
    req.op_case = CANVASS__V1__TALLY_REQUEST__OP_SET_STATUS;
    req.set_status = &ss;

    cv_shard_job_t jobs[3] = {{.batch = &b[0].batch}, {.change = &req}, {.batch = &b[1].batch}};
    assert_int_equal(cv_shard_apply(fx->shard, jobs, 3), 0);
    assert_int_equal(jobs[0].ack_ptrs[0]->status, CV_ST_OK);
    assert_null(jobs[0].reply);
    const Canvass__V1__TallyReply *m = cv_shard_reply_msg(jobs[1].reply);
    assert_int_equal(m->corr, 9);
    assert_int_equal(m->status, CV_ST_OK);
    assert_int_equal(m->feature->up[0], 1);
    assert_int_equal(jobs[2].ack_ptrs[0]->status, CV_ST_CLOSED);
    for (int i = 0; i < 3; i++)
        cv_shard_job_release(&jobs[i]);
    assert_null(jobs[1].reply);
    assert_counts(fx, "F1", 1, 0, 0, 0, 0, 0, 1);
}

static void test_feature_query(void **state)
{
    fx_t *fx = *state;
    create1(fx, "F1", "", "");
    vote1(fx, "F1", "a", 1, "honorary", NULL, NULL, 0);
    vote1(fx, "F1", "b", -1, "", NULL, NULL, 0);
    cv_shard_reply_t *r = feature1(fx, "F1");
    const Canvass__V1__FeatureStanding *f = standing_of(r);
    assert_string_equal(f->feature->feature_id, "F1");
    assert_string_equal(f->feature->title, "a title");
    assert_int_equal(f->up[2], 1);
    assert_int_equal(f->down[0], 1);
    assert_int_equal(f->voters, 2);
    cv_shard_reply_destroy(&r);

    r = feature1(fx, "F2");
    assert_reply(r, CV_ST_NOT_FOUND, "no feature 'F2'");
    assert_int_equal(cv_shard_reply_msg(r)->result_case, CANVASS__V1__TALLY_REPLY__RESULT__NOT_SET);
    cv_shard_reply_destroy(&r);
    r = feature1(fx, "");
    assert_reply(r, CV_ST_INVALID, "feature.feature_id must be 1-64 bytes of [A-Za-z0-9_-]");
    cv_shard_reply_destroy(&r);
}

/* ---- voters -------------------------------------------------------------------- */

/* 250 users u000..u249 vote on F1; every fifth then retracts.  A feature
 * whose id extends F1's ("F1x") must not leak into F1's pages. */
static void test_voters_paging(void **state)
{
    fx_t *fx = *state;
    create1(fx, "F1", "", "");
    create1(fx, "F1x", "", "");
    create1(fx, "F0", "", "");
    enum { USERS = 250 };
    static char users[USERS][8];
    batch_t b;
    cv_shard_job_t job;
    for (int base = 0; base < USERS; base += BATCH_MAX / 2) {
        batch_init(&b);
        for (int i = base; i < USERS && i < base + BATCH_MAX / 2; i++) {
            snprintf(users[i], sizeof users[i], "u%03d", i);
            add_vote(&b, fx->clock++, "F1", users[i], i % 2 ? -1 : 1, i % 3 ? "" : "core");
            if (i % 5 == 0)
                add_vote(&b, fx->clock++, "F1", users[i], 0, "");
        }
        apply(fx, &job, &b, 1);
        cv_shard_job_release(&job);
    }
    vote1(fx, "F1x", "a", 1, "", NULL, NULL, 0);
    vote1(fx, "F0", "zzz", 1, "", NULL, NULL, 0);

    /* Three pages of 80, 80 and 40 non-zero votes, in user order. */
    char after[16] = "";
    int seen = 0, pages = 0;
    for (;;) {
        cv_shard_reply_t *r = voters1(fx, "F1", after, 80);
        const Canvass__V1__TallyReply *m = cv_shard_reply_msg(r);
        assert_int_equal(m->status, CV_ST_OK);
        assert_int_equal(m->result_case, CANVASS__V1__TALLY_REPLY__RESULT_VOTERS);
        const Canvass__V1__VoterPage *p = m->voters;
        assert_string_equal(p->feature_id, "F1");
        assert_int_equal(p->total, 200);
        for (size_t i = 0; i < p->n_voters; i++) {
            while (seen % 5 == 0)
                seen++; /* retracted: not listed */
            assert_string_equal(p->voters[i]->user_id, users[seen]);
            assert_int_equal(p->voters[i]->value, seen % 2 ? -1 : 1);
            assert_string_equal(p->voters[i]->tier, seen % 3 ? "member" : "core");
            assert_true(p->voters[i]->stamp > 1000);
            seen++;
        }
        pages++;
        if (!*p->next_after) {
            assert_int_equal(p->n_voters, 40);
            cv_shard_reply_destroy(&r);
            break;
        }
        assert_int_equal(p->n_voters, 80);
        assert_string_equal(p->next_after, p->voters[79]->user_id);
        snprintf(after, sizeof after, "%s", p->next_after);
        cv_shard_reply_destroy(&r);
    }
    assert_int_equal(pages, 3);
    assert_int_equal(seen, USERS);

    /* A page ending exactly at the last voter says there is no more. */
    cv_shard_reply_t *r = voters1(fx, "F1", "u248", 1);
    assert_int_equal(cv_shard_reply_msg(r)->voters->n_voters, 1);
    assert_string_equal(cv_shard_reply_msg(r)->voters->voters[0]->user_id, "u249");
    assert_string_equal(cv_shard_reply_msg(r)->voters->next_after, "");
    cv_shard_reply_destroy(&r);

    /* limit 0 is 100; more than 1000 is 1000; `after` need not be a voter. */
    r = voters1(fx, "F1", "", 0);
    assert_int_equal(cv_shard_reply_msg(r)->voters->n_voters, 100);
    cv_shard_reply_destroy(&r);
    r = voters1(fx, "F1", "", 5000);
    assert_int_equal(cv_shard_reply_msg(r)->voters->n_voters, 200);
    assert_string_equal(cv_shard_reply_msg(r)->voters->next_after, "");
    cv_shard_reply_destroy(&r);
    r = voters1(fx, "F1", "u1005", 2); /* between u100 and u101 */
    assert_string_equal(cv_shard_reply_msg(r)->voters->voters[0]->user_id, "u101");
    assert_string_equal(cv_shard_reply_msg(r)->voters->voters[1]->user_id, "u102");
    cv_shard_reply_destroy(&r);
    r = voters1(fx, "F1", "zzz", 10);
    assert_int_equal(cv_shard_reply_msg(r)->voters->n_voters, 0);
    assert_int_equal(cv_shard_reply_msg(r)->voters->total, 200);
    cv_shard_reply_destroy(&r);

    r = voters1(fx, "F1x", "", 10);
    assert_int_equal(cv_shard_reply_msg(r)->voters->n_voters, 1);
    assert_string_equal(cv_shard_reply_msg(r)->voters->voters[0]->user_id, "a");
    cv_shard_reply_destroy(&r);

    /* A feature without votes, a missing one, bad fields. */
    create1(fx, "F9", "", "");
    r = voters1(fx, "F9", "", 10);
    assert_int_equal(cv_shard_reply_msg(r)->status, CV_ST_OK);
    assert_int_equal(cv_shard_reply_msg(r)->voters->n_voters, 0);
    assert_int_equal(cv_shard_reply_msg(r)->voters->total, 0);
    cv_shard_reply_destroy(&r);
    r = voters1(fx, "NOPE", "", 10);
    assert_reply(r, CV_ST_NOT_FOUND, "no feature 'NOPE'");
    cv_shard_reply_destroy(&r);
    r = voters1(fx, "F 1", "", 10);
    assert_reply(r, CV_ST_INVALID, "voters.feature_id must be 1-64 bytes of [A-Za-z0-9_-]");
    cv_shard_reply_destroy(&r);
    char big[CV_USER_ID_MAX + 2];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    r = voters1(fx, "F1", big, 10);
    assert_reply(r, CV_ST_INVALID, "voters.after must be at most 128 bytes");
    cv_shard_reply_destroy(&r);
}

/* ---- merges -------------------------------------------------------------------- */

/* SRC and DST with users on both sides, stamps chosen so that every rule of
 * merge_in is used:
 *   a   SRC up                               -> moved
 *   b   SRC down core, DST up                -> kept (DST's vote)
 *   c   SRC retracted                        -> nothing to move
 *   d   SRC up (new), DST retracted (older)  -> moved
 *   e   SRC up (old), DST retracted (newer)  -> DST's retract stands
 *   f   DST only                             -> untouched
 *   g   SRC retract, DST up                  -> DST's vote, not counted as kept */
static void make_two_sides(fx_t *fx)
{
    create1(fx, "SRC", "", "");
    create1(fx, "DST", "", "");
    vote_at(fx, 2000, "SRC", "a", 1, "");
    vote_at(fx, 2001, "SRC", "b", -1, "core");
    vote_at(fx, 2002, "SRC", "c", 1, "");
    vote_at(fx, 2003, "SRC", "c", 0, "");
    vote_at(fx, 2004, "DST", "d", 1, "");
    vote_at(fx, 2005, "DST", "d", 0, "");
    vote_at(fx, 2006, "SRC", "d", 1, "honorary");
    vote_at(fx, 2007, "SRC", "e", 1, "");
    vote_at(fx, 2008, "DST", "e", 1, "");
    vote_at(fx, 2009, "DST", "e", 0, "");
    vote_at(fx, 2010, "DST", "b", 1, "");
    vote_at(fx, 2011, "DST", "f", -1, "");
    vote_at(fx, 2012, "SRC", "g", 1, "");
    vote_at(fx, 2013, "SRC", "g", 0, "");
    vote_at(fx, 2014, "DST", "g", 1, "");
    assert_counts(fx, "SRC", 2, 0, 1, 0, 1, 0, 4);
    assert_counts(fx, "DST", 2, 0, 0, 1, 0, 0, 3);
}

static void test_merge_both_sides(void **state)
{
    fx_t *fx = *state;
    make_two_sides(fx);

    cv_shard_reply_t *out = merge_out1(fx, "SRC", "DST", 4242);
    const Canvass__V1__MergeResult *m = merge_of(out);
    assert_string_equal(m->src, "SRC");
    assert_string_equal(m->dst, "DST");
    /* Every record of SRC, retracts included, in user order. */
    assert_int_equal(m->n_votes, 6);
    const char *users = "abcdeg";
    const int values[] = {1, -1, 0, 1, 1, 0};
    const uint64_t stamps[] = {2000, 2001, 2003, 2006, 2007, 2013};
    for (int i = 0; i < 6; i++) {
        char u[2] = {users[i], 0};
        assert_string_equal(m->votes[i]->user_id, u);
        assert_int_equal(m->votes[i]->value, values[i]);
        assert_true(m->votes[i]->stamp == stamps[i]);
    }
    assert_string_equal(m->votes[1]->tier, "core");
    assert_string_equal(m->votes[3]->tier, "honorary");

    cv_shard_reply_t *in = merge_in1(fx, "DST", "SRC", out);
    m = merge_of(in);
    assert_string_equal(m->src, "SRC");
    assert_string_equal(m->dst, "DST");
    assert_int_equal(m->moved, 2);
    assert_int_equal(m->kept, 1);
    assert_int_equal(m->n_votes, 0);
    cv_shard_reply_destroy(&in);
    /* DST: a up member, b up member, d up honorary, f down, g up. */
    assert_counts(fx, "DST", 3, 0, 1, 1, 0, 0, 5);
    /* SRC keeps its own votes and counters, and is merged. */
    assert_counts(fx, "SRC", 2, 0, 1, 0, 1, 0, 4);
    cv_shard_reply_t *r = feature1(fx, "SRC");
    const Canvass__V1__FeatureStanding *f = standing_of(r);
    assert_string_equal(f->feature->status, "merged");
    assert_string_equal(f->feature->merged_into, "DST");
    assert_int_equal(f->feature->n_history, 2);
    assert_change(f->feature->history[1], "merged", 4242, "", "DST");
    cv_shard_reply_destroy(&r);

    /* The moved votes keep their tier and stamp. */
    r = voters1(fx, "DST", "", 10);
    const Canvass__V1__VoterPage *p = cv_shard_reply_msg(r)->voters;
    assert_int_equal(p->n_voters, 5);
    assert_string_equal(p->voters[2]->user_id, "d");
    assert_string_equal(p->voters[2]->tier, "honorary");
    assert_true(p->voters[2]->stamp == 2006);
    assert_int_equal(p->total, 5);
    cv_shard_reply_destroy(&r);

    /* Re-running both steps changes nothing and counts nothing twice. */
    cv_shard_reply_t *out2 = merge_out1(fx, "SRC", "DST", 9999);
    assert_int_equal(merge_of(out2)->n_votes, 6);
    in = merge_in1(fx, "DST", "SRC", out2);
    assert_int_equal(merge_of(in)->moved, 0);
    assert_int_equal(merge_of(in)->kept, 1);
    cv_shard_reply_destroy(&in);
    cv_shard_reply_destroy(&out2);
    assert_counts(fx, "DST", 3, 0, 1, 1, 0, 0, 5);
    r = feature1(fx, "SRC");
    assert_int_equal(standing_of(r)->feature->n_history, 2); /* no second entry */
    cv_shard_reply_destroy(&r);

    /* Merged votes were not gained in this cycle. */
    r = feature1(fx, "DST");
    f = standing_of(r);
    assert_float_equal(f->trend[2], 0, 1e-12);
    cv_shard_reply_destroy(&r);

    cv_shard_reply_destroy(&out);
    assert_check_ok(fx);
}

static void test_merge_refusals(void **state)
{
    fx_t *fx = *state;
    create1(fx, "A", "", "");
    create1(fx, "B", "", "");
    create1(fx, "C", "", "");
    cv_shard_reply_t *r = merge_out1(fx, "A", "A", 0);
    assert_reply(r, CV_ST_INVALID, "cannot merge feature 'A' into itself");
    cv_shard_reply_destroy(&r);
    r = merge_out1(fx, "NOPE", "A", 0);
    assert_reply(r, CV_ST_NOT_FOUND, "no feature 'NOPE'");
    cv_shard_reply_destroy(&r);
    r = merge_out1(fx, "A", "", 0);
    assert_reply(r, CV_ST_INVALID, "merge_out.dst must be 1-64 bytes of [A-Za-z0-9_-]");
    cv_shard_reply_destroy(&r);
    r = merge_out1(fx, "A/", "B", 0);
    assert_reply(r, CV_ST_INVALID, "merge_out.src must be 1-64 bytes of [A-Za-z0-9_-]");
    cv_shard_reply_destroy(&r);

    r = merge_out1(fx, "A", "B", 0);
    assert_int_equal(cv_shard_reply_msg(r)->status, CV_ST_OK);
    cv_shard_reply_destroy(&r);
    r = merge_out1(fx, "A", "C", 0);
    assert_reply(r, CV_ST_INVALID, "feature 'A' was already merged into 'B'");
    cv_shard_reply_destroy(&r);

    r = merge_in1(fx, "NOPE", "A", NULL);
    assert_reply(r, CV_ST_NOT_FOUND, "no feature 'NOPE'");
    cv_shard_reply_destroy(&r);
    r = merge_in1(fx, "A", "C", NULL);
    assert_reply(r, CV_ST_INVALID, "feature 'A' was merged into 'B'; merge into 'B' instead");
    cv_shard_reply_destroy(&r);
    r = merge_in1(fx, "B", "B", NULL);
    assert_reply(r, CV_ST_INVALID, "cannot merge feature 'B' into itself");
    cv_shard_reply_destroy(&r);
    r = merge_in1(fx, "B", "", NULL);
    assert_reply(r, CV_ST_INVALID, "merge_in.src must be 1-64 bytes of [A-Za-z0-9_-]");
    cv_shard_reply_destroy(&r);

    /* A bad vote refuses the whole merge_in before anything is applied. */
    Canvass__V1__Voter good = CANVASS__V1__VOTER__INIT, bad = CANVASS__V1__VOTER__INIT;
    good.user_id = (char *)"u1";
    good.value = 1;
    good.stamp = 5000;
    bad.user_id = (char *)"u2";
    bad.value = 2;
    bad.stamp = 5001;
    Canvass__V1__Voter *votes[2] = {&good, &bad};
    Canvass__V1__MergeIn mi = CANVASS__V1__MERGE_IN__INIT;
    mi.dst = (char *)"B";
    mi.src = (char *)"A";
    mi.n_votes = 2;
    mi.votes = votes;
    Canvass__V1__TallyRequest req = CANVASS__V1__TALLY_REQUEST__INIT;
    req.op_case = CANVASS__V1__TALLY_REQUEST__OP_MERGE_IN;
    req.merge_in = &mi;
    r = change1(fx, &req);
    assert_reply(r, CV_ST_INVALID, "merge_in vote 1: value must be -1, 0 or 1, got 2");
    cv_shard_reply_destroy(&r);
    bad.value = 1;
    bad.tier = (char *)"boss";
    r = change1(fx, &req);
    assert_reply(r, CV_ST_INVALID, "merge_in vote 1: tier must be member, core or honorary");
    cv_shard_reply_destroy(&r);
    bad.tier = (char *)"";
    bad.user_id = (char *)"";
    r = change1(fx, &req);
    assert_reply(r, CV_ST_INVALID, "merge_in vote 1: user_id must be 1-128 bytes");
    cv_shard_reply_destroy(&r);
    assert_counts(fx, "B", 0, 0, 0, 0, 0, 0, 0);
}

/* A merge interrupted after merge_out: votes for SRC are redirected (the
 * sender re-applies them on DST, same stamp), including a late resend of a
 * vote SRC had already stored; the merge then completes when run again, and
 * that vote is not counted twice. */
static void test_merge_interrupted(void **state)
{
    fx_t *fx = *state;
    create1(fx, "SRC", "", "");
    create1(fx, "DST", "", "");
    vote_at(fx, 3000, "SRC", "x", 1, "");
    vote_at(fx, 3001, "SRC", "y", 1, "core");
    vote_at(fx, 3002, "DST", "z", 1, "");

    cv_shard_reply_t *out = merge_out1(fx, "SRC", "DST", 0);
    cv_shard_reply_destroy(&out); /* "publish died here" */

    /* New vote for SRC: redirected, nothing stored on SRC. */
    ack_copy_t a = vote_at(fx, 3003, "SRC", "w", 1, "");
    assert_int_equal(a.status, CV_ST_OK);
    assert_string_equal(a.redirect_to, "DST");
    assert_string_equal(a.feature_id, "DST");
    assert_false(a.changed);
    assert_counts(fx, "SRC", 1, 1, 0, 0, 0, 0, 2);
    a = vote_at(fx, 3003, a.redirect_to, "w", 1, "");
    assert_true(a.changed);
    /* A resend of y's vote, stored on SRC before the merge: redirected. */
    a = vote_at(fx, 3001, "SRC", "y", 1, "core");
    assert_string_equal(a.redirect_to, "DST");
    a = vote_at(fx, 3001, "DST", "y", 1, "core");
    assert_true(a.changed);
    /* x changes their mind after the merge began: lands on DST. */
    a = vote_at(fx, 3004, "SRC", "x", -1, "");
    a = vote_at(fx, 3004, a.redirect_to, "x", -1, "");
    assert_true(a.changed);

    out = merge_out1(fx, "SRC", "DST", 0);
    assert_int_equal(merge_of(out)->n_votes, 2); /* x and y, as SRC holds them */
    cv_shard_reply_t *in = merge_in1(fx, "DST", "SRC", out);
    /* x: DST's newer vote stands (kept); y: the same command, already there. */
    assert_int_equal(merge_of(in)->moved, 0);
    assert_int_equal(merge_of(in)->kept, 1);
    cv_shard_reply_destroy(&in);
    cv_shard_reply_destroy(&out);
    /* DST: z up, w up, y up core, x down: each user once. */
    assert_counts(fx, "DST", 2, 1, 0, 1, 0, 0, 4);
    assert_check_ok(fx);
}

/* Votes for a merged feature, alone and in a group with other votes. */
static void test_redirect_ack(void **state)
{
    fx_t *fx = *state;
    create1(fx, "F1", "", "");
    create1(fx, "FM", "merged", "F1");
    batch_t b;
    cv_shard_job_t job;
    batch_init(&b);
    add_vote(&b, fx->clock++, "FM", "u", 1, "");
    add_vote(&b, fx->clock++, "F1", "v", 1, "");
    add_vote(&b, fx->clock++, "FX", "u", 1, "");
    apply(fx, &job, &b, 1);
    const Canvass__V1__ShardAck *a = job.ack_ptrs[0];
    assert_int_equal(a->status, CV_ST_OK);
    assert_string_equal(a->redirect_to, "F1");
    assert_string_equal(a->feature_id, "F1");
    assert_false(a->changed);
    assert_int_equal(a->cycle, 1);
    assert_int_equal(job.ack_ptrs[1]->status, CV_ST_OK);
    assert_string_equal(job.ack_ptrs[1]->redirect_to, "");
    /* A create can no longer store a merged feature without a valid target. */
    assert_int_equal(job.ack_ptrs[2]->status, CV_ST_NOT_FOUND);
    cv_shard_job_release(&job);
    batch_init(&b);
    add_create(&b, fx->clock++, "FX", "merged", "");
    apply(fx, &job, &b, 1);
    assert_int_equal(job.ack_ptrs[0]->status, CV_ST_INVALID);
    assert_string_equal(job.ack_ptrs[0]->error, "create of 'FX' is merged into no valid feature");
    cv_shard_job_release(&job);
    assert_counts(fx, "FM", 0, 0, 0, 0, 0, 0, 0);
    assert_counts(fx, "F1", 1, 0, 0, 0, 0, 0, 1);
}

int main(int argc, char **argv)
{
    cv_log_init("tally-test", 0, CV_LOG_ERROR);
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_status_history, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_in_group, setup, teardown),
        cmocka_unit_test_setup_teardown(test_feature_query, setup, teardown),
        cmocka_unit_test_setup_teardown(test_voters_paging, setup, teardown),
        cmocka_unit_test_setup_teardown(test_merge_both_sides, setup, teardown),
        cmocka_unit_test_setup_teardown(test_merge_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_merge_interrupted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redirect_ack, setup, teardown),
    };
    return cmocka_run_group_tests_name("tally_lifecycle", tests, NULL, NULL);
}
