/* closing: closing a release cycle on a tally shard, and the standings
 * frozen at each close (see shard.h).
 *
 * Closing the open cycle N is one write transaction: it takes the standings
 * (every feature, with the trend of N as of now), packs them, stores the
 * bytes in `closed` under N, drops the entries of cycles before
 * N - CV_SHARD_CLOSED_KEEP + 1, and moves meta "cycle" and "opened_ms" on to
 * N+1.  Taking the standings inside the transaction that opens N+1 is what
 * makes them the standings "at that instant" (A5): no vote can commit
 * between the two.  The standings answered are the ones stored; a later
 * close of N finds N already closed and answers the stored bytes unpacked,
 * which pack again to the same bytes (protobuf-c writes fields in a fixed
 * order), whatever was voted since.
 */
#include "cv_err.h"
#include "cv_log.h"
#include "shard_priv.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    uint64_t cycle;           /* the cycle being closed */
    uint64_t next, opened_ms; /* the cycle it opens, and when */
    uint64_t at_ms;           /* when the standings are taken */
    cv_standings_t *st;       /* out: the standings stored */
} close_arg_t;

typedef struct {
    uint64_t below;     /* collect cycles < below */
    uint64_t found[16]; /* cycles to delete */
    size_t n;
} prune_t;

static int prune_visit(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    prune_t *p = arg;
    if (klen != CV_BE64_SIZE) {
        cv_log(CV_LOG_WARN, "msg=\"malformed key in closed table ignored\" len=%zu", klen);
        return 0;
    }
    uint64_t cycle = cv_be64_decode(key);
    if (cycle >= p->below)
        return 1;
    p->found[p->n++] = cycle;
    return p->n == sizeof p->found / sizeof p->found[0];
}

/* Deletes the frozen standings of every cycle before `below`. */
static int closed_prune(cv_txn_t *t, uint64_t below)
{
    for (;;) {
        prune_t p = {.below = below};
        int rc = cv_store_iter(t, CV_SHARD_CLOSED, NULL, 0, prune_visit, &p);
        if (rc < 0)
            return rc;
        for (size_t i = 0; i < p.n; i++) {
            uint8_t key[CV_BE64_SIZE];
            cv_be64_encode(p.found[i], key);
            if ((rc = cv_store_del(t, CV_SHARD_CLOSED, key, sizeof key)) < 0)
                return rc;
        }
        if (p.n < sizeof p.found / sizeof p.found[0])
            return 0;
    }
}

static int close_body(cv_shard_t *s, cv_txn_t *t, void *argp)
{
    close_arg_t *a = argp;
    cv_standings_destroy(&a->st); /* a run again after the map grew */
    /* The trend of the cycle that was open: a close of a later cycle than
     * the open one (publish ahead of this shard) still reports the votes
     * this shard gathered. */
    int rc = cv__standings_build(s, t, s->cycle, a->at_ms, a->next, &a->st);
    if (rc < 0)
        return rc;
    size_t len;
    uint8_t *buf = cv_codec_pack(&cv_standings_msg(a->st)->base, &len);
    if (!buf)
        return CV_ENOMEM;
    uint8_t key[CV_BE64_SIZE];
    cv_be64_encode(a->cycle, key);
    rc = cv_store_put(t, CV_SHARD_CLOSED, key, sizeof key, buf, len);
    free(buf);
    if (rc == 0 && a->cycle >= CV_SHARD_CLOSED_KEEP)
        rc = closed_prune(t, a->cycle - CV_SHARD_CLOSED_KEEP + 1);
    if (rc == 0)
        rc = cv__meta_put(t, "cycle", a->next);
    if (rc == 0)
        rc = cv__meta_put(t, "opened_ms", a->opened_ms);
    return rc;
}

/* Closes `cycle` when it is the open one or a later one, storing its
 * standings; *st (when not NULL) gets them, or NULL when the cycle was
 * already closed.  Returns 0 or a store error (nothing changed). */
