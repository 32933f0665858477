/* cv_rank: ranking a cycle's standings (see cv_rank.h).
 *
 * Building a ranking always builds the score order first: it sorts an array
 * of small keys (score, voters, created, id, the standing) rather than the
 * entries themselves, then lays the RankedEntry structures out in rank order
 * in one block.  Any other order is then reached by re-sorting those entries
 * with cv_rank_reorder(), the very function that re-sorts a stored list, so
 * a list built in an order and a stored list re-sorted into it cannot
 * disagree.  Re-sorting sorts (key, position) records, the position in the
 * score order being the last key: the sort is total and stable without
 * relying on qsort being stable.
 *
 * prev_rank comes from a hash table of the previous list's ids (at the end
 * of the file): a close over 100 000 features looks each of them up.
 */
#include "cv_rank.h"
#include "cv_err.h"
#include "cv_hash.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cv_ranking {
    Canvass__V1__RankedList list;
    Canvass__V1__RankedEntry *entries; /* n_entries structures, in rank order */
    Canvass__V1__RankedEntry **ptrs;   /* list.entries: ptrs[i] = &entries[i] */
};

/* ---- orders and scores ---------------------------------------------------- */

int cv_rank_order_parse(const char *name, cv_rank_order_t *out, char *err, size_t errlen)
{
    if (!name || !*name || !strcmp(name, "score")) {
        *out = CV_RANK_SCORE;
        return 0;
    }
    if (!strcmp(name, "wilson")) {
        *out = CV_RANK_WILSON;
        return 0;
    }
    if (!strcmp(name, "trending")) {
        *out = CV_RANK_TRENDING;
        return 0;
    }
    snprintf(err, errlen, "unknown order '%.64s' (score, trending, wilson)", name);
    return CV_EINVAL;
}

const char *cv_rank_order_name(cv_rank_order_t order)
{
    switch (order) {
    case CV_RANK_SCORE:
        return "score";
    case CV_RANK_WILSON:
        return "wilson";
    case CV_RANK_TRENDING:
        return "trending";
    }
    return "score";
}

bool cv_rank_status_ranked(const char *status)
{
    return !strcmp(status, "open") || !strcmp(status, "planned") || !strcmp(status, "in_progress");
}

double cv_rank_score(const cv_standing_t *s, const double weights[CV_TIERS])
{
    double score = 0;
    for (int t = 0; t < CV_TIERS; t++)
        score += weights[t] * (double)s->up[t] - weights[t] * (double)s->down[t];
    return score;
}

/* A shard's trend is outside input: NaN would make the sort inconsistent. */
static double finite_or_zero(double v)
{
    return isfinite(v) ? v : 0;
}

double cv_rank_trending(const cv_standing_t *s, const double weights[CV_TIERS])
{
    double trend = 0;
    for (int t = 0; t < CV_TIERS; t++)
        trend += weights[t] * finite_or_zero(s->trend[t]);
    return trend;
}

double cv_rank_wilson(uint64_t up, uint64_t down)
{
    if (up + down == 0)
        return 0;
    const double z = CV_RANK_WILSON_Z, z2 = z * z;
    double n = (double)(up + down), p = (double)up / n;
    double centre = p + z2 / (2 * n);
    double margin = z * sqrt((p * (1 - p) + z2 / (4 * n)) / n);
    return (centre - margin) / (1 + z2 / n);
}

/* ---- building ----------------------------------------------------------- */

/* The id is copied into the key: comparing ties then touches one string
 * per side, not the standing first. */
typedef struct {
    double score;
    uint64_t voters;
    uint64_t created_ms;
    const char *id;
    const cv_standing_t *s;
} score_key_t;

/* The input being ranked: parts[p] holds counts[p] standings. */
typedef struct {
    const cv_standing_t *const *parts;
    const size_t *counts;
    size_t nparts;
} input_t;

/* s's position in the input, parts concatenated. */
static size_t input_pos(const input_t *in, const cv_standing_t *s)
{
    size_t pos = 0;
    for (size_t p = 0; p < in->nparts; p++) {
        if (in->counts[p] && (uintptr_t)s >= (uintptr_t)in->parts[p] &&
            (uintptr_t)s < (uintptr_t)(in->parts[p] + in->counts[p]))
            return pos + (size_t)(s - in->parts[p]);
        pos += in->counts[p];
    }
    return pos; /* not reached: every key points into the input */
}

