/* merges: merging a duplicate feature into another, across shards (DESIGN
 * A7; proto MergeOut / MergeIn).
 *
 * Merging SRC into DST takes two steps on (possibly) two shards: MergeOut
 * to SRC's shard marks SRC merged into DST and returns every vote SRC holds;
 * MergeIn to DST's shard gives DST each of those votes that DST does not
 * already hold a vote of its own for.  Each step is idempotent on its shard,
 * so the whole merge can be run again from the start at any point.  To make
 * a merge interrupted anywhere (publish killed, a shard down) complete by
 * itself, it is recorded in publish's store before the first step and the
 * record deleted after the last (history.h, table merges).  Every pending
 * record is run again from the start PUB_MERGE_START_DELAY_MS after publish
 * starts (time for subscribers to reconnect to the PUB socket and see the
 * event), and then every PUB_MERGE_RETRY_MS while any remain (backing off to PUB_MERGE_RETRY_MAX_MS
 * while a shard stays silent); running `merge SRC DST` again does the same
 * at once.
 *
 * While a merge is pending, its two features take part in no other merge:
 * a second merge touching SRC, or taking DST away, would move votes into a
 * feature that is itself being emptied.
 *
 * Not thread-safe: runs on publish's one thread, between closes.
 */
#ifndef PUB_MERGES_H
#define PUB_MERGES_H

#include "cv_bus.h"
#include "history.h"
#include "shards.h"

#include <stddef.h>
#include <stdint.h>

#define PUB_MERGE_START_DELAY_MS 1000
#define PUB_MERGE_RETRY_MS 5000
#define PUB_MERGE_RETRY_MAX_MS 60000

typedef struct pub_merges pub_merges_t;

/* history, shards and pub are borrowed and must outlive the object;
 * timeout_ms bounds each step's wait for its shard.  Counts the pending
 * merges, which pub_merges_tick() runs once the start delay is over.  NULL
 * on failure (logged). */
pub_merges_t *pub_merges_new(pub_history_t *history, pub_shards_t *shards, cv_sock_t *pub,
                             long timeout_ms);

/* Frees the object (pending records stay stored); safe on NULL and twice;
 * nulls *m_p. */
void pub_merges_destroy(pub_merges_t **m_p);

/* Merges src into dst (the REP action feature_merge) and returns the packed
 * AdminReply (NULL only when out of memory), with at_ms the time recorded in
 * SRC's status history.  Replies:
 *   OK merge = {src, dst, moved, kept}: moved = SRC's votes DST took, kept =
 *     users who had voted on both (DST's vote kept).  A merge already
 *     complete answers OK with moved = kept = 0; a pending one is run from
 *     the start and answers what this run moved (0 for votes an earlier run
 *     moved).  When the merge completes, "feature" + FeatureEvent{kind
 *     "merged", feature_id SRC, merged_into DST, status "merged", voters =
 *     SRC's users with a non-zero vote, at_ms, title} is broadcast, once.
 *   INVALID "bad feature id 'x' (1-64 bytes of [A-Za-z0-9_-])"
 *   INVALID "cannot merge feature 'A' into itself"
 *   NOT_FOUND "no feature 'A'" (either side)
 *   INVALID "feature 'A' was already merged into 'C'"
 *   INVALID "feature 'B' is merged and cannot take votes" (also shipped,
 *     declined)
 *   INVALID "a merge of 'A' into 'C' is pending; it completes first"
 *   UNAVAILABLE "shard 1 did not answer within 5000 ms; nothing was
 *     merged" (while checking the two features: nothing recorded)
 *   UNAVAILABLE "shard 1 did not answer within 5000 ms; the merge will
 *     complete when it is run again" (during the steps: the merge stays
 *     pending and also completes by itself once the shard answers)
 *   UNAVAILABLE "shard 1 answered UNAVAILABLE: <its error>" + either
 *     suffix
 *   INTERNAL "cannot record the merge: <reason>" (nothing was done), or a
 *     shard's unexpected refusal (the merge stays pending; logged) */
uint8_t *pub_merges_run(pub_merges_t *m, const char *src, const char *dst, uint64_t at_ms,
                        size_t *len);

/* Runs the pending merges again if it is time.  Returns how many ms may pass
 * before it needs to run again, or -1 when none is pending. */
long pub_merges_tick(pub_merges_t *m);

/* How many merges are pending. */
size_t pub_merges_pending(const pub_merges_t *m);

#endif
