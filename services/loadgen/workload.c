/* workload: the Zipf vote stream and the client's record (see workload.h).
 *
 * The record is an open-addressing hash table (linear probing, never
 * shrinks, load kept under 1/2) keyed by feature index << 32 | user index.
 * Only keys the stream has handed out are in it, so its size follows the
 * number of votes, not features x users (10^8 with the defaults).  The
 * per-feature up/down counts are kept incrementally as acknowledgements come
 * in, so the expected standings cost nothing to produce at the end.
 */
#include "workload.h"
#include "cv_err.h"
#include "cv_log.h"
#include "cv_validate.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- random numbers --------------------------------------------------------- */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

void cv_rng_seed(cv_rng_t *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&seed);
}

uint64_t cv_rng_next(cv_rng_t *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double cv_rng_unit(cv_rng_t *r)
{
    return (double)(cv_rng_next(r) >> 11) * 0x1.0p-53;
}

uint64_t cv_rng_below(cv_rng_t *r, uint64_t n)
{
    /* Reject the top partial copy of [0, n) so every value is equally likely. */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n, x;
    do
        x = cv_rng_next(r);
    while (x >= limit);
    return x % n;
}

/* ---- Zipf ranks ---------------------------------------------------------------- */

int cv_zipf_init(cv_zipf_t *z, size_t n, double s)
{
    z->cdf = NULL;
    z->n = 0;
    if (n == 0 || !(s >= 0) || !isfinite(s))
        return CV_EINVAL;
    double *cdf = malloc(n * sizeof *cdf);
    if (!cdf)
        return CV_ENOMEM;
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        sum += pow((double)(i + 1), -s);
        cdf[i] = sum;
    }
    for (size_t i = 0; i < n; i++)
        cdf[i] /= sum;
    cdf[n - 1] = 1.0; /* rounding must not leave a u in [0, 1) past the end */
    z->cdf = cdf;
    z->n = n;
    return 0;
}

void cv_zipf_free(cv_zipf_t *z)
{
    free(z->cdf);
    z->cdf = NULL;
    z->n = 0;
}

size_t cv_zipf_pick(const cv_zipf_t *z, double u)
{
    size_t lo = 0, hi = z->n - 1; /* the answer is in [lo, hi] */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (z->cdf[mid] > u)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

/* ---- the record ------------------------------------------------------------------ */

/* Tries per vote before cv_workload_next gives up for now: users for one
 * feature, then features.  Busy keys are rare unless users is tiny. */
#define PICK_USERS 16
#define PICK_FEATURES 8

typedef struct {
    uint64_t key;  /* feature << 32 | user */
    int8_t value;  /* last value acknowledged OK; 0 = none or retracted */
    uint8_t used;
    uint8_t busy;  /* a vote for this key is in flight */
} slot_t;

typedef struct {
    char *id;       /* owned; NULL until named */
    uint64_t up, down, unknown;
} feature_t;

struct cv_workload {
    cv_workload_opts_t o;
    cv_rng_t rng;
    cv_zipf_t zipf;
    feature_t *features;
    slot_t *slots;
    size_t cap;    /* power of two */
    size_t used;   /* keys in the table */
    size_t busy;   /* keys in flight */
};

static size_t slot_hash(uint64_t key)
{
    uint64_t x = key;
    return (size_t)splitmix64(&x);
}

/* The slot holding key, or the empty slot where it would go. */
static slot_t *slot_find(const cv_workload_t *w, uint64_t key)
{
    size_t mask = w->cap - 1;
    for (size_t i = slot_hash(key) & mask;; i = (i + 1) & mask)
        if (!w->slots[i].used || w->slots[i].key == key)
            return &w->slots[i];
}

static int table_grow(cv_workload_t *w)
{
    size_t old_cap = w->cap;
    slot_t *old = w->slots;
    size_t cap = old_cap ? old_cap * 2 : 1024;
    slot_t *slots = calloc(cap, sizeof *slots);
    if (!slots)
        return CV_ENOMEM;
    w->slots = slots;
    w->cap = cap;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].used)
            *slot_find(w, old[i].key) = old[i];
    free(old);
    return 0;
}