static int cmp_score_key(const void *pa, const void *pb, void *arg)
{
    const score_key_t *a = pa, *b = pb;
    if (a->score != b->score)
        return a->score > b->score ? -1 : 1;
    if (a->voters != b->voters)
        return a->voters > b->voters ? -1 : 1;
    if (a->created_ms != b->created_ms)
        return a->created_ms < b->created_ms ? -1 : 1;
    /* strcmp compares as unsigned char: bytewise */
    int c = strcmp(a->id, b->id);
    if (c)
        return c;
    /* Duplicate ids (a shard's mistake) keep their input order. */
    size_t pa_ = input_pos(arg, a->s), pb_ = input_pos(arg, b->s);
    return pa_ < pb_ ? -1 : pa_ > pb_;
}

static uint64_t sum_tiers(const uint64_t v[CV_TIERS])
{
    uint64_t s = 0;
    for (int t = 0; t < CV_TIERS; t++)
        s += v[t];
    return s;
}

int cv_rank_build(const cv_standing_t *standings, size_t n, const double weights[CV_TIERS],
                  cv_rank_order_t order, const Canvass__V1__RankedList *prev, cv_ranking_t **out)
{
    cv_rank_prev_t *p = NULL;
    if (prev && prev->n_entries) {
        if (!(p = cv_rank_prev_new(prev->n_entries)) ||
            cv_rank_prev_add(p, prev->entries, prev->n_entries) < 0) {
            cv_rank_prev_destroy(&p);
            return CV_ENOMEM;
        }
    }
    int rc = cv_rank_build_with(standings, n, weights, order, p, out);
    cv_rank_prev_destroy(&p);
    return rc;
}

int cv_rank_build_with(const cv_standing_t *standings, size_t n, const double weights[CV_TIERS],
                       cv_rank_order_t order, const cv_rank_prev_t *prev, cv_ranking_t **out)
{
    return cv_rank_build_parts(&standings, &n, 1, weights, order, prev, out);
}

int cv_rank_build_parts(const cv_standing_t *const *parts, const size_t *counts, size_t nparts,
                        const double weights[CV_TIERS], cv_rank_order_t order,
                        const cv_rank_prev_t *prev, cv_ranking_t **out)
{
    size_t n = 0;
    for (size_t p = 0; p < nparts; p++)
        n += counts[p];
    cv_ranking_t *r = calloc(1, sizeof *r);
    score_key_t *keys = malloc((n ? n : 1) * sizeof *keys);
    if (!r || !keys)
        goto nomem;
    size_t m = 0;
    for (size_t p = 0; p < nparts; p++) {
        for (size_t i = 0; i < counts[p]; i++) {
            const cv_standing_t *s = &parts[p][i];
            assert(s->feature_id && s->title && s->status && (s->tags || !s->ntags));
            if (cv_rank_status_ranked(s->status))
                keys[m++] = (score_key_t){cv_rank_score(s, weights), s->voters, s->created_ms,
                                          s->feature_id, s};
        }
    }
    input_t in = {parts, counts, nparts};
    qsort_r(keys, m, sizeof *keys, cmp_score_key, &in);

    r->entries = malloc((m ? m : 1) * sizeof *r->entries);
    r->ptrs = malloc((m ? m : 1) * sizeof *r->ptrs);
    if (!r->entries || !r->ptrs)
        goto nomem;
    canvass__v1__ranked_list__init(&r->list);
    uint64_t total = 0;
    for (size_t i = 0; i < m; i++) {
        const cv_standing_t *s = keys[i].s;
        Canvass__V1__RankedEntry *e = &r->entries[i];
        canvass__v1__ranked_entry__init(e);
        e->rank = (uint32_t)(i + 1);
        /* Borrowed: protobuf-c's fields are not const, but packing only reads. */
        e->feature_id = (char *)s->feature_id;
        e->title = (char *)s->title;
        e->status = (char *)s->status;
        e->tags = s->tags;
        e->n_tags = s->ntags;
        e->score = keys[i].score;
        e->trend = cv_rank_trending(s, weights);
        e->created_ms = s->created_ms;
        e->up = sum_tiers(s->up);
        e->down = sum_tiers(s->down);
        e->voters = s->voters;
        total += e->up + e->down;
        r->ptrs[i] = e;
    }
    free(keys);
    keys = NULL;
    r->list.entries = r->ptrs;
    r->list.n_entries = m;
    r->list.total_votes = total;
    r->list.order = (char *)cv_rank_order_name(order);
    if (cv_rank_reorder(r->ptrs, m, order) < 0)
        goto nomem;
    cv_rank_fill_prev_with(r->ptrs, m, prev);
    *out = r;
    return 0;

nomem:
    free(keys);
    cv_ranking_destroy(&r);
    return CV_ENOMEM;
}

