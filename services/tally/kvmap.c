/* kvmap: byte-string keys to fixed-size values, open addressing over an
 * arena (see kvmap.h).
 *
 * Layout.  `arena` holds, for each entry in the order added, its key bytes
 * padded to 8 and then its value (vsize rounded up to 8).  `entries[i]`
 * records where entry i starts, its key length and its hash.  `slots` is a
 * power-of-two table, probed linearly and kept at most half full; a slot
 * holds the entry number plus one (0 = empty) in its low 32 bits and the
 * high 32 bits of the key's hash above, so that a probe passes over other
 * keys without reading their entries (a cache miss each).
 */
#include "kvmap.h"

#include "cv_err.h"
#include "cv_hash.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uint64_t hash;
    uint32_t off;  /* of the key in the arena */
    uint32_t klen;
} entry_t;

struct cv_kvmap {
    size_t vsize;    /* as asked */
    size_t vstride;  /* vsize rounded up to 8 */
    uint8_t *arena;
    size_t used, cap; /* arena bytes */
    entry_t *entries;
    size_t count, ecap;
    uint64_t *slots;
    size_t nslots;   /* a power of two, or 0 before the first put */
};

#define ROUND8(n) (((n) + 7) & ~(size_t)7)

cv_kvmap_t *cv_kvmap_new(size_t vsize)
{
    assert(vsize >= 1 && vsize <= 4096);
    cv_kvmap_t *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->vsize = vsize;
    m->vstride = ROUND8(vsize);
    return m;
}

void cv_kvmap_destroy(cv_kvmap_t **map_p)
{
    if (!map_p || !*map_p)
        return;
    cv_kvmap_t *m = *map_p;
    free(m->arena);
    free(m->entries);
    free(m->slots);
    free(m);
    *map_p = NULL;
}

static size_t slot_of(const cv_kvmap_t *m, const void *key, size_t klen, uint64_t h, int *hit)
{
    size_t mask = m->nslots - 1;
    uint64_t tag = h & 0xffffffff00000000ULL;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        uint64_t s = m->slots[i];
        if (s == 0) {
            *hit = 0;
            return i;
        }
        if ((s & 0xffffffff00000000ULL) != tag)
            continue;
        const entry_t *e = &m->entries[(uint32_t)s - 1];
        if (e->hash == h && e->klen == klen && !memcmp(m->arena + e->off, key, klen)) {
            *hit = 1;
            return i;
        }
    }
}

void *cv_kvmap_find(const cv_kvmap_t *m, const void *key, size_t klen)
{
    if (!m->count)
        return NULL;
    int hit;
    size_t i = slot_of(m, key, klen, cv_fnv1a64(key, klen), &hit);
    if (!hit)
        return NULL;
    const entry_t *e = &m->entries[(uint32_t)m->slots[i] - 1];
    return m->arena + e->off + ROUND8(e->klen);
}

/* Doubles the slot table and re-inserts every entry. */
static int rehash(cv_kvmap_t *m)
{
    size_t n = m->nslots ? m->nslots * 2 : 1024;
    uint64_t *slots = calloc(n, sizeof *slots);
    if (!slots)
        return CV_ENOMEM;
    free(m->slots);
    m->slots = slots;
    m->nslots = n;
    for (size_t k = 0; k < m->count; k++) {
        size_t i = m->entries[k].hash & (n - 1);
        while (slots[i])
            i = (i + 1) & (n - 1);
        slots[i] = (m->entries[k].hash & 0xffffffff00000000ULL) | (uint64_t)(k + 1);
    }
    return 0;
}

static int reserve(void **buf, size_t *cap, size_t need, size_t unit)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : 64;
    while (n < need)
        n *= 2;
    void *p = realloc(*buf, n * unit);
    if (!p)
        return CV_ENOMEM;
    *buf = p;
    *cap = n;
    return 0;
}

int cv_kvmap_put(cv_kvmap_t *m, const void *key, size_t klen, void **val)
{
    if (klen == 0 || klen > 65535)
        return CV_EINVAL;
    if ((m->count + 1) * 2 > m->nslots && rehash(m) < 0)
        return CV_ENOMEM;
    uint64_t h = cv_fnv1a64(key, klen);
    int hit;
    size_t i = slot_of(m, key, klen, h, &hit);
    if (hit) {
        const entry_t *e = &m->entries[(uint32_t)m->slots[i] - 1];
        *val = m->arena + e->off + ROUND8(e->klen);
        return 0;
    }
    size_t need = ROUND8(klen) + m->vstride;
    if (m->used + need > UINT32_MAX || m->count + 1 > UINT32_MAX - 1)
        return CV_ENOMEM;
    size_t acap = m->cap;
    void *arena = m->arena;
    if (reserve(&arena, &acap, m->used + need, 1) < 0)
        return CV_ENOMEM;
    m->arena = arena;
    m->cap = acap;
    void *entries = m->entries;
    if (reserve(&entries, &m->ecap, m->count + 1, sizeof(entry_t)) < 0)
        return CV_ENOMEM;
    m->entries = entries;
    uint8_t *p = m->arena + m->used;
    memcpy(p, key, klen);
    memset(p + klen, 0, need - klen);
    m->entries[m->count] = (entry_t){h, (uint32_t)m->used, (uint32_t)klen};
    m->slots[i] = (h & 0xffffffff00000000ULL) | (uint64_t)(++m->count);
    m->used += need;
    *val = p + ROUND8(klen);
    return 1;
}

void cv_kvmap_at(const cv_kvmap_t *m, size_t i, const void **key, size_t *klen, void **val)
{
    assert(i < m->count);
    const entry_t *e = &m->entries[i];
    *key = m->arena + e->off;
    *klen = e->klen;
    *val = m->arena + e->off + ROUND8(e->klen);
}

size_t cv_kvmap_count(const cv_kvmap_t *m)
{
    return m->count;
}

size_t cv_kvmap_bytes(const cv_kvmap_t *m)
{
    return m->cap + m->ecap * sizeof(entry_t) + m->nslots * sizeof(uint64_t);
}

void cv_kvmap_clear(cv_kvmap_t *m)
{
    if (m->nslots)
        memset(m->slots, 0, m->nslots * sizeof *m->slots);
    m->count = 0;
    m->used = 0;
}
