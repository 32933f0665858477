/* cv_hash: FNV-1a-64 and shard choice. */
#include "cv_hash.h"

#include <assert.h>

uint64_t cv_fnv1a64(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

uint32_t cv_shard_for_feature(const char *feature_id, size_t len, uint32_t nshards)
{
    assert(nshards >= 1);
    return (uint32_t)(cv_fnv1a64(feature_id, len) % nshards);
}
