/* shard: one tally shard's vote store (see shard.h).
 *
 * Every write goes through write_txn(), which runs a body function in one
 * LMDB write transaction and, when the map fills, grows it and runs the body
 * again from scratch; bodies therefore recompute everything they produce
 * (the acks of a group included) on each run.  A vote touches three records
 * in the same transaction: the feature (read, to refuse votes on missing or
 * closed features), the vote itself, and the feature's counters, which are
 * only ever changed through cv_counts_move() so that they always equal a
 * recount of the votes.
 */
#include "shard.h"
#include "cv_err.h"
#include "cv_hash.h"
#include "cv_id.h"
#include "cv_log.h"
#include "cv_validate.h"
#include "cv_votes.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const char *const cv_shard_tables[CV_SHARD_NTABLES] = {"votes", "features", "tallies", "meta"};

/* LMDB also reports a transaction that dirtied too many pages as a full map,
 * which no amount of growing cures: past this many doublings for one
 * transaction, give up rather than double forever. */
#define CV_SHARD_GROW_LIMIT 10

struct cv_shard {
    cv_store_t *store;
    cv_durability_t durability;
    uint32_t shard, shards;
    uint64_t cycle; /* the open cycle, as committed in meta */
};

/* ---- write transactions ------------------------------------------------- */

typedef int (*txn_body_fn)(cv_shard_t *s, cv_txn_t *t, void *arg);

/* Runs body in a write transaction and commits; grows the map and runs body
 * again when the map fills.  Returns 0, body's own error, CV_EIO or
 * CV_ENOMEM; on failure nothing of the transaction is stored. */
static int write_txn(cv_shard_t *s, txn_body_fn body, void *arg)
{
    for (int grown = 0;; grown++) {
        cv_txn_t *t = NULL;
        int rc = cv_store_begin(s->store, 0, &t);
        if (rc < 0)
            return rc;
        rc = body(s, t, arg);
        if (rc == 0)
            rc = cv_store_commit(&t);
        else
            cv_store_abort(&t);
        if (rc != CV_EFULL)
            return rc;
        if (grown == CV_SHARD_GROW_LIMIT) {
            cv_log(CV_LOG_ERROR,
                   "msg=\"transaction does not fit after growing the map\" map_bytes=%zu",
                   cv_store_map_size(s->store));
            return CV_EIO;
        }
        rc = cv_store_grow(s->store);
        if (rc < 0)
            return rc;
    }
}

/* ---- records ------------------------------------------------------------- */

static int meta_get(cv_txn_t *t, const char *name, uint64_t *v)
{
    const void *val;
    size_t vlen;
    int rc = cv_store_get(t, CV_SHARD_META, name, strlen(name), &val, &vlen);
    if (rc < 0)
        return rc;
    return cv_u64_decode(val, vlen, v);
}

static int meta_put(cv_txn_t *t, const char *name, uint64_t v)
{
    uint8_t buf[CV_U64_SIZE];
    cv_u64_encode(v, buf);
    return cv_store_put(t, CV_SHARD_META, name, strlen(name), buf, sizeof buf);
}

/* Reads a feature's counters.  A missing or unreadable record reads as
 * zero: it can only come from damage, which --check reports. */
static int counts_get(cv_txn_t *t, const char *id, size_t idlen, cv_counts_t *c)
{
    const void *val;
    size_t vlen;
    memset(c, 0, sizeof *c);
    int rc = cv_store_get(t, CV_SHARD_TALLIES, id, idlen, &val, &vlen);
    if (rc == CV_ENOTFOUND) {
        cv_log(CV_LOG_WARN, "msg=\"feature has no counters record\" feature=%.*s", (int)idlen,
               id);
        return 0;
    }
    if (rc < 0)
        return rc;
    if (cv_counts_decode(val, vlen, c) < 0)
        cv_log(CV_LOG_ERROR, "msg=\"unreadable counters record\" feature=%.*s len=%zu",
               (int)idlen, id, vlen);
    return 0;
}

