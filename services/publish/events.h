/* events: publish's `created` events (DESIGN A6: "`feature` + FeatureEvent:
 * a feature was created, ...").
 *
 * A submit goes from ingest straight to the tally shard that owns the new
 * feature; publish never sees it.  So publish polls: about once every
 * PUB_EVENTS_POLL_MS it asks each shard for the features created after its
 * cursor for that shard (TallyRequest.created, at most PUB_EVENTS_PAGE per
 * request), broadcasts, for each one in the order the shard committed them,
 *
 *   "feature" + FeatureEvent{kind "created", feature_id, status "open",
 *                            at_ms = the feature's created_ms, title,
 *                            voters 0}
 *
 * and then moves the shard's cursor to the page's `last`.  A feature whose
 * status changed before the poll saw it is still announced as created
 * "open"; its status change has its own event.
 *
 * Cursors.  One per shard: the index stamp (cv_votes.h) of the last feature
 * announced.  A shard's index stamps only grow in the order its creations
 * commit, so no feature is skipped, however late its creation commits.
 * The cursors live in a small LMDB store of their own, DATA/events (table
 * "cursors": "shard:I" -> 8-byte big-endian stamp), apart from the cycle
 * history.  A cursor is written, and synced, only after its page has been
 * broadcast: a publish that crashes in between announces that page again
 * when it restarts (at least once), never skips it.  A shard with no cursor
 * yet -- the first start of publish on this data directory -- starts from
 * now, stored at once, so a cluster that already holds features does not
 * announce them all; features created while publish is down are announced
 * when it is back, from PUB_EVENTS_POLL_MS after its start (time for the
 * subscribers to reconnect).
 *
 * Waiting.  The shards module offers blocking exchanges only (shards.h), so
 * a poll waits for each shard's answer, at most PUB_EVENTS_TIMEOUT_MS (or
 * the shard timeout when that is shorter); a shard that does not answer
 * in time, or refuses the query (a tally binary from before it existed), is
 * skipped for PUB_EVENTS_BACKOFF_MS, so a shard that is down costs the REP
 * loop at most one such wait every few seconds.  One page per shard per
 * tick; while a shard has more, the next tick is due at once, so a burst of
 * submits is announced quickly without starving the API.
 *
 * Like every PUB message, an event reaches only the subscribers connected
 * (and keeping up) when it is sent.
 *
 * Not thread-safe: runs on publish's one thread.
 */
#ifndef PUB_EVENTS_H
#define PUB_EVENTS_H

#include "cv_bus.h"
#include "shards.h"

#define PUB_EVENTS_POLL_MS 1000
#define PUB_EVENTS_PAGE 100
#define PUB_EVENTS_TIMEOUT_MS 250
#define PUB_EVENTS_BACKOFF_MS 5000

typedef struct pub_events pub_events_t;

/* Opens (creating when missing) the cursor store in data_dir/events and
 * loads every shard's cursor, starting those that have none from now.
 * shards and pub are borrowed and must outlive the object; shard_timeout_ms
 * caps the wait for one shard.  Returns NULL on failure (logged). */
pub_events_t *pub_events_new(const char *data_dir, pub_shards_t *shards, cv_sock_t *pub,
                             long shard_timeout_ms);

/* Closes the store; safe on NULL and twice; nulls *e_p. */
void pub_events_destroy(pub_events_t **e_p);

/* Polls the shards when a poll is due and announces what they created.
 * Returns how many ms may pass before it needs to run again: 0 when a shard
 * has more to tell, at most PUB_EVENTS_POLL_MS. */
long pub_events_tick(pub_events_t *e);

#endif
