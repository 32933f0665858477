/* created: the index of created features and its query (see shard.h and,
 * for the layout and why index stamps are raised, cv_votes.h).
 *
 * An entry is written by the transaction that creates the feature, so the
 * index never lists a feature that is not stored and never misses one that
 * is.  The query reads index entries after a stamp and the record each
 * names, in one read transaction.
 */
#include "cv_err.h"
#include "cv_log.h"
#include "shard_priv.h"

#include <string.h>

int cv__created_index(cv_txn_t *t, uint64_t stamp, const char *id, size_t idlen)
{
    uint64_t last = 0;
    int rc = cv__meta_get(t, "created_last", &last);
    if (rc == CV_EDECODE)
        cv_log(CV_LOG_ERROR, "msg=\"unreadable meta created_last: counting from 0\"");
    else if (rc < 0 && rc != CV_ENOTFOUND)
        return rc;
    /* Commit order, not stamp order (cv_votes.h): every index stamp is
     * greater than all before it.  UINT64_MAX, 2^42 ms after 1970 in the
     * stamp's clock, is never reached by a real clock; should a damaged
     * meta hold it, entries share it rather than wrap to 0. */
    if (stamp <= last && last < UINT64_MAX)
        stamp = last + 1;
    uint8_t key[CV_CREATED_KEY_MAX];
    size_t klen;
    if ((rc = cv_created_key_make(stamp, id, idlen, key, &klen)) < 0)
        return rc;
    /* A value of length 0: the key says everything. */
    if ((rc = cv_store_put(t, CV_SHARD_CREATED, key, klen, "", 0)) < 0)
        return rc;
    return stamp > last ? cv__meta_put(t, "created_last", stamp) : 0;
}

typedef struct {
    cv_txn_t *txn;
    cv_shard_reply_t *r;
    uint64_t after; /* only index stamps greater than this */
    size_t limit, n;
    uint64_t last; /* index stamp of the last entry taken or skipped */
    int more;
    int rc; /* a store error that stopped the walk */
} created_walk_t;

static int created_visit(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    created_walk_t *w = arg;
    uint64_t stamp;
    const char *id;
    size_t idlen;
    if (cv_created_key_split(key, klen, &stamp, &id, &idlen) < 0) {
        cv_log(CV_LOG_ERROR, "msg=\"malformed created index key skipped\" len=%zu", klen);
        return 0;
    }
    if (stamp <= w->after)
        return 0; /* the walk starts at after itself */
    if (w->n == w->limit) {
        w->more = 1;
        return 1;
    }
    Canvass__V1__FeatureRecord *rec = NULL;
    int rc = cv__feature_get(w->txn, id, idlen, &rec);
    if (rc == CV_ENOTFOUND || rc == CV_EDECODE) {
        /* Only damage makes either (--check reports it); the rest of the
         * page is still worth announcing. */
        cv_log(CV_LOG_ERROR, "msg=\"created index names an unreadable feature\" feature=%.*s",
               (int)idlen, id);
        w->last = stamp; /* so that the reader does not come back to it */
        return 0;
    }
    if (rc == 0)
        rc = cv__reply_add_created(w->r, &rec);
    if (rc < 0) {
        w->rc = rc;
        return 1;
    }
    w->n++;
    w->last = stamp;
    return 0;
}

int cv__shard_answer_created(cv_txn_t *t, const Canvass__V1__CreatedQuery *q, cv_shard_reply_t *r)
{
    created_walk_t w = {.txn = t, .r = r, .after = q->after, .last = q->after};
    w.limit = q->limit == 0                     ? CV_SHARD_CREATED_LIMIT
              : q->limit > CV_SHARD_CREATED_MAX ? CV_SHARD_CREATED_MAX
                                                : q->limit;
    if (q->after < UINT64_MAX) {
        uint8_t from[CV_BE64_SIZE];
        cv_be64_encode(q->after + 1, from);
        int rc = cv_store_iter(t, CV_SHARD_CREATED, from, sizeof from, created_visit, &w);
        if (rc < 0)
            return rc;
        if (w.rc < 0)
            return w.rc;
    }
    cv__reply_created(r, w.last, w.more);
    return 0;
}
