/* cv_votes: encodings of the vote, counters and meta records of a tally
 * shard, the votes and created keys, and the rule deciding what a vote
 * changes (see cv_votes.h).  Every integer is written byte by byte, values in
 * little-endian order and numeric keys in big-endian order (so that they
 * sort), so that the files read the same on any host. */
#include "cv_votes.h"
#include "cv_err.h"

#include <math.h>
#include <string.h>

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

void cv_vote_rec_encode(const cv_vote_rec_t *r, uint8_t out[CV_VOTE_REC_SIZE])
{
    out[0] = (uint8_t)r->value;
    out[1] = r->tier;
    put_u64(out + 2, r->stamp);
}

int cv_vote_rec_decode(const void *buf, size_t len, cv_vote_rec_t *r)
{
    const uint8_t *p = buf;
    if (len != CV_VOTE_REC_SIZE)
        return CV_EDECODE;
    int8_t value = (int8_t)p[0];
    if (value < -1 || value > 1 || p[1] >= CV_TIERS)
        return CV_EDECODE;
    r->value = value;
    r->tier = p[1];
    r->stamp = get_u64(p + 2);
    return 0;
}

void cv_counts_encode(const cv_counts_t *c, uint8_t out[CV_COUNTS_REC_SIZE])
{
    for (int t = 0; t < CV_TIERS; t++) {
        put_u64(out + 8 * t, c->up[t]);
        put_u64(out + 8 * (CV_TIERS + t), c->down[t]);
    }
    put_u64(out + 8 * 2 * CV_TIERS, c->voters);
}

int cv_counts_decode(const void *buf, size_t len, cv_counts_t *c)
{
    const uint8_t *p = buf;
    if (len != CV_COUNTS_REC_SIZE)
        return CV_EDECODE;
    for (int t = 0; t < CV_TIERS; t++) {
        c->up[t] = get_u64(p + 8 * t);
        c->down[t] = get_u64(p + 8 * (CV_TIERS + t));
    }
    c->voters = get_u64(p + 8 * 2 * CV_TIERS);
    return 0;
}

void cv_u64_encode(uint64_t v, uint8_t out[CV_U64_SIZE])
{
    put_u64(out, v);
}

int cv_u64_decode(const void *buf, size_t len, uint64_t *v)
{
    if (len != CV_U64_SIZE)
        return CV_EDECODE;
    *v = get_u64(buf);
    return 0;
}

void cv_be64_encode(uint64_t v, uint8_t out[CV_BE64_SIZE])
{
    for (int i = 0; i < CV_BE64_SIZE; i++)
        out[i] = (uint8_t)(v >> (8 * (CV_BE64_SIZE - 1 - i)));
}

uint64_t cv_be64_decode(const uint8_t in[CV_BE64_SIZE])
{
    uint64_t v = 0;
    for (int i = 0; i < CV_BE64_SIZE; i++)
        v = (v << 8) | in[i];
    return v;
}

int cv_created_key_make(uint64_t stamp, const char *feature, size_t flen,
                        uint8_t out[CV_CREATED_KEY_MAX], size_t *klen)
{
    if (flen < 1 || flen > CV_FEATURE_ID_MAX)
        return CV_EINVAL;
    cv_be64_encode(stamp, out);
    memcpy(out + CV_BE64_SIZE, feature, flen);
    *klen = CV_BE64_SIZE + flen;
    return 0;
}

int cv_created_key_split(const void *key, size_t klen, uint64_t *stamp, const char **feature,
                         size_t *flen)
{
    if (klen <= CV_BE64_SIZE || klen > CV_CREATED_KEY_MAX)
        return CV_EDECODE;
    *stamp = cv_be64_decode(key);
    *feature = (const char *)key + CV_BE64_SIZE;
    *flen = klen - CV_BE64_SIZE;
    return 0;
}

int cv_vote_key_make(const char *feature, size_t flen, const char *user, size_t ulen,
                     uint8_t out[CV_VOTE_KEY_MAX], size_t *klen)
{
    if (flen < 1 || flen > CV_FEATURE_ID_MAX || memchr(feature, '\0', flen))
        return CV_EINVAL;
    if (ulen < 1 || ulen > CV_USER_ID_MAX)
        return CV_EINVAL;
    memcpy(out, feature, flen);
    out[flen] = '\0';
    memcpy(out + flen + 1, user, ulen);
    *klen = flen + 1 + ulen;
    return 0;
}

int cv_vote_key_split(const void *key, size_t klen, const char **feature, size_t *flen,
                      const char **user, size_t *ulen)
{
    const char *k = key;
    const char *nul = memchr(k, '\0', klen);
    if (!nul || nul == k || (size_t)(nul - k) + 1 >= klen)
        return CV_EDECODE;
    *feature = k;
    *flen = (size_t)(nul - k);
    *user = nul + 1;
    *ulen = klen - *flen - 1;
    return 0;
}

