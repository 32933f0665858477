/* Unit tests for the tally shard (shard.c) and its offline tools (audit.c),
 * against a real LMDB store in a fresh temporary directory per test: group
 * application and acks, vote-is-state with ordering stamps, refusals with
 * their texts, map growth in the middle of a group, meta checks, cycles,
 * standings, --check / --dump-votes output, the upgrade of a schema-1 store,
 * and trending on hand-computed examples with a test clock.  Lifecycle,
 * merges and queries are in lifecycle_test.c; the fixture in shard_test.h.
 *
 * Built as $(BUILD)/unit/tally_shard_test.  Run all, or only those matching a
 * pattern: tally_shard_test 'test_meta*'. */
#include "shard_test.h"

#include <math.h>

/* ---- tests --------------------------------------------------------------------- */

static void test_create_and_resend(void **state)
{
    fx_t *fx = *state;
    batch_t b;
    cv_shard_job_t job;
    batch_init(&b);
    add_create(&b, fx->clock++, "F1", "", "");
    add_create(&b, fx->clock++, "F1", "shipped", ""); /* a resend: ignored */
    apply(fx, &job, &b, 1);
    assert_int_equal(job.ack_ptrs[0]->status, CV_ST_OK);
    assert_true(job.ack_ptrs[0]->changed);
    assert_string_equal(job.ack_ptrs[0]->feature_id, "F1");
    assert_int_equal(job.ack_ptrs[0]->cycle, 1);
    assert_int_equal(job.ack_ptrs[1]->status, CV_ST_OK);
    assert_false(job.ack_ptrs[1]->changed);
    cv_shard_job_release(&job);

    cv_standings_t *st = NULL;
    assert_int_equal(cv_shard_standings(fx->shard, &st), 0);
    const Canvass__V1__Standings *m = cv_standings_msg(st);
    assert_int_equal(m->n_features, 1);
    assert_string_equal(m->features[0]->feature->status, "open");
    assert_int_equal(m->features[0]->feature->created_ms, cv_stamp_ms(1000));
    cv_standings_destroy(&st);
    assert_counts(fx, "F1", 0, 0, 0, 0, 0, 0, 0);
}

static void test_vote_is_state(void **state)
{
    fx_t *fx = *state;
    int changed;
    create1(fx, "F1", "", "");
    assert_int_equal(vote1(fx, "F1", "u1", 1, "", &changed, NULL, 0), CV_ST_OK);
    assert_true(changed);
    assert_int_equal(vote1(fx, "F1", "u1", 1, "member", &changed, NULL, 0), CV_ST_OK);
    assert_false(changed);
    assert_counts(fx, "F1", 1, 0, 0, 0, 0, 0, 1);

    assert_int_equal(vote1(fx, "F1", "u1", -1, "core", &changed, NULL, 0), CV_ST_OK);
    assert_true(changed);
    assert_counts(fx, "F1", 0, 0, 0, 0, 1, 0, 1);

    assert_int_equal(vote1(fx, "F1", "u2", 1, "honorary", &changed, NULL, 0), CV_ST_OK);
    assert_counts(fx, "F1", 0, 0, 1, 0, 1, 0, 2);

    assert_int_equal(vote1(fx, "F1", "u1", 0, "", &changed, NULL, 0), CV_ST_OK);
    assert_true(changed);
    assert_int_equal(vote1(fx, "F1", "u1", 0, "core", &changed, NULL, 0), CV_ST_OK);
    assert_false(changed);
    assert_int_equal(vote1(fx, "F1", "nobody", 0, "", &changed, NULL, 0), CV_ST_OK);
    assert_false(changed);
    assert_counts(fx, "F1", 0, 0, 1, 0, 0, 0, 1);
}

