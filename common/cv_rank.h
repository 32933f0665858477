/* cv_rank: the ranked list of a release cycle (DESIGN A5; docs/ORDERS.md).
 *
 * The tally shards report one standing per feature: per-tier up and down
 * counts, per-tier trend, distinct voters, status and creation time.
 * Ranking keeps only the features whose status is open, planned or
 * in_progress and orders them by one of
 *
 *   score    = sum over tiers t of weight[t] * (up[t] - down[t]),
 *              descending, then voters (descending), then created_ms
 *              (ascending: the older feature first), then feature id
 *              (bytewise ascending).  This is the order every closed
 *              cycle's list is stored in.
 *   trending = sum over tiers t of weight[t] * trend[t] (the shard's
 *              decayed net votes gained in the open cycle), descending,
 *              then the score order's tie-breaks without the score:
 *              voters (descending), created_ms (ascending), feature id.
 *   wilson   = the lower bound of the Wilson score interval on the
 *              unweighted up / down counts with z = 1.96 (0 without votes),
 *              descending, then the whole score order (score, voters,
 *              created_ms, feature id).
 *
 * Every entry carries, whatever the order, its weighted score (`score`),
 * its weighted trend (`trend`) and its creation time (`created_ms`), so a
 * stored list can be re-sorted into any order later (cv_rank_reorder) and
 * gives exactly the list cv_rank_build would have built in that order.
 * A non-finite trend (NaN, infinity) from a shard counts as 0.
 *
 * Ranks are 1..n.  prev_rank is the feature's rank in the previous cycle's
 * list in the same order (0 when it was not ranked there).
 *
 * The result is a canvass.v1 RankedList ready to pack.  Ownership: the
 * ranking owns the list and its RankedEntry structures; every string and
 * tags array inside the entries is borrowed from the input standings, which
 * must therefore outlive the ranking (or at least its last use).
 */
#ifndef CV_RANK_H
#define CV_RANK_H

#include "cv_codec.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CV_RANK_WILSON_Z 1.96

typedef enum { CV_RANK_SCORE = 0, CV_RANK_WILSON = 1, CV_RANK_TRENDING = 2 } cv_rank_order_t;

/* One feature's standing, as the input of a ranking.  Every pointer is
 * borrowed and never modified; none may be NULL (use "" for empty text). */
typedef struct {
    const char *feature_id;
    const char *title;
    const char *status;
    char **tags; /* ntags strings */
    size_t ntags;
    uint64_t created_ms;
    uint64_t up[CV_TIERS]; /* indexed by CV_TIER_* */
    uint64_t down[CV_TIERS];
    double trend[CV_TIERS]; /* FeatureStanding.trend: decayed net votes gained */
    uint64_t voters;        /* distinct users with a non-zero vote */
} cv_standing_t;

typedef struct cv_ranking cv_ranking_t;

/* Parses an order name: "" and "score" -> CV_RANK_SCORE, "trending" ->
 * CV_RANK_TRENDING, "wilson" -> CV_RANK_WILSON (case matters).  Returns 0,
 * or CV_EINVAL after writing the reason into err (NUL-terminated, truncated
 * to errlen) and leaving *out untouched:
 *   "unknown order 'x' (score, trending, wilson)" */
int cv_rank_order_parse(const char *name, cv_rank_order_t *out, char *err, size_t errlen);

/* "score", "wilson" or "trending".  Static. */
const char *cv_rank_order_name(cv_rank_order_t order);

/* True for the statuses that are ranked: open, planned, in_progress. */
bool cv_rank_status_ranked(const char *status);

/* The weighted score of a standing (see above). */
double cv_rank_score(const cv_standing_t *s, const double weights[CV_TIERS]);

/* The weighted trend of a standing: sum of weight[t] * trend[t], with a
 * non-finite trend[t] counted as 0. */
double cv_rank_trending(const cv_standing_t *s, const double weights[CV_TIERS]);

/* The lower bound of the Wilson score interval for up successes out of
 * up + down trials, z = CV_RANK_WILSON_Z; 0 when up + down is 0. */
double cv_rank_wilson(uint64_t up, uint64_t down);