Canvass__V1__RankedList *cv_ranking_list(cv_ranking_t *r)
{
    return &r->list;
}

void cv_ranking_destroy(cv_ranking_t **r_p)
{
    if (!r_p || !*r_p)
        return;
    free((*r_p)->entries);
    free((*r_p)->ptrs);
    free(*r_p);
    *r_p = NULL;
}

/* ---- re-sorting and movers ------------------------------------------------ */

typedef struct {
    double key; /* wilson bound or trend: descending */
    size_t pos; /* position in the score order: the last tie-break */
    Canvass__V1__RankedEntry *e;
} order_key_t;

/* wilson: the bound, then the score order itself. */
static int cmp_wilson_key(const void *pa, const void *pb)
{
    const order_key_t *a = pa, *b = pb;
    if (a->key != b->key)
        return a->key > b->key ? -1 : 1;
    return a->pos < b->pos ? -1 : a->pos > b->pos;
}

/* trending: the trend, then the score order's tie-breaks without the score
 * (voters, older first, id); the position only splits duplicate ids. */
static int cmp_trending_key(const void *pa, const void *pb)
{
    const order_key_t *a = pa, *b = pb;
    if (a->key != b->key)
        return a->key > b->key ? -1 : 1;
    if (a->e->voters != b->e->voters)
        return a->e->voters > b->e->voters ? -1 : 1;
    if (a->e->created_ms != b->e->created_ms)
        return a->e->created_ms < b->e->created_ms ? -1 : 1;
    int c = strcmp(a->e->feature_id, b->e->feature_id);
    if (c)
        return c;
    return a->pos < b->pos ? -1 : a->pos > b->pos;
}

int cv_rank_reorder(Canvass__V1__RankedEntry **entries, size_t n, cv_rank_order_t order)
{
    if (order != CV_RANK_SCORE && n > 0) {
        order_key_t *keys = malloc(n * sizeof *keys);
        if (!keys)
            return CV_ENOMEM;
        for (size_t i = 0; i < n; i++) {
            Canvass__V1__RankedEntry *e = entries[i];
            double key =
                order == CV_RANK_WILSON ? cv_rank_wilson(e->up, e->down) : finite_or_zero(e->trend);
            keys[i] = (order_key_t){key, i, e};
        }
        qsort(keys, n, sizeof *keys, order == CV_RANK_WILSON ? cmp_wilson_key : cmp_trending_key);
        for (size_t i = 0; i < n; i++)
            entries[i] = keys[i].e;
        free(keys);
    }
    for (size_t i = 0; i < n; i++)
        entries[i]->rank = (uint32_t)(i + 1);
    return 0;
}

/* ---- previous ranks ---------------------------------------------------------
 * Open addressing with linear probing over a power-of-two array kept at most
 * half full, so a miss (a feature new this cycle) ends after a probe or
 * two.  The full 64-bit hash is kept per slot: most probes that are not the
 * id are told apart without touching the id's bytes. */

typedef struct {
    const char *id; /* NULL: empty slot */
    size_t idlen;
    uint64_t hash;
    uint32_t rank;
} prev_slot_t;

struct cv_rank_prev {
    prev_slot_t *slots;
    size_t mask; /* capacity - 1 */
    size_t count;
};

static size_t prev_capacity_for(size_t n)
{
    size_t cap = 16;
    while (cap < 2 * n && cap < ((size_t)1 << 40))
        cap <<= 1;
    return cap;
}

cv_rank_prev_t *cv_rank_prev_new(size_t n)
{
    cv_rank_prev_t *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    size_t cap = prev_capacity_for(n);
    if (!(p->slots = calloc(cap, sizeof *p->slots))) {
        free(p);
        return NULL;
    }
    p->mask = cap - 1;
    return p;
}