static void test_stamps(void **state)
{
    fx_t *fx = *state;
    create1(fx, "F1", "", "");
    batch_t b[2];
    cv_shard_job_t jobs[2];
    /* Two requests in one group; the same user in order within and across
     * them, with a late resend of an old stamp in the middle. */
    batch_init(&b[0]);
    add_vote(&b[0], 2000, "F1", "u1", 1, "");
    add_vote(&b[0], 2001, "F1", "u1", -1, "");
    batch_init(&b[1]);
    add_vote(&b[1], 2000, "F1", "u1", 1, ""); /* resend of the first */
    add_vote(&b[1], 2002, "F1", "u1", 0, "");
    add_vote(&b[1], 2000, "F1", "u1", 1, ""); /* older than the retract */
    apply(fx, jobs, b, 2);
    assert_true(jobs[0].ack_ptrs[0]->changed);
    assert_true(jobs[0].ack_ptrs[1]->changed);
    assert_false(jobs[1].ack_ptrs[0]->changed);
    assert_true(jobs[1].ack_ptrs[1]->changed);
    assert_false(jobs[1].ack_ptrs[2]->changed);
    for (int k = 0; k < 3; k++)
        assert_int_equal(jobs[1].ack_ptrs[k]->status, CV_ST_OK);
    cv_shard_job_release(&jobs[0]);
    cv_shard_job_release(&jobs[1]);
    assert_counts(fx, "F1", 0, 0, 0, 0, 0, 0, 0);

    char *out = NULL;
    assert_int_equal(audit(cv_audit_dump_votes, fx->dir, &out), 0);
    assert_string_equal(out, ""); /* the retract is stored but not dumped */
    free(out);

    /* Repeating a vote keeps its newer stamp, so a late different vote
     * stamped between the two stays out. */
    batch_init(&b[0]);
    add_vote(&b[0], 3000, "F1", "u2", 1, "");
    add_vote(&b[0], 3010, "F1", "u2", 1, "");
    add_vote(&b[0], 3005, "F1", "u2", -1, "");
    apply(fx, jobs, b, 1);
    assert_true(jobs[0].ack_ptrs[0]->changed);
    assert_false(jobs[0].ack_ptrs[1]->changed);
    assert_false(jobs[0].ack_ptrs[2]->changed);
    cv_shard_job_release(&jobs[0]);
    assert_counts(fx, "F1", 1, 0, 0, 0, 0, 0, 1);
}

static void test_refusals(void **state)
{
    fx_t *fx = *state;
    char err[256];
    create1(fx, "F1", "", "");
    create1(fx, "FS", "shipped", "");
    create1(fx, "FD", "declined", "");
    assert_int_equal(vote1(fx, "NOPE", "u", 1, "", NULL, err, sizeof err), CV_ST_NOT_FOUND);
    assert_string_equal(err, "no feature 'NOPE'");
    assert_int_equal(vote1(fx, "FS", "u", 1, "", NULL, err, sizeof err), CV_ST_CLOSED);
    assert_string_equal(err, "feature 'FS' is shipped");
    assert_int_equal(vote1(fx, "FD", "u", 1, "", NULL, err, sizeof err), CV_ST_CLOSED);
    assert_string_equal(err, "feature 'FD' is declined");
    assert_int_equal(vote1(fx, "F1", "u", 2, "", NULL, err, sizeof err), CV_ST_INVALID);
    assert_int_equal(vote1(fx, "F1", "", 1, "", NULL, err, sizeof err), CV_ST_INVALID);
    assert_int_equal(vote1(fx, "F1", "u", 1, "boss", NULL, err, sizeof err), CV_ST_INVALID);
    assert_int_equal(vote1(fx, "F 1", "u", 1, "", NULL, err, sizeof err), CV_ST_INVALID);

    /* A stamp of 0, a command with no op and a foreign create, in one
     * group with a good vote that must still apply. */
    batch_t b;
    cv_shard_job_t job;
    batch_init(&b);
    add_vote(&b, 0, "F1", "u", 1, "");
    add_cmd(&b, fx->clock++);
    add_vote(&b, fx->clock++, "F1", "good", 1, "");
    apply(fx, &job, &b, 1);
    assert_int_equal(job.ack_ptrs[0]->status, CV_ST_INVALID);
    assert_non_null(strstr(job.ack_ptrs[0]->error, "stamp"));
    assert_int_equal(job.ack_ptrs[1]->status, CV_ST_INVALID);
    assert_int_equal(job.ack_ptrs[2]->status, CV_ST_OK);
    assert_true(job.ack_ptrs[2]->changed);
    cv_shard_job_release(&job);
    assert_counts(fx, "F1", 1, 0, 0, 0, 0, 0, 1);
    assert_counts(fx, "FS", 0, 0, 0, 0, 0, 0, 0);
}

