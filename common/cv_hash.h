/* cv_hash: FNV-1a-64 and the feature-to-shard rule (DESIGN B1).
 * A feature lives on shard FNV-1a-64(feature_id bytes) mod N. */
#ifndef CV_HASH_H
#define CV_HASH_H

#include <stddef.h>
#include <stdint.h>

/* FNV-1a, 64-bit: offset basis 0xcbf29ce484222325, prime 0x100000001b3. */
uint64_t cv_fnv1a64(const void *data, size_t len);

/* The shard (0..nshards-1) owning a feature id; nshards must be >= 1. */
uint32_t cv_shard_for_feature(const char *feature_id, size_t len, uint32_t nshards);

#endif
