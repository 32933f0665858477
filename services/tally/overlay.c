/* overlay: the shard's vote log and the in-memory overlay of logged votes
 * (docs/STORAGE.md, "Vote log").
 *
 * A vote with a random (feature, user) key dirties its own 4 KiB page of
 * the votes B-tree, and writing those pages is what bounded a shard's group
 * commit (docs/PERFORMANCE.md).  So a group of votes is committed as one
 * record appended to the `log` table -- the group's votes, key and new vote
 * record each, in the order applied -- which costs a few contiguous pages
 * however many votes it holds.  What the votes change is kept in memory:
 * `ov_votes` maps each logged key to its newest record and `ov_features`
 * each touched feature to its counters and trend.  Decisions read the
 * overlay first and the tables second, so they are the same as if every
 * vote had been written to the tables.
 *
 * Indexing.  Once the overlay holds index_batch votes (or, in a larger
 * store, a share of its stored votes: shard.h) it is frozen: its
 * features are sorted by id (each feature lists its votes through their
 * entries), and each following group also writes the next chunk of them --
 * whole features in key order, each one's votes sorted, with its counters
 * and trend as of the freeze -- to the tables in its own transaction,
 * while new votes gather in a fresh active overlay.  The
 * group that writes the last chunk also deletes the frozen generation's
 * log records.  So the work of indexing is spread over the groups instead
 * of stalling one of them, and neighbouring keys share their pages.
 * Lookups read the active overlay, then the frozen one, then the tables.
 * A full settle (cv__overlay_settle) writes everything left of both and
 * empties the log in one transaction; it runs before anything reads
 * votes, counters or trends from the tables (a close, standings, a feature
 * or voters query, a status change or merge, closing the store), when the
 * shard is idle, and when the active overlay fills again before the frozen
 * one is written.
 *
 * Why a crash at any point loses nothing and counts nothing twice: a
 * feature's votes, counters and trends reach the tables together, and the
 * log keeps every record until all of them are in the tables.  Replaying a
 * frozen record of a feature already written finds the same or a newer
 * stamp stored and changes nothing (cv_vote_decide: stale); the active
 * records after it apply to exactly the state they were applied to.
 *
 * Replaying the log (at open, or after a group that did not commit left
 * the overlay ahead of the store) applies its records in key order against
 * the tables, which are exactly as they were when the records were first
 * applied, with the time and half-life each record carries: the same
 * decisions, the same counters, the same trends.
 *
 * Log record: a header of now_ms, half_life_ms and cycle (uint64 LE each)
 * and a count (uint32 LE), then per vote the key length (uint16 LE), the
 * key and the CV_VOTE_REC_SIZE-byte vote record.  A group's votes are cut
 * into records of at most LOG_PIECE bytes, each complete in itself, and
 * appended under consecutive numbers: small values live in the B-tree's
 * leaves, filled in order, where one large value would need a contiguous
 * run of overflow pages, which LMDB finds by scanning its free list -- a
 * cost that grew with the store (measured: docs/PERFORMANCE.md).
 */
#include "cv_err.h"
#include "cv_log.h"
#include "shard_priv.h"

#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#define LOG_HEADER (3 * CV_U64_SIZE + 4)
#define LOG_PIECE 1800 /* bytes; under LMDB's 2 KiB limit for values kept in a leaf */

int cv__overlay_init(cv_shard_t *s)
{
    s->ov_votes = cv_kvmap_new(sizeof(cv__ov_vote_t));
    s->ov_features = cv_kvmap_new(sizeof(cv__ov_feature_t));
    s->fz_votes = cv_kvmap_new(sizeof(cv__ov_vote_t));
    s->fz_features = cv_kvmap_new(sizeof(cv__ov_feature_t));
    return s->ov_votes && s->ov_features && s->fz_votes && s->fz_features ? 0 : CV_ENOMEM;
}

void cv__overlay_free(cv_shard_t *s)
{
    cv_kvmap_destroy(&s->ov_votes);
    cv_kvmap_destroy(&s->ov_features);
    cv_kvmap_destroy(&s->fz_votes);
    cv_kvmap_destroy(&s->fz_features);
    free(s->fz_order);
    s->fz_order = NULL;
    free(s->scratch);
    s->scratch = NULL;
    s->scratch_cap = 0;
    free(s->logbuf);
    s->logbuf = NULL;
    s->loglen = s->logcap = 0;
}

