/* fuzz_tally_request: what a tally shard does with the TallyRequests that
 * reach its ROUTER socket (DESIGN A4 guarantees, B1), on a real store.
 *
 * Input: a sequence of 4-byte big-endian lengths, each followed by that
 * many bytes of a TallyRequest; a length of 0 ends a turn.  Each turn is
 * served the way canvass-tally's serve_turn() serves one drain of its
 * socket: every CmdBatch, set_status, merge_out and merge_in of the turn is
 * applied as one group with cv_shard_apply(), then close, standings,
 * feature and voters are answered with cv_shard_answer().
 *
 * Every input starts from an empty store (a fresh LMDB environment, 64 KiB
 * map so that the grow-and-rerun path runs, durability "os", shard 0 of 1)
 * holding the open features "a", "b" and "c", and a fake clock, so that a
 * crash reproduces from the input alone.
 *
 * Checked, beyond the sanitizers:
 *   - every request that decodes packs back to the same bytes after a round
 *     trip, and every reply the shard would send packs and round-trips;
 *   - a group always commits (a full map is grown, never a failed vote);
 *   - one ShardAck per ShardCmd, same seq, same order; every status is a
 *     known one; every refusal carries a non-empty, valid UTF-8 error text
 *     (it travels to the client in Reply.error); an OK vote names its
 *     feature, and a redirected one changes nothing;
 *   - replies carry the request's corr; closing cycle N leaves cycle
 *     max(open, N + 1) open;
 *   - a resend is harmless (A4): every batch of the input is sent again as
 *     one group, then once more; a command acknowledged OK the first time
 *     changes nothing the second time, and the third time changes nothing
 *     at all: every ack has changed = false, the same status as before, and
 *     the standings are byte for byte the same;
 *   - at the end the counters equal a recount of the stored votes
 *     (cv_audit_check, the same check as canvass-tally --check).
 */
#include "audit.h"
#include "cv_err.h"
#include "cv_id.h"
#include "cv_log.h"
#include "fz_util.h"
#include "shard.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_REQUESTS 512
#define MAP_BYTES (64 * 1024)
#define T0_MS 1767225600000ULL /* 2026-01-01, the fake clock's start */

static const char *dir;
static uint64_t fake_now;

static uint64_t fake_clock(void)
{
    return fake_now;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fz_init_log("fuzz_tally_request");
    dir = fz_tmpdir("tally");
    return 0;
}

/* ---- checks on what the shard answers --------------------------------------------- */

static void check_reply(const Canvass__V1__TallyReply *r, uint64_t corr, const char *what)
{
    FZ_CHECK(r->corr == corr, "%s reply has corr %llu, the request %llu", what,
             (unsigned long long)r->corr, (unsigned long long)corr);
    FZ_CHECK(fz_status_known(r->status), "%s reply has status %d", what, (int)r->status);
    fz_check_text("TallyReply.error", r->error, 0, r->status != CV_ST_OK);
    if (r->status == CV_ST_OK && r->result_case == CANVASS__V1__TALLY_REPLY__RESULT_STANDINGS)
        for (size_t i = 0; i < r->standings->n_features; i++) {
            const Canvass__V1__FeatureStanding *f = r->standings->features[i];
            FZ_CHECK(f->feature && f->n_up == CV_TIERS && f->n_down == CV_TIERS,
                     "a standing without a record or with %zu/%zu tiers", f->n_up, f->n_down);
        }
    fz_check_packs(&r->base);
}