cv_workload_t *cv_workload_new(const cv_workload_opts_t *opts)
{
    if (opts->features == 0 || opts->features > UINT32_MAX || opts->users == 0 ||
        !(opts->retract_share >= 0) || !(opts->down_share >= 0) ||
        !(opts->retract_share + opts->down_share <= 1.0)) {
        cv_log(CV_LOG_ERROR, "msg=\"bad workload options\" features=%zu users=%u "
                             "retract_share=%g down_share=%g",
               opts->features, opts->users, opts->retract_share, opts->down_share);
        return NULL;
    }
    cv_workload_t *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->o = *opts;
    cv_rng_seed(&w->rng, opts->seed);
    w->features = calloc(opts->features, sizeof *w->features);
    if (!w->features || cv_zipf_init(&w->zipf, opts->features, opts->zipf) < 0 ||
        table_grow(w) < 0) {
        cv_log(CV_LOG_ERROR, "msg=\"cannot set up the workload\" features=%zu zipf=%g",
               opts->features, opts->zipf);
        cv_workload_destroy(&w);
        return NULL;
    }
    return w;
}

void cv_workload_destroy(cv_workload_t **w_p)
{
    cv_workload_t *w = *w_p;
    if (!w)
        return;
    if (w->features)
        for (size_t i = 0; i < w->o.features; i++)
            free(w->features[i].id);
    free(w->features);
    free(w->slots);
    cv_zipf_free(&w->zipf);
    free(w);
    *w_p = NULL;
}

size_t cv_workload_features(const cv_workload_t *w)
{
    return w->o.features;
}

int cv_workload_set_feature_id(cv_workload_t *w, size_t idx, const char *id)
{
    if (idx >= w->o.features || !cv_feature_id_valid(id, strlen(id)))
        return CV_EINVAL;
    char *copy = strdup(id);
    if (!copy)
        return CV_ENOMEM;
    free(w->features[idx].id);
    w->features[idx].id = copy;
    return 0;
}

const char *cv_workload_feature_id(const cv_workload_t *w, size_t idx)
{
    return idx < w->o.features ? w->features[idx].id : NULL;
}

static int8_t draw_value(cv_workload_t *w)
{
    double u = cv_rng_unit(&w->rng);
    if (u < w->o.retract_share)
        return 0;
    if (u < w->o.retract_share + w->o.down_share)
        return -1;
    return 1;
}

int cv_workload_next(cv_workload_t *w, cv_vote_t *v)
{
    /* Keep the table under half full so probes stay short; one spare slot
     * for the key about to be added. */
    if ((w->used + 1) * 2 > w->cap && table_grow(w) < 0)
        return CV_ENOMEM;
    int8_t value = draw_value(w);
    for (int f = 0; f < PICK_FEATURES; f++) {
        uint32_t feature = (uint32_t)cv_zipf_pick(&w->zipf, cv_rng_unit(&w->rng));
        for (int u = 0; u < PICK_USERS; u++) {
            uint32_t user = (uint32_t)cv_rng_below(&w->rng, w->o.users);
            uint64_t key = (uint64_t)feature << 32 | user;
            slot_t *s = slot_find(w, key);
            if (s->used && s->busy)
                continue;
            if (!s->used) {
                s->used = 1;
                s->key = key;
                w->used++;
            }
            s->busy = 1;
            w->busy++;
            v->feature = feature;
            v->user = user;
            v->value = value;
            return 1;
        }
    }
    return 0;
}

void cv_workload_done(cv_workload_t *w, const cv_vote_t *v, cv_vote_fate_t fate)
{
    slot_t *s = slot_find(w, (uint64_t)v->feature << 32 | v->user);
    assert(s->used && s->busy); /* the vote was handed out and not ended yet */
    s->busy = 0;
    w->busy--;
    feature_t *f = &w->features[v->feature];
    if (fate == CV_VOTE_UNKNOWN) {
        f->unknown++;
        return;
    }
    if (fate != CV_VOTE_STORED)
        return;
    if (s->value > 0)
        f->up--;
    else if (s->value < 0)
        f->down--;
    s->value = v->value;
    if (s->value > 0)
        f->up++;
    else if (s->value < 0)
        f->down++;
}

void cv_workload_expect(const cv_workload_t *w, size_t idx, cv_expect_t *out)
{
    const feature_t *f = &w->features[idx];
    out->up = f->up;
    out->down = f->down;
    out->voters = f->up + f->down; /* one vote per user and feature */
    out->unknown = f->unknown;
}

size_t cv_workload_keys(const cv_workload_t *w)
{
    return w->used;
}

size_t cv_workload_in_flight(const cv_workload_t *w)
{
    return w->busy;
}
