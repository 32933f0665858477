/* shard: one tally shard's vote store (see shard.h): open and meta, write
 * transactions, groups, votes and creates.  Closing cycles is in closing.c,
 * the created index in created.c, standings and queries in standing.c,
 * status changes and merges in lifecycle.c.
 *
 * Every write goes through cv__shard_write_txn(), which runs a body function
 * in one LMDB write transaction and, when the map fills, grows it and runs
 * the body again from scratch; bodies therefore recompute everything they
 * produce (the acks and replies of a group included) on each run.  A vote
 * touches up to four records in the same transaction: the feature (read, to
 * refuse votes on missing or closed features and redirect those on merged
 * ones), the vote itself, the feature's counters, which are only ever
 * changed through cv_counts_move() so that they always equal a recount of
 * the votes, and its trend gains, which follow the same changes.  With the
 * vote log on (the default), a group of only votes and creates writes its
 * votes as one log record and keeps their effect in the overlay instead
 * (overlay.c); a group holding a status change or merge first settles the
 * overlay and then writes straight to the tables.
 */
#include "cv_err.h"
#include "cv_hash.h"
#include "cv_id.h"
#include "cv_log.h"
#include "cv_validate.h"
#include "shard_priv.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const char *const cv_shard_tables[CV_SHARD_NTABLES] = {
    "votes", "features", "tallies", "meta", "trends", "closed", "created", "log"};

/* LMDB also reports a transaction that dirtied too many pages as a full map,
 * which no amount of growing cures: past this many doublings for one
 * transaction, give up rather than double forever. */
#define CV_SHARD_GROW_LIMIT 10

/* ---- write transactions ------------------------------------------------- */

int cv__shard_write_txn(cv_shard_t *s, cv__txn_body_fn body, void *arg)
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

int cv__meta_get(cv_txn_t *t, const char *name, uint64_t *v)
{
    const void *val;
    size_t vlen;
    int rc = cv_store_get(t, CV_SHARD_META, name, strlen(name), &val, &vlen);
    if (rc < 0)
        return rc;
    return cv_u64_decode(val, vlen, v);
}

int cv__meta_put(cv_txn_t *t, const char *name, uint64_t v)
{
    uint8_t buf[CV_U64_SIZE];
    cv_u64_encode(v, buf);
    return cv_store_put(t, CV_SHARD_META, name, strlen(name), buf, sizeof buf);
}

int cv__counts_get(cv_txn_t *t, const char *id, size_t idlen, cv_counts_t *c)
{
    const void *val;
    size_t vlen;
    memset(c, 0, sizeof *c);
    int rc = cv_store_get(t, CV_SHARD_TALLIES, id, idlen, &val, &vlen);
    if (rc == CV_ENOTFOUND) {
        cv_log(CV_LOG_WARN, "msg=\"feature has no counters record\" feature=%.*s", (int)idlen, id);
        return 0;
    }
    if (rc < 0)
        return rc;
    if (cv_counts_decode(val, vlen, c) < 0)
        cv_log(CV_LOG_ERROR, "msg=\"unreadable counters record\" feature=%.*s len=%zu", (int)idlen,
               id, vlen);
    return 0;
}

int cv__counts_put(cv_txn_t *t, const char *id, size_t idlen, const cv_counts_t *c)
{
    uint8_t buf[CV_COUNTS_REC_SIZE];
    cv_counts_encode(c, buf);
    return cv_store_put(t, CV_SHARD_TALLIES, id, idlen, buf, sizeof buf);
}

int cv__trend_get(cv_txn_t *t, const char *id, size_t idlen, cv_trend_t *tr)
{
    const void *val;
    size_t vlen;
    int rc = cv_store_get(t, CV_SHARD_TRENDS, id, idlen, &val, &vlen);
    if (rc < 0)
        return rc;
    if (cv_trend_decode(val, vlen, tr) < 0) {
        cv_log(CV_LOG_ERROR, "msg=\"unreadable trend record ignored\" feature=%.*s len=%zu",
               (int)idlen, id, vlen);
        return CV_ENOTFOUND;
    }
    return 0;
}

static int trend_put(cv_txn_t *t, const char *id, size_t idlen, const cv_trend_t *tr)
{
    uint8_t buf[CV_TREND_REC_SIZE];
    cv_trend_encode(tr, buf);
    return cv_store_put(t, CV_SHARD_TRENDS, id, idlen, buf, sizeof buf);
}