static void put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int log_reserve(cv_shard_t *s, size_t more)
{
    if (s->loglen + more <= s->logcap)
        return 0;
    size_t cap = s->logcap ? s->logcap : 64 * 1024;
    while (cap < s->loglen + more)
        cap *= 2;
    uint8_t *p = realloc(s->logbuf, cap);
    if (!p)
        return CV_ENOMEM;
    s->logbuf = p;
    s->logcap = cap;
    return 0;
}

cv__ov_feature_t *cv__overlay_feature(cv_shard_t *s, const char *id, size_t idlen)
{
    void *v;
    return cv_kvmap_put(s->ov_features, id, idlen, &v) < 0 ? NULL : v;
}

/* The decision, counters and trend of one vote, shared by live groups and
 * replay.  Sets *outcome. */
static int apply(cv_shard_t *s, cv_txn_t *t, uint64_t now, uint64_t half_life_ms, const char *id,
                 size_t idlen, const uint8_t *key, size_t klen, const cv_vote_rec_t *next,
                 cv_vote_outcome_t *outcome)
{
    cv_vote_rec_t old;
    /* rec is the first member of cv__ov_vote_t */
    const cv_vote_rec_t *oldp = cv_kvmap_find(s->ov_votes, key, klen);
    if (!oldp && s->fz_n)
        oldp = cv_kvmap_find(s->fz_votes, key, klen);
    if (oldp) {
        old = *oldp;
        oldp = &old;
    } else {
        const void *val;
        size_t vlen;
        int rc = cv_store_get(t, CV_SHARD_VOTES, key, klen, &val, &vlen);
        if (rc == 0) {
            if (cv_vote_rec_decode(val, vlen, &old) < 0)
                return CV_EDECODE;
            oldp = &old;
        } else if (rc != CV_ENOTFOUND) {
            return rc;
        }
    }
    *outcome = cv_vote_decide(oldp, next);
    if (*outcome == CV_VOTE_STALE)
        return 0;
    cv__ov_feature_t *f = cv__overlay_feature(s, id, idlen);
    if (!f)
        return CV_ENOMEM;
    if (*outcome == CV_VOTE_CHANGE) {
        int rc;
        const cv__ov_feature_t *z = s->fz_n ? cv_kvmap_find(s->fz_features, id, idlen) : NULL;
        if (!f->counts_have && z && z->counts_have) {
            f->counts = z->counts;
            f->counts_have = 1;
        }
        if (!f->trend_have && z && z->trend_have) {
            f->trend = z->trend;
            f->trend_have = 1;
        }
        if (!f->counts_have) {
            if ((rc = cv__counts_get(t, id, idlen, &f->counts)) < 0)
                return rc;
            f->counts_have = 1;
        }
        if (cv_counts_move(&f->counts, oldp, next) < 0)
            cv_log(CV_LOG_ERROR,
                   "msg=\"counters were out of step with the votes (run --check)\" feature=%.*s",
                   (int)idlen, id);
        int found = 1;
        if (!f->trend_have) {
            rc = cv__trend_get(t, id, idlen, &f->trend);
            if (rc < 0 && rc != CV_ENOTFOUND)
                return rc;
            found = rc == 0;
            f->trend_have = 1;
        }
        cv__trend_step(s, &f->trend, found, oldp, next, now, half_life_ms);
        f->dirty = 1;
    }
    void *slot;
    int added = cv_kvmap_put(s->ov_votes, key, klen, &slot);
    if (added < 0)
        return CV_ENOMEM;
    cv__ov_vote_t *v = slot;
    v->rec = *next;
    if (added) { /* f stays valid: only the votes map was added to */
        v->next = f->head;
        f->head = (uint32_t)cv_kvmap_count(s->ov_votes);
        f->nvotes++;
    }
    return 0;
}

