/* shard_priv: what the files of the shard module share, and nothing else
 * should use.  The module is split by concern:
 *   shard.c      open and meta, write transactions, groups, votes, creates;
 *   closing.c    closing a cycle and the standings frozen at each close;
 *   created.c    the created index and its query;
 *   standing.c   standings, the reply object, the feature and voters queries;
 *   lifecycle.c  status changes and the two merge steps;
 *   overlay.c    the vote log and the overlay of logged votes.
 * shard.h is the spec of the whole module.
 */
#ifndef TALLY_SHARD_PRIV_H
#define TALLY_SHARD_PRIV_H

#include "cv_votes.h"
#include "kvmap.h"
#include "shard.h"

#include <stddef.h>
#include <stdint.h>

struct cv_shard {
    cv_store_t *store;
    cv_durability_t durability;
    uint32_t shard, shards;
    uint64_t cycle;        /* the open cycle, as committed in meta */
    uint64_t opened_ms;    /* when it opened, as committed in meta */
    uint64_t half_life_ms; /* trending half-life, > 0 */
    uint64_t (*now_ms)(void);

    /* The vote log (overlay.c); index_batch 0 = no log, votes written to
     * the tables in their group. */
    size_t index_batch;      /* index the overlay once it holds this many */
    uint64_t votes_stored;   /* entries of the votes table when last counted */
    uint64_t votes_counted;  /* the count taken in the running transaction */
    cv_kvmap_t *ov_votes;    /* votes key -> cv__ov_vote_t, logged, not indexed */
    cv_kvmap_t *ov_features; /* feature id -> cv__ov_feature_t */
    cv_kvmap_t *fz_votes;    /* the frozen generation, being indexed chunk by */
    cv_kvmap_t *fz_features; /* chunk with the groups (overlay.c) */
    uint32_t *fz_order;      /* fz_features entries with votes, by feature id */
    size_t fz_n, fz_next;    /* entries in fz_order, the first not indexed */
    struct cv__sorted *scratch; /* one chunk's votes, sorted for writing */
    size_t scratch_cap;
    size_t fz_pending;       /* fz_next once the running group commits */
    uint64_t fz_seq;         /* log records up to this one are the frozen ones */
    uint8_t *logbuf;         /* the running group's logged votes */
    size_t loglen, logcap;
    uint32_t logcount;       /* votes in logbuf */
    uint64_t log_now;        /* the running group's time */
    uint64_t log_pieces;     /* records the running group appended */
    uint64_t log_seq;        /* key of the last committed log record */
    int ov_stale;            /* a group ran but did not commit: rebuild */
    int logging;             /* the running group goes through the log */
};

/* ---- vote log and overlay (overlay.c) -------------------------------------- */

/* What the overlay knows of one feature: whether it takes votes (read once
 * from its record) and its counters and trend, loaded from the store on the
 * first vote that changes them and written back when the overlay is
 * indexed.  Its votes in the same overlay form a list through their
 * entries (cv__ov_vote_t.next), so that a generation can be written one
 * feature at a time without sorting all of it. */
typedef struct {
    cv_vote_rec_t rec;
    uint32_t next; /* entry number + 1 of the feature's next vote; 0 ends */
} cv__ov_vote_t;

typedef struct {
    uint32_t head;       /* entry number + 1 of its first vote; 0: none */
    uint32_t nvotes;     /* votes in that list */
    uint8_t open;        /* the feature exists and takes votes */
    uint8_t counts_have; /* counts holds the feature's counters */
    uint8_t trend_have;  /* trend holds its trend of the open cycle */
    uint8_t dirty;       /* counts and trend differ from the tables */
    cv_counts_t counts;
    cv_trend_t trend;
} cv__ov_feature_t;

/* Allocates the overlay maps.  Returns 0 or CV_ENOMEM. */
int cv__overlay_init(cv_shard_t *s);
void cv__overlay_free(cv_shard_t *s);

/* Starts a logged group in t: rebuilds the overlay from the log when an
 * earlier group did not commit, and empties the log record.  Returns 0, a
 * store error or CV_ENOMEM. */
int cv__overlay_group_begin(cv_shard_t *s, cv_txn_t *t);

/* Applies one vote through the overlay: decides it against the overlay or
 * the votes table, moves the feature's counters and trend, keeps the new
 * record and appends it to the group's log record.  The caller has checked
 * the feature takes votes.  Sets *changed.  Returns 0, a store error or
 * CV_ENOMEM. */