static int counts_put(cv_txn_t *t, const char *id, size_t idlen, const cv_counts_t *c)
{
    uint8_t buf[CV_COUNTS_REC_SIZE];
    cv_counts_encode(c, buf);
    return cv_store_put(t, CV_SHARD_TALLIES, id, idlen, buf, sizeof buf);
}

/* ---- open and meta ------------------------------------------------------ */

typedef struct {
    const char *dir;
    char *why;
    size_t whylen;
} open_arg_t;

/* Records shard, shards, schema and cycle in a new store, or checks them in
 * an existing one.  Returns CV_EMISMATCH with a reason in arg->why. */
static int meta_init(cv_shard_t *s, cv_txn_t *t, void *argp)
{
    open_arg_t *arg = argp;
    uint64_t shard = 0, shards = 0, schema = 0, cycle = 0;
    int rs = meta_get(t, "shard", &shard);
    int rn = meta_get(t, "shards", &shards);
    int rv = meta_get(t, "schema", &schema);
    int rc = meta_get(t, "cycle", &cycle);
    if (rs == CV_EIO || rn == CV_EIO || rv == CV_EIO || rc == CV_EIO)
        return CV_EIO;
    /* cycle stays 0 when missing or unreadable, and is written below. */

    int err;
    if (rs == CV_ENOTFOUND && rn == CV_ENOTFOUND) {
        if ((err = meta_put(t, "shard", s->shard)) < 0 ||
            (err = meta_put(t, "shards", s->shards)) < 0 ||
            (err = meta_put(t, "schema", CV_VOTES_SCHEMA)) < 0)
            return err;
        shard = s->shard;
        shards = s->shards;
        rv = 0;
        schema = CV_VOTES_SCHEMA;
    } else if (rs < 0 || rn < 0) {
        snprintf(arg->why, arg->whylen, "store %s has an unreadable shard id or shard count",
                 arg->dir);
        return CV_EMISMATCH;
    }
    if (shard != s->shard || shards != s->shards) {
        snprintf(arg->why, arg->whylen,
                 "shard %s mismatch: store %s belongs to shard %llu of %llu, not shard %u of %u",
                 shards != s->shards ? "count" : "id", arg->dir, (unsigned long long)shard,
                 (unsigned long long)shards, s->shard, s->shards);
        return CV_EMISMATCH;
    }
    if (rv < 0) {
        snprintf(arg->why, arg->whylen, "store %s has no readable schema version", arg->dir);
        return CV_EMISMATCH;
    }
    if (schema > CV_VOTES_SCHEMA) {
        snprintf(arg->why, arg->whylen, "store %s has schema %llu, this binary reads schema %d",
                 arg->dir, (unsigned long long)schema, CV_VOTES_SCHEMA);
        return CV_EMISMATCH;
    }
    if (cycle == 0) {
        cycle = 1;
        if ((err = meta_put(t, "cycle", cycle)) < 0)
            return err;
    }
    s->cycle = cycle;
    return 0;
}

int cv_shard_open(const char *dir, uint32_t shard, uint32_t shards, cv_durability_t durability,
                  size_t map_bytes, cv_shard_t **out, char *why, size_t whylen)
{
    cv_shard_t *s = calloc(1, sizeof *s);
    if (!s)
        return CV_ENOMEM;
    s->shard = shard;
    s->shards = shards;
    s->durability = durability;
    s->store = cv_store_open(dir, cv_shard_tables, CV_SHARD_NTABLES, durability, map_bytes);
    if (!s->store) {
        free(s);
        return CV_EIO;
    }
    open_arg_t arg = {dir, why, whylen};
    int rc = write_txn(s, meta_init, &arg);
    if (rc < 0) {
        cv_store_close(&s->store);
        free(s);
        return rc;
    }
    *out = s;
    return 0;
}

