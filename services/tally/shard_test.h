/* shard_test.h: the fixture the tally shard's unit tests share
 * (shard_test.c, lifecycle_test.c): a fresh store in a temporary directory
 * per test, batches built in place, one-call helpers for votes, creates,
 * changes and queries, and a test clock.  Header-only (static inline) so
 * that it never links into canvass-tally. */
#ifndef TALLY_SHARD_TEST_H
#define TALLY_SHARD_TEST_H

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

static inline int setup(void **state)
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

static inline int teardown(void **state)
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

static inline void batch_init(batch_t *b)
{
    canvass__v1__cmd_batch__init(&b->batch);
    b->batch.cmds = b->ptrs;
}

static inline Canvass__V1__ShardCmd *add_cmd(batch_t *b, uint64_t stamp)
{
    size_t i = b->batch.n_cmds++;
    assert_true(i < BATCH_MAX);
    canvass__v1__shard_cmd__init(&b->cmds[i]);
    b->cmds[i].seq = 500 + i;
    b->cmds[i].stamp = stamp;
    b->ptrs[i] = &b->cmds[i];
    return &b->cmds[i];
}

static inline void add_vote(batch_t *b, uint64_t stamp, const char *feature, const char *user,
                            int value, const char *tier)
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

static inline void add_create(batch_t *b, uint64_t stamp, const char *id, const char *status,
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
static inline void apply(fx_t *fx, cv_shard_job_t *jobs, batch_t *b, size_t n)
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
static inline int vote1(fx_t *fx, const char *feature, const char *user, int value,
                        const char *tier, int *changed, char *err, size_t errlen)
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

static inline void create1(fx_t *fx, const char *id, const char *status, const char *merged_into)
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
static inline void standing(fx_t *fx, const char *id, uint64_t up[3], uint64_t down[3],
                            uint64_t *voters)
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

#define assert_counts(fx, id, u0, u1, u2, d0, d1, d2, v)                                           \
    do {                                                                                           \
        uint64_t up_[3], down_[3], voters_;                                                        \
        standing((fx), (id), up_, down_, &voters_);                                                \
        assert_int_equal(up_[0], (u0));                                                            \
        assert_int_equal(up_[1], (u1));                                                            \
        assert_int_equal(up_[2], (u2));                                                            \
        assert_int_equal(down_[0], (d0));                                                          \
        assert_int_equal(down_[1], (d1));                                                          \
        assert_int_equal(down_[2], (d2));                                                          \
        assert_int_equal(voters_, (v));                                                            \
    } while (0)

/* Runs an audit tool into a string (the caller frees it). */
static inline int audit(int (*tool)(const char *, FILE *), const char *dir, char **out)
{
    size_t len;
    FILE *f = open_memstream(out, &len);
    assert_non_null(f);
    int rc = tool(dir, f);
    fclose(f);
    return rc;
}

/* ---- clock, changes and queries ----------------------------------------------- */

/* The wall clock the shard reads once a test calls use_test_clock(). */
static uint64_t test_now_ms;

static inline uint64_t test_clock(void)
{
    return test_now_ms;
}

static inline void use_test_clock(fx_t *fx, uint64_t now)
{
    test_now_ms = now;
    cv_shard_set_clock(fx->shard, test_clock);
}

/* A stamp whose wall-clock part is ms (node 0, counter n). */
static inline uint64_t stamp_at(uint64_t ms, uint64_t n)
{
    return (ms << 22) | n;
}

/* Applies one change request (set_status, merge_out, merge_in) in its own
 * group; returns its reply, which the caller destroys. */
static inline cv_shard_reply_t *change1(fx_t *fx, Canvass__V1__TallyRequest *req)
{
    cv_shard_job_t job = {.change = req};
    assert_int_equal(cv_shard_apply(fx->shard, &job, 1), 0);
    cv_shard_reply_t *r = job.reply;
    job.reply = NULL; /* kept for the caller */
    cv_shard_job_release(&job);
    assert_non_null(r);
    assert_true(cv_shard_reply_msg(r)->corr == req->corr);
    return r;
}

static inline cv_shard_reply_t *set_status1(fx_t *fx, const char *id, const char *status,
                                            const char *release, uint64_t at_ms)
{
    Canvass__V1__SetStatus ss = CANVASS__V1__SET_STATUS__INIT;
    ss.feature_id = (char *)id;
    ss.status = (char *)status;
    ss.release = (char *)release;
    ss.at_ms = at_ms;
    Canvass__V1__TallyRequest req = CANVASS__V1__TALLY_REQUEST__INIT;
    req.corr = 77;
    req.op_case = CANVASS__V1__TALLY_REQUEST__OP_SET_STATUS;
    req.set_status = &ss;
    return change1(fx, &req);
}

static inline cv_shard_reply_t *merge_out1(fx_t *fx, const char *src, const char *dst,
                                           uint64_t at_ms)
{
    Canvass__V1__MergeOut mo = CANVASS__V1__MERGE_OUT__INIT;
    mo.src = (char *)src;
    mo.dst = (char *)dst;
    mo.at_ms = at_ms;
    Canvass__V1__TallyRequest req = CANVASS__V1__TALLY_REQUEST__INIT;
    req.corr = 78;
    req.op_case = CANVASS__V1__TALLY_REQUEST__OP_MERGE_OUT;
    req.merge_out = &mo;
    return change1(fx, &req);
}

/* merge_in of the votes of a merge_out reply (or none when out is NULL). */
static inline cv_shard_reply_t *merge_in1(fx_t *fx, const char *dst, const char *src,
                                          const cv_shard_reply_t *out)
{
    Canvass__V1__MergeIn mi = CANVASS__V1__MERGE_IN__INIT;
    mi.dst = (char *)dst;
    mi.src = (char *)src;
    if (out) {
        const Canvass__V1__MergeResult *m = cv_shard_reply_msg(out)->merge;
        assert_non_null(m);
        mi.n_votes = m->n_votes;
        mi.votes = m->votes;
    }
    Canvass__V1__TallyRequest req = CANVASS__V1__TALLY_REQUEST__INIT;
    req.corr = 79;
    req.op_case = CANVASS__V1__TALLY_REQUEST__OP_MERGE_IN;
    req.merge_in = &mi;
    return change1(fx, &req);
}

/* Answers a feature query; the caller destroys the reply. */
static inline cv_shard_reply_t *feature1(fx_t *fx, const char *id)
{
    Canvass__V1__FeatureQuery q = CANVASS__V1__FEATURE_QUERY__INIT;
    q.feature_id = (char *)id;
    Canvass__V1__TallyRequest req = CANVASS__V1__TALLY_REQUEST__INIT;
    req.corr = 80;
    req.op_case = CANVASS__V1__TALLY_REQUEST__OP_FEATURE;
    req.feature = &q;
    cv_shard_reply_t *r = NULL;
    assert_int_equal(cv_shard_answer(fx->shard, &req, &r), 0);
    assert_true(cv_shard_reply_msg(r)->corr == 80);
    return r;
}

static inline cv_shard_reply_t *voters1(fx_t *fx, const char *id, const char *after, uint32_t limit)
{
    Canvass__V1__VotersQuery q = CANVASS__V1__VOTERS_QUERY__INIT;
    q.feature_id = (char *)id;
    q.after = (char *)after;
    q.limit = limit;
    Canvass__V1__TallyRequest req = CANVASS__V1__TALLY_REQUEST__INIT;
    req.corr = 81;
    req.op_case = CANVASS__V1__TALLY_REQUEST__OP_VOTERS;
    req.voters = &q;
    cv_shard_reply_t *r = NULL;
    assert_int_equal(cv_shard_answer(fx->shard, &req, &r), 0);
    return r;
}

/* Asserts a reply's status and error text. */
#define assert_reply(r, st, text)                                                                  \
    do {                                                                                           \
        assert_int_equal(cv_shard_reply_msg(r)->status, (st));                                     \
        assert_string_equal(cv_shard_reply_msg(r)->error, (text));                                 \
    } while (0)

/* Applies one vote with the given stamp; returns a copy of its ack's
 * status, changed flag, feature_id and redirect_to. */
typedef struct {
    int status, changed;
    char feature_id[80], redirect_to[80], error[256];
} ack_copy_t;

static inline ack_copy_t vote_at(fx_t *fx, uint64_t stamp, const char *feature, const char *user,
                                 int value, const char *tier)
{
    batch_t b;
    cv_shard_job_t job;
    batch_init(&b);
    add_vote(&b, stamp, feature, user, value, tier);
    apply(fx, &job, &b, 1);
    const Canvass__V1__ShardAck *a = job.ack_ptrs[0];
    ack_copy_t c = {a->status, a->changed, "", "", ""};
    snprintf(c.feature_id, sizeof c.feature_id, "%s", a->feature_id);
    snprintf(c.redirect_to, sizeof c.redirect_to, "%s", a->redirect_to);
    snprintf(c.error, sizeof c.error, "%s", a->error);
    cv_shard_job_release(&job);
    return c;
}

#endif
