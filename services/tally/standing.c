/* standing: what a shard reports (see shard.h): the standings of every
 * feature, one feature's standing, a page of its voters, and the reply
 * object that carries any of them, or frozen standings, a page of created
 * features or a merge result, to the socket.
 *
 * A FeatureStanding points into storage its owner keeps: the unpacked
 * record, and arrays of three counts and three trends.  For the standings
 * of a whole shard those live in one array of slots; a reply has one slot
 * of its own.  Trends are evaluated when the standing is taken, from the
 * feature's gains of the requested cycle (cv_votes.h).
 */
#include "cv_err.h"
#include "cv_log.h"
#include "cv_validate.h"
#include "shard_priv.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One feature's standing and the storage its message points into. */
typedef struct {
    Canvass__V1__FeatureStanding fs;
    Canvass__V1__FeatureRecord *rec; /* unpacked, owned */
    uint64_t up[CV_TIERS], down[CV_TIERS];
    double trend[CV_TIERS];
} standing_slot_t;

/* Fills slot from the record it takes (already in slot->rec), the stored
 * counters and the gains of trend_cycle, and points the message at them. */
static int slot_fill(cv_shard_t *s, cv_txn_t *t, standing_slot_t *slot, uint64_t trend_cycle,
                     uint64_t at_ms)
{
    const char *id = slot->rec->feature_id;
    size_t idlen = strlen(id);
    cv_counts_t c;
    int rc = cv__counts_get(t, id, idlen, &c);
    if (rc < 0)
        return rc;
    cv_trend_t tr;
    rc = cv__trend_get(t, id, idlen, &tr);
    if (rc < 0 && rc != CV_ENOTFOUND)
        return rc;
    for (int i = 0; i < CV_TIERS; i++) {
        slot->up[i] = c.up[i];
        slot->down[i] = c.down[i];
        slot->trend[i] =
            rc == 0 && tr.cycle == trend_cycle ? cv_trend_at(&tr, i, at_ms, s->half_life_ms) : 0;
    }
    canvass__v1__feature_standing__init(&slot->fs);
    slot->fs.voters = c.voters;
    return 0;
}

/* Points the message at the slot's storage; only once the slot stops
 * moving. */
static void slot_link(standing_slot_t *slot)
{
    slot->fs.feature = slot->rec;
    slot->fs.n_up = CV_TIERS;
    slot->fs.up = slot->up;
    slot->fs.n_down = CV_TIERS;
    slot->fs.down = slot->down;
    slot->fs.n_trend = CV_TIERS;
    slot->fs.trend = slot->trend;
}

/* ---- standings ------------------------------------------------------------ */

struct cv_standings {
    Canvass__V1__Standings msg;
    standing_slot_t *slots;
    size_t n, cap;
    Canvass__V1__FeatureStanding **ptrs;
    /* while building */
    cv_shard_t *shard;
    cv_txn_t *txn; /* borrowed */
    uint64_t trend_cycle, at_ms;
};