static void test_foreign_create(void **state)
{
    fx_t *fx = *state;
    cv_shard_close(&fx->shard);
    char why[256];
    snprintf(fx->dir + strlen(fx->dir), sizeof fx->dir - strlen(fx->dir), "/s");
    assert_int_equal(cv_shard_open(fx->dir, 1, 2, CV_DURABLE_OS, 0, &fx->shard, why, sizeof why),
                     0);
    /* FNV-1a-64 mod 2: "a" -> 0, "b" -> 1. */
    batch_t b;
    cv_shard_job_t job;
    batch_init(&b);
    add_create(&b, fx->clock++, "a", "", "");
    add_create(&b, fx->clock++, "b", "", "");
    apply(fx, &job, &b, 1);
    assert_int_equal(job.ack_ptrs[0]->status, CV_ST_INVALID);
    assert_string_equal(job.ack_ptrs[0]->error, "feature 'a' belongs to shard 0, not shard 1");
    assert_int_equal(job.ack_ptrs[1]->status, CV_ST_OK);
    cv_shard_job_release(&job);
    fx->dir[strlen(fx->dir) - 2] = '\0'; /* teardown removes the parent */
}

static void test_meta_mismatch(void **state)
{
    fx_t *fx = *state;
    cv_shard_close(&fx->shard);
    char why[256] = "";
    cv_shard_t *other = NULL;
    assert_int_equal(cv_shard_open(fx->dir, 0, 2, CV_DURABLE_OS, 0, &other, why, sizeof why),
                     CV_EMISMATCH);
    assert_null(other);
    assert_non_null(strstr(why, "shard count mismatch: "));
    assert_non_null(strstr(why, " belongs to shard 0 of 1, not shard 0 of 2"));
    assert_int_equal(cv_shard_open(fx->dir, 1, 3, CV_DURABLE_OS, 0, &other, why, sizeof why),
                     CV_EMISMATCH);
    assert_non_null(strstr(why, "shard count mismatch: "));
    /* Cannot happen through the CLI (--shard < --shards), but is refused. */
    assert_int_equal(cv_shard_open(fx->dir, 1, 1, CV_DURABLE_OS, 0, &other, why, sizeof why),
                     CV_EMISMATCH);
    assert_non_null(strstr(why, "shard id mismatch: "));
    assert_int_equal(cv_shard_open(fx->dir, 0, 1, CV_DURABLE_OS, 0, &fx->shard, why, sizeof why),
                     0);
}

static void test_cycles(void **state)
{
    fx_t *fx = *state;
    int changed;
    create1(fx, "F1", "", "");
    assert_int_equal(cv_shard_cycle(fx->shard), 1);
    assert_int_equal(cv_shard_close_cycle(fx->shard, 1, 123456), 0);
    assert_int_equal(cv_shard_cycle(fx->shard), 2);
    assert_int_equal(cv_shard_opened_ms(fx->shard), 123456);
    assert_int_equal(cv_shard_close_cycle(fx->shard, 1, 999999), 0); /* again: harmless */
    assert_int_equal(cv_shard_cycle(fx->shard), 2);
    assert_int_equal(cv_shard_opened_ms(fx->shard), 123456);

    batch_t b;
    cv_shard_job_t job;
    batch_init(&b);
    add_vote(&b, fx->clock++, "F1", "u", 1, "");
    apply(fx, &job, &b, 1);
    assert_int_equal(job.ack_ptrs[0]->cycle, 2);
    cv_shard_job_release(&job);

    /* The open cycle survives a reopen. */
    cv_shard_close(&fx->shard);
    char why[256];
    assert_int_equal(cv_shard_open(fx->dir, 0, 1, CV_DURABLE_OS, 0, &fx->shard, why, sizeof why),
                     0);
    assert_int_equal(cv_shard_cycle(fx->shard), 2);
    assert_int_equal(cv_shard_opened_ms(fx->shard), 123456);
    cv_standings_t *st = NULL;
    assert_int_equal(cv_shard_standings(fx->shard, &st), 0);
    assert_int_equal(cv_standings_msg(st)->cycle, 2);
    cv_standings_destroy(&st);
    assert_int_equal(vote1(fx, "F1", "u", 1, "", &changed, NULL, 0), CV_ST_OK);
    assert_false(changed);
}

