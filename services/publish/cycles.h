/* cycles: the release cycles publish owns (DESIGN A5, A6, B1).
 *
 * Exactly one cycle is open at a time, numbered from 1.  Closing it asks
 * every tally shard to close it (CloseCycle.opened_at_ms = the close
 * instant, when the next cycle and its trending window open), ranks the
 * standings they report, stores the ranked list under the cycle's number
 * for good, opens the next cycle and broadcasts the list on the PUB socket
 * as "ranked" + RankedList.  The list is stored in score order with every
 * entry's trend and created_ms, so any order can be pulled later
 * (cv_rank.h).  It is packed once, at the close: the bytes stored, broadcast
 * and later served for that cycle are the same bytes.  The lists pulled are
 * served from lists.h, which keeps the latest ones packed and indexed.
 *
 * The cycle state (open cycle, when it opened, when it is due to close) and
 * every closed cycle's list live in the store of history.h; a close commits
 * its list and the new state in one transaction.
 *
 * The schedule: a close is due at due_ms.  A due time that passed while
 * publish was down is honoured at start (a late close, which records the due
 * time as scheduled_at_ms and the real time as closed_at_ms), unless the
 * schedule text changed meanwhile.  A scheduled close that fails is retried
 * every PUB_CLOSE_RETRY_MS; the cycle stays open until one succeeds.  A
 * manual close leaves a future due time alone but replaces an overdue one,
 * so the schedule then moves on from the manual close.
 *
 * Not thread-safe; closes never overlap because everything runs on the one
 * thread that calls these functions.
 */
#ifndef PUB_CYCLES_H
#define PUB_CYCLES_H

#include "cv_bus.h"
#include "cv_codec.h"
#include "cv_rank.h"
#include "cv_sched.h"
#include "history.h"
#include "lists.h"
#include "shards.h"

#include <stddef.h>
#include <stdint.h>

#define PUB_CLOSE_RETRY_MS 3000

typedef struct {
    const char *data_dir;
    const char *schedule_text; /* borrowed; what sched was parsed from */
    cv_sched_t sched;
    double weights[CV_TIERS];
    long shard_timeout_ms;
} pub_cycles_config_t;

typedef struct pub_cycles pub_cycles_t;

/* Opens the store in cfg->data_dir (which must exist), loads or initialises
 * the meta (cycle 1 opens now on a fresh store) and works out when the next
 * close is due.  shards and pub are borrowed and must outlive the object.
 * Returns NULL on failure (logged). */
pub_cycles_t *pub_cycles_new(const pub_cycles_config_t *cfg, pub_shards_t *shards, cv_sock_t *pub);

/* Closes the store; safe on NULL and twice; nulls *c_p. */
void pub_cycles_destroy(pub_cycles_t **c_p);

/* The open cycle's number and opening time. */
uint64_t pub_cycles_open_cycle(const pub_cycles_t *c);
uint64_t pub_cycles_opened_at(const pub_cycles_t *c);

/* When the schedule next closes the open cycle; 0 when manual. */
uint64_t pub_cycles_due_ms(const pub_cycles_t *c);

/* The store (borrowed, valid until pub_cycles_destroy), for the other
 * tables it holds (pending merges). */
pub_history_t *pub_cycles_history(pub_cycles_t *c);

/* Runs a scheduled close if one is due (retrying a failed one at most every
 * PUB_CLOSE_RETRY_MS).  First, once after each close (and after a start),
 * it prepares what the next close needs from the latest list
 * (pub_lists_prepare: tens of ms at 100 000 features, taken here rather than
 * from the next close).  Returns how many ms may pass before it needs to run
 * again, at most 60000, or -1 when nothing is scheduled. */
long pub_cycles_tick(pub_cycles_t *c);

/* Closes the open cycle now.  scheduled_at_ms is the due time of a scheduled
 * close, 0 for a manual one.  Returns CV_ST_OK and fills *info (state
 * "closed"; its strings are static), or a status with the reason in err,
 * e.g. UNAVAILABLE "shard 1 did not answer within 5000 ms"; the cycle then
 * stays open and nothing is stored. */
cv_status_t pub_cycles_close(pub_cycles_t *c, uint64_t scheduled_at_ms,
                             Canvass__V1__CycleInfo *info, char *err, size_t errlen);

/* A ranked list to answer a pull with: the packed RankedList, cut to its
 * first `limit` entries, as three byte ranges to send one after the other.
 * They are borrowed, valid until pub_cycles_ranked_release() and at most
 * until the next call on the cycles. */
typedef struct {
    const uint8_t *part[3];
    size_t size[3];
    pub_list_t own; /* a live list's bytes: private */
} pub_ranked_t;

/* Closed cycle `cycle` in `order`, or, with cycle 0, the open cycle ranked
 * now from every shard's live standings (cycle = the open cycle,
 * closed_at_ms 0, scheduled_at_ms = the due time, 0 when manual; prev_rank
 * from the latest closed list in the same order).  Limit 0 or at least the
 * list's length leaves it whole: a closed list in score order is then
 * exactly the stored (and broadcast) bytes.  total_votes always counts the
 * whole list.  Returns CV_ST_OK and *out (release it), or:
 *   NOT_FOUND "cycle N is not closed"
 *   INTERNAL "the list of cycle N is undecodable", or a storage error
 *   for the live list, the errors of pub_cycles_close() */
cv_status_t pub_cycles_ranked(pub_cycles_t *c, uint64_t cycle, cv_rank_order_t order,
                              uint32_t limit, pub_ranked_t *out, char *err, size_t errlen);

/* Frees what a ranked list owns; safe twice. */
void pub_cycles_ranked_release(pub_ranked_t *r);

/* Every closed cycle in order, then the open one (state "open", closed_at_ms
 * 0, scheduled_at_ms = its due time or 0, no entries).  *infos is a new array
 * of *n entries the caller frees with free(); its strings are static.  The
 * closed cycles' summaries are read from the store once and then kept
 * (closed lists never change).  Returns CV_ST_OK or INTERNAL. */
cv_status_t pub_cycles_list(pub_cycles_t *c, Canvass__V1__CycleInfo **infos, size_t *n, char *err,
                            size_t errlen);

/* Feature id's rank, score, up and down in every closed cycle whose stored
 * list ranked it, oldest first: *ranks is a new array of *n entries the
 * caller frees with free() (NULL when *n is 0).  A stored list that cannot
 * be read is logged and skipped.  Returns CV_ST_OK, or INTERNAL with the
 * reason in err. */
cv_status_t pub_cycles_feature_ranks(pub_cycles_t *c, const char *id,
                                     Canvass__V1__CycleRank **ranks, size_t *n, char *err,
                                     size_t errlen);

/* Feature id's rank and score in the live list in score order (as
 * pub_cycles_ranked builds it); both 0 when the list does not rank it.
 * Errors as for the live list. */
cv_status_t pub_cycles_live_rank(pub_cycles_t *c, const char *id, uint32_t *rank, double *score,
                                 char *err, size_t errlen);

#endif
