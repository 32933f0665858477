/* cv_ratelimit: token buckets and a bounded table of them (see the header).
 *
 * The table is a fixed array of hash chains, sized once to the next power
 * of two at or above the capacity, so it never grows or rehashes and a
 * lookup is a SipHash of the key plus a short chain walk (the load factor
 * stays at or below 1).  Every entry is also on one doubly linked list in
 * least-recently-used order: a hit moves the entry to the tail, a new key
 * first forgets stale entries from the head, then goes to the tail.
 */
#include "cv_ratelimit.h"
#include "cv_err.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* Entries forgotten from the old end per call at most, when their buckets
 * are full: enough to keep up with any rate of new keys (each call adds at
 * most one), small enough that no call does a long sweep. */
#define CV__SWEEP_PER_CALL 4
#define CV__MAX_CHAINS (1u << 22)

/* ---- one bucket ------------------------------------------------------------ */

bool cv_rate_valid(const cv_rate_t *r)
{
    return r && r->rate >= 0 && r->rate <= CV_RATE_MAX && r->burst >= 1 &&
           r->burst <= CV_RATE_MAX; /* false for NaN too */
}

static uint64_t burst_nano(const cv_rate_t *r)
{
    return (uint64_t)(r->burst * 1e9);
}

/* The bucket's tokens (x 1e9) at now_ns, without changing it.  The refill
 * is rounded down to a billionth of a token. */
static uint64_t level_nano(const cv_bucket_t *b, const cv_rate_t *r, uint64_t now_ns)
{
    uint64_t full = burst_nano(r);
    if (now_ns <= b->at_ns || b->nano >= full)
        return b->nano < full ? b->nano : full;
    double add = (double)(now_ns - b->at_ns) * r->rate; /* ns x tokens/s = nanotokens */
    if (add >= (double)(full - b->nano))
        return full;
    return b->nano + (uint64_t)add;
}

double cv_bucket_level(const cv_bucket_t *b, const cv_rate_t *r, uint64_t now_ns)
{
    return (double)level_nano(b, r, now_ns) / 1e9;
}

void cv_bucket_init(cv_bucket_t *b, const cv_rate_t *r, uint64_t now_ns)
{
    b->nano = burst_nano(r);
    b->at_ns = now_ns;
}

bool cv_bucket_take(cv_bucket_t *b, const cv_rate_t *r, uint64_t now_ns)
{
    if (r->rate == 0)
        return true;
    b->nano = level_nano(b, r, now_ns);
    if (now_ns > b->at_ns)
        b->at_ns = now_ns;
    if (b->nano < 1000000000u)
        return false;
    b->nano -= 1000000000u;
    return true;
}

/* ---- the table ------------------------------------------------------------- */

typedef struct cv__rl_entry {
    struct cv__rl_entry *chain;       /* next in the same hash chain */
    struct cv__rl_entry *prev, *next; /* LRU list: head = least recent */
    cv_bucket_t bucket;
    uint64_t hash;
    size_t keylen;
    unsigned char key[]; /* keylen bytes */
} cv__rl_entry_t;

struct cv_ratelimit {
    cv_rate_t rate;
    size_t capacity, size;
    uint64_t early;
    size_t mask; /* chains - 1 */
    cv__rl_entry_t **chains;
    cv__rl_entry_t *head, *tail;
    unsigned char hashkey[crypto_shorthash_KEYBYTES];
};

cv_ratelimit_t *cv_ratelimit_new(const cv_rate_t *r, size_t capacity)
{
    if (!cv_rate_valid(r) || capacity == 0 || sodium_init() < 0)
        return NULL;
    cv_ratelimit_t *rl = calloc(1, sizeof *rl);
    if (!rl)
        return NULL;
    size_t n = 16;
    while (n < capacity && n < CV__MAX_CHAINS)
        n <<= 1;
    rl->chains = calloc(n, sizeof *rl->chains);
    if (!rl->chains) {
        free(rl);
        return NULL;
    }
    rl->mask = n - 1;
    rl->rate = *r;
    rl->capacity = capacity;
    randombytes_buf(rl->hashkey, sizeof rl->hashkey);
    return rl;
}

