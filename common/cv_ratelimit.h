/* cv_ratelimit: token buckets, alone or in a bounded table keyed by name
 * (DESIGN A9: a per-connection and a per-user vote rate).
 *
 * A bucket holds at most `burst` tokens and gains `rate` tokens a second;
 * each request takes one, and a request that finds less than one token is
 * refused (and takes nothing).  So a client may send `burst` requests at
 * once, then `rate` a second for as long as it likes.  A rate of 0 means no
 * limit.
 *
 * Time is the caller's: every call takes `now` in nanoseconds of a
 * monotonic clock (libuv's uv_hrtime, CLOCK_MONOTONIC), which makes the
 * buckets exact to test.  A `now` earlier than the bucket's last one (a
 * caller mixing clocks) counts as no time passing.
 *
 * The table (cv_ratelimit_t) keeps one bucket per key, for keys the network
 * chooses (user ids), so its memory is bounded: it never holds more than
 * `capacity` keys.  Its entries are kept in least-recently-used order.  A
 * bucket that has refilled to `burst` is exactly a new bucket, so such
 * entries are forgotten as they reach the old end of the list (a few per
 * call, which keeps each call O(1)); only when the table is full of keys
 * active within the last burst/rate seconds is the least recently used key
 * forgotten early, which can only ever let that key through sooner, never
 * refuse anyone wrongly.  The hash is SipHash with a random key per process,
 * so chosen keys cannot be made to collide.
 *
 *   cv_ratelimit_t *users = cv_ratelimit_new(&(cv_rate_t){50, 100}, 200000);
 *   if (cv_ratelimit_take(users, id, strlen(id), uv_hrtime()) == 0)
 *       ... answer RATE_LIMITED ...
 */
#ifndef CV_RATELIMIT_H
#define CV_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A limit: `rate` tokens a second (0 = unlimited), at most `burst` (>= 1)
 * saved up. */
typedef struct {
    double rate;
    double burst;
} cv_rate_t;

/* One bucket; embed it where it is needed (e.g. in a connection).  Tokens
 * are counted in billionths, so that refills add up exactly (ten 100 ms
 * refills at 10/s make exactly 10 tokens) rather than drift in floating
 * point. */
typedef struct {
    uint64_t nano;  /* tokens x 1e9 */
    uint64_t at_ns; /* when `nano` was last brought up to date */
} cv_bucket_t;

#define CV_RATE_MAX 1e9 /* the largest rate and burst */

/* True when r is usable: 0 <= rate <= CV_RATE_MAX, 1 <= burst <=
 * CV_RATE_MAX. */
bool cv_rate_valid(const cv_rate_t *r);

/* Fills the bucket (a new client may send a whole burst at once). */
void cv_bucket_init(cv_bucket_t *b, const cv_rate_t *r, uint64_t now_ns);

/* Takes one token when there is one and returns true; returns false
 * (taking nothing) when the bucket is below one token.  Always true when
 * r->rate is 0. */
bool cv_bucket_take(cv_bucket_t *b, const cv_rate_t *r, uint64_t now_ns);

/* The tokens the bucket holds at now_ns (for tests and metrics). */
double cv_bucket_level(const cv_bucket_t *b, const cv_rate_t *r, uint64_t now_ns);

typedef struct cv_ratelimit cv_ratelimit_t;

/* A table of buckets with limit *r (copied) and room for `capacity` (>= 1)
 * keys.  Returns NULL when out of memory or r is not valid. */
cv_ratelimit_t *cv_ratelimit_new(const cv_rate_t *r, size_t capacity);

/* Takes a token from key[0..keylen)'s bucket, creating a full one for a key
 * it does not hold.  Returns 1 (allowed), 0 (over the limit: refuse) or
 * CV_ENOMEM (no bucket could be made; the caller decides, and the table is
 * unchanged but for forgetting buckets that were full anyway).  With rate 0 returns 1 and keeps
 * nothing. */
int cv_ratelimit_take(cv_ratelimit_t *rl, const void *key, size_t keylen, uint64_t now_ns);

/* Keys held now (<= capacity). */
size_t cv_ratelimit_size(const cv_ratelimit_t *rl);

/* Keys forgotten while their bucket was not yet full, because the table
 * was full: when this grows, the capacity is too small for the traffic. */
uint64_t cv_ratelimit_early_evictions(const cv_ratelimit_t *rl);

/* The limit the table was made with (borrowed, lives as long as rl). */
const cv_rate_t *cv_ratelimit_rate(const cv_ratelimit_t *rl);

/* Frees the table.  Safe on NULL and twice; nulls *rl_p. */
void cv_ratelimit_destroy(cv_ratelimit_t **rl_p);

#endif
