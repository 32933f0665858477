/* cv_votes: the on-disk records of a tally shard and the vote-is-state rule.
 *
 * A shard's LMDB environment (DESIGN B1) holds eight tables:
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
 *   trends    key  feature_id   val  cv_trend_t, CV_TREND_REC_SIZE bytes:
 *                    cycle, base_ms: two uint64 little-endian, then
 *                    gain[0..2]: IEEE-754 binary64 bit patterns as uint64
 *                    little-endian
 *   closed    key  cycle number, uint64 big-endian (CV_BE64_SIZE bytes,
 *                  so key order is cycle order)
 *             val  packed canvass.v1.Standings: exactly what the shard
 *                  answered the first CloseCycle of that cycle with, so that
 *                  a repeated close answers the same standings; only the
 *                  last few closed cycles are kept (shard.h)
 *   created   key  index stamp, uint64 big-endian, then feature_id bytes
 *                  (cv_created_key_make)
 *             val  empty
 *   log       key  record number, uint64 big-endian, from 1 after each
 *                  indexing
 *             val  one committed group's votes, not yet written to votes,
 *                  tallies and trends (format in services/tally/overlay.c);
 *                  empty whenever the shard is stopped cleanly or idle
 *   meta      key  "shard" | "shards" | "cycle" | "opened_ms" | "schema" |
 *                  "created_last"
 *             val  uint64 little-endian (CV_U64_SIZE bytes); opened_ms is
 *             when the open cycle began (wall-clock ms); created_last is
 *             the largest index stamp in `created`
 *
 * The created index lists every feature in the order its creation was
 * committed, for publish's `created` events.  A feature's index stamp is its
 * creation stamp (the ordering stamp of the submit), raised to
 * created_last + 1 when it is not larger than that: stamps from several
 * ingest nodes, or a late resend, can reach a shard out of stamp order, and
 * a reader that remembers the last index stamp it saw must never miss a
 * feature committed after it looked.  So index stamps strictly increase in
 * commit order (each is unique in the shard), and a feature's index stamp
 * is its creation stamp in the common case and never less than it.
 *
 * Feature ids never contain '\0' (they are [A-Za-z0-9_-]), so the first NUL
 * of a votes key always splits it, whatever bytes the user id holds, and all
 * votes of one feature are adjacent in key order.
 *
 * A retracted vote stays stored with value 0 and its stamp, so that a late
 * resend of an older vote cannot bring it back.  The counters of a feature
 * are kept equal to a recount of its non-zero votes: cv_counts_move() is the
 * one place that changes them.
 *
 * Trending.  A feature's trend in tier t is the net votes it gained in the
 * open cycle (each change of up[t] - down[t]), every change weighted by
 * 2^-(age / half-life):
 *
 *   trend_t(at) = sum over changes i of d_i * 2^-((at - ms_i) / half_life)
 *               = gain_t * 2^-((at - base_ms) / half_life)
 *   where gain_t = sum of d_i * 2^((ms_i - base_ms) / half_life).
 *
 * The record keeps gain_t relative to base_ms, which starts at the cycle's
 * opening, so the stored numbers stay small: a weekly cycle with a 3-day
 * half-life keeps every weight below 2^3.  Only when a change would weigh
 * more than 2^CV_TREND_REBASE (a cycle left open for many half-lives) is the
 * record moved to a later base, which changes no trend value.  A record of
 * another cycle than the open one counts as no gain.
 *
 * Schema 2 added the trends table, meta "opened_ms" and the status history
 * in FeatureRecord; a schema-1 store is read as is (no trend yet, no
 * history) and marked schema 2 when opened.  Schema 3 added the closed and
 * created tables and meta "created_last"; an older store is read as is (a
 * repeated close of a cycle closed before the upgrade finds no frozen
 * standings, and features created before it are not in the index) and
 * marked schema 3 when opened.  Schema 4 added the log table; an older
 * store has no log to replay and is marked schema 4 when opened (so an
 * older binary, which would ignore the log, refuses it).
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
#define CV_TREND_REC_SIZE 40
#define CV_BE64_SIZE 8
#define CV_VOTE_KEY_MAX (CV_FEATURE_ID_MAX + 1 + CV_USER_ID_MAX)
#define CV_CREATED_KEY_MAX (CV_BE64_SIZE + CV_FEATURE_ID_MAX)
#define CV_VOTES_SCHEMA 4    /* the layout above; meta "schema" */
#define CV_TREND_REBASE 32.0 /* largest weight exponent before a rebase */

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

/* A feature's trending gains in one cycle (see above). */
typedef struct {
    uint64_t cycle;        /* the cycle the gains belong to */
    uint64_t base_ms;      /* wall-clock ms the gains are relative to */
    double gain[CV_TIERS]; /* per tier, as defined above */
} cv_trend_t;

/* What storing a vote over the current record does (cv_vote_decide). */
typedef enum {
    CV_VOTE_STALE, /* the stored stamp is as new or newer: store nothing */
    CV_VOTE_SAME,  /* same vote: store the newer stamp, counters unchanged */
    CV_VOTE_CHANGE /* store it and move the counters */
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

/* Big-endian uint64, the keys of the closed and created tables (LMDB
 * compares keys bytewise, so these sort numerically). */
void cv_be64_encode(uint64_t v, uint8_t out[CV_BE64_SIZE]);
uint64_t cv_be64_decode(const uint8_t in[CV_BE64_SIZE]);

/* Builds the created key of (index stamp, feature) into out and sets *klen.
 * Returns 0, or CV_EINVAL when the feature id is not 1..CV_FEATURE_ID_MAX
 * bytes. */
int cv_created_key_make(uint64_t stamp, const char *feature, size_t flen,
                        uint8_t out[CV_CREATED_KEY_MAX], size_t *klen);

/* Splits a created key.  Returns 0 and sets *stamp and the feature id
 * (borrowed from key, not NUL-terminated), or CV_EDECODE when the key is
 * not 8 bytes followed by 1..CV_FEATURE_ID_MAX bytes. */
int cv_created_key_split(const void *key, size_t klen, uint64_t *stamp, const char **feature,
                         size_t *flen);

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

/* Writes tr into out (CV_TREND_REC_SIZE bytes). */
void cv_trend_encode(const cv_trend_t *tr, uint8_t out[CV_TREND_REC_SIZE]);

/* Reads a trend record.  Returns 0, or CV_EDECODE when len is not
 * CV_TREND_REC_SIZE or a gain is not a finite number (tr is then
 * untouched). */
int cv_trend_decode(const void *buf, size_t len, cv_trend_t *tr);

/* Adds to tr what the change from `old` (NULL: none) to `next` (NULL: none)
 * does to each tier's up - down, weighted as a change made at vote_ms
 * (wall-clock ms) with the given half-life (> 0), rebasing tr first when the
 * weight would pass 2^CV_TREND_REBASE.  The caller has already started tr
 * for the open cycle. */
void cv_trend_add(cv_trend_t *tr, const cv_vote_rec_t *old, const cv_vote_rec_t *next,
                  uint64_t vote_ms, uint64_t half_life_ms);

/* Tier t's trend at at_ms (wall-clock ms) with the given half-life (> 0).
 * A time before tr->base_ms (a clock that stepped back) counts as base_ms,
 * so a trend never grows with time. */
double cv_trend_at(const cv_trend_t *tr, int tier, uint64_t at_ms, uint64_t half_life_ms);

#endif