cv_vote_outcome_t cv_vote_decide(const cv_vote_rec_t *old, const cv_vote_rec_t *next)
{
    if (!old)
        return next->value == 0 ? CV_VOTE_SAME : CV_VOTE_CHANGE;
    if (old->stamp >= next->stamp)
        return CV_VOTE_STALE;
    if (old->value == next->value && (next->value == 0 || old->tier == next->tier))
        return CV_VOTE_SAME;
    return CV_VOTE_CHANGE;
}

/* Decrements *n unless it is already 0, which only happens when the
 * counters disagree with the votes they were built from. */
static int take_one(uint64_t *n)
{
    if (*n == 0)
        return CV_EINVAL;
    (*n)--;
    return 0;
}

int cv_counts_move(cv_counts_t *c, const cv_vote_rec_t *old, const cv_vote_rec_t *next)
{
    int rc = 0;
    if (old && old->value != 0 && old->tier < CV_TIERS) {
        uint64_t *n = old->value > 0 ? &c->up[old->tier] : &c->down[old->tier];
        if (take_one(n) < 0)
            rc = CV_EINVAL;
        if (take_one(&c->voters) < 0)
            rc = CV_EINVAL;
    }
    if (next && next->value != 0 && next->tier < CV_TIERS) {
        if (next->value > 0)
            c->up[next->tier]++;
        else
            c->down[next->tier]++;
        c->voters++;
    }
    return rc;
}

int cv_counts_equal(const cv_counts_t *a, const cv_counts_t *b)
{
    for (int t = 0; t < CV_TIERS; t++)
        if (a->up[t] != b->up[t] || a->down[t] != b->down[t])
            return 0;
    return a->voters == b->voters;
}

/* ---- trends ------------------------------------------------------------- */

void cv_trend_encode(const cv_trend_t *tr, uint8_t out[CV_TREND_REC_SIZE])
{
    put_u64(out, tr->cycle);
    put_u64(out + 8, tr->base_ms);
    for (int t = 0; t < CV_TIERS; t++) {
        uint64_t bits;
        memcpy(&bits, &tr->gain[t], sizeof bits);
        put_u64(out + 16 + 8 * t, bits);
    }
}

int cv_trend_decode(const void *buf, size_t len, cv_trend_t *tr)
{
    const uint8_t *p = buf;
    double gain[CV_TIERS];
    if (len != CV_TREND_REC_SIZE)
        return CV_EDECODE;
    for (int t = 0; t < CV_TIERS; t++) {
        uint64_t bits = get_u64(p + 16 + 8 * t);
        memcpy(&gain[t], &bits, sizeof bits);
        if (!isfinite(gain[t]))
            return CV_EDECODE;
    }
    tr->cycle = get_u64(p);
    tr->base_ms = get_u64(p + 8);
    memcpy(tr->gain, gain, sizeof gain);
    return 0;
}

/* (a - b) / half_life in half-lives, signed; ms values are far below 2^53,
 * so the conversions are exact. */
static double half_lives(uint64_t a, uint64_t b, uint64_t half_life_ms)
{
    return ((double)a - (double)b) / (double)half_life_ms;
}

void cv_trend_add(cv_trend_t *tr, const cv_vote_rec_t *old, const cv_vote_rec_t *next,
                  uint64_t vote_ms, uint64_t half_life_ms)
{
    double d[CV_TIERS] = {0};
    if (old && old->value != 0 && old->tier < CV_TIERS)
        d[old->tier] -= old->value;
    if (next && next->value != 0 && next->tier < CV_TIERS)
        d[next->tier] += next->value;
    double e = half_lives(vote_ms, tr->base_ms, half_life_ms);
    if (e > CV_TREND_REBASE) {
        /* Moving the base to vote_ms scales the old gains by 2^-e and
         * leaves every trend value as it was. */
        for (int t = 0; t < CV_TIERS; t++)
            tr->gain[t] *= exp2(-e);
        tr->base_ms = vote_ms;
        e = 0;
    }
    double w = exp2(e);
    for (int t = 0; t < CV_TIERS; t++)
        tr->gain[t] += d[t] * w;
}

double cv_trend_at(const cv_trend_t *tr, int tier, uint64_t at_ms, uint64_t half_life_ms)
{
    if (tier < 0 || tier >= CV_TIERS)
        return 0;
    double e = at_ms > tr->base_ms ? half_lives(at_ms, tr->base_ms, half_life_ms) : 0;
    return tr->gain[tier] * exp2(-e);
}