void cv_shard_close(cv_shard_t **shard_p)
{
    if (!shard_p || !*shard_p)
        return;
    cv_shard_t *s = *shard_p;
    if (s->durability == CV_DURABLE_OS && cv_store_sync(s->store) < 0)
        cv_log(CV_LOG_ERROR, "msg=\"final sync failed\"");
    cv_store_close(&s->store);
    free(s);
    *shard_p = NULL;
}

uint64_t cv_shard_cycle(const cv_shard_t *s)
{
    return s->cycle;
}

int cv_shard_reader_check(cv_shard_t *s)
{
    return cv_store_reader_check(s->store);
}

cv_store_t *cv_shard_store_open_existing(const char *dir)
{
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    if (stat(path, &st) != 0) {
        fprintf(stderr, "canvass-tally: no shard store in %s\n", dir);
        return NULL;
    }
    cv_store_t *store = cv_store_open(dir, cv_shard_tables, CV_SHARD_NTABLES, CV_DURABLE_OS, 0);
    if (!store)
        fprintf(stderr, "canvass-tally: cannot open the store in %s\n", dir);
    return store;
}

/* ---- acks ---------------------------------------------------------------- */

/* Stands in for an error text that could not be allocated. */
static char ack_error_oom[] = "error text lost: out of memory";

static void ack_error_free(Canvass__V1__ShardAck *a)
{
    if (a->error && a->error != protobuf_c_empty_string && a->error != ack_error_oom)
        free(a->error);
    a->error = (char *)protobuf_c_empty_string;
}

/* Refuses one command: sets its status and error text.  Returns 0, as the
 * command is done and the group goes on. */
__attribute__((format(printf, 3, 4))) static int ack_fail(Canvass__V1__ShardAck *a,
                                                          cv_status_t status, const char *fmt,
                                                          ...)
{
    char *text = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&text, fmt, ap);
    va_end(ap);
    ack_error_free(a);
    a->status = status;
    a->error = n < 0 ? ack_error_oom : text;
    return 0;
}

/* ---- commands ------------------------------------------------------------ */

/* Sets *open when the feature takes votes; otherwise fills the ack with
 * NOT_FOUND or CLOSED.  Returns 0 or a store error. */
static int feature_gate(cv_txn_t *t, const char *id, size_t idlen, Canvass__V1__ShardAck *a,
                        int *open)
{
    const void *val;
    size_t vlen;
    *open = 0;
    int rc = cv_store_get(t, CV_SHARD_FEATURES, id, idlen, &val, &vlen);
    if (rc == CV_ENOTFOUND)
        return ack_fail(a, CV_ST_NOT_FOUND, "no feature '%s'", id);
    if (rc < 0)
        return rc;
    Canvass__V1__FeatureRecord *f = canvass__v1__feature_record__unpack(NULL, vlen, val);
    if (!f) {
        cv_log(CV_LOG_ERROR, "msg=\"unreadable feature record\" feature=%s len=%zu", id, vlen);
        return ack_fail(a, CV_ST_INTERNAL, "the record of feature '%s' is unreadable", id);
    }
    if (!strcmp(f->status, "shipped") || !strcmp(f->status, "declined")) {
        ack_fail(a, CV_ST_CLOSED, "feature '%s' is %s", id, f->status);
    } else if (!strcmp(f->status, "merged")) {
        /* Votes on a merged feature are to land on its target (A7), which
         * lives on whichever shard owns the target; that forwarding comes
         * with the merge operation.  Until then a merged feature takes no
         * votes, like a closed one. */
        ack_fail(a, CV_ST_CLOSED, "feature '%s' was merged into '%s'", id, f->merged_into);
    } else {
        *open = 1;
    }
    canvass__v1__feature_record__free_unpacked(f, NULL);
    return 0;
}