static int standings_add(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    cv_standings_t *st = arg;
    Canvass__V1__FeatureRecord *rec = canvass__v1__feature_record__unpack(NULL, vlen, val);
    if (!rec) {
        cv_log(CV_LOG_ERROR,
               "msg=\"unreadable feature record left out of standings\" "
               "feature=%.*s len=%zu",
               (int)klen, (const char *)key, vlen);
        return 0;
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
    slot->rec = rec; /* owned by the slot from here, freed with the standings */
    return slot_fill(st->shard, st->txn, slot, st->trend_cycle, st->at_ms);
}

int cv__standings_build(cv_shard_t *s, cv_txn_t *t, uint64_t trend_cycle, uint64_t at_ms,
                        uint64_t open_cycle, cv_standings_t **out)
{
    cv_standings_t *st = calloc(1, sizeof *st);
    if (!st)
        return CV_ENOMEM;
    st->shard = s;
    st->txn = t;
    st->trend_cycle = trend_cycle;
    st->at_ms = at_ms;
    int rc = cv_store_iter(t, CV_SHARD_FEATURES, NULL, 0, standings_add, st);
    st->txn = NULL;
    if (rc == 0 && !(st->ptrs = calloc(st->n ? st->n : 1, sizeof *st->ptrs)))
        rc = CV_ENOMEM;
    if (rc < 0) {
        cv_standings_destroy(&st);
        return rc;
    }
    for (size_t i = 0; i < st->n; i++) {
        slot_link(&st->slots[i]);
        st->ptrs[i] = &st->slots[i].fs;
    }
    canvass__v1__standings__init(&st->msg);
    st->msg.shard = s->shard;
    st->msg.cycle = open_cycle;
    st->msg.n_features = st->n;
    st->msg.features = st->ptrs;
    st->msg.at_ms = st->at_ms;
    *out = st;
    return 0;
}

int cv_shard_standings(cv_shard_t *s, cv_standings_t **out)
{
    int rc = cv__overlay_settle(s);
    if (rc < 0)
        return rc;
    cv_txn_t *t = NULL;
    rc = cv_store_begin(s->store, 1, &t);
    if (rc < 0)
        return rc;
    rc = cv__standings_build(s, t, s->cycle, cv__shard_now(s), s->cycle, out);
    cv_store_abort(&t);
    return rc;
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

/* ---- replies -------------------------------------------------------------- */

struct cv_shard_reply {
    Canvass__V1__TallyReply msg;
    char *error;                    /* owned; msg.error points here when set */
    cv_standings_t *standings;      /* standings / close */
    Canvass__V1__Standings *frozen; /* a repeated close: unpacked, owned */
    standing_slot_t standing;       /* feature / set_status; rec owned */
    Canvass__V1__CreatedPage created;
    Canvass__V1__FeatureRecord **records; /* the created page's, unpacked, owned */
    size_t nrecords, caprecords;
    Canvass__V1__MergeResult merge;
    Canvass__V1__VoterPage page;
    Canvass__V1__Voter *voters; /* merge_out votes or a voters page */
    Canvass__V1__Voter **voter_ptrs;
    size_t nvoters, capvoters;
    char *src, *dst, *next_after; /* owned copies */
};

static void reply_init_msg(cv_shard_reply_t *r, uint64_t corr)
{
    canvass__v1__tally_reply__init(&r->msg);
    r->msg.corr = corr;
}

cv_shard_reply_t *cv__reply_new(uint64_t corr)
{
    cv_shard_reply_t *r = calloc(1, sizeof *r);
    if (r)
        reply_init_msg(r, corr);
    return r;
}

void cv__reply_clear(cv_shard_reply_t *r)
{
    uint64_t corr = r->msg.corr;
    free(r->error);
    cv_standings_destroy(&r->standings);
    if (r->frozen)
        canvass__v1__standings__free_unpacked(r->frozen, NULL);
    for (size_t i = 0; i < r->nrecords; i++)
        canvass__v1__feature_record__free_unpacked(r->records[i], NULL);
    free(r->records);
    if (r->standing.rec)
        canvass__v1__feature_record__free_unpacked(r->standing.rec, NULL);
    for (size_t i = 0; i < r->nvoters; i++)
        free(r->voters[i].user_id);
    free(r->voters);
    free(r->voter_ptrs);
    free(r->src);
    free(r->dst);
    free(r->next_after);
    memset(r, 0, sizeof *r);
    reply_init_msg(r, corr);
}

const Canvass__V1__TallyReply *cv_shard_reply_msg(const cv_shard_reply_t *r)
{
    return &r->msg;
}

void cv_shard_reply_destroy(cv_shard_reply_t **r_p)
{
    if (!r_p || !*r_p)
        return;
    cv__reply_clear(*r_p);
    free(*r_p);
    *r_p = NULL;
}

int cv__reply_fail(cv_shard_reply_t *r, cv_status_t status, const char *fmt, ...)
{
    char *text = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&text, fmt, ap);
    va_end(ap);
    free(r->error);
    r->error = n < 0 ? NULL : text;
    r->msg.status = status;
    r->msg.error = r->error ? r->error : (char *)"error text lost: out of memory";
    r->msg.result_case = CANVASS__V1__TALLY_REPLY__RESULT__NOT_SET;
    return 0;
}

int cv__reply_standing(cv_shard_t *s, cv_txn_t *t, cv_shard_reply_t *r,
                       Canvass__V1__FeatureRecord **rec_p, uint64_t trend_cycle, uint64_t at_ms)
{
    if (r->standing.rec)
        canvass__v1__feature_record__free_unpacked(r->standing.rec, NULL);
    r->standing.rec = *rec_p;
    *rec_p = NULL;
    int rc = slot_fill(s, t, &r->standing, trend_cycle, at_ms);
    if (rc < 0)
        return rc;
    slot_link(&r->standing);
    r->msg.result_case = CANVASS__V1__TALLY_REPLY__RESULT_FEATURE;
    r->msg.feature = &r->standing.fs;
    return 0;
}

void cv__reply_standings(cv_shard_reply_t *r, cv_standings_t **st_p)
{
    cv_standings_destroy(&r->standings);
    r->standings = *st_p;
    *st_p = NULL;
    r->msg.result_case = CANVASS__V1__TALLY_REPLY__RESULT_STANDINGS;
    r->msg.standings = &r->standings->msg;
}

void cv__reply_frozen(cv_shard_reply_t *r, Canvass__V1__Standings **msg_p)
{
    if (r->frozen)
        canvass__v1__standings__free_unpacked(r->frozen, NULL);
    r->frozen = *msg_p;
    *msg_p = NULL;
    r->msg.result_case = CANVASS__V1__TALLY_REPLY__RESULT_STANDINGS;
    r->msg.standings = r->frozen;
}

int cv__reply_add_created(cv_shard_reply_t *r, Canvass__V1__FeatureRecord **rec_p)
{
    if (r->nrecords == r->caprecords) {
        size_t cap = r->caprecords ? r->caprecords * 2 : 16;
        Canvass__V1__FeatureRecord **p = realloc(r->records, cap * sizeof *p);
        if (!p) {
            canvass__v1__feature_record__free_unpacked(*rec_p, NULL);
            *rec_p = NULL;
            return CV_ENOMEM;
        }
        r->records = p;
        r->caprecords = cap;
    }
    r->records[r->nrecords++] = *rec_p;
    *rec_p = NULL;
    return 0;
}

void cv__reply_created(cv_shard_reply_t *r, uint64_t last, int more)
{
    canvass__v1__created_page__init(&r->created);
    r->created.n_features = r->nrecords;
    r->created.features = r->records;
    r->created.last = last;
    r->created.more = more != 0;
    r->msg.result_case = CANVASS__V1__TALLY_REPLY__RESULT_CREATED;
    r->msg.created = &r->created;
}

/* Points the voter pointers at the voters (after the array stops moving). */
static void voters_link(cv_shard_reply_t *r)
{
    for (size_t i = 0; i < r->nvoters; i++)
        r->voter_ptrs[i] = &r->voters[i];
}

int cv__reply_add_voter(cv_shard_reply_t *r, const char *user, size_t ulen,
                        const cv_vote_rec_t *rec)
{
    if (r->nvoters == r->capvoters) {
        size_t cap = r->capvoters ? r->capvoters * 2 : 16;
        Canvass__V1__Voter *v = realloc(r->voters, cap * sizeof *v);
        if (!v)
            return CV_ENOMEM;
        r->voters = v;
        Canvass__V1__Voter **p = realloc(r->voter_ptrs, cap * sizeof *p);
        if (!p)
            return CV_ENOMEM;
        r->voter_ptrs = p;
        r->capvoters = cap;
    }
    Canvass__V1__Voter *v = &r->voters[r->nvoters];
    canvass__v1__voter__init(v);
    if (!(v->user_id = strndup(user, ulen)))
        return CV_ENOMEM;
    v->value = rec->value;
    v->tier = (char *)cv_tier_name(rec->tier); /* static */
    v->stamp = rec->stamp;
    r->nvoters++;
    return 0;
}

int cv__reply_merge(cv_shard_reply_t *r, const char *src, const char *dst, uint64_t moved,
                    uint64_t kept)
{
    free(r->src);
    free(r->dst);
    r->src = strdup(src);
    r->dst = strdup(dst);
    if (!r->src || !r->dst)
        return CV_ENOMEM;
    voters_link(r);
    canvass__v1__merge_result__init(&r->merge);
    r->merge.src = r->src;
    r->merge.dst = r->dst;
    r->merge.moved = moved;
    r->merge.kept = kept;
    r->merge.n_votes = r->nvoters;
    r->merge.votes = r->voter_ptrs;
    r->msg.result_case = CANVASS__V1__TALLY_REPLY__RESULT_MERGE;
    r->msg.merge = &r->merge;
    return 0;
}

/* ---- queries -------------------------------------------------------------- */

/* Checks a feature id field of a request; fills r with INVALID when bad. */
int cv__id_ok(cv_shard_reply_t *r, const char *field, const char *id)
{
    if (cv_feature_id_valid(id, strlen(id)))
        return 1;
    cv__reply_fail(r, CV_ST_INVALID, "%s must be 1-%d bytes of [A-Za-z0-9_-]", field,
                   CV_FEATURE_ID_MAX);
    return 0;
}

/* Reads the feature a request is about; fills r with NOT_FOUND or INTERNAL
 * when it cannot be had.  Returns 0 (see *rec) or a store error. */
int cv__reply_feature(cv_txn_t *t, cv_shard_reply_t *r, const char *id,
                         Canvass__V1__FeatureRecord **rec)
{
    *rec = NULL;
    int rc = cv__feature_get(t, id, strlen(id), rec);
    if (rc == CV_ENOTFOUND)
        return cv__reply_fail(r, CV_ST_NOT_FOUND, "no feature '%s'", id);
    if (rc == CV_EDECODE)
        return cv__reply_fail(r, CV_ST_INTERNAL, "the record of feature '%s' is unreadable", id);
    return rc;
}

static int answer_feature(cv_shard_t *s, cv_txn_t *t, const Canvass__V1__FeatureQuery *q,
                          cv_shard_reply_t *r)
{
    if (!cv__id_ok(r, "feature.feature_id", q->feature_id))
        return 0;
    Canvass__V1__FeatureRecord *rec;
    int rc = cv__reply_feature(t, r, q->feature_id, &rec);
    if (rc < 0 || !rec)
        return rc;
    return cv__reply_standing(s, t, r, &rec, s->cycle, cv__shard_now(s));
}

typedef struct {
    cv_shard_reply_t *r;
    const char *id, *after;
    size_t idlen, alen;
    size_t limit;
    int more; /* a non-zero vote remains past the page */
} voters_walk_t;

static int voters_visit(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    voters_walk_t *w = arg;
    const char *f, *u;
    size_t flen, ulen;
    if (cv_vote_key_split(key, klen, &f, &flen, &u, &ulen) < 0 || flen != w->idlen ||
        memcmp(f, w->id, flen) != 0)
        return 1; /* past the feature's votes */
    if (ulen == w->alen && memcmp(u, w->after, ulen) == 0)
        return 0; /* the page starts after this user */
    cv_vote_rec_t rec;
    if (cv_vote_rec_decode(val, vlen, &rec) < 0) {
        cv_log(CV_LOG_ERROR, "msg=\"unreadable vote record left out of voters\" feature=%s", w->id);
        return 0;
    }
    if (rec.value == 0)
        return 0;
    if (w->r->nvoters == w->limit) {
        w->more = 1;
        return 1;
    }
    return cv__reply_add_voter(w->r, u, ulen, &rec);
}

static int answer_voters(cv_shard_t *s, cv_txn_t *t, const Canvass__V1__VotersQuery *q,
                         cv_shard_reply_t *r)
{
    if (!cv__id_ok(r, "voters.feature_id", q->feature_id))
        return 0;
    size_t alen = strlen(q->after);
    if (alen > CV_USER_ID_MAX)
        return cv__reply_fail(r, CV_ST_INVALID, "voters.after must be at most %d bytes",
                              CV_USER_ID_MAX);
    Canvass__V1__FeatureRecord *rec;
    int rc = cv__reply_feature(t, r, q->feature_id, &rec);
    if (rc < 0 || !rec)
        return rc;
    canvass__v1__feature_record__free_unpacked(rec, NULL);

    voters_walk_t w = {.r = r, .id = q->feature_id, .after = q->after, .alen = alen};
    w.idlen = strlen(w.id);
    w.limit = q->limit == 0                    ? CV_SHARD_VOTERS_LIMIT
              : q->limit > CV_SHARD_VOTERS_MAX ? CV_SHARD_VOTERS_MAX
                                               : q->limit;
    /* The first key of the page: "feature\0after" ("feature\0" from the
     * start); votes keys sort by user within a feature. */
    uint8_t from[CV_VOTE_KEY_MAX];
    memcpy(from, w.id, w.idlen);
    from[w.idlen] = '\0';
    memcpy(from + w.idlen + 1, q->after, alen);
    rc = cv_store_iter(t, CV_SHARD_VOTES, from, w.idlen + 1 + alen, voters_visit, &w);
    if (rc < 0)
        return rc;

    cv_counts_t c;
    if ((rc = cv__counts_get(t, w.id, w.idlen, &c)) < 0)
        return rc;
    if (!(r->src = strdup(w.id)))
        return CV_ENOMEM;
    if (w.more && !(r->next_after = strdup(r->voters[r->nvoters - 1].user_id)))
        return CV_ENOMEM;
    voters_link(r);
    canvass__v1__voter_page__init(&r->page);
    r->page.feature_id = r->src;
    r->page.n_voters = r->nvoters;
    r->page.voters = r->voter_ptrs;
    if (r->next_after)
        r->page.next_after = r->next_after;
    r->page.total = c.voters;
    r->msg.result_case = CANVASS__V1__TALLY_REPLY__RESULT_VOTERS;
    r->msg.voters = &r->page;
    return 0;
}

/* The live standings, as of one read transaction. */
static int answer_standings(cv_shard_t *s, cv_shard_reply_t *r)
{
    cv_standings_t *st = NULL;
    int rc = cv_shard_standings(s, &st);
    if (rc < 0)
        return rc;
    cv__reply_standings(r, &st);
    return 0;
}

int cv_shard_answer(cv_shard_t *s, const Canvass__V1__TallyRequest *req, cv_shard_reply_t **out)
{
    int op = req->op_case;
    if (op != CANVASS__V1__TALLY_REQUEST__OP_CLOSE &&
        op != CANVASS__V1__TALLY_REQUEST__OP_STANDINGS &&
        op != CANVASS__V1__TALLY_REQUEST__OP_FEATURE &&
        op != CANVASS__V1__TALLY_REQUEST__OP_VOTERS && op != CANVASS__V1__TALLY_REQUEST__OP_CREATED)
        return CV_EINVAL;
    /* Everything but the created index reads votes, counters or trends. */
    int rc;
    if (op != CANVASS__V1__TALLY_REQUEST__OP_CREATED && (rc = cv__overlay_settle(s)) < 0)
        return rc;
    cv_shard_reply_t *r = cv__reply_new(req->corr);
    if (!r)
        return CV_ENOMEM;
    if (op == CANVASS__V1__TALLY_REQUEST__OP_CLOSE) {
        rc = cv__shard_answer_close(s, req->close, r);
    } else if (op == CANVASS__V1__TALLY_REQUEST__OP_STANDINGS) {
        rc = answer_standings(s, r);
    } else {
        cv_txn_t *t = NULL;
        rc = cv_store_begin(s->store, 1, &t);
        if (rc == 0 && op == CANVASS__V1__TALLY_REQUEST__OP_FEATURE)
            rc = answer_feature(s, t, req->feature, r);
        else if (rc == 0 && op == CANVASS__V1__TALLY_REQUEST__OP_VOTERS)
            rc = answer_voters(s, t, req->voters, r);
        else if (rc == 0)
            rc = cv__shard_answer_created(t, req->created, r);
        cv_store_abort(&t);
    }
    if (rc < 0) {
        cv_shard_reply_destroy(&r);
        return rc;
    }
    *out = r;
    return 0;
}