void cv_rank_prev_destroy(cv_rank_prev_t **p_p)
{
    if (!p_p || !*p_p)
        return;
    free((*p_p)->slots);
    free(*p_p);
    *p_p = NULL;
}

/* The slot holding id, or the empty slot where it would go. */
static prev_slot_t *prev_find(const cv_rank_prev_t *p, const char *id, size_t idlen, uint64_t hash)
{
    for (size_t i = hash & p->mask;; i = (i + 1) & p->mask) {
        prev_slot_t *s = &p->slots[i];
        if (!s->id || (s->hash == hash && s->idlen == idlen && !memcmp(s->id, id, idlen)))
            return s;
    }
}

static int prev_grow(cv_rank_prev_t *p)
{
    size_t cap = (p->mask + 1) * 2;
    prev_slot_t *old = p->slots;
    size_t oldcap = p->mask + 1;
    if (!(p->slots = calloc(cap, sizeof *p->slots))) {
        p->slots = old;
        return CV_ENOMEM;
    }
    p->mask = cap - 1;
    for (size_t i = 0; i < oldcap; i++)
        if (old[i].id)
            *prev_find(p, old[i].id, old[i].idlen, old[i].hash) = old[i];
    free(old);
    return 0;
}

int cv_rank_prev_put(cv_rank_prev_t *p, const char *id, size_t idlen, uint32_t rank)
{
    if (2 * (p->count + 1) > p->mask + 1 && prev_grow(p) < 0)
        return CV_ENOMEM;
    uint64_t hash = cv_fnv1a64(id, idlen);
    prev_slot_t *s = prev_find(p, id, idlen, hash);
    if (s->id)
        return 0; /* the first rank stays */
    *s = (prev_slot_t){id, idlen, hash, rank};
    p->count++;
    return 0;
}

static uint32_t prev_get_hashed(const cv_rank_prev_t *p, const char *id, size_t idlen,
                                uint64_t hash)
{
    if (p->count == 0)
        return 0;
    const prev_slot_t *s = prev_find(p, id, idlen, hash);
    return s->id ? s->rank : 0;
}

uint32_t cv_rank_prev_get(const cv_rank_prev_t *p, const char *id, size_t idlen)
{
    return prev_get_hashed(p, id, idlen, cv_fnv1a64(id, idlen));
}

int cv_rank_prev_add(cv_rank_prev_t *p, Canvass__V1__RankedEntry *const *entries, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *id = entries[i]->feature_id;
        int rc = cv_rank_prev_put(p, id, strlen(id), entries[i]->rank);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int cv_rank_fill_prev(Canvass__V1__RankedEntry **entries, size_t n,
                      const Canvass__V1__RankedList *prev)
{
    cv_rank_prev_t *p = NULL;
    if (prev && prev->n_entries) {
        if (!(p = cv_rank_prev_new(prev->n_entries)) ||
            cv_rank_prev_add(p, prev->entries, prev->n_entries) < 0) {
            cv_rank_prev_destroy(&p);
            return CV_ENOMEM;
        }
    }
    cv_rank_fill_prev_with(entries, n, p);
    cv_rank_prev_destroy(&p);
    return 0;
}

void cv_rank_fill_prev_with(Canvass__V1__RankedEntry **entries, size_t n,
                            const cv_rank_prev_t *prev)
{
    if (!prev) {
        for (size_t i = 0; i < n; i++)
            entries[i]->prev_rank = 0;
        return;
    }
    /* A table of 100 000 ids does not fit in the cache, so each lookup
     * waits for memory: hashing a batch first and prefetching its slots lets
     * those waits overlap. */
    enum { BATCH = 16 };
    for (size_t i = 0; i < n; i += BATCH) {
        size_t k = n - i < BATCH ? n - i : BATCH;
        uint64_t hash[BATCH];
        size_t len[BATCH];
        for (size_t j = 0; j < k; j++) {
            len[j] = strlen(entries[i + j]->feature_id);
            hash[j] = cv_fnv1a64(entries[i + j]->feature_id, len[j]);
            __builtin_prefetch(&prev->slots[hash[j] & prev->mask]);
        }
        for (size_t j = 0; j < k; j++)
            entries[i + j]->prev_rank =
                prev_get_hashed(prev, entries[i + j]->feature_id, len[j], hash[j]);
    }
}