/* ---- previous ranks ---------------------------------------------------------
 * What prev_rank is filled from: the previous cycle's list, as a hash table
 * from feature id to rank.  Ids are borrowed (pointer and length, no NUL
 * needed) and must outlive the table; a close over 100 000 features looks
 * up every one of them, which is why this is a hash and not a search. */
typedef struct cv_rank_prev cv_rank_prev_t;

/* A new, empty table sized for n ids (it grows past that).  NULL when out
 * of memory. */
cv_rank_prev_t *cv_rank_prev_new(size_t n);

/* Frees the table (not the ids).  Safe on NULL and twice; nulls *p_p. */
void cv_rank_prev_destroy(cv_rank_prev_t **p_p);

/* Records that id[0..idlen) had rank `rank`.  An id already in the table
 * keeps the rank it was first given (a list is read in rank order, so that
 * is its best).  Returns 0 or CV_ENOMEM. */
int cv_rank_prev_put(cv_rank_prev_t *p, const char *id, size_t idlen, uint32_t rank);

/* The rank recorded for id[0..idlen); 0 when there is none. */
uint32_t cv_rank_prev_get(const cv_rank_prev_t *p, const char *id, size_t idlen);

/* Records every entry's feature_id and rank (borrowing the ids).  Returns 0
 * or CV_ENOMEM. */
int cv_rank_prev_add(cv_rank_prev_t *p, Canvass__V1__RankedEntry *const *entries, size_t n);

/* ---- ranking ----------------------------------------------------------------- */

/* Ranks n standings with the given tier weights in the given order and fills
 * prev_rank from prev (the previous cycle's list in the same order; NULL when
 * there is none).  On success *out is a new ranking whose list has order,
 * entries, n_entries and total_votes (the sum of up + down over the ranked
 * entries) set; cycle, opened_at_ms, closed_at_ms and scheduled_at_ms are 0
 * for the caller to fill.  Each entry has score, trend and created_ms set
 * as described above.  Returns 0 or CV_ENOMEM; on failure *out is
 * untouched. */
int cv_rank_build(const cv_standing_t *standings, size_t n, const double weights[CV_TIERS],
                  cv_rank_order_t order, const Canvass__V1__RankedList *prev, cv_ranking_t **out);

/* The same, with the previous list's ranks given as a table (NULL: none). */
int cv_rank_build_with(const cv_standing_t *standings, size_t n, const double weights[CV_TIERS],
                       cv_rank_order_t order, const cv_rank_prev_t *prev, cv_ranking_t **out);

/* The same over standings given in nparts arrays (parts[p] holds counts[p]
 * standings, e.g. one array per shard), ranked as if they were one array,
 * the parts in order: no copy of the standings is needed. */
int cv_rank_build_parts(const cv_standing_t *const *parts, const size_t *counts, size_t nparts,
                        const double weights[CV_TIERS], cv_rank_order_t order,
                        const cv_rank_prev_t *prev, cv_ranking_t **out);

/* The ranking's list: borrowed, valid until cv_ranking_destroy().  The caller
 * may set its scalar fields (cycle, times) before packing it. */
Canvass__V1__RankedList *cv_ranking_list(cv_ranking_t *r);

/* Frees the ranking (not the borrowed standings).  Safe on NULL and twice;
 * nulls *r_p. */
void cv_ranking_destroy(cv_ranking_t **r_p);

/* Re-sorts entries that are in score order (as every stored list is) into
 * `order`, from their score, trend, up, down, voters, created_ms and
 * feature_id fields, and renumbers their rank 1..n.  CV_RANK_SCORE leaves
 * them as they are.  (Lists stored before entries carried trend and
 * created_ms re-sort as if both were 0.)  Returns 0 or CV_ENOMEM (entries
 * untouched). */
int cv_rank_reorder(Canvass__V1__RankedEntry **entries, size_t n, cv_rank_order_t order);

/* Sets each entry's prev_rank to the rank of the same feature id in prev
 * (0 when prev is NULL or does not hold it).  Returns 0 or CV_ENOMEM
 * (entries untouched). */
int cv_rank_fill_prev(Canvass__V1__RankedEntry **entries, size_t n,
                      const Canvass__V1__RankedList *prev);

/* The same from a table (NULL: every prev_rank 0); cannot fail. */
void cv_rank_fill_prev_with(Canvass__V1__RankedEntry **entries, size_t n,
                            const cv_rank_prev_t *prev);

#endif