static int apply_vote(cv_shard_t *s, cv_txn_t *t, uint64_t stamp, const Canvass__V1__Vote *v,
                      Canvass__V1__ShardAck *a)
{
    char err[256];
    if (cv_validate_vote(v, err, sizeof err) != CV_ST_OK)
        return ack_fail(a, CV_ST_INVALID, "%s", err);
    const char *id = v->feature_id;
    size_t idlen = strlen(id);
    a->feature_id = v->feature_id; /* borrowed from the batch, which outlives the ack */
    a->cycle = s->cycle;

    if (stamp == 0) /* every stored stamp is >= 0: such a vote could never apply */
        return ack_fail(a, CV_ST_INVALID, "vote on feature '%s' has no ordering stamp", id);

    int open, rc = feature_gate(t, id, idlen, a, &open);
    if (rc < 0 || !open)
        return rc;

    uint8_t key[CV_VOTE_KEY_MAX];
    size_t klen;
    if (cv_vote_key_make(id, idlen, v->user_id, strlen(v->user_id), key, &klen) < 0)
        return ack_fail(a, CV_ST_INVALID, "vote key for feature '%s' is too long", id);

    cv_vote_rec_t old, next = {(int8_t)v->value, (uint8_t)cv_tier_parse(v->tier), stamp};
    const cv_vote_rec_t *oldp = NULL;
    const void *val;
    size_t vlen;
    rc = cv_store_get(t, CV_SHARD_VOTES, key, klen, &val, &vlen);
    if (rc == 0) {
        if (cv_vote_rec_decode(val, vlen, &old) < 0) {
            cv_log(CV_LOG_ERROR, "msg=\"unreadable vote record\" feature=%s len=%zu", id, vlen);
            return ack_fail(a, CV_ST_INTERNAL, "the stored vote on feature '%s' is unreadable",
                            id);
        }
        oldp = &old;
    } else if (rc != CV_ENOTFOUND) {
        return rc;
    }

    cv_vote_outcome_t outcome = cv_vote_decide(oldp, &next);
    if (outcome == CV_VOTE_STALE)
        return 0;
    if (outcome == CV_VOTE_CHANGE) {
        cv_counts_t c;
        if ((rc = counts_get(t, id, idlen, &c)) < 0)
            return rc;
        if (cv_counts_move(&c, oldp, &next) < 0)
            cv_log(CV_LOG_ERROR,
                   "msg=\"counters were out of step with the votes (run --check)\" feature=%s",
                   id);
        if ((rc = counts_put(t, id, idlen, &c)) < 0)
            return rc;
        a->changed = 1;
    }
    /* Also for CV_VOTE_SAME: the newer stamp must be kept, or a late resend
     * of an older, different vote would later pass the stamp test. */
    uint8_t rec[CV_VOTE_REC_SIZE];
    cv_vote_rec_encode(&next, rec);
    return cv_store_put(t, CV_SHARD_VOTES, key, klen, rec, sizeof rec);
}

static int apply_create(cv_shard_t *s, cv_txn_t *t, uint64_t stamp,
                        const Canvass__V1__FeatureRecord *f, Canvass__V1__ShardAck *a)
{
    const char *id = f->feature_id;
    size_t idlen = strlen(id);
    if (!cv_feature_id_valid(id, idlen))
        return ack_fail(a, CV_ST_INVALID, "create.feature_id must be 1-%d bytes of [A-Za-z0-9_-]",
                        CV_FEATURE_ID_MAX);
    uint32_t owner = cv_shard_for_feature(id, idlen, s->shards);
    if (owner != s->shard)
        return ack_fail(a, CV_ST_INVALID, "feature '%s' belongs to shard %u, not shard %u", id,
                        owner, s->shard);
    a->feature_id = f->feature_id; /* borrowed, like a vote's */
    a->cycle = s->cycle;

    const void *val;
    size_t vlen;
    int rc = cv_store_get(t, CV_SHARD_FEATURES, id, idlen, &val, &vlen);
    if (rc == 0)
        return 0; /* a resend: the feature stays as first created */
    if (rc != CV_ENOTFOUND)
        return rc;

    Canvass__V1__FeatureRecord rec = *f; /* shallow: strings stay the batch's */
    if (!rec.status || !*rec.status)
        rec.status = (char *)"open";
    if (!rec.created_ms)
        rec.created_ms = stamp ? cv_stamp_ms(stamp) : cv_now_ms();
    size_t len;
    uint8_t *buf = cv_codec_pack(&rec.base, &len);
    if (!buf)
        return CV_ENOMEM;
    rc = cv_store_put(t, CV_SHARD_FEATURES, id, idlen, buf, len);
    free(buf);
    if (rc < 0)
        return rc;
    cv_counts_t zero = {0};
    if ((rc = counts_put(t, id, idlen, &zero)) < 0)
        return rc;
    a->changed = 1;
    return 0;
}