static void check_acks(const Canvass__V1__CmdBatch *b, cv_shard_job_t *job, uint64_t cycle)
{
    for (size_t i = 0; i < b->n_cmds; i++) {
        const Canvass__V1__ShardAck *a = job->ack_ptrs[i];
        const Canvass__V1__ShardCmd *c = b->cmds[i];
        FZ_CHECK(a == &job->acks[i], "ack_ptrs[%zu] does not point at acks[%zu]", i, i);
        FZ_CHECK(a->seq == c->seq, "ack %zu has seq %llu, its command %llu", i,
                 (unsigned long long)a->seq, (unsigned long long)c->seq);
        FZ_CHECK(fz_status_known(a->status), "ack %zu has status %d", i, (int)a->status);
        fz_check_text("ShardAck.error", a->error, 0, a->status != CV_ST_OK);
        fz_check_text("ShardAck.feature_id", a->feature_id, 0, false);
        fz_check_text("ShardAck.redirect_to", a->redirect_to, 0, false);
        if (a->status != CV_ST_OK || c->op_case != CANVASS__V1__SHARD_CMD__OP_VOTE)
            continue;
        FZ_CHECK(*a->feature_id, "OK vote ack %zu names no feature", i);
        if (*a->redirect_to) {
            FZ_CHECK(!strcmp(a->redirect_to, a->feature_id),
                     "redirected ack %zu: redirect_to '%s', feature_id '%s'", i, a->redirect_to,
                     a->feature_id);
            FZ_CHECK(!a->changed, "redirected ack %zu says changed", i);
        } else {
            FZ_CHECK(a->cycle == cycle, "OK vote ack %zu names cycle %llu, the shard's is %llu", i,
                     (unsigned long long)a->cycle, (unsigned long long)cycle);
        }
    }
    Canvass__V1__AckBatch acks = CANVASS__V1__ACK_BATCH__INIT;
    acks.n_acks = b->n_cmds;
    acks.acks = job->ack_ptrs;
    fz_check_packs(&acks.base);
}

/* ---- serving ---------------------------------------------------------------------- */

static int is_write(const Canvass__V1__TallyRequest *r)
{
    switch (r->op_case) {
    case CANVASS__V1__TALLY_REQUEST__OP_BATCH:
    case CANVASS__V1__TALLY_REQUEST__OP_SET_STATUS:
    case CANVASS__V1__TALLY_REQUEST__OP_MERGE_OUT:
    case CANVASS__V1__TALLY_REQUEST__OP_MERGE_IN:
        return 1;
    default:
        return 0;
    }
}

/* Everything else with an operation is a query for cv_shard_answer, which
 * says CV_EINVAL for an operation it does not serve (canvass-tally then
 * answers "TallyRequest has no operation"), so queries added later are
 * fuzzed without a change here. */
static int is_query(const Canvass__V1__TallyRequest *r)
{
    return r->op_case != CANVASS__V1__TALLY_REQUEST__OP__NOT_SET && !is_write(r);
}

/* What one command's ack said. */
typedef struct {
    cv_status_t status;
    int changed;
    int redirected;
} outcome_t;

static void record(const cv_shard_job_t *job, outcome_t *out)
{
    for (size_t i = 0; i < job->batch->n_cmds; i++) {
        const Canvass__V1__ShardAck *a = job->ack_ptrs[i];
        out[i] = (outcome_t){a->status, a->changed, *a->redirect_to != '\0'};
    }
}

/* One drain: the writes as one group, then the queries.  The outcome of
 * every command is appended to *out. */
static void serve_turn(cv_shard_t *s, Canvass__V1__TallyRequest **reqs, size_t n,
                       outcome_t **out)
{
    cv_shard_job_t jobs[MAX_REQUESTS];
    size_t njobs = 0;
    for (size_t i = 0; i < n; i++) {
        if (!is_write(reqs[i]))
            continue;
        if (reqs[i]->op_case == CANVASS__V1__TALLY_REQUEST__OP_BATCH)
            jobs[njobs++] = (cv_shard_job_t){.batch = reqs[i]->batch};
        else
            jobs[njobs++] = (cv_shard_job_t){.change = reqs[i]};
    }
    if (njobs) {
        int rc = cv_shard_apply(s, jobs, njobs);
        FZ_CHECK(rc == 0, "a group of %zu writes did not commit: %s", njobs, cv_strerror(rc));
        size_t j = 0;
        for (size_t i = 0; i < n; i++) {
            if (!is_write(reqs[i]))
                continue;
            cv_shard_job_t *job = &jobs[j++];
            if (job->batch) {
                check_acks(job->batch, job, cv_shard_cycle(s));
                record(job, *out);
                *out += job->batch->n_cmds;
            } else
                check_reply(cv_shard_reply_msg(job->reply), reqs[i]->corr, "change");
            cv_shard_job_release(job);
        }
    }
    for (size_t i = 0; i < n; i++) {
        const Canvass__V1__TallyRequest *q = reqs[i];
        if (!is_query(q))
            continue;
        uint64_t before = cv_shard_cycle(s);
        cv_shard_reply_t *r = NULL;
        int rc = cv_shard_answer(s, q, &r);
        if (rc == CV_EINVAL && !r)
            continue;
        FZ_CHECK(rc == 0, "cv_shard_answer failed for op %d: %s", (int)q->op_case,
                 cv_strerror(rc));
        check_reply(cv_shard_reply_msg(r), q->corr, "query");
        if (q->op_case == CANVASS__V1__TALLY_REQUEST__OP_CLOSE &&
            cv_shard_reply_msg(r)->status == CV_ST_OK) {
            uint64_t want = q->close->cycle == UINT64_MAX ? UINT64_MAX : q->close->cycle + 1;
            if (want < before)
                want = before;
            FZ_CHECK(cv_shard_cycle(s) == want,
                     "closing cycle %llu with cycle %llu open left cycle %llu open",
                     (unsigned long long)q->close->cycle, (unsigned long long)before,
                     (unsigned long long)cv_shard_cycle(s));
        }
        cv_shard_reply_destroy(&r);
    }
    fake_now += 1500; /* trends decay between turns */
}