static uint64_t key_hash(const cv_ratelimit_t *rl, const void *key, size_t keylen)
{
    unsigned char h[crypto_shorthash_BYTES];
    crypto_shorthash(h, key, keylen, rl->hashkey);
    uint64_t v;
    memcpy(&v, h, sizeof v);
    return v;
}

static void lru_unlink(cv_ratelimit_t *rl, cv__rl_entry_t *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        rl->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        rl->tail = e->prev;
    e->prev = e->next = NULL;
}

static void lru_append(cv_ratelimit_t *rl, cv__rl_entry_t *e)
{
    e->prev = rl->tail;
    e->next = NULL;
    if (rl->tail)
        rl->tail->next = e;
    else
        rl->head = e;
    rl->tail = e;
}

/* Unlinks e from its chain and the list and frees it. */
static void forget(cv_ratelimit_t *rl, cv__rl_entry_t *e)
{
    cv__rl_entry_t **pp = &rl->chains[e->hash & rl->mask];
    while (*pp != e)
        pp = &(*pp)->chain;
    *pp = e->chain;
    lru_unlink(rl, e);
    rl->size--;
    free(e);
}

int cv_ratelimit_take(cv_ratelimit_t *rl, const void *key, size_t keylen, uint64_t now_ns)
{
    if (rl->rate.rate == 0)
        return 1;
    uint64_t h = key_hash(rl, key, keylen);
    for (cv__rl_entry_t *e = rl->chains[h & rl->mask]; e; e = e->chain) {
        if (e->hash == h && e->keylen == keylen && memcmp(e->key, key, keylen) == 0) {
            if (e != rl->tail) {
                lru_unlink(rl, e);
                lru_append(rl, e);
            }
            return cv_bucket_take(&e->bucket, &rl->rate, now_ns) ? 1 : 0;
        }
    }
    /* A new key.  Entries at the old end whose bucket is full again carry
     * nothing a fresh bucket would not: forget a few. */
    for (int i = 0; i < CV__SWEEP_PER_CALL && rl->head &&
                    level_nano(&rl->head->bucket, &rl->rate, now_ns) >= burst_nano(&rl->rate);
         i++)
        forget(rl, rl->head);
    cv__rl_entry_t *e = malloc(sizeof *e + keylen);
    if (!e)
        return CV_ENOMEM;
    if (rl->size >= rl->capacity) {
        rl->early++;
        forget(rl, rl->head);
    }
    e->hash = h;
    e->keylen = keylen;
    memcpy(e->key, key, keylen);
    cv_bucket_init(&e->bucket, &rl->rate, now_ns);
    e->chain = rl->chains[h & rl->mask];
    rl->chains[h & rl->mask] = e;
    lru_append(rl, e);
    rl->size++;
    return cv_bucket_take(&e->bucket, &rl->rate, now_ns) ? 1 : 0;
}

size_t cv_ratelimit_size(const cv_ratelimit_t *rl)
{
    return rl->size;
}

uint64_t cv_ratelimit_early_evictions(const cv_ratelimit_t *rl)
{
    return rl->early;
}

const cv_rate_t *cv_ratelimit_rate(const cv_ratelimit_t *rl)
{
    return &rl->rate;
}

void cv_ratelimit_destroy(cv_ratelimit_t **rl_p)
{
    if (!rl_p || !*rl_p)
        return;
    cv_ratelimit_t *rl = *rl_p;
    cv__rl_entry_t *e = rl->head;
    while (e) {
        cv__rl_entry_t *next = e->next;
        free(e);
        e = next;
    }
    free(rl->chains);
    free(rl);
    *rl_p = NULL;
}