int cv__overlay_vote(cv_shard_t *s, cv_txn_t *t, uint64_t now, const char *id, size_t idlen,
                     const uint8_t *key, size_t klen, const cv_vote_rec_t *next, int *changed);

/* The feature's overlay entry, added when missing; NULL when out of memory.
 * Valid until the next vote applied. */
cv__ov_feature_t *cv__overlay_feature(cv_shard_t *s, const char *id, size_t idlen);

/* Stores the group's log record in t.  Returns 0, CV_EFULL or CV_EIO. */
int cv__overlay_group_end(cv_shard_t *s, cv_txn_t *t);

/* After the group's commit: the overlay holds it for good. */
void cv__overlay_group_committed(cv_shard_t *s);

/* After a committed logged group: freezes a full overlay for indexing, or
 * settles when indexing fell behind. */
void cv__overlay_after_group(cv_shard_t *s);

/* Writes the overlay (frozen and active) into the tables and empties the
 * log, in one transaction; then empties the overlay.  Every reader of
 * votes, counters or trends calls it first.  Returns 0 or a store error. */
int cv__overlay_settle(cv_shard_t *s);

/* Adds to tr (started for s's open cycle) the change old -> next of a vote
 * made at vote_ms, with the given half-life. */
void cv__trend_step(cv_shard_t *s, cv_trend_t *tr, int found, const cv_vote_rec_t *old,
                    const cv_vote_rec_t *next, uint64_t now, uint64_t half_life_ms);

/* ---- store helpers (shard.c) ---------------------------------------------- */

typedef int (*cv__txn_body_fn)(cv_shard_t *s, cv_txn_t *t, void *arg);

/* Runs body in a write transaction and commits; grows the map and runs body
 * again from scratch when the map fills.  Returns 0, body's own error,
 * CV_EIO or CV_ENOMEM; on failure nothing of the transaction is stored. */
int cv__shard_write_txn(cv_shard_t *s, cv__txn_body_fn body, void *arg);

/* Reads / writes a uint64 of `meta`.  get returns 0, CV_ENOTFOUND,
 * CV_EDECODE (not CV_U64_SIZE bytes) or CV_EIO; put 0, CV_EFULL or
 * CV_EIO. */
int cv__meta_get(cv_txn_t *t, const char *name, uint64_t *v);
int cv__meta_put(cv_txn_t *t, const char *name, uint64_t v);

/* Reads a feature's counters; a missing or unreadable record reads as zero
 * (logged: only damage makes one, and --check reports it).  Returns 0 or
 * CV_EIO. */
int cv__counts_get(cv_txn_t *t, const char *id, size_t idlen, cv_counts_t *c);
int cv__counts_put(cv_txn_t *t, const char *id, size_t idlen, const cv_counts_t *c);

/* Reads a feature's trend record.  Returns 0 and sets *tr, CV_ENOTFOUND
 * (also for an unreadable record, which is logged: it then counts as no
 * gain) or CV_EIO. */
int cv__trend_get(cv_txn_t *t, const char *id, size_t idlen, cv_trend_t *tr);

/* Reads and unpacks a feature record.  Returns 0 and sets *out (free with
 * canvass__v1__feature_record__free_unpacked), CV_ENOTFOUND, CV_EDECODE
 * (an unreadable record, logged) or CV_EIO. */
int cv__feature_get(cv_txn_t *t, const char *id, size_t idlen, Canvass__V1__FeatureRecord **out);

/* Stores `rec` changed to status / release / merged_into with a history
 * entry {status, at_ms, release, merged_into} appended, and, when after is
 * not NULL, sets *after to the stored record, unpacked (the caller's).
 * Every argument is borrowed.  Returns 0, CV_ENOMEM, CV_EFULL or CV_EIO. */
int cv__feature_change(cv_txn_t *t, const Canvass__V1__FeatureRecord *rec, const char *status,
                       const char *release, const char *merged_into, uint64_t at_ms,
                       Canvass__V1__FeatureRecord **after);

/* The shard's wall clock (cv_now_ms unless a test replaced it). */
uint64_t cv__shard_now(const cv_shard_t *s);

/* ---- standings and replies (standing.c) ----------------------------------- */

/* Builds the standings of every feature as read in t (read or write), with
 * the trends of trend_cycle as of at_ms, and Standings.cycle = open_cycle.
 * Returns 0 and sets *out, or CV_EIO / CV_ENOMEM. */
