/* Unit tests for the tally shard (shard.c) and its offline tools (audit.c),
 * against a real LMDB store in a fresh temporary directory per test: group
 * application and acks, vote-is-state with ordering stamps, refusals with
 * their texts, map growth in the middle of a group, meta checks, cycles,
 * standings, and --check / --dump-votes output.
 *
 * Built as $(BUILD)/unit/tally_shard_test.  Run all, or only those matching a
 * pattern: tally_shard_test 'test_meta*'. */
#include "audit.h"
#include "cv_err.h"
#include "cv_id.h"
#include "cv_log.h"
#include "cv_votes.h"
#include "shard.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

/* ---- fixtures ------------------------------------------------------------------ */

typedef struct {
    char dir[64];
    cv_shard_t *shard;
    uint64_t clock; /* next ordering stamp */
} fx_t;

static int setup(void **state)
{
    fx_t *fx = calloc(1, sizeof *fx);
    if (!fx)
        return -1;
    snprintf(fx->dir, sizeof fx->dir, "/tmp/tally-shard-test-XXXXXX");
    if (!mkdtemp(fx->dir))
        return -1;
    char why[256];
    if (cv_shard_open(fx->dir, 0, 1, CV_DURABLE_OS, 0, &fx->shard, why, sizeof why) != 0)
        return -1;
    fx->clock = 1000;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fx_t *fx = *state;
    cv_shard_close(&fx->shard);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fx->dir);
    int rc = system(cmd);
    free(fx);
    return rc == 0 ? 0 : -1;
}

/* A CmdBatch built in place; strings are borrowed literals. */
#define BATCH_MAX 64
typedef struct {
    Canvass__V1__CmdBatch batch;
    Canvass__V1__ShardCmd cmds[BATCH_MAX];
    Canvass__V1__ShardCmd *ptrs[BATCH_MAX];
    Canvass__V1__Vote votes[BATCH_MAX];
    Canvass__V1__FeatureRecord recs[BATCH_MAX];
} batch_t;

static void batch_init(batch_t *b)
{
    canvass__v1__cmd_batch__init(&b->batch);
    b->batch.cmds = b->ptrs;
}

static Canvass__V1__ShardCmd *add_cmd(batch_t *b, uint64_t stamp)
{
    size_t i = b->batch.n_cmds++;
    assert_true(i < BATCH_MAX);
    canvass__v1__shard_cmd__init(&b->cmds[i]);
    b->cmds[i].seq = 500 + i;
    b->cmds[i].stamp = stamp;
    b->ptrs[i] = &b->cmds[i];
    return &b->cmds[i];
}

static void add_vote(batch_t *b, uint64_t stamp, const char *feature, const char *user, int value,
                     const char *tier)
{
    Canvass__V1__ShardCmd *c = add_cmd(b, stamp);
    Canvass__V1__Vote *v = &b->votes[b->batch.n_cmds - 1];
    canvass__v1__vote__init(v);
    v->feature_id = (char *)feature;
    v->user_id = (char *)user;
    v->value = value;
    v->tier = (char *)tier;
    c->op_case = CANVASS__V1__SHARD_CMD__OP_VOTE;
    c->vote = v;
}

static void add_create(batch_t *b, uint64_t stamp, const char *id, const char *status,
                       const char *merged_into)
{
    Canvass__V1__ShardCmd *c = add_cmd(b, stamp);
    Canvass__V1__FeatureRecord *r = &b->recs[b->batch.n_cmds - 1];
    canvass__v1__feature_record__init(r);
    r->feature_id = (char *)id;
    r->title = (char *)"a title";
    r->status = (char *)status;
    r->merged_into = (char *)merged_into;
    c->op_case = CANVASS__V1__SHARD_CMD__OP_CREATE;
    c->create = r;
}

/* Applies batches as one group; the jobs must be released by the caller. */
static void apply(fx_t *fx, cv_shard_job_t *jobs, batch_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        jobs[i] = (cv_shard_job_t){.batch = &b[i].batch};
    assert_int_equal(cv_shard_apply(fx->shard, jobs, n), 0);
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < b[i].batch.n_cmds; k++)
            assert_true(jobs[i].ack_ptrs[k]->seq == 500 + k);
}

