/* cv_votes: the on-disk records of a tally shard and the vote-is-state rule.
 *
 * A shard's LMDB environment (DESIGN B1) holds four tables:
 *
 *   votes     key  feature_id bytes, one '\0', user_id bytes
 *             val  cv_vote_rec_t, CV_VOTE_REC_SIZE bytes:
 *                    [0]    int8  value (-1 down, 0 retracted, +1 up)
 *                    [1]    uint8 tier (CV_TIER_*)
 *                    [2..9] uint64 little-endian ordering stamp (cv_id)
 *   features  key  feature_id   val  packed canvass.v1.FeatureRecord
 *   tallies   key  feature_id   val  cv_counts_t, CV_COUNTS_REC_SIZE bytes:
 *                    up[0..2], down[0..2], voters: seven uint64
 *                    little-endian, tiers indexed as in cv_codec.h
 *   meta      key  "shard" | "shards" | "cycle" | "schema"
 *             val  uint64 little-endian (CV_U64_SIZE bytes)
 *
 * Feature ids never contain '\0' (they are [A-Za-z0-9_-]), so the first NUL
 * of a votes key always splits it, whatever bytes the user id holds, and all
 * votes of one feature are adjacent in key order.
 *
 * A retracted vote stays stored with value 0 and its stamp, so that a late
 * resend of an older vote cannot bring it back.  The counters of a feature
 * are kept equal to a recount of its non-zero votes: cv_counts_move() is the
 * one place that changes them.
 */
#ifndef CV_VOTES_H
#define CV_VOTES_H

#include "cv_codec.h"
#include "cv_validate.h"

#include <stddef.h>
#include <stdint.h>

#define CV_VOTE_REC_SIZE 10
#define CV_COUNTS_REC_SIZE 56
#define CV_U64_SIZE 8
#define CV_VOTE_KEY_MAX (CV_FEATURE_ID_MAX + 1 + CV_USER_ID_MAX)
#define CV_VOTES_SCHEMA 1 /* the layout above; meta "schema" */

typedef struct {
    int8_t value;   /* -1, 0, +1 */
    uint8_t tier;   /* CV_TIER_* */
    uint64_t stamp; /* hybrid-clock stamp of the command that set it */
} cv_vote_rec_t;

typedef struct {
    uint64_t up[CV_TIERS];
    uint64_t down[CV_TIERS];
    uint64_t voters; /* distinct users with a non-zero vote */
} cv_counts_t;

/* What storing a vote over the current record does (cv_vote_decide). */
typedef enum {
    CV_VOTE_STALE,  /* the stored stamp is as new or newer: store nothing */
    CV_VOTE_SAME,   /* same vote: store the newer stamp, counters unchanged */
    CV_VOTE_CHANGE  /* store it and move the counters */
} cv_vote_outcome_t;

/* Writes r into out (CV_VOTE_REC_SIZE bytes). */
void cv_vote_rec_encode(const cv_vote_rec_t *r, uint8_t out[CV_VOTE_REC_SIZE]);

/* Reads a vote record.  Returns 0, or CV_EDECODE when len is not
 * CV_VOTE_REC_SIZE, the value is not -1/0/+1 or the tier is unknown (r is
 * then untouched). */
int cv_vote_rec_decode(const void *buf, size_t len, cv_vote_rec_t *r);

/* Writes c into out (CV_COUNTS_REC_SIZE bytes). */
void cv_counts_encode(const cv_counts_t *c, uint8_t out[CV_COUNTS_REC_SIZE]);

/* Reads a counters record.  Returns 0 or CV_EDECODE (wrong length). */
int cv_counts_decode(const void *buf, size_t len, cv_counts_t *c);

/* Little-endian uint64, the meta values. */
void cv_u64_encode(uint64_t v, uint8_t out[CV_U64_SIZE]);
/* Returns 0 and sets *v, or CV_EDECODE when len is not CV_U64_SIZE. */
int cv_u64_decode(const void *buf, size_t len, uint64_t *v);

/* Builds the votes key of (feature, user) into out and sets *klen.  Returns
 * 0, or CV_EINVAL when the feature id is not 1..CV_FEATURE_ID_MAX bytes
 * without NUL or the user id is not 1..CV_USER_ID_MAX bytes.  The shard checks
 * this even though ingest validates, because a key LMDB cannot hold would fail
 * a whole group commit rather than one vote. */
int cv_vote_key_make(const char *feature, size_t flen, const char *user, size_t ulen,
                     uint8_t out[CV_VOTE_KEY_MAX], size_t *klen);

/* Splits a votes key at its first NUL.  Returns 0 and sets the four outputs
 * (borrowed from key, not NUL-terminated), or CV_EDECODE when there is no NUL
 * or either part is empty. */
int cv_vote_key_split(const void *key, size_t klen, const char **feature, size_t *flen,
                      const char **user, size_t *ulen);

/* Decides what storing vote `next` does given the stored record `old` (NULL
 * when there is none).  A vote whose stamp is not newer than the stored one
 * is CV_VOTE_STALE.  Equal value and tier is CV_VOTE_SAME; a retract over a
 * retract (or over nothing) is CV_VOTE_SAME whatever the tiers, since a
 * retracted vote counts in no tier. */
cv_vote_outcome_t cv_vote_decide(const cv_vote_rec_t *old, const cv_vote_rec_t *next);

/* Moves c from counting `old` (NULL: none) to counting `next` (NULL: none):
 * a non-zero old vote leaves its tier's up or down count and the voters, a
 * non-zero new one joins them.  Returns 0, or CV_EINVAL when a count would
 * drop below zero (the counters were already out of step with the votes;
 * that count is left at 0). */
int cv_counts_move(cv_counts_t *c, const cv_vote_rec_t *old, const cv_vote_rec_t *next);

/* True when both hold the same counts. */
int cv_counts_equal(const cv_counts_t *a, const cv_counts_t *b);

#endif