int cv__overlay_vote(cv_shard_t *s, cv_txn_t *t, uint64_t now, const char *id, size_t idlen,
                     const uint8_t *key, size_t klen, const cv_vote_rec_t *next, int *changed)
{
    cv_vote_outcome_t outcome;
    *changed = 0;
    s->log_now = now;
    int rc = apply(s, t, now, s->half_life_ms, id, idlen, key, klen, next, &outcome);
    if (rc == CV_EDECODE)
        cv_log(CV_LOG_ERROR, "msg=\"unreadable vote record\" feature=%.*s", (int)idlen, id);
    if (rc < 0 || outcome == CV_VOTE_STALE)
        return rc;
    *changed = outcome == CV_VOTE_CHANGE;
    if (log_reserve(s, 2 + klen + CV_VOTE_REC_SIZE) < 0)
        return CV_ENOMEM;
    uint8_t *p = s->logbuf + s->loglen;
    put_u16(p, (uint16_t)klen);
    memcpy(p + 2, key, klen);
    cv_vote_rec_encode(next, p + 2 + klen);
    s->loglen += 2 + klen + CV_VOTE_REC_SIZE;
    s->logcount++;
    return 0;
}

/* ---- replay ------------------------------------------------------------- */

typedef struct {
    cv_shard_t *s;
    cv_txn_t *t;
    uint64_t records, votes;
} replay_t;

static int replay_record(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    replay_t *r = arg;
    const uint8_t *p = val, *end = p + vlen;
    if (klen != CV_BE64_SIZE || vlen < LOG_HEADER)
        return CV_EDECODE;
    uint64_t now, half_life, cycle;
    cv_u64_decode(p, CV_U64_SIZE, &now);
    cv_u64_decode(p + CV_U64_SIZE, CV_U64_SIZE, &half_life);
    cv_u64_decode(p + 2 * CV_U64_SIZE, CV_U64_SIZE, &cycle);
    uint32_t count = get_u32(p + 3 * CV_U64_SIZE);
    if (cycle != r->s->cycle || half_life == 0)
        cv_log(CV_LOG_WARN, "msg=\"log record of another cycle replayed in the open one\" "
               "record_cycle=%llu cycle=%llu", (unsigned long long)cycle,
               (unsigned long long)r->s->cycle);
    if (half_life == 0)
        half_life = r->s->half_life_ms;
    p += LOG_HEADER;
    for (uint32_t i = 0; i < count; i++) {
        if (end - p < 2)
            return CV_EDECODE;
        size_t kl = (size_t)p[0] | (size_t)p[1] << 8;
        if ((size_t)(end - p) < 2 + kl + CV_VOTE_REC_SIZE)
            return CV_EDECODE;
        const uint8_t *vkey = p + 2;
        cv_vote_rec_t rec;
        const char *f, *u;
        size_t flen, ulen;
        if (cv_vote_key_split(vkey, kl, &f, &flen, &u, &ulen) < 0 ||
            cv_vote_rec_decode(vkey + kl, CV_VOTE_REC_SIZE, &rec) < 0)
            return CV_EDECODE;
        cv_vote_outcome_t outcome;
        int rc = apply(r->s, r->t, now, half_life, f, flen, vkey, kl, &rec, &outcome);
        if (rc < 0)
            return rc;
        p += 2 + kl + CV_VOTE_REC_SIZE;
        r->votes++;
    }
    r->s->log_seq = cv_be64_decode(key);
    r->records++;
    return 0;
}

static void frozen_drop(cv_shard_t *s)
{
    cv_kvmap_clear(s->fz_votes);
    cv_kvmap_clear(s->fz_features);
    s->fz_n = s->fz_next = s->fz_pending = 0;
    s->fz_seq = 0;
}

/* Rebuilds the overlay from the log as read in t, all of it active. */
static int replay(cv_shard_t *s, cv_txn_t *t)
{
    cv_kvmap_clear(s->ov_votes);
    cv_kvmap_clear(s->ov_features);
    frozen_drop(s);
    replay_t r = {s, t, 0, 0};
    int rc = cv_store_iter(t, CV_SHARD_LOG, NULL, 0, replay_record, &r);
    if (rc == CV_EDECODE)
        cv_log(CV_LOG_ERROR, "msg=\"unreadable vote log record\" after_seq=%llu",
               (unsigned long long)s->log_seq);
    else if (rc == 0 && r.records)
        cv_log(CV_LOG_INFO, "msg=\"vote log replayed\" records=%llu votes=%llu",
               (unsigned long long)r.records, (unsigned long long)r.votes);
    return rc;
}

int cv__overlay_group_begin(cv_shard_t *s, cv_txn_t *t)
{
    s->loglen = 0;
    s->logcount = 0;
    if (s->ov_stale) {
        int rc = replay(s, t);
        if (rc < 0)
            return rc;
    }
    s->ov_stale = 1;
    return 0;
}