int cv__standings_build(cv_shard_t *s, cv_txn_t *t, uint64_t trend_cycle, uint64_t at_ms,
                        uint64_t open_cycle, cv_standings_t **out);

/* A new reply with status OK and no result; NULL when out of memory. */
cv_shard_reply_t *cv__reply_new(uint64_t corr);

/* Drops the reply's status, error and result (a group run again after the
 * map grew starts from scratch); keeps corr. */
void cv__reply_clear(cv_shard_reply_t *r);

/* Sets the status and error text.  Returns 0 (the request is answered). */
int cv__reply_fail(cv_shard_reply_t *r, cv_status_t status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Makes the reply's result the standing of the feature *rec_p (taking the
 * record, even on failure, and nulling *rec_p): its counters, and its trend
 * in cycle trend_cycle as of at_ms.  Returns 0, CV_EIO or CV_ENOMEM. */
int cv__reply_standing(cv_shard_t *s, cv_txn_t *t, cv_shard_reply_t *r,
                       Canvass__V1__FeatureRecord **rec_p, uint64_t trend_cycle, uint64_t at_ms);

/* Appends a Voter (user bytes copied) to the reply's voter list.  Returns 0
 * or CV_ENOMEM. */
int cv__reply_add_voter(cv_shard_reply_t *r, const char *user, size_t ulen,
                        const cv_vote_rec_t *rec);

/* Makes the reply's result the standings *st_p (taking them and nulling
 * *st_p). */
void cv__reply_standings(cv_shard_reply_t *r, cv_standings_t **st_p);

/* Makes the reply's result the unpacked Standings *msg_p (taking it, freed
 * with canvass__v1__standings__free_unpacked, and nulling *msg_p). */
void cv__reply_frozen(cv_shard_reply_t *r, Canvass__V1__Standings **msg_p);

/* Appends the unpacked record *rec_p to the reply's created page (taking
 * it, even on failure, and nulling *rec_p).  Returns 0 or CV_ENOMEM. */
int cv__reply_add_created(cv_shard_reply_t *r, Canvass__V1__FeatureRecord **rec_p);

/* Makes the reply's result a CreatedPage of the records added so far. */
void cv__reply_created(cv_shard_reply_t *r, uint64_t last, int more);

/* Makes the reply's result a MergeResult of src, dst (copied), the counts
 * and the voter list.  Returns 0 or CV_ENOMEM. */
int cv__reply_merge(cv_shard_reply_t *r, const char *src, const char *dst, uint64_t moved,
                    uint64_t kept);

/* ---- cycles (closing.c) and the created index (created.c) ------------------ */

/* Answers CloseCycle *req into r (see cv_shard_answer).  Returns 0 or a
 * store error. */
int cv__shard_answer_close(cv_shard_t *s, const Canvass__V1__CloseCycle *req, cv_shard_reply_t *r);

/* Lists feature id in the created index, in the creating transaction, under
 * the index stamp that creation stamp `stamp` gets (cv_votes.h), and moves
 * meta "created_last".  Returns 0, CV_EINVAL (a bad id, a bug: the caller
 * checked it), CV_EFULL or CV_EIO. */
int cv__created_index(cv_txn_t *t, uint64_t stamp, const char *id, size_t idlen);

/* Answers CreatedQuery *q from t into r (see cv_shard_answer).  Returns 0 or
 * a store error. */
int cv__shard_answer_created(cv_txn_t *t, const Canvass__V1__CreatedQuery *q, cv_shard_reply_t *r);

/* ---- changes (lifecycle.c) ------------------------------------------------ */

/* Apply one change request in the group's transaction, writing its outcome
 * into r.  Return 0 or a store error (which fails the group). */
int cv__shard_set_status(cv_shard_t *s, cv_txn_t *t, const Canvass__V1__SetStatus *req,
                         cv_shard_reply_t *r);
int cv__shard_merge_out(cv_shard_t *s, cv_txn_t *t, const Canvass__V1__MergeOut *req,
                        cv_shard_reply_t *r);
int cv__shard_merge_in(cv_shard_t *s, cv_txn_t *t, const Canvass__V1__MergeIn *req,
                       cv_shard_reply_t *r);

/* standing.c: shared checks of the requests about one feature. */
int cv__id_ok(cv_shard_reply_t *r, const char *field, const char *id);
int cv__reply_feature(cv_txn_t *t, cv_shard_reply_t *r, const char *id,
                      Canvass__V1__FeatureRecord **rec);

#endif
