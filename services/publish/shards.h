/* shards: publish's line to the tally shards (DESIGN B1).
 *
 * One DEALER socket per shard, connected to the shard's ROUTER, in shard
 * order.  A gather sends one TallyRequest (close cycle N, or a standings
 * query) to every shard and waits, up to a deadline, for every shard's
 * TallyReply carrying Standings.  Each gather uses a fresh correlation id, so
 * a late answer to an earlier gather that timed out is recognised and
 * dropped, never mistaken for the current one.  Gathers block: publish is
 * single-threaded, which is also what keeps two closes from ever overlapping.
 */
#ifndef PUB_SHARDS_H
#define PUB_SHARDS_H

#include "cv_bus.h"
#include "cv_codec.h"

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

/* Asks every shard to close cycle close_cycle (>= 1) or, when close_cycle is
 * 0, for its live standings, and waits at most timeout_ms for all answers.
 *
 * Returns CV_ST_OK with replies[i] set to shard i's reply (owned by the
 * caller: free with pub_shards_replies_free), each with status OK and
 * Standings.  Otherwise every replies[i] is NULL and err says why:
 *   UNAVAILABLE "shard 1 did not answer within 5000 ms"
 *   UNAVAILABLE when a shard answered UNAVAILABLE, INTERNAL for any other
 *   error status: "shard 1 answered INTERNAL: <its error>"
 *   INTERNAL "shard 1 answered without standings" / "out of memory" */
cv_status_t pub_shards_gather(pub_shards_t *sh, uint64_t close_cycle, long timeout_ms,
                              Canvass__V1__TallyReply **replies, char *err, size_t errlen);

/* Frees the n replies of a gather and sets them to NULL. */
void pub_shards_replies_free(Canvass__V1__TallyReply **replies, int n);

/* Reads and drops every message waiting on shard i's socket: late answers
 * to gathers that already gave up.  Returns how many were dropped. */
int pub_shards_drain(pub_shards_t *sh, int i);

#endif