/* ---- indexing ------------------------------------------------------------ */

struct cv__sorted {
    const uint8_t *key;
    size_t klen;
    const cv_vote_rec_t *rec;
};
typedef struct cv__sorted sorted_t;

static int by_key(const void *a, const void *b)
{
    const sorted_t *x = a, *y = b;
    size_t n = x->klen < y->klen ? x->klen : y->klen;
    int c = memcmp(x->key, y->key, n);
    return c ? c : (x->klen > y->klen) - (x->klen < y->klen);
}

static int feature_put(cv_txn_t *t, const void *id, size_t idlen, const cv__ov_feature_t *f)
{
    if (!f || !f->dirty)
        return 0;
    uint8_t buf[CV_TREND_REC_SIZE];
    cv_trend_encode(&f->trend, buf);
    int rc = cv__counts_put(t, id, idlen, &f->counts);
    return rc < 0 ? rc : cv_store_put(t, CV_SHARD_TRENDS, id, idlen, buf, sizeof buf);
}

static int by_feature(const void *a, const void *b, void *arg)
{
    const cv_kvmap_t *m = arg;
    const void *x, *y;
    size_t xl, yl;
    void *v;
    cv_kvmap_at(m, *(const uint32_t *)a, &x, &xl, &v);
    cv_kvmap_at(m, *(const uint32_t *)b, &y, &yl, &v);
    int c = memcmp(x, y, xl < yl ? xl : yl);
    return c ? c : (xl > yl) - (xl < yl);
}

/* The frozen features that have votes, in key order, into s->fz_order:
 * sorting the (few) features, not the (many) votes, is all a freeze costs;
 * each chunk sorts its own votes.  Returns 0 or CV_ENOMEM. */
static int order_features(cv_shard_t *s)
{
    size_t nf = cv_kvmap_count(s->fz_features), n = 0;
    uint32_t *order = malloc((nf ? nf : 1) * sizeof *order);
    if (!order)
        return CV_ENOMEM;
    for (size_t i = 0; i < nf; i++) {
        const void *id;
        size_t idlen;
        void *val;
        cv_kvmap_at(s->fz_features, i, &id, &idlen, &val);
        if (((cv__ov_feature_t *)val)->head)
            order[n++] = (uint32_t)i;
    }
    qsort_r(order, n, sizeof *order, by_feature, s->fz_features);
    free(s->fz_order);
    s->fz_order = order;
    s->fz_n = n;
    return 0;
}

/* Writes the votes of frozen features [from, to) of fz_order sorted by key,
 * each feature followed by its frozen counters and trend. */
static int frozen_write(cv_shard_t *s, cv_txn_t *t, size_t from, size_t to)
{
    int rc = 0;
    for (size_t k = from; k < to && rc == 0; k++) {
        const void *id;
        size_t idlen;
        void *val;
        cv_kvmap_at(s->fz_features, s->fz_order[k], &id, &idlen, &val);
        const cv__ov_feature_t *f = val;
        if (f->nvotes > s->scratch_cap) {
            sorted_t *p = realloc(s->scratch, f->nvotes * sizeof *p);
            if (!p)
                return CV_ENOMEM;
            s->scratch = p;
            s->scratch_cap = f->nvotes;
        }
        size_t n = 0;
        for (uint32_t e = f->head; e && n < f->nvotes; n++) {
            const void *key;
            void *v;
            cv_kvmap_at(s->fz_votes, e - 1, &key, &s->scratch[n].klen, &v);
            s->scratch[n].key = key;
            s->scratch[n].rec = &((const cv__ov_vote_t *)v)->rec;
            e = ((const cv__ov_vote_t *)v)->next;
        }
        qsort(s->scratch, n, sizeof *s->scratch, by_key);
        for (size_t i = 0; i < n && rc == 0; i++) {
            uint8_t buf[CV_VOTE_REC_SIZE];
            cv_vote_rec_encode(s->scratch[i].rec, buf);
            rc = cv_store_put(t, CV_SHARD_VOTES, s->scratch[i].key, s->scratch[i].klen, buf,
                              sizeof buf);
        }
        if (rc == 0)
            rc = feature_put(t, id, idlen, f);
    }
    return rc;
}