int cv__feature_get(cv_txn_t *t, const char *id, size_t idlen, Canvass__V1__FeatureRecord **out)
{
    const void *val;
    size_t vlen;
    int rc = cv_store_get(t, CV_SHARD_FEATURES, id, idlen, &val, &vlen);
    if (rc < 0)
        return rc;
    *out = canvass__v1__feature_record__unpack(NULL, vlen, val);
    if (!*out) {
        cv_log(CV_LOG_ERROR, "msg=\"unreadable feature record\" feature=%.*s len=%zu", (int)idlen,
               id, vlen);
        return CV_EDECODE;
    }
    return 0;
}

/* Packs rec and stores it under its id.  With after, also unpacks the
 * stored bytes into *after.  Returns 0, CV_ENOMEM, CV_EFULL or CV_EIO. */
static int feature_put(cv_txn_t *t, const Canvass__V1__FeatureRecord *rec,
                       Canvass__V1__FeatureRecord **after)
{
    size_t len;
    uint8_t *buf = cv_codec_pack(&rec->base, &len);
    if (!buf)
        return CV_ENOMEM;
    int rc = cv_store_put(t, CV_SHARD_FEATURES, rec->feature_id, strlen(rec->feature_id), buf, len);
    if (rc == 0 && after && !(*after = canvass__v1__feature_record__unpack(NULL, len, buf)))
        rc = CV_ENOMEM;
    free(buf);
    return rc;
}

int cv__feature_change(cv_txn_t *t, const Canvass__V1__FeatureRecord *rec, const char *status,
                       const char *release, const char *merged_into, uint64_t at_ms,
                       Canvass__V1__FeatureRecord **after)
{
    /* A shallow copy with one more history pointer: the strings stay the
     * caller's and the stored bytes are the only new thing. */
    Canvass__V1__StatusChange change = CANVASS__V1__STATUS_CHANGE__INIT;
    change.status = (char *)status;
    change.at_ms = at_ms;
    change.release = (char *)release;
    change.merged_into = (char *)merged_into;
    Canvass__V1__StatusChange **history = malloc((rec->n_history + 1) * sizeof *history);
    if (!history)
        return CV_ENOMEM;
    if (rec->n_history)
        memcpy(history, rec->history, rec->n_history * sizeof *history);
    history[rec->n_history] = &change;

    Canvass__V1__FeatureRecord next = *rec;
    next.status = (char *)status;
    next.release = (char *)release;
    next.merged_into = (char *)merged_into;
    next.n_history = rec->n_history + 1;
    next.history = history;
    int rc = feature_put(t, &next, after);
    free(history);
    return rc;
}

