/* features: the feature actions of the release-manager API (DESIGN A5, A7):
 * show a feature, change its status, merge it into another, page through its
 * voters, list every feature.  Each request is answered with a packed
 * AdminReply; the texts of each reply are listed in api.h.
 *
 * Every action talks to the tally shard owning the feature (or, to list or
 * rank, to every shard) and waits at most the shard timeout.  Status changes
 * and merges are announced on the PUB socket as "feature" + FeatureEvent.
 * The times written into a feature's status history come from one clock
 * that never repeats a value (wall-clock ms, bumped past the previous one),
 * which is also how a change is told from a no-op: a change appends a
 * history entry with exactly this request's time.
 *
 * Not thread-safe: runs on publish's one thread.
 */
#ifndef PUB_FEATURES_H
#define PUB_FEATURES_H

#include "cv_bus.h"
#include "cv_codec.h"
#include "cycles.h"
#include "shards.h"

#include <stddef.h>
#include <stdint.h>

typedef struct pub_features pub_features_t;

/* cycles, shards and pub are borrowed and must outlive the object;
 * timeout_ms bounds each wait for a shard.  Pending merges found in the
 * store are run by pub_features_tick() (see merges.h).  NULL on failure
 * (logged). */
pub_features_t *pub_features_new(pub_cycles_t *cycles, pub_shards_t *shards, cv_sock_t *pub,
                                 long timeout_ms);

/* Frees the object; safe on NULL and twice; nulls *f_p. */
void pub_features_destroy(pub_features_t **f_p);

/* The actions.  Each returns a new packed AdminReply the caller frees and
 * sets *len; NULL only when out of memory. */
uint8_t *pub_features_show(pub_features_t *f, const Canvass__V1__FeatureShow *q, size_t *len);
uint8_t *pub_features_status(pub_features_t *f, const Canvass__V1__FeatureStatus *q, size_t *len);
uint8_t *pub_features_merge(pub_features_t *f, const Canvass__V1__FeatureMerge *q, size_t *len);
uint8_t *pub_features_voters(pub_features_t *f, const Canvass__V1__VotersQuery *q, size_t *len);
uint8_t *pub_features_list(pub_features_t *f, size_t *len);

/* Background work (pending merges).  Returns how many ms may pass before
 * it needs to run again, or -1 when there is none. */
long pub_features_tick(pub_features_t *f);

#endif