typedef struct {
    uint8_t (*keys)[CV_BE64_SIZE];
    size_t n, cap;
    uint64_t upto;
} logkeys_t;

static int collect_key(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    logkeys_t *k = arg;
    if (klen != CV_BE64_SIZE || cv_be64_decode(key) > k->upto)
        return 1; /* past the frozen records: stop */
    if (k->n == k->cap) {
        size_t cap = k->cap ? k->cap * 2 : 256;
        void *p = realloc(k->keys, cap * sizeof *k->keys);
        if (!p)
            return CV_ENOMEM;
        k->keys = p;
        k->cap = cap;
    }
    memcpy(k->keys[k->n++], key, CV_BE64_SIZE);
    return 0;
}

/* Deletes the log records 1..upto. */
static int log_trim(cv_txn_t *t, uint64_t upto)
{
    logkeys_t k = {.upto = upto};
    int rc = cv_store_iter(t, CV_SHARD_LOG, NULL, 0, collect_key, &k);
    if (rc == 1)
        rc = 0;
    for (size_t i = 0; i < k.n && rc == 0; i++)
        rc = cv_store_del(t, CV_SHARD_LOG, k.keys[i], CV_BE64_SIZE);
    free(k.keys);
    return rc == CV_ENOTFOUND ? 0 : rc;
}

/* After the commit of a transaction that ran frozen_chunk(). */
static void chunk_committed(cv_shard_t *s)
{
    s->fz_next = s->fz_pending;
    if (s->fz_n && s->fz_next == s->fz_n) {
        if (s->fz_seq == s->log_seq)
            s->log_seq = 0; /* the log is empty: number from 1 again */
        frozen_drop(s);
        s->votes_stored = s->votes_counted;
        malloc_trim(0); /* the grouping arrays and LMDB's dirty pages */
    }
}

/* Writes the next frozen votes, at least `budget` of them in whole
 * features, in t (a group's share: at least twice its own votes, so that
 * the frozen generation is written before the active one fills). */
static int frozen_chunk(cv_shard_t *s, cv_txn_t *t, size_t budget)
{
    s->fz_pending = s->fz_next;
    if (!s->fz_n)
        return 0;
    size_t end = s->fz_next, votes = 0;
    while (end < s->fz_n && votes < budget) { /* whole features */
        const void *id;
        size_t idlen;
        void *val;
        cv_kvmap_at(s->fz_features, s->fz_order[end++], &id, &idlen, &val);
        votes += ((const cv__ov_feature_t *)val)->nvotes;
    }
    int rc = frozen_write(s, t, s->fz_next, end);
    if (rc == 0 && end == s->fz_n) {
        rc = log_trim(t, s->fz_seq);
        s->votes_counted = cv_store_count(t, CV_SHARD_VOTES);
    }
    if (rc == 0)
        s->fz_pending = end;
    return rc;
}

int cv__overlay_group_end(cv_shard_t *s, cv_txn_t *t)
{
    int rc = frozen_chunk(s, t, 2 * (size_t)s->logcount + 256);
    s->log_pieces = 0;
    if (rc < 0 || s->loglen == 0)
        return rc; /* (and logbuf may still be NULL) */
    uint8_t piece[LOG_PIECE];
    const uint8_t *p = s->logbuf, *end = s->logbuf + s->loglen;
    while (rc == 0 && p < end) {
        size_t len = LOG_HEADER;
        uint32_t n = 0;
        while (p < end) {
            size_t one = 2 + ((size_t)p[0] | (size_t)p[1] << 8) + CV_VOTE_REC_SIZE;
            if (len + one > LOG_PIECE)
                break;
            memcpy(piece + len, p, one);
            len += one;
            p += one;
            n++;
        }
        cv_u64_encode(s->log_now, piece);
        cv_u64_encode(s->half_life_ms, piece + CV_U64_SIZE);
        cv_u64_encode(s->cycle, piece + 2 * CV_U64_SIZE);
        uint8_t *c = piece + 3 * CV_U64_SIZE;
        c[0] = (uint8_t)n;
        c[1] = (uint8_t)(n >> 8);
        c[2] = (uint8_t)(n >> 16);
        c[3] = (uint8_t)(n >> 24);
        uint8_t key[CV_BE64_SIZE];
        cv_be64_encode(s->log_seq + ++s->log_pieces, key);
        rc = cv_store_append(t, CV_SHARD_LOG, key, sizeof key, piece, len);
    }
    return rc;
}