/* ---- resends ---------------------------------------------------------------------- */

/* Sends every batch of the input again as one group and records each
 * command's outcome into out (in order). */
static void resend_all(cv_shard_t *s, Canvass__V1__TallyRequest **reqs, size_t n, outcome_t *out)
{
    cv_shard_job_t jobs[MAX_REQUESTS];
    size_t njobs = 0, k = 0;
    for (size_t i = 0; i < n; i++)
        if (reqs[i]->op_case == CANVASS__V1__TALLY_REQUEST__OP_BATCH)
            jobs[njobs++] = (cv_shard_job_t){.batch = reqs[i]->batch};
    if (!njobs)
        return;
    int rc = cv_shard_apply(s, jobs, njobs);
    FZ_CHECK(rc == 0, "a resent group did not commit: %s", cv_strerror(rc));
    for (size_t j = 0; j < njobs; j++) {
        check_acks(jobs[j].batch, &jobs[j], cv_shard_cycle(s));
        record(&jobs[j], out + k);
        k += jobs[j].batch->n_cmds;
        cv_shard_job_release(&jobs[j]);
    }
}

static size_t count_cmds(Canvass__V1__TallyRequest **reqs, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (reqs[i]->op_case == CANVASS__V1__TALLY_REQUEST__OP_BATCH)
            k += reqs[i]->batch->n_cmds;
    return k;
}

static uint8_t *packed_standings(cv_shard_t *s, size_t *len)
{
    cv_standings_t *st = NULL;
    int rc = cv_shard_standings(s, &st);
    FZ_CHECK(rc == 0, "standings failed: %s", cv_strerror(rc));
    uint8_t *buf = cv_codec_pack(&cv_standings_msg(st)->base, len);
    FZ_CHECK(buf != NULL, "out of memory");
    cv_standings_destroy(&st);
    return buf;
}

/* ---- setup ------------------------------------------------------------------------ */

static cv_shard_t *open_store(void)
{
    fz_empty_dir(dir);
    cv_shard_t *s = NULL;
    char why[256] = "";
    int rc = cv_shard_open(dir, 0, 1, CV_DURABLE_OS, MAP_BYTES, &s, why, sizeof why);
    FZ_CHECK(rc == 0, "cannot open a shard store in %s: %s %s", dir, cv_strerror(rc), why);
    fake_now = T0_MS;
    cv_shard_set_clock(s, fake_clock);

    static const char *ids[] = {"a", "b", "c"};
    Canvass__V1__FeatureRecord recs[3];
    Canvass__V1__ShardCmd cmds[3], *ptrs[3];
    for (int i = 0; i < 3; i++) {
        canvass__v1__feature_record__init(&recs[i]);
        recs[i].feature_id = (char *)ids[i];
        recs[i].title = (char *)"seeded feature";
        recs[i].status = (char *)"open";
        recs[i].created_ms = T0_MS - 1000 + (uint64_t)i;
        canvass__v1__shard_cmd__init(&cmds[i]);
        cmds[i].seq = (uint64_t)i + 1;
        cmds[i].stamp = (T0_MS - 1000) << 22 | (uint64_t)i;
        cmds[i].op_case = CANVASS__V1__SHARD_CMD__OP_CREATE;
        cmds[i].create = &recs[i];
        ptrs[i] = &cmds[i];
    }
    Canvass__V1__CmdBatch batch = CANVASS__V1__CMD_BATCH__INIT;
    batch.n_cmds = 3;
    batch.cmds = ptrs;
    cv_shard_job_t job = {.batch = &batch};
    rc = cv_shard_apply(s, &job, 1);
    FZ_CHECK(rc == 0, "creating the seeded features failed: %s", cv_strerror(rc));
    for (int i = 0; i < 3; i++)
        FZ_CHECK(job.acks[i].status == CV_ST_OK, "creating feature '%s' failed: %s", ids[i],
                 job.acks[i].error);
    cv_shard_job_release(&job);
    return s;
}