/* Applies one vote in its own group and returns its ack's status;
 * *changed gets the ack's flag, err (if given) its text. */
static int vote1(fx_t *fx, const char *feature, const char *user, int value, const char *tier,
                 int *changed, char *err, size_t errlen)
{
    batch_t b;
    cv_shard_job_t job;
    batch_init(&b);
    add_vote(&b, fx->clock++, feature, user, value, tier);
    apply(fx, &job, &b, 1);
    Canvass__V1__ShardAck *a = job.ack_ptrs[0];
    int status = a->status;
    if (changed)
        *changed = a->changed;
    if (err)
        snprintf(err, errlen, "%s", a->error);
    cv_shard_job_release(&job);
    return status;
}

static void create1(fx_t *fx, const char *id, const char *status, const char *merged_into)
{
    batch_t b;
    cv_shard_job_t job;
    batch_init(&b);
    add_create(&b, fx->clock++, id, status, merged_into);
    apply(fx, &job, &b, 1);
    assert_int_equal(job.ack_ptrs[0]->status, CV_ST_OK);
    cv_shard_job_release(&job);
}

/* The standing of one feature; fails the test when it is missing. */
static void standing(fx_t *fx, const char *id, uint64_t up[3], uint64_t down[3], uint64_t *voters)
{
    cv_standings_t *st = NULL;
    assert_int_equal(cv_shard_standings(fx->shard, &st), 0);
    const Canvass__V1__Standings *m = cv_standings_msg(st);
    const Canvass__V1__FeatureStanding *f = NULL;
    for (size_t i = 0; i < m->n_features; i++)
        if (!strcmp(m->features[i]->feature->feature_id, id))
            f = m->features[i];
    assert_non_null(f);
    assert_int_equal(f->n_up, 3);
    assert_int_equal(f->n_down, 3);
    memcpy(up, f->up, 3 * sizeof *up);
    memcpy(down, f->down, 3 * sizeof *down);
    *voters = f->voters;
    cv_standings_destroy(&st);
}

#define assert_counts(fx, id, u0, u1, u2, d0, d1, d2, v)                                       \
    do {                                                                                       \
        uint64_t up_[3], down_[3], voters_;                                                    \
        standing((fx), (id), up_, down_, &voters_);                                            \
        assert_int_equal(up_[0], (u0));                                                        \
        assert_int_equal(up_[1], (u1));                                                        \
        assert_int_equal(up_[2], (u2));                                                        \
        assert_int_equal(down_[0], (d0));                                                      \
        assert_int_equal(down_[1], (d1));                                                      \
        assert_int_equal(down_[2], (d2));                                                      \
        assert_int_equal(voters_, (v));                                                        \
    } while (0)

/* Runs an audit tool into a string (the caller frees it). */
static int audit(int (*tool)(const char *, FILE *), const char *dir, char **out)
{
    size_t len;
    FILE *f = open_memstream(out, &len);
    assert_non_null(f);
    int rc = tool(dir, f);
    fclose(f);
    return rc;
}

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
    create1(fx, "FM", "merged", "F1");
    assert_int_equal(vote1(fx, "NOPE", "u", 1, "", NULL, err, sizeof err), CV_ST_NOT_FOUND);
    assert_string_equal(err, "no feature 'NOPE'");
    assert_int_equal(vote1(fx, "FS", "u", 1, "", NULL, err, sizeof err), CV_ST_CLOSED);
    assert_string_equal(err, "feature 'FS' is shipped");
    assert_int_equal(vote1(fx, "FD", "u", 1, "", NULL, err, sizeof err), CV_ST_CLOSED);
    assert_string_equal(err, "feature 'FD' is declined");
    assert_int_equal(vote1(fx, "FM", "u", 1, "", NULL, err, sizeof err), CV_ST_CLOSED);
    assert_string_equal(err, "feature 'FM' was merged into 'F1'");
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
    assert_int_equal(cv_shard_close_cycle(fx->shard, 1), 0);
    assert_int_equal(cv_shard_cycle(fx->shard), 2);
    assert_int_equal(cv_shard_close_cycle(fx->shard, 1), 0); /* again: harmless */
    assert_int_equal(cv_shard_cycle(fx->shard), 2);

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
    };
    return cmocka_run_group_tests_name("tally_shard", tests, NULL, NULL);
}
