/* workload: the loadgen's vote stream and its own record of what was stored.
 *
 * The stream draws each vote independently: a feature by Zipf rank (rank r,
 * 1-based, has weight 1 / r^s; s = 0 is uniform), a user uniformly among
 * `users`, and a value: 0 (retract) with probability retract_share, -1 with
 * down_share, +1 otherwise.  Feature index 0 is rank 1, the most popular.
 *
 * The record holds, for every (feature, user) key the stream has touched, the
 * last value the cluster acknowledged OK and whether a vote for that key is
 * in flight.  At most one vote per key is ever in flight (the stream picks
 * another user, then another feature, rather than hand out a busy key), so
 * acknowledgements of one key arrive in the order the votes were sent and
 * the record is exactly what the cluster must hold.  Per feature it also
 * keeps the counts the cluster must report: up, down and voters (every vote
 * is a member-tier vote, and voters = up + down), and the number of votes
 * whose fate is unknown (a final reply that neither confirms nor excludes a
 * commit), which makes that feature's comparison meaningless.
 */
#ifndef CV_LOADGEN_WORKLOAD_H
#define CV_LOADGEN_WORKLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- random numbers --------------------------------------------------------- */

/* xoshiro256**: fast, 2^256 period, seeded through splitmix64. */
typedef struct {
    uint64_t s[4];
} cv_rng_t;

void cv_rng_seed(cv_rng_t *r, uint64_t seed);
uint64_t cv_rng_next(cv_rng_t *r);
/* Uniform in [0, 1), 53 random bits. */
double cv_rng_unit(cv_rng_t *r);
/* Uniform in [0, n); n >= 1.  Unbiased (rejection). */
uint64_t cv_rng_below(cv_rng_t *r, uint64_t n);

/* ---- Zipf ranks ---------------------------------------------------------------- */

typedef struct {
    double *cdf; /* cdf[i] = P(rank <= i + 1); cdf[n - 1] == 1 */
    size_t n;
} cv_zipf_t;

/* Precomputes the CDF of n ranks with exponent s (s >= 0).  Returns 0 or
 * CV_ENOMEM / CV_EINVAL (n == 0, s < 0 or not finite). */
int cv_zipf_init(cv_zipf_t *z, size_t n, double s);
void cv_zipf_free(cv_zipf_t *z);
/* The 0-based rank for a uniform u in [0, 1): the first i with cdf[i] > u. */
size_t cv_zipf_pick(const cv_zipf_t *z, double u);

/* ---- the stream and the record ------------------------------------------------- */

typedef struct cv_workload cv_workload_t;

typedef struct {
    size_t features;      /* >= 1 */
    uint32_t users;       /* >= 1 */
    double zipf;          /* >= 0 */
    double retract_share; /* in [0, 1], retract_share + down_share <= 1 */
    double down_share;
    uint64_t seed;
} cv_workload_opts_t;

typedef struct {
    uint32_t feature; /* index, 0..features-1 */
    uint32_t user;    /* index, 0..users-1 */
    int8_t value;     /* +1, -1, 0 */
} cv_vote_t;

/* How a vote ended. */
typedef enum {
    CV_VOTE_STORED,   /* acknowledged OK: the cluster holds this value */
    CV_VOTE_REJECTED, /* a final status that means nothing was stored */
    CV_VOTE_UNKNOWN   /* a final status that says nothing about a commit */
} cv_vote_fate_t;

/* Returns NULL on bad options (logged) or when out of memory. */
cv_workload_t *cv_workload_new(const cv_workload_opts_t *opts);

/* Safe on NULL and twice; nulls *w_p. */
void cv_workload_destroy(cv_workload_t **w_p);

size_t cv_workload_features(const cv_workload_t *w);

/* Names feature idx (a copy is kept).  Returns 0, CV_EINVAL (idx out of
 * range or not a valid feature id) or CV_ENOMEM. */
int cv_workload_set_feature_id(cv_workload_t *w, size_t idx, const char *id);

/* The id of feature idx (borrowed, lives as long as w); NULL if not set. */
const char *cv_workload_feature_id(const cv_workload_t *w, size_t idx);

/* Draws the next vote and marks its key in flight.  Returns 1 with *v set,
 * 0 when every key it tried was already in flight (try again after a reply
 * has come back), or CV_ENOMEM. */
int cv_workload_next(cv_workload_t *w, cv_vote_t *v);

/* Ends the vote v (handed out by cv_workload_next and not ended before):
 * frees its key and, for CV_VOTE_STORED, makes its value the key's record. */
void cv_workload_done(cv_workload_t *w, const cv_vote_t *v, cv_vote_fate_t fate);

/* What the cluster must hold for feature idx. */
typedef struct {
    uint64_t up, down, voters;
    uint64_t unknown; /* votes of unknown fate: the counts cannot be checked */
} cv_expect_t;

void cv_workload_expect(const cv_workload_t *w, size_t idx, cv_expect_t *out);

/* Distinct (feature, user) keys touched, and keys in flight now. */
size_t cv_workload_keys(const cv_workload_t *w);
size_t cv_workload_in_flight(const cv_workload_t *w);

#endif
