/* fz_cluster: publish and two tally shards in one process, for the targets
 * that drive publish (fuzz_admin_request, fuzz_tally_reply, fuzz_http).
 *
 * publish's calls to its shards block until the shard has answered, so
 * each shard runs on its own thread: a ROUTER socket on an inproc endpoint
 * of the cluster's cv_bus in front of a real shard store (services/tally
 * shard.c), served one message at a time the way canvass-tally serves a
 * drain (writes through cv_shard_apply, then queries through
 * cv_shard_answer).  publish itself -- pub_cycles and pub_features over
 * pub_shards -- runs on the caller's thread, with a PUB socket whose
 * broadcasts a SUB socket collects for checking.
 *
 * A target may queue fuzzed TallyReply bytes with fz_cluster_inject(): the
 * shard then sends the next one of them, before its own reply, in answer to
 * each request it receives, so that publish gets a hostile or broken shard
 * reply and the shard's state stays what it really did.  The shard's own
 * reply follows, so publish never waits for a timeout; by then publish
 * has moved on and drops it as stale (fresh correlation id per call).
 *
 * fz_cluster_reset() makes every input start from the same state: fresh
 * stores holding features "a" (shard of a) ... and a few votes, a fresh
 * publish store with cycle 1 open (manual schedule), nothing queued.
 */
#ifndef FZ_CLUSTER_H
#define FZ_CLUSTER_H

#include "cv_bus.h"
#include "cv_codec.h"
#include "cycles.h"
#include "features.h"

#include <stddef.h>
#include <stdint.h>

#define FZ_SHARDS 2
#define FZ_SHARD_TIMEOUT_MS 10000

typedef struct fz_cluster fz_cluster_t;

/* Starts the shards' threads and creates publish's sockets.  name names
 * the temporary directory.  Aborts on failure. */
fz_cluster_t *fz_cluster_new(const char *name);

/* Brings every store back to the seeded state and makes a fresh publish.
 * Any stored state of the previous input is gone. */
void fz_cluster_reset(fz_cluster_t *c);

pub_cycles_t *fz_cluster_cycles(fz_cluster_t *c);
pub_features_t *fz_cluster_features(fz_cluster_t *c);
cv_bus_t *fz_cluster_bus(fz_cluster_t *c);

/* The seeded features: "a", "b", "c", "d" (ids, on whichever shard owns
 * them), each open, with votes of users u1..u3. */
extern const char *const fz_cluster_ids[4];

/* Queues a fuzzed reply (copied) for shard `shard`: it answers that shard's
 * next request not yet answered by an injected reply.  One queue per shard,
 * so that what publish gets does not hang on which shard thread runs first.
 * With patch_corr, a reply that decodes is re-packed with the corr of the
 * request it answers (so that publish takes it); otherwise the bytes go as
 * they are. */
void fz_cluster_inject(fz_cluster_t *c, int shard, const uint8_t *data, size_t len,
                       int patch_corr);

/* Drops what is still queued for injection. */
void fz_cluster_inject_clear(fz_cluster_t *c);

/* Checks every message publish broadcast since the last call: two frames,
 * topic "ranked" + a RankedList or "feature" + a FeatureEvent, decoding and
 * round-tripping, with valid UTF-8 text. */
void fz_cluster_check_events(fz_cluster_t *c);

/* Stops serving, closes every shard store and checks it with
 * cv_audit_check (counters equal to a recount of the votes).  The stores
 * stay closed until the next fz_cluster_reset(). */
void fz_cluster_check_stores(fz_cluster_t *c);

/* Checks an AdminReply as publish packed it: it decodes, round-trips,
 * carries a known status and, when not OK, a non-empty UTF-8 error text.
 * Returns the decoded reply (the caller frees it). */
Canvass__V1__AdminReply *fz_check_admin_reply(const uint8_t *buf, size_t len);

#endif