/* A map far too small for the group: it is grown and the whole group run
 * again, and every vote is acknowledged once with the right flag. */
static void test_map_full(void **state)
{
    fx_t *fx = *state;
    cv_shard_close(&fx->shard);
    char why[256];
    snprintf(fx->dir + strlen(fx->dir), sizeof fx->dir - strlen(fx->dir), "/m");
    assert_int_equal(
        cv_shard_open(fx->dir, 0, 1, CV_DURABLE_OS, 64 << 10, &fx->shard, why, sizeof why), 0);
    create1(fx, "F1", "", "");
    enum { JOBS = 40 };
    static batch_t b[JOBS];
    static char users[JOBS][BATCH_MAX][32];
    cv_shard_job_t jobs[JOBS];
    for (int j = 0; j < JOBS; j++) {
        batch_init(&b[j]);
        for (int k = 0; k < BATCH_MAX; k++) {
            snprintf(users[j][k], sizeof users[j][k], "user-%04d-%02d-with-a-long-name", j, k);
            add_vote(&b[j], fx->clock++, "F1", users[j][k], (k % 3) - 1, "core");
        }
    }
    apply(fx, jobs, b, JOBS);
    uint64_t nonzero = 0;
    for (int j = 0; j < JOBS; j++) {
        for (int k = 0; k < BATCH_MAX; k++) {
            assert_int_equal(jobs[j].ack_ptrs[k]->status, CV_ST_OK);
            assert_int_equal(jobs[j].ack_ptrs[k]->changed, (k % 3) != 1);
            nonzero += (k % 3) != 1;
        }
        cv_shard_job_release(&jobs[j]);
    }
    uint64_t up[3], down[3], voters;
    standing(fx, "F1", up, down, &voters);
    assert_int_equal(up[1] + down[1], nonzero);
    assert_int_equal(voters, nonzero);

    /* The data outgrew the first map, so the map was grown. */
    char path[96];
    struct stat sb;
    snprintf(path, sizeof path, "%s/data.mdb", fx->dir);
    assert_int_equal(stat(path, &sb), 0);
    assert_true(sb.st_size > 64 << 10);

    char *out = NULL, want[64];
    assert_int_equal(audit(cv_audit_check, fx->dir, &out), 0);
    snprintf(want, sizeof want, "ok features=1 votes=%llu\n", (unsigned long long)nonzero);
    assert_string_equal(out, want);
    free(out);
    fx->dir[strlen(fx->dir) - 2] = '\0';
}

static void test_audit(void **state)
{
    fx_t *fx = *state;
    create1(fx, "F1", "", "");
    create1(fx, "F2", "", "");
    vote1(fx, "F1", "alice", 1, "core", NULL, NULL, 0);
    vote1(fx, "F1", "b\tob", -1, "", NULL, NULL, 0);
    vote1(fx, "F2", "alice", 1, "honorary", NULL, NULL, 0);
    vote1(fx, "F2", "carol", 1, "", NULL, NULL, 0);
    vote1(fx, "F2", "carol", 0, "", NULL, NULL, 0);

    char *out = NULL;
    assert_int_equal(audit(cv_audit_check, fx->dir, &out), 0);
    assert_string_equal(out, "ok features=2 votes=3\n");
    free(out);
    assert_int_equal(audit(cv_audit_dump_votes, fx->dir, &out), 0);
    assert_string_equal(out, "F1\talice\t1\tcore\n"
                             "F1\tb\\tob\t-1\tmember\n"
                             "F2\talice\t1\thonorary\n");
    free(out);
    assert_int_equal(audit(cv_audit_check, "/nonexistent/tally", &out), 2);
    free(out);
}