static int close_open(cv_shard_t *s, uint64_t cycle, uint64_t opened_at_ms, cv_standings_t **st)
{
    /* The logged votes belong to the cycle being closed. */
    int rc = cv__overlay_settle(s);
    if (rc < 0)
        return rc;
    uint64_t now = cv__shard_now(s);
    close_arg_t a = {.cycle = cycle,
                     .next = cycle == UINT64_MAX ? cycle : cycle + 1,
                     .opened_ms = opened_at_ms ? opened_at_ms : now,
                     .at_ms = now};
    if (st)
        *st = NULL;
    if (a.next <= s->cycle)
        return 0; /* already closed */
    rc = cv__shard_write_txn(s, close_body, &a);
    if (rc < 0) {
        cv_standings_destroy(&a.st);
        return rc;
    }
    cv_log(CV_LOG_INFO, "msg=\"cycle closed\" closed=%llu open=%llu opened_ms=%llu features=%zu",
           (unsigned long long)cycle, (unsigned long long)a.next, (unsigned long long)a.opened_ms,
           cv_standings_msg(a.st)->n_features);
    s->cycle = a.next;
    s->opened_ms = a.opened_ms;
    if (st)
        *st = a.st;
    else
        cv_standings_destroy(&a.st);
    return 0;
}

int cv_shard_close_cycle(cv_shard_t *s, uint64_t cycle, uint64_t opened_at_ms)
{
    return close_open(s, cycle, opened_at_ms, NULL);
}

/* Reads the standings frozen at the close of `cycle`.  Returns 0 and sets
 * *msg (unpacked, the caller's), CV_ENOTFOUND (none stored, or unreadable:
 * logged), CV_ENOMEM or CV_EIO. */
static int frozen_get(cv_shard_t *s, uint64_t cycle, Canvass__V1__Standings **msg)
{
    cv_txn_t *t = NULL;
    int rc = cv_store_begin(s->store, 1, &t);
    if (rc < 0)
        return rc;
    uint8_t key[CV_BE64_SIZE];
    cv_be64_encode(cycle, key);
    const void *val;
    size_t vlen;
    rc = cv_store_get(t, CV_SHARD_CLOSED, key, sizeof key, &val, &vlen);
    if (rc == 0 && !(*msg = canvass__v1__standings__unpack(NULL, vlen, val))) {
        /* protobuf-c also fails this way when out of memory; either way
         * the close is answered, with the current standings. */
        cv_log(CV_LOG_ERROR, "msg=\"unreadable frozen standings\" cycle=%llu len=%zu",
               (unsigned long long)cycle, vlen);
        rc = CV_ENOTFOUND;
    }
    cv_store_abort(&t);
    return rc;
}

int cv__shard_answer_close(cv_shard_t *s, const Canvass__V1__CloseCycle *req, cv_shard_reply_t *r)
{
    cv_standings_t *st = NULL;
    int rc = close_open(s, req->cycle, req->opened_at_ms, &st);
    if (rc < 0)
        return cv__reply_fail(r, CV_ST_INTERNAL, "closing cycle %llu failed: %s",
                              (unsigned long long)req->cycle, cv_strerror(rc));
    if (st) {
        cv__reply_standings(r, &st);
        return 0;
    }

    Canvass__V1__Standings *frozen = NULL;
    rc = frozen_get(s, req->cycle, &frozen);
    if (rc == 0) {
        cv_log(CV_LOG_INFO, "msg=\"cycle closed again: answered its frozen standings\" cycle=%llu",
               (unsigned long long)req->cycle);
        cv__reply_frozen(r, &frozen);
        return 0;
    }
    if (rc != CV_ENOTFOUND)
        return rc;
    /* Closed long ago or before frozen standings were kept: the best left
     * is now, with the trend of that cycle (none, once votes moved on). */
    cv_log(CV_LOG_WARN,
           "msg=\"cycle closed again but its standings were not kept: answering the current "
           "ones\" cycle=%llu open=%llu",
           (unsigned long long)req->cycle, (unsigned long long)s->cycle);
    cv_txn_t *t = NULL;
    if ((rc = cv_store_begin(s->store, 1, &t)) < 0)
        return rc;
    rc = cv__standings_build(s, t, req->cycle, cv__shard_now(s), s->cycle, &st);
    cv_store_abort(&t);
    if (rc < 0)
        return rc;
    cv__reply_standings(r, &st);
    return 0;
}