static int apply_cmd(cv_shard_t *s, cv_txn_t *t, const Canvass__V1__ShardCmd *cmd,
                     Canvass__V1__ShardAck *a)
{
    switch (cmd->op_case) {
    case CANVASS__V1__SHARD_CMD__OP_VOTE:
        return apply_vote(s, t, cmd->stamp, cmd->vote, a);
    case CANVASS__V1__SHARD_CMD__OP_CREATE:
        return apply_create(s, t, cmd->stamp, cmd->create, a);
    default:
        return ack_fail(a, CV_ST_INVALID, "command seq=%llu has neither vote nor create",
                        (unsigned long long)cmd->seq);
    }
}

/* ---- groups -------------------------------------------------------------- */

typedef struct {
    cv_shard_job_t *jobs;
    size_t njobs;
} group_t;

static void job_reset_acks(cv_shard_job_t *job)
{
    for (size_t i = 0; i < job->batch->n_cmds; i++) {
        Canvass__V1__ShardAck *a = &job->acks[i];
        ack_error_free(a);
        canvass__v1__shard_ack__init(a);
        a->seq = job->batch->cmds[i]->seq;
        job->ack_ptrs[i] = a;
    }
}

static int group_body(cv_shard_t *s, cv_txn_t *t, void *arg)
{
    group_t *g = arg;
    for (size_t j = 0; j < g->njobs; j++)
        job_reset_acks(&g->jobs[j]); /* a rerun after growing starts clean */
    for (size_t j = 0; j < g->njobs; j++) {
        cv_shard_job_t *job = &g->jobs[j];
        for (size_t i = 0; i < job->batch->n_cmds; i++) {
            int rc = apply_cmd(s, t, job->batch->cmds[i], &job->acks[i]);
            if (rc < 0)
                return rc;
        }
    }
    return 0;
}

int cv_shard_apply(cv_shard_t *s, cv_shard_job_t *jobs, size_t njobs)
{
    for (size_t j = 0; j < njobs; j++) {
        size_t n = jobs[j].batch->n_cmds;
        /* calloc: a NULL error pointer is safe for ack_error_free(). */
        jobs[j].acks = calloc(n ? n : 1, sizeof *jobs[j].acks);
        jobs[j].ack_ptrs = calloc(n ? n : 1, sizeof *jobs[j].ack_ptrs);
        if (!jobs[j].acks || !jobs[j].ack_ptrs)
            return CV_ENOMEM;
    }
    group_t g = {jobs, njobs};
    return write_txn(s, group_body, &g);
}

void cv_shard_job_release(cv_shard_job_t *job)
{
    if (job->acks)
        for (size_t i = 0; i < job->batch->n_cmds; i++)
            ack_error_free(&job->acks[i]);
    free(job->acks);
    free(job->ack_ptrs);
    job->acks = NULL;
    job->ack_ptrs = NULL;
}

/* ---- cycles and standings ------------------------------------------------ */

static int close_body(cv_shard_t *s, cv_txn_t *t, void *arg)
{
    return meta_put(t, "cycle", *(const uint64_t *)arg);
}

int cv_shard_close_cycle(cv_shard_t *s, uint64_t cycle)
{
    uint64_t next = cycle == UINT64_MAX ? cycle : cycle + 1;
    if (next <= s->cycle)
        return 0; /* already closed */
    int rc = write_txn(s, close_body, &next);
    if (rc < 0)
        return rc;
    cv_log(CV_LOG_INFO, "msg=\"cycle closed\" closed=%llu open=%llu", (unsigned long long)cycle,
           (unsigned long long)next);
    s->cycle = next;
    return 0;
}