/* --check must notice counters that disagree with the votes. */
static void test_check_detects_damage(void **state)
{
    fx_t *fx = *state;
    create1(fx, "F1", "", "");
    vote1(fx, "F1", "alice", 1, "", NULL, NULL, 0);
    cv_shard_close(&fx->shard);

    const char *tables[] = {"votes", "features", "tallies", "meta"};
    cv_store_t *store = cv_store_open(fx->dir, tables, 4, CV_DURABLE_OS, 0);
    assert_non_null(store);
    cv_txn_t *t;
    assert_int_equal(cv_store_begin(store, 0, &t), 0);
    cv_counts_t c = {.up = {2, 0, 0}, .voters = 1};
    uint8_t rec[CV_COUNTS_REC_SIZE];
    cv_counts_encode(&c, rec);
    assert_int_equal(cv_store_put(t, CV_SHARD_TALLIES, "F1", 2, rec, sizeof rec), 0);
    assert_int_equal(cv_store_put(t, CV_SHARD_TALLIES, "GHOST", 5, rec, sizeof rec), 0);
    assert_int_equal(cv_store_commit(&t), 0);
    cv_store_close(&store);

    char *out = NULL;
    assert_int_equal(audit(cv_audit_check, fx->dir, &out), 1);
    assert_non_null(strstr(out, "mismatch feature=F1 stored=\"up=2/0/0 down=0/0/0 voters=1\" "
                                "recount=\"up=1/0/0 down=0/0/0 voters=1\"\n"));
    assert_non_null(strstr(out, "mismatch feature=GHOST reason=\"counters for a feature that "
                                "does not exist\"\n"));
    free(out);
    char why[256];
    assert_int_equal(cv_shard_open(fx->dir, 0, 1, CV_DURABLE_OS, 0, &fx->shard, why, sizeof why),
                     0);
}

/* ---- trending -------------------------------------------------------------------- */

#define HL_MS 1000000ULL    /* a half-life of 1000 s */
#define T0 1700000000000ULL /* the test cycle's start */
#define S 1000ULL           /* one second, in ms */

/* The trend of one feature in the live standings, and their at_ms. */
static void trend_of(fx_t *fx, const char *id, double trend[3], uint64_t *at_ms)
{
    cv_standings_t *st = NULL;
    assert_int_equal(cv_shard_standings(fx->shard, &st), 0);
    const Canvass__V1__Standings *m = cv_standings_msg(st);
    int found = 0;
    for (size_t i = 0; i < m->n_features; i++) {
        if (strcmp(m->features[i]->feature->feature_id, id) != 0)
            continue;
        assert_int_equal(m->features[i]->n_trend, 3);
        memcpy(trend, m->features[i]->trend, 3 * sizeof *trend);
        found = 1;
    }
    assert_true(found);
    if (at_ms)
        *at_ms = m->at_ms;
    cv_standings_destroy(&st);
}

#define EPS 1e-9

/* Half-life 1000 s, cycle 2 opened at T0:
 *   u1 up member at T0+1000s, u2 up member at T0+2000s, u3 down core at
 *   T0+2500s, then u1 turns down at T0+3000s (member: -2 at once).
 * At T0+3000s: member = 2^-2 + 2^-1 - 2 = -1.25, core = -2^-0.5.
 * At T0+4000s every weight halves: member -0.625, core -2^-1.5. */