uint64_t cv__shard_now(const cv_shard_t *s)
{
    return s->now_ms ? s->now_ms() : cv_now_ms();
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
    uint64_t shard = 0, shards = 0, schema = 0, cycle = 0, opened = 0;
    int rs = cv__meta_get(t, "shard", &shard);
    int rn = cv__meta_get(t, "shards", &shards);
    int rv = cv__meta_get(t, "schema", &schema);
    int rc = cv__meta_get(t, "cycle", &cycle);
    int ro = cv__meta_get(t, "opened_ms", &opened);
    if (rs == CV_EIO || rn == CV_EIO || rv == CV_EIO || rc == CV_EIO || ro == CV_EIO)
        return CV_EIO;
    /* cycle and opened stay 0 when missing or unreadable, and are written
     * below. */

    int err;
    if (rs == CV_ENOTFOUND && rn == CV_ENOTFOUND) {
        if ((err = cv__meta_put(t, "shard", s->shard)) < 0 ||
            (err = cv__meta_put(t, "shards", s->shards)) < 0 ||
            (err = cv__meta_put(t, "schema", CV_VOTES_SCHEMA)) < 0)
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
    if (schema < CV_VOTES_SCHEMA) {
        /* Older schemas lack only what starts empty: trends and histories
         * (schema 1), frozen standings and the created index (schema 2). */
        if ((err = cv__meta_put(t, "schema", CV_VOTES_SCHEMA)) < 0)
            return err;
        cv_log(CV_LOG_INFO, "msg=\"store upgraded\" from_schema=%llu to_schema=%d",
               (unsigned long long)schema, CV_VOTES_SCHEMA);
    }
    if (cycle == 0) {
        cycle = 1;
        if ((err = cv__meta_put(t, "cycle", cycle)) < 0)
            return err;
    }
    if (ro < 0 || opened == 0) {
        /* A new store, or one from before cycle starts were recorded: the
         * open cycle's trending window starts now. */
        opened = cv__shard_now(s);
        if ((err = cv__meta_put(t, "opened_ms", opened)) < 0)
            return err;
    }
    s->cycle = cycle;
    s->opened_ms = opened;
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
    s->half_life_ms = CV_SHARD_HALF_LIFE_MS;
    s->index_batch = CV_SHARD_INDEX_BATCH;
    if (cv__overlay_init(s) < 0) {
        cv__overlay_free(s);
        free(s);
        return CV_ENOMEM;
    }
    s->store = cv_store_open(dir, cv_shard_tables, CV_SHARD_NTABLES, durability, map_bytes);
    if (!s->store) {
        cv__overlay_free(s);
        free(s);
        return CV_EIO;
    }
    open_arg_t arg = {dir, why, whylen};
    int rc = cv__shard_write_txn(s, meta_init, &arg);
    if (rc == 0) {
        /* Whatever the log holds was acknowledged: index it now. */
        s->ov_stale = 1;
        rc = cv__overlay_settle(s);
    }
    if (rc < 0) {
        cv_store_close(&s->store);
        cv__overlay_free(s);
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
    if (cv__overlay_settle(s) < 0)
        cv_log(CV_LOG_ERROR, "msg=\"indexing the vote log at close failed; it is replayed at "
                             "the next open\"");
    if (s->durability == CV_DURABLE_OS && cv_store_sync(s->store) < 0)
        cv_log(CV_LOG_ERROR, "msg=\"final sync failed\"");
    cv_store_close(&s->store);
    cv__overlay_free(s);
    free(s);
    *shard_p = NULL;
}

uint64_t cv_shard_cycle(const cv_shard_t *s)
{
    return s->cycle;
}

uint64_t cv_shard_opened_ms(const cv_shard_t *s)
{
    return s->opened_ms;
}

void cv_shard_set_half_life(cv_shard_t *s, uint64_t ms)
{
    assert(ms > 0);
    s->half_life_ms = ms;
}

void cv_shard_set_clock(cv_shard_t *s, uint64_t (*now_ms)(void))
{
    s->now_ms = now_ms;
}

int cv_shard_set_index_batch(cv_shard_t *s, size_t votes)
{
    s->index_batch = votes;
    return cv__overlay_settle(s);
}

int cv_shard_idle(cv_shard_t *s)
{
    return cv__overlay_settle(s);
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
    if (!store) {
        fprintf(stderr, "canvass-tally: cannot open the store in %s\n", dir);
        return NULL;
    }
    /* A shard killed with votes in its log: index them as its restart
     * would, so that the tables the tools read hold every acknowledged
     * vote.  (Safe beside a running shard too: LMDB serializes the writes
     * and indexing the same log twice writes the same records.) */
    cv_txn_t *t = NULL;
    uint64_t shard = 0, shards = 0;
    size_t logged = 0;
    if (cv_store_begin(store, 1, &t) == 0) {
        logged = cv_store_count(t, CV_SHARD_LOG);
        if (logged && (cv__meta_get(t, "shard", &shard) < 0 ||
                       cv__meta_get(t, "shards", &shards) < 0 || shards == 0))
            logged = 0;
        cv_store_abort(&t);
    }
    if (!logged)
        return store;
    cv_store_close(&store);
    cv_shard_t *s = NULL;
    char why[512] = "";
    int rc = cv_shard_open(dir, (uint32_t)shard, (uint32_t)shards, CV_DURABLE_FSYNC, 0, &s, why,
                           sizeof why);
    if (rc < 0) {
        fprintf(stderr, "canvass-tally: cannot replay the vote log in %s: %s %s\n", dir,
                cv_strerror(rc), why);
        return NULL;
    }
    cv_shard_close(&s);
    return cv_store_open(dir, cv_shard_tables, CV_SHARD_NTABLES, CV_DURABLE_OS, 0);
}

/* ---- acks ---------------------------------------------------------------- */

/* Stands in for an error text that could not be allocated. */
static char ack_error_oom[] = "error text lost: out of memory";

/* Frees what an ack owns: its error text and its redirect target (which
 * its feature_id then also points to). */
static void ack_strings_free(Canvass__V1__ShardAck *a)
{
    if (a->error && a->error != protobuf_c_empty_string && a->error != ack_error_oom)
        free(a->error);
    a->error = (char *)protobuf_c_empty_string;
    if (a->redirect_to && a->redirect_to != protobuf_c_empty_string)
        free(a->redirect_to);
    a->redirect_to = (char *)protobuf_c_empty_string;
}

/* Refuses one command: sets its status and error text.  Returns 0, as the
 * command is done and the group goes on. */
__attribute__((format(printf, 3, 4))) static int ack_fail(Canvass__V1__ShardAck *a,
                                                          cv_status_t status, const char *fmt, ...)
{
    char *text = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&text, fmt, ap);
    va_end(ap);
    if (a->error && a->error != protobuf_c_empty_string && a->error != ack_error_oom)
        free(a->error);
    a->status = status;
    a->error = n < 0 ? ack_error_oom : text;
    return 0;
}

/* ---- commands ------------------------------------------------------------ */

/* Sets *open when the feature takes votes; otherwise fills the ack with
 * NOT_FOUND, CLOSED or, for a merged feature, the redirect.  Returns 0 or a
 * store error. */
static int feature_gate(cv_txn_t *t, const char *id, size_t idlen, Canvass__V1__ShardAck *a,
                        int *open)
{
    Canvass__V1__FeatureRecord *f = NULL;
    *open = 0;
    int rc = cv__feature_get(t, id, idlen, &f);
    if (rc == CV_ENOTFOUND)
        return ack_fail(a, CV_ST_NOT_FOUND, "no feature '%s'", id);
    if (rc == CV_EDECODE)
        return ack_fail(a, CV_ST_INTERNAL, "the record of feature '%s' is unreadable", id);
    if (rc < 0)
        return rc;
    if (!strcmp(f->status, "shipped") || !strcmp(f->status, "declined")) {
        ack_fail(a, CV_ST_CLOSED, "feature '%s' is %s", id, f->status);
    } else if (!strcmp(f->status, "merged")) {
        /* The vote belongs to the merge target (A7), which may live on
         * another shard: the sender re-routes it there, same stamp. */
        if (!f->merged_into || !*f->merged_into) {
            ack_fail(a, CV_ST_INTERNAL, "feature '%s' is merged but names no target", id);
        } else if (!(a->redirect_to = strdup(f->merged_into))) {
            a->redirect_to = (char *)protobuf_c_empty_string;
            rc = CV_ENOMEM;
        } else {
            a->feature_id = a->redirect_to;
        }
    } else {
        *open = 1;
    }
    canvass__v1__feature_record__free_unpacked(f, NULL);
    return rc;
}

void cv__trend_step(cv_shard_t *s, cv_trend_t *tr, int found, const cv_vote_rec_t *old,
                    const cv_vote_rec_t *next, uint64_t now, uint64_t half_life_ms)
{
    if (!found || tr->cycle != s->cycle)
        *tr = (cv_trend_t){.cycle = s->cycle, .base_ms = s->opened_ms};
    /* A stamp from a clock running ahead would weigh more than a vote cast
     * now, and a vote can have been cast no later than now. */
    uint64_t vote_ms = cv_stamp_ms(next->stamp);
    if (vote_ms > now)
        vote_ms = now;
    cv_trend_add(tr, old, next, vote_ms, half_life_ms);
}

/* Adds a vote's change to the feature's gains of the open cycle. */
static int trend_follow(cv_shard_t *s, cv_txn_t *t, const char *id, size_t idlen,
                        const cv_vote_rec_t *old, const cv_vote_rec_t *next, uint64_t now)
{
    cv_trend_t tr;
    int rc = cv__trend_get(t, id, idlen, &tr);
    if (rc < 0 && rc != CV_ENOTFOUND)
        return rc;
    cv__trend_step(s, &tr, rc == 0, old, next, now, s->half_life_ms);
    return trend_put(t, id, idlen, &tr);
}

static int apply_vote(cv_shard_t *s, cv_txn_t *t, uint64_t stamp, uint64_t now,
                      const Canvass__V1__Vote *v, Canvass__V1__ShardAck *a)
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

    int open = 0, rc = 0;
    cv__ov_feature_t *f = s->logging ? cv__overlay_feature(s, id, idlen) : NULL;
    if (s->logging && !f)
        return CV_ENOMEM;
    if (!f || !f->open) { /* the overlay remembers open features, not others */
        rc = feature_gate(t, id, idlen, a, &open);
        if (rc < 0 || !open)
            return rc;
        if (f)
            f->open = 1;
    }

    uint8_t key[CV_VOTE_KEY_MAX];
    size_t klen;
    if (cv_vote_key_make(id, idlen, v->user_id, strlen(v->user_id), key, &klen) < 0)
        return ack_fail(a, CV_ST_INVALID, "vote key for feature '%s' is too long", id);

    cv_vote_rec_t old, next = {(int8_t)v->value, (uint8_t)cv_tier_parse(v->tier), stamp};
    if (s->logging) {
        int changed;
        rc = cv__overlay_vote(s, t, now, id, idlen, key, klen, &next, &changed);
        if (rc == CV_EDECODE)
            return ack_fail(a, CV_ST_INTERNAL, "the stored vote on feature '%s' is unreadable", id);
        a->changed = changed;
        return rc;
    }
    const cv_vote_rec_t *oldp = NULL;
    const void *val;
    size_t vlen;
    rc = cv_store_get(t, CV_SHARD_VOTES, key, klen, &val, &vlen);
    if (rc == 0) {
        if (cv_vote_rec_decode(val, vlen, &old) < 0) {
            cv_log(CV_LOG_ERROR, "msg=\"unreadable vote record\" feature=%s len=%zu", id, vlen);
            return ack_fail(a, CV_ST_INTERNAL, "the stored vote on feature '%s' is unreadable", id);
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
        if ((rc = cv__counts_get(t, id, idlen, &c)) < 0)
            return rc;
        if (cv_counts_move(&c, oldp, &next) < 0)
            cv_log(CV_LOG_ERROR,
                   "msg=\"counters were out of step with the votes (run --check)\" feature=%s", id);
        if ((rc = cv__counts_put(t, id, idlen, &c)) < 0)
            return rc;
        if ((rc = trend_follow(s, t, id, idlen, oldp, &next, now)) < 0)
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
    /* ingest creates every feature open; a create that names another status
     * (tools, tests) must name a real one, and a merge target must be a
     * feature id, or later votes would be redirected to garbage.  Unknown
     * fields the sender carried are not stored. */
    rec.base.n_unknown_fields = 0;
    rec.base.unknown_fields = NULL;
    if (!rec.status || !*rec.status)
        rec.status = (char *)"open";
    static const char *const statuses[] = {"open", "planned", "in_progress", "shipped",
                                           "declined", "merged"};
    size_t k = 0;
    while (k < sizeof statuses / sizeof *statuses && strcmp(rec.status, statuses[k]))
        k++;
    if (k == sizeof statuses / sizeof *statuses)
        return ack_fail(a, CV_ST_INVALID, "create of '%s' has an unknown status", id);
    if (!strcmp(rec.status, "merged") &&
        !(rec.merged_into && cv_feature_id_valid(rec.merged_into, strlen(rec.merged_into))))
        return ack_fail(a, CV_ST_INVALID, "create of '%s' is merged into no valid feature", id);
    if (!rec.created_ms)
        rec.created_ms = stamp ? cv_stamp_ms(stamp) : cv__shard_now(s);
    /* The history starts with the creation, whatever the sender put there. */
    Canvass__V1__StatusChange created = CANVASS__V1__STATUS_CHANGE__INIT;
    Canvass__V1__StatusChange *history[1] = {&created};
    created.status = rec.status;
    created.at_ms = rec.created_ms;
    created.release = rec.release;
    created.merged_into = rec.merged_into;
    rec.n_history = 1;
    rec.history = history;
    if ((rc = feature_put(t, &rec, NULL)) < 0)
        return rc;
    cv_counts_t zero = {0};
    if ((rc = cv__counts_put(t, id, idlen, &zero)) < 0)
        return rc;
    /* Indexed in the same transaction: announced if and only if created. */
    if ((rc = cv__created_index(t, stamp, id, idlen)) < 0)
        return rc;
    a->changed = 1;
    return 0;
}

static int apply_cmd(cv_shard_t *s, cv_txn_t *t, uint64_t now, const Canvass__V1__ShardCmd *cmd,
                     Canvass__V1__ShardAck *a)
{
    switch (cmd->op_case) {
    case CANVASS__V1__SHARD_CMD__OP_VOTE:
        return apply_vote(s, t, cmd->stamp, now, cmd->vote, a);
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

/* A rerun after growing the map starts from clean acks and replies. */
static void job_reset(cv_shard_job_t *job)
{
    if (!job->batch) {
        cv__reply_clear(job->reply);
        return;
    }
    for (size_t i = 0; i < job->batch->n_cmds; i++) {
        Canvass__V1__ShardAck *a = &job->acks[i];
        ack_strings_free(a);
        canvass__v1__shard_ack__init(a);
        a->seq = job->batch->cmds[i]->seq;
        job->ack_ptrs[i] = a;
    }
}

static int apply_change(cv_shard_t *s, cv_txn_t *t, cv_shard_job_t *job)
{
    const Canvass__V1__TallyRequest *req = job->change;
    switch (req->op_case) {
    case CANVASS__V1__TALLY_REQUEST__OP_SET_STATUS:
        return cv__shard_set_status(s, t, req->set_status, job->reply);
    case CANVASS__V1__TALLY_REQUEST__OP_MERGE_OUT:
        return cv__shard_merge_out(s, t, req->merge_out, job->reply);
    case CANVASS__V1__TALLY_REQUEST__OP_MERGE_IN:
        return cv__shard_merge_in(s, t, req->merge_in, job->reply);
    default:
        return cv__reply_fail(job->reply, CV_ST_INTERNAL, "TallyRequest op %d is not a change",
                              (int)req->op_case);
    }
}

static int group_body(cv_shard_t *s, cv_txn_t *t, void *arg)
{
    group_t *g = arg;
    /* One time for the whole group: its trends and status changes agree. */
    uint64_t now = cv__shard_now(s);
    for (size_t j = 0; j < g->njobs; j++)
        job_reset(&g->jobs[j]);
    int rc;
    if (s->logging && (rc = cv__overlay_group_begin(s, t)) < 0)
        return rc;
    for (size_t j = 0; j < g->njobs; j++) {
        cv_shard_job_t *job = &g->jobs[j];
        rc = 0;
        if (!job->batch)
            rc = apply_change(s, t, job);
        for (size_t i = 0; job->batch && i < job->batch->n_cmds && rc == 0; i++)
            rc = apply_cmd(s, t, now, job->batch->cmds[i], &job->acks[i]);
        if (rc < 0)
            return rc;
    }
    return s->logging ? cv__overlay_group_end(s, t) : 0;
}

int cv_shard_apply(cv_shard_t *s, cv_shard_job_t *jobs, size_t njobs)
{
    int changes = 0;
    for (size_t j = 0; j < njobs; j++) {
        cv_shard_job_t *job = &jobs[j];
        assert(job->batch || job->change); /* the caller's job, not the peer's */
        if (!job->batch) {
            if (!(job->reply = cv__reply_new(job->change->corr)))
                return CV_ENOMEM;
            changes = 1;
            continue;
        }
        size_t n = job->batch->n_cmds;
        /* calloc: NULL string pointers are safe for ack_strings_free(). */
        job->acks = calloc(n ? n : 1, sizeof *job->acks);
        job->ack_ptrs = calloc(n ? n : 1, sizeof *job->ack_ptrs);
        if (!job->acks || !job->ack_ptrs)
            return CV_ENOMEM;
    }
    /* Status changes and merges read and write votes and counters in the
     * tables: they run on a settled overlay, straight to the tables. */
    int rc;
    s->logging = s->index_batch > 0 && !changes;
    if (!s->logging && (rc = cv__overlay_settle(s)) < 0)
        return rc;
    group_t g = {jobs, njobs};
    rc = cv__shard_write_txn(s, group_body, &g);
    if (s->logging && rc == 0) {
        cv__overlay_group_committed(s);
        cv__overlay_after_group(s);
    }
    s->logging = 0;
    return rc;
}

void cv_shard_job_release(cv_shard_job_t *job)
{
    if (job->acks)
        for (size_t i = 0; i < job->batch->n_cmds; i++)
            ack_strings_free(&job->acks[i]);
    free(job->acks);
    free(job->ack_ptrs);
    job->acks = NULL;
    job->ack_ptrs = NULL;
    cv_shard_reply_destroy(&job->reply);
}
