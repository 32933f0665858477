/* cv_rank: ranking a cycle's standings (see cv_rank.h).
 *
 * Building a ranking always builds the score order first: it sorts an array
 * of small keys (score, voters, created, id, input index) rather than the
 * entries themselves, then lays the RankedEntry structures out in rank order
 * in one block.  Any other order is then reached by re-sorting those entries
 * with cv_rank_reorder(), the very function that re-sorts a stored list, so
 * a list built in an order and a stored list re-sorted into it cannot
 * disagree.  Re-sorting sorts (key, position) records, the position in the
 * score order being the last key: the sort is total and stable without
 * relying on qsort being stable.
 */
#include "cv_rank.h"
#include "cv_err.h"

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

typedef struct {
    double score;
    uint64_t voters;
    uint64_t created_ms;
    const char *id;
    size_t idx; /* into the input; only decides between duplicate ids */
} score_key_t;

static int cmp_score_key(const void *pa, const void *pb)
{
    const score_key_t *a = pa, *b = pb;
    if (a->score != b->score)
        return a->score > b->score ? -1 : 1;
    if (a->voters != b->voters)
        return a->voters > b->voters ? -1 : 1;
    if (a->created_ms != b->created_ms)
        return a->created_ms < b->created_ms ? -1 : 1;
    int c = strcmp(a->id, b->id); /* strcmp compares as unsigned char: bytewise */
    if (c)
        return c;
    return a->idx < b->idx ? -1 : a->idx > b->idx;
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
    cv_ranking_t *r = calloc(1, sizeof *r);
    score_key_t *keys = calloc(n ? n : 1, sizeof *keys);
    if (!r || !keys)
        goto nomem;
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        const cv_standing_t *s = &standings[i];
        assert(s->feature_id && s->title && s->status && (s->tags || !s->ntags));
        if (!cv_rank_status_ranked(s->status))
            continue;
        keys[m++] =
            (score_key_t){cv_rank_score(s, weights), s->voters, s->created_ms, s->feature_id, i};
    }
    qsort(keys, m, sizeof *keys, cmp_score_key);

    r->entries = calloc(m ? m : 1, sizeof *r->entries);
    r->ptrs = calloc(m ? m : 1, sizeof *r->ptrs);
    if (!r->entries || !r->ptrs)
        goto nomem;
    canvass__v1__ranked_list__init(&r->list);
    uint64_t total = 0;
    for (size_t i = 0; i < m; i++) {
        const cv_standing_t *s = &standings[keys[i].idx];
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
    if (cv_rank_reorder(r->ptrs, m, order) < 0 || cv_rank_fill_prev(r->ptrs, m, prev) < 0)
        goto nomem;
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

typedef struct {
    const char *id;
    uint32_t rank;
} prev_key_t;

static int cmp_prev_key(const void *pa, const void *pb)
{
    return strcmp(((const prev_key_t *)pa)->id, ((const prev_key_t *)pb)->id);
}

int cv_rank_fill_prev(Canvass__V1__RankedEntry **entries, size_t n,
                      const Canvass__V1__RankedList *prev)
{
    size_t m = prev ? prev->n_entries : 0;
    if (m == 0) {
        for (size_t i = 0; i < n; i++)
            entries[i]->prev_rank = 0;
        return 0;
    }
    /* A sorted copy of the previous ids: n lookups of log m each. */
    prev_key_t *keys = malloc(m * sizeof *keys);
    if (!keys)
        return CV_ENOMEM;
    for (size_t i = 0; i < m; i++)
        keys[i] = (prev_key_t){prev->entries[i]->feature_id, prev->entries[i]->rank};
    qsort(keys, m, sizeof *keys, cmp_prev_key);
    for (size_t i = 0; i < n; i++) {
        prev_key_t want = {entries[i]->feature_id, 0};
        const prev_key_t *hit = bsearch(&want, keys, m, sizeof *keys, cmp_prev_key);
        entries[i]->prev_rank = hit ? hit->rank : 0;
    }
    free(keys);
    return 0;
}