static void test_trend_hand_computed(void **state)
{
    fx_t *fx = *state;
    create1(fx, "F1", "", "");
    create1(fx, "F2", "", "");
    cv_shard_set_half_life(fx->shard, HL_MS);
    use_test_clock(fx, T0);
    assert_int_equal(cv_shard_close_cycle(fx->shard, 1, T0), 0);

    double tr[3];
    uint64_t at;
    trend_of(fx, "F1", tr, &at);
    assert_true(at == T0);
    assert_true(tr[0] == 0 && tr[1] == 0 && tr[2] == 0);

    test_now_ms = T0 + 3000 * S;
    assert_int_equal(vote_at(fx, stamp_at(T0 + 1000 * S, 1), "F1", "u1", 1, "").status, CV_ST_OK);
    assert_int_equal(vote_at(fx, stamp_at(T0 + 2000 * S, 1), "F1", "u2", 1, "").status, CV_ST_OK);
    assert_int_equal(vote_at(fx, stamp_at(T0 + 2500 * S, 1), "F1", "u3", -1, "core").status,
                     CV_ST_OK);
    assert_int_equal(vote_at(fx, stamp_at(T0 + 3000 * S, 1), "F1", "u1", -1, "").status, CV_ST_OK);
    /* Neither a stale resend nor a repeat changes the trend. */
    assert_false(vote_at(fx, stamp_at(T0 + 1000 * S, 1), "F1", "u1", 1, "").changed);
    assert_false(vote_at(fx, stamp_at(T0 + 3000 * S, 2), "F1", "u2", 1, "").changed);

    trend_of(fx, "F1", tr, &at);
    assert_true(at == T0 + 3000 * S);
    assert_float_equal(tr[0], -1.25, EPS);
    assert_float_equal(tr[1], -pow(2, -0.5), EPS);
    assert_float_equal(tr[2], 0, EPS);
    trend_of(fx, "F2", tr, NULL); /* no votes: no trend */
    assert_true(tr[0] == 0 && tr[1] == 0 && tr[2] == 0);

    /* The trend survives a restart of the shard. */
    cv_shard_close(&fx->shard);
    char why[256];
    assert_int_equal(cv_shard_open(fx->dir, 0, 1, CV_DURABLE_OS, 0, &fx->shard, why, sizeof why),
                     0);
    cv_shard_set_half_life(fx->shard, HL_MS);
    use_test_clock(fx, T0 + 4000 * S);
    trend_of(fx, "F1", tr, NULL);
    assert_float_equal(tr[0], -0.625, EPS);
    assert_float_equal(tr[1], -pow(2, -1.5), EPS);

    /* Closing cycle 2 reports the trend of cycle 2 at the close... */
    Canvass__V1__CloseCycle cc = CANVASS__V1__CLOSE_CYCLE__INIT;
    cc.cycle = 2;
    cc.opened_at_ms = T0 + 4000 * S;
    Canvass__V1__TallyRequest req = CANVASS__V1__TALLY_REQUEST__INIT;
    req.corr = 5;
    req.op_case = CANVASS__V1__TALLY_REQUEST__OP_CLOSE;
    req.close = &cc;
    cv_shard_reply_t *r = NULL;
    assert_int_equal(cv_shard_answer(fx->shard, &req, &r), 0);
    const Canvass__V1__TallyReply *msg = cv_shard_reply_msg(r);
    assert_int_equal(msg->status, CV_ST_OK);
    assert_int_equal(msg->result_case, CANVASS__V1__TALLY_REPLY__RESULT_STANDINGS);
    assert_int_equal(msg->standings->cycle, 3);
    assert_true(msg->standings->at_ms == T0 + 4000 * S);
    for (size_t i = 0; i < msg->standings->n_features; i++) {
        const Canvass__V1__FeatureStanding *f = msg->standings->features[i];
        if (!strcmp(f->feature->feature_id, "F1")) {
            assert_float_equal(f->trend[0], -0.625, EPS);
            assert_float_equal(f->trend[1], -pow(2, -1.5), EPS);
        }
    }
    cv_shard_reply_destroy(&r);
    assert_int_equal(cv_shard_cycle(fx->shard), 3);
    assert_true(cv_shard_opened_ms(fx->shard) == T0 + 4000 * S);

    /* ... and cycle 3 starts from nothing: only its own votes count. */
    trend_of(fx, "F1", tr, NULL);
    assert_true(tr[0] == 0 && tr[1] == 0 && tr[2] == 0);
    test_now_ms = T0 + 5000 * S;
    assert_true(vote_at(fx, stamp_at(T0 + 4500 * S, 1), "F1", "u4", 1, "honorary").changed);
    trend_of(fx, "F1", tr, NULL);
    assert_float_equal(tr[0], 0, EPS);
    assert_float_equal(tr[2], pow(2, -0.5), EPS);
    assert_counts(fx, "F1", 1, 0, 1, 1, 1, 0, 4);
}

/* A stamp from a clock running ahead counts as now, not as the future. */
static void test_trend_future_stamp(void **state)
{
    fx_t *fx = *state;
    create1(fx, "F1", "", "");
    cv_shard_set_half_life(fx->shard, HL_MS);
    use_test_clock(fx, T0);
    assert_int_equal(cv_shard_close_cycle(fx->shard, 1, T0), 0);
    test_now_ms = T0 + 1000 * S;
    assert_true(vote_at(fx, stamp_at(T0 + 9000 * S, 1), "F1", "u1", 1, "").changed);
    double tr[3];
    trend_of(fx, "F1", tr, NULL);
    assert_float_equal(tr[0], 1.0, EPS);
    test_now_ms = T0 + 2000 * S;
    trend_of(fx, "F1", tr, NULL);
    assert_float_equal(tr[0], 0.5, EPS);
}