/* One feature's standing and the storage its message points into. */
typedef struct {
    Canvass__V1__FeatureStanding fs;
    Canvass__V1__FeatureRecord *rec; /* unpacked, owned */
    uint64_t up[CV_TIERS], down[CV_TIERS];
} standing_slot_t;

struct cv_standings {
    Canvass__V1__Standings msg;
    standing_slot_t *slots;
    size_t n, cap;
    Canvass__V1__FeatureStanding **ptrs;
    cv_txn_t *txn; /* while building */
};

static int standings_add(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    cv_standings_t *st = arg;
    Canvass__V1__FeatureRecord *rec = canvass__v1__feature_record__unpack(NULL, vlen, val);
    if (!rec) {
        cv_log(CV_LOG_ERROR, "msg=\"unreadable feature record left out of standings\" "
                             "feature=%.*s len=%zu",
               (int)klen, (const char *)key, vlen);
        return 0;
    }
    cv_counts_t c;
    int rc = counts_get(st->txn, key, klen, &c);
    if (rc < 0) {
        canvass__v1__feature_record__free_unpacked(rec, NULL);
        return rc;
    }
    if (st->n == st->cap) {
        size_t cap = st->cap ? st->cap * 2 : 64;
        standing_slot_t *slots = realloc(st->slots, cap * sizeof *slots);
        if (!slots) {
            canvass__v1__feature_record__free_unpacked(rec, NULL);
            return CV_ENOMEM;
        }
        st->slots = slots;
        st->cap = cap;
    }
    standing_slot_t *slot = &st->slots[st->n++];
    slot->rec = rec;
    memcpy(slot->up, c.up, sizeof slot->up);
    memcpy(slot->down, c.down, sizeof slot->down);
    canvass__v1__feature_standing__init(&slot->fs);
    slot->fs.voters = c.voters;
    return 0;
}

int cv_shard_standings(cv_shard_t *s, cv_standings_t **out)
{
    cv_standings_t *st = calloc(1, sizeof *st);
    if (!st)
        return CV_ENOMEM;
    int rc = cv_store_begin(s->store, 1, &st->txn);
    if (rc == 0) {
        rc = cv_store_iter(st->txn, CV_SHARD_FEATURES, NULL, 0, standings_add, st);
        cv_store_abort(&st->txn);
    }
    if (rc == 0 && !(st->ptrs = calloc(st->n ? st->n : 1, sizeof *st->ptrs)))
        rc = CV_ENOMEM;
    if (rc < 0) {
        cv_standings_destroy(&st);
        return rc;
    }
    /* Pointers into slots are taken only now that the array stops moving. */
    for (size_t i = 0; i < st->n; i++) {
        standing_slot_t *slot = &st->slots[i];
        slot->fs.feature = slot->rec;
        slot->fs.n_up = CV_TIERS;
        slot->fs.up = slot->up;
        slot->fs.n_down = CV_TIERS;
        slot->fs.down = slot->down;
        st->ptrs[i] = &slot->fs;
    }
    canvass__v1__standings__init(&st->msg);
    st->msg.shard = s->shard;
    st->msg.cycle = s->cycle;
    st->msg.n_features = st->n;
    st->msg.features = st->ptrs;
    *out = st;
    return 0;
}

const Canvass__V1__Standings *cv_standings_msg(const cv_standings_t *st)
{
    return &st->msg;
}

void cv_standings_destroy(cv_standings_t **st_p)
{
    if (!st_p || !*st_p)
        return;
    cv_standings_t *st = *st_p;
    for (size_t i = 0; i < st->n; i++)
        canvass__v1__feature_record__free_unpacked(st->slots[i].rec, NULL);
    free(st->slots);
    free(st->ptrs);
    free(st);
    *st_p = NULL;
}
