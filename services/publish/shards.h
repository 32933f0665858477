/* shards: publish's line to the tally shards (DESIGN B1).
 *
 * One DEALER socket per shard, connected to the shard's ROUTER, in shard
 * order.  A gather sends one TallyRequest (close cycle N, or a standings
 * query) to every shard and waits, up to a deadline, for every shard's
 * TallyReply carrying Standings; a call sends one TallyRequest (a status
 * change, a merge step, a query about one feature) to one shard and waits
 * for its reply.  Each exchange uses a fresh correlation id, so a late
 * answer to an earlier one that timed out is recognised and dropped, never
 * mistaken for the current one -- except the attempts to close one cycle,
 * which share an id so that a late answer to the close is kept (see
 * pub_shards_gather_standings).  Exchanges block: publish is
 * single-threaded, which is also what keeps two closes (or a close and a
 * merge) from ever overlapping.
 */
#ifndef PUB_SHARDS_H
#define PUB_SHARDS_H

#include "cv_bus.h"
#include "cv_codec.h"
#include "wire.h"

#include <stddef.h>
#include <stdint.h>

/* cv_bus_poll takes at most 16 sockets, and the main loop polls the REP
 * socket beside the shards. */
#define PUB_SHARDS_MAX 15

typedef struct pub_shards pub_shards_t;

/* Creates the sockets and connects shard i to the i-th endpoint of the
 * comma-separated list.  Returns NULL after writing the reason into err
 * (e.g. "empty endpoint in --tally", "--tally lists 16 shards, at most 15
 * are supported", "cannot connect to 'x'"). */
pub_shards_t *pub_shards_new(cv_bus_t *bus, const char *endpoints, char *err, size_t errlen);

/* Closes the sockets; safe on NULL and twice; nulls *sh_p. */
void pub_shards_destroy(pub_shards_t **sh_p);

int pub_shards_count(const pub_shards_t *sh);

/* Shard i's socket (borrowed), for polling. */
cv_sock_t *pub_shards_sock(pub_shards_t *sh, int i);

/* The shard owning a feature id: cv_shard_for_feature() over the count. */
int pub_shards_for_feature(const pub_shards_t *sh, const char *feature_id);

/* Asks every shard to close cycle close_cycle (>= 1), the next cycle opening
 * at opened_at_ms (CloseCycle.opened_at_ms), or, when close_cycle is 0, for
 * its live standings, and waits at most timeout_ms for all answers.  The
 * answers are decoded for ranking (wire.h: only what a ranked list needs,
 * without protobuf-c's allocation per field).
 *
 * A close that fails holds the answers it did get: a shard that closed the
 * cycle has moved on, and would answer a second close with the standings
 * of the next cycle.  The next attempt to close the same cycle only asks
 * the shards whose answer is missing, and a late answer to an earlier
 * attempt (received by this or any later exchange, or pub_shards_drain)
 * counts as the shard's answer.  Held answers live in memory only: after a
 * publish restart every shard is asked again.
 *
 * Returns CV_ST_OK with replies[i] set to shard i's answer (owned by the
 * caller: free with pub_shards_standings_free), each with status OK and
 * Standings.  Otherwise every replies[i] is NULL and err says why:
 *   UNAVAILABLE "shard 1 did not answer within 5000 ms"
 *   UNAVAILABLE when a shard answered UNAVAILABLE, INTERNAL for any other
 *   error status: "shard 1 answered INTERNAL: <its error>"
 *   INTERNAL "shard 1 answered without standings" / "out of memory" */
cv_status_t pub_shards_gather_standings(pub_shards_t *sh, uint64_t close_cycle,
                                        uint64_t opened_at_ms, long timeout_ms,
                                        pub_wire_standings_t **replies, char *err, size_t errlen);

/* Frees the n answers of pub_shards_gather_standings and sets them to NULL. */
void pub_shards_standings_free(pub_wire_standings_t **replies, int n);

/* Asks every shard for its live standings, whole (every feature record as
 * the shard stores it), for the feature table; waits at most timeout_ms.
 * Returns CV_ST_OK with replies[i] set to shard i's reply (owned by the
 * caller: free with pub_shards_replies_free), each with status OK and
 * Standings; otherwise every replies[i] is NULL and err says why, as for
 * pub_shards_gather_standings. */
cv_status_t pub_shards_gather(pub_shards_t *sh, long timeout_ms, Canvass__V1__TallyReply **replies,
                              char *err, size_t errlen);

/* Sends req (its corr is overwritten) to shard i and waits at most
 * timeout_ms for the reply.  Returns CV_ST_OK with *reply set (owned by the
 * caller: free with canvass__v1__tally_reply__free_unpacked), whatever the
 * reply's own status; or, with *reply NULL and the reason in err,
 * UNAVAILABLE "shard 1 did not answer within 5000 ms" or INTERNAL "out of
 * memory". */
cv_status_t pub_shards_call(pub_shards_t *sh, int i, Canvass__V1__TallyRequest *req,
                            long timeout_ms, Canvass__V1__TallyReply **reply, char *err,
                            size_t errlen);

/* Frees the n replies of pub_shards_gather and sets them to NULL. */
void pub_shards_replies_free(Canvass__V1__TallyReply **replies, int n);

/* Reads every message waiting on shard i's socket: late answers to
 * exchanges that already gave up.  A shard's first answer to the close of
 * the cycle a failed gather was closing is held for the next attempt (see
 * pub_shards_gather_standings); the rest is dropped.  Returns how many were
 * dropped. */
int pub_shards_drain(pub_shards_t *sh, int i);

#endif