/* A cycle left open for many half-lives: the gains are rebased, and the
 * trend is still the sum of decayed changes. */
static void test_trend_long_cycle(void **state)
{
    fx_t *fx = *state;
    create1(fx, "F1", "", "");
    cv_shard_set_half_life(fx->shard, 1000); /* one second */
    use_test_clock(fx, T0);
    assert_int_equal(cv_shard_close_cycle(fx->shard, 1, T0), 0);
    /* 5000 half-lives in: 2^5000 would overflow a double. */
    test_now_ms = T0 + 5000 * S;
    assert_true(vote_at(fx, stamp_at(T0 + 4999 * S, 1), "F1", "u1", 1, "").changed);
    assert_true(vote_at(fx, stamp_at(T0 + 5000 * S, 1), "F1", "u2", 1, "").changed);
    double tr[3];
    trend_of(fx, "F1", tr, NULL);
    assert_float_equal(tr[0], 1.5, EPS);
    test_now_ms = T0 + 5002 * S;
    trend_of(fx, "F1", tr, NULL);
    assert_float_equal(tr[0], 0.375, EPS);
}

/* A store written before schema 2 (no trends, no cycle start) opens, is
 * marked schema 2 and starts its cycle's trend window at the open. */
static void test_schema1_upgrade(void **state)
{
    fx_t *fx = *state;
    create1(fx, "F1", "", "");
    vote1(fx, "F1", "alice", 1, "", NULL, NULL, 0);
    cv_shard_close(&fx->shard);

    cv_store_t *store = cv_store_open(fx->dir, cv_shard_tables, CV_SHARD_NTABLES, CV_DURABLE_OS, 0);
    assert_non_null(store);
    cv_txn_t *t;
    assert_int_equal(cv_store_begin(store, 0, &t), 0);
    uint8_t one[CV_U64_SIZE];
    cv_u64_encode(1, one);
    assert_int_equal(cv_store_put(t, CV_SHARD_META, "schema", 6, one, sizeof one), 0);
    assert_int_equal(cv_store_del(t, CV_SHARD_META, "opened_ms", 9), 0);
    assert_int_equal(cv_store_commit(&t), 0);
    cv_store_close(&store);

    char why[256];
    assert_int_equal(cv_shard_open(fx->dir, 0, 1, CV_DURABLE_OS, 0, &fx->shard, why, sizeof why),
                     0);
    uint64_t before = cv_now_ms();
    assert_true(cv_shard_opened_ms(fx->shard) <= before);
    assert_true(cv_shard_opened_ms(fx->shard) + 60000 > before);
    assert_counts(fx, "F1", 1, 0, 0, 0, 0, 0, 1);

    store = cv_store_open(fx->dir, cv_shard_tables, CV_SHARD_NTABLES, CV_DURABLE_OS, 0);
    assert_non_null(store);
    assert_int_equal(cv_store_begin(store, 1, &t), 0);
    const void *val;
    size_t vlen;
    uint64_t schema = 0;
    assert_int_equal(cv_store_get(t, CV_SHARD_META, "schema", 6, &val, &vlen), 0);
    assert_int_equal(cv_u64_decode(val, vlen, &schema), 0);
    assert_int_equal(schema, CV_VOTES_SCHEMA);
    cv_store_abort(&t);
    cv_store_close(&store);
}

int main(int argc, char **argv)
{
    cv_log_init("tally-test", 0, CV_LOG_ERROR);
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_and_resend, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vote_is_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stamps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreign_create, setup, teardown),
        cmocka_unit_test_setup_teardown(test_meta_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cycles, setup, teardown),
        cmocka_unit_test_setup_teardown(test_map_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_detects_damage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trend_hand_computed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trend_future_stamp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trend_long_cycle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schema1_upgrade, setup, teardown),
    };
    return cmocka_run_group_tests_name("tally_shard", tests, NULL, NULL);
}