/* ---- the input -------------------------------------------------------------------- */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Canvass__V1__TallyRequest *all[MAX_REQUESTS]; /* every decoded request, in order */
    size_t nall = 0, turn_start = 0;
    cv_shard_t *s = open_store();
    /* A command takes at least 2 bytes of input, so size/2 + 1 outcomes
     * always suffice. */
    size_t cap = size / 2 + 1;
    outcome_t *o0 = calloc(cap, sizeof *o0), *o1 = calloc(cap, sizeof *o1),
              *o2 = calloc(cap, sizeof *o2), *next = o0;
    FZ_CHECK(o0 && o1 && o2, "out of memory");

    size_t off = 0;
    while (size - off >= 4 && nall < MAX_REQUESTS) {
        uint32_t len = (uint32_t)data[off] << 24 | (uint32_t)data[off + 1] << 16 |
                       (uint32_t)data[off + 2] << 8 | data[off + 3];
        off += 4;
        if (len == 0) {
            serve_turn(s, all + turn_start, nall - turn_start, &next);
            turn_start = nall;
            continue;
        }
        if (len > size - off)
            len = (uint32_t)(size - off);
        Canvass__V1__TallyRequest *r = (Canvass__V1__TallyRequest *)fz_roundtrip(
            &canvass__v1__tally_request__descriptor, data + off, len);
        off += len;
        if (!r)
            continue; /* the shard answers INTERNAL "undecodable TallyRequest" */
        all[nall++] = r;
    }
    serve_turn(s, all + turn_start, nall - turn_start, &next);

    /* Resends: the second time, what was acknowledged OK changes nothing;
     * the third time nothing changes at all. */
    size_t ncmds = count_cmds(all, nall);
    FZ_CHECK(ncmds < cap && (size_t)(next - o0) == ncmds, "%zu commands, %zu acks recorded",
             ncmds, (size_t)(next - o0));
    resend_all(s, all, nall, o1);
    for (size_t k = 0; k < ncmds; k++)
        FZ_CHECK(!o1[k].changed || o0[k].status != CV_ST_OK || o0[k].redirected,
                 "command %zu, acknowledged OK, changed the store again when resent", k);
    size_t len2, len3;
    uint8_t *st2 = packed_standings(s, &len2);
    resend_all(s, all, nall, o2);
    uint8_t *st3 = packed_standings(s, &len3);
    for (size_t k = 0; k < ncmds; k++) {
        FZ_CHECK(!o2[k].changed, "command %zu changed the store when sent a third time", k);
        FZ_CHECK(o2[k].status == o1[k].status,
                 "command %zu was answered %s when resent and %s when resent again", k,
                 cv_status_name(o1[k].status), cv_status_name(o2[k].status));
    }
    FZ_CHECK(len2 == len3 && !memcmp(st2, st3, len2),
             "resending every batch a third time changed the standings");
    free(st2);
    free(st3);
    free(o0);
    free(o1);
    free(o2);

    cv_shard_close(&s);
    char *report = NULL;
    size_t rlen = 0;
    FILE *out = open_memstream(&report, &rlen);
    FZ_CHECK(out != NULL, "out of memory");
    int rc = cv_audit_check(dir, out);
    fclose(out);
    FZ_CHECK(rc == 0 && !strncmp(report, "ok ", 3),
             "the counters differ from a recount of the votes (--check returned %d):\n%s", rc,
             report);
    free(report);
    for (size_t i = 0; i < nall; i++)
        canvass__v1__tally_request__free_unpacked(all[i], NULL);
    return 0;
}