void cv__overlay_group_committed(cv_shard_t *s)
{
    s->log_seq += s->log_pieces;
    s->log_pieces = 0;
    s->loglen = 0;
    s->logcount = 0;
    s->ov_stale = 0;
    chunk_committed(s);
}

/* How many votes the active overlay gathers before it is frozen. */
static size_t index_limit(const cv_shard_t *s)
{
    uint64_t share = s->votes_stored / CV_SHARD_INDEX_SHARE;
    if (share > CV_SHARD_INDEX_MAX)
        share = CV_SHARD_INDEX_MAX;
    return share > s->index_batch ? (size_t)share : s->index_batch;
}

/* The active overlay becomes the frozen one, its features ordered for
 * writing.  Returns 0 or CV_ENOMEM (nothing changed).  The frozen one must
 * be empty. */
static int freeze(cv_shard_t *s)
{
    cv_kvmap_t *v = s->fz_votes, *f = s->fz_features;
    s->fz_votes = s->ov_votes;
    s->fz_features = s->ov_features;
    s->ov_votes = v;
    s->ov_features = f;
    if (order_features(s) < 0) {
        s->ov_votes = s->fz_votes;
        s->ov_features = s->fz_features;
        s->fz_votes = v;
        s->fz_features = f;
        return CV_ENOMEM;
    }
    s->fz_next = s->fz_pending = 0;
    s->fz_seq = s->log_seq;
    if (!s->fz_n)
        frozen_drop(s);
    return 0;
}

void cv__overlay_after_group(cv_shard_t *s)
{
    size_t limit = index_limit(s);
    if (cv_kvmap_count(s->ov_votes) < limit && cv_kvmap_count(s->ov_features) < limit)
        return;
    if (s->fz_n || !s->index_batch) {
        /* Indexing fell behind: catch up at once.  Failing loses nothing:
         * the log stays and a later settle or the next open indexes it. */
        cv__overlay_settle(s);
        return;
    }
    freeze(s); /* out of memory: the groups go on filling the active one */
}

/* A full settle writes in transactions of about this many votes, so that
 * settling a million votes never holds a million dirty pages at once. */
#define SETTLE_CHUNK 8192

static int settle_chunk_body(cv_shard_t *s, cv_txn_t *t, void *arg)
{
    return frozen_chunk(s, t, SETTLE_CHUNK);
}

static int clear_log_body(cv_shard_t *s, cv_txn_t *t, void *arg)
{
    return cv_store_clear(t, CV_SHARD_LOG);
}

int cv__overlay_settle(cv_shard_t *s)
{
    if (!s->ov_stale && !s->fz_n && cv_kvmap_count(s->ov_votes) == 0 && s->log_seq == 0) {
        cv_kvmap_clear(s->ov_features); /* cached gates only: nothing to write */
        return 0;
    }
    int rc;
    if (s->ov_stale) { /* the overlay is rebuilt from what is committed */
        cv_txn_t *t = NULL;
        if ((rc = cv_store_begin(s->store, 1, &t)) < 0)
            return rc;
        rc = replay(s, t);
        cv_store_abort(&t);
        if (rc < 0)
            return rc;
        s->ov_stale = 0;
    }
    size_t n = cv_kvmap_count(s->ov_votes) + (s->fz_n - s->fz_next);
    /* The frozen generation first, then the active one frozen in turn:
     * each chunk is crash-safe on its own (see the top of this file). */
    while (s->fz_n || cv_kvmap_count(s->ov_votes)) {
        if (!s->fz_n && (rc = freeze(s)) < 0)
            return rc;
        if (s->fz_n) {
            if ((rc = cv__shard_write_txn(s, settle_chunk_body, NULL)) < 0)
                return rc;
            chunk_committed(s);
        }
    }
    if (s->log_seq) { /* records whose votes all changed nothing */
        if ((rc = cv__shard_write_txn(s, clear_log_body, NULL)) < 0)
            return rc;
        s->log_seq = 0;
    }
    cv_log(CV_LOG_DEBUG, "msg=\"overlay indexed\" votes=%zu", n);
    cv_kvmap_clear(s->ov_features);
    return 0;
}
