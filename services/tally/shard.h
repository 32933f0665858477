/* shard: the vote store of one tally shard (DESIGN A4 guarantees, A5, A7,
 * B1, B3).
 *
 * A shard owns one cv_store environment with the tables described in
 * cv_votes.h.  It applies the writes of one drain of its socket -- CmdBatch
 * messages (votes and creates) and the release-manager changes set_status,
 * merge_out and merge_in -- in a single write transaction (group commit), so
 * the caller can answer every request of the group once cv_shard_apply() has
 * returned: nothing is acknowledged before it is committed.  A full map is
 * grown and the group run again from the start, so it never fails a vote.
 *
 * The shard id and shard count are recorded in `meta` when the store is
 * created and checked at every open (B3: the count is fixed for the life of a
 * cluster).  `meta` also holds the open release cycle (1 on a new store) and
 * when it opened.
 *
 * Closing cycle N (A5: its standings frozen at that instant) happens in one
 * write transaction that takes the standings, stores them packed in `closed`
 * under N and opens N+1.  Closing N again -- publish retrying after another
 * shard failed, a publish restarted between attempts, a close ZeroMQ queued
 * for a shard that restarted -- answers exactly those stored bytes, never
 * the standings of now, which hold votes of N+1.  The last
 * CV_SHARD_CLOSED_KEEP closed cycles are kept; a repeat close of an older
 * one, or of one closed before schema 3, finds nothing stored and answers
 * the current standings (logged as a warning).
 *
 * Every created feature is also listed in the `created` index (cv_votes.h),
 * in the order its creation was committed, for publish's `created` events
 * (DESIGN A6), read with the created query below.
 *
 * Feature lifecycle.  A feature is created "open" with one history entry
 * {open, created_ms}.  set_status moves it among open, planned, in_progress,
 * shipped and declined and appends {status, at_ms, release} to its history;
 * setting the status and release it already has changes nothing.  Votes on
 * shipped and declined features are refused with CLOSED; setting such a
 * feature back to open re-opens it.  "merged" is reached only by a merge.
 *
 * Merging SRC into DST (each step idempotent, see proto MergeOut/MergeIn):
 * merge_out marks SRC merged into DST on SRC's shard and returns every vote
 * record SRC holds, retracts included; merge_in on DST's shard gives DST
 * each moved vote unless DST holds a non-zero vote of that user or a record
 * at least as new.  SRC keeps its own votes and counters (it leaves the
 * ranking because it is merged), so --check holds on every shard.  A vote
 * for a merged feature stores nothing and is acknowledged OK with
 * redirect_to = feature_id = the merge target; the sender re-routes it.
 *
 * Trending (cv_votes.h): every vote that changes a feature's up - down in a
 * tier adds its weighted change to the feature's gains of the open cycle.
 * Votes moved in by merge_in were not gained in this cycle and add nothing.
 * Every FeatureStanding the shard reports carries trend[0..2] as of the
 * moment it was taken (Standings.at_ms); the standings answering a close
 * report the trend of the cycle just closed.
 *
 * Not thread-safe: one thread uses a shard.
 */
#ifndef TALLY_SHARD_H
#define TALLY_SHARD_H

#include "cv_codec.h"
#include "cv_store.h"

#include <stddef.h>
#include <stdint.h>

/* The store's tables, in the order cv_shard_tables names them. */
enum {
    CV_SHARD_VOTES,
    CV_SHARD_FEATURES,
    CV_SHARD_TALLIES,
    CV_SHARD_META,
    CV_SHARD_TRENDS,
    CV_SHARD_CLOSED,
    CV_SHARD_CREATED,
    CV_SHARD_LOG,
    CV_SHARD_NTABLES
};

/* Defaults and limits of the lifecycle and queries. */
#define CV_SHARD_HALF_LIFE_MS (259200ULL * 1000) /* 3 days */
#define CV_SHARD_RELEASE_MAX 128                 /* bytes of a release name */
#define CV_SHARD_VOTERS_LIMIT 100                /* voters per page by default */
#define CV_SHARD_VOTERS_MAX 1000                 /* voters per page at most */
#define CV_SHARD_CREATED_LIMIT 100               /* created features per page by default */
#define CV_SHARD_CREATED_MAX 1000                /* created features per page at most */
#define CV_SHARD_CLOSED_KEEP 4                   /* closed cycles whose standings are kept */
#define CV_SHARD_INDEX_BATCH 100000              /* logged votes indexed at once by default */
#define CV_SHARD_INDEX_SHARE 8       /* ...or 1/8 of the stored votes when that is more */
#define CV_SHARD_INDEX_MAX 400000    /* ...but never more than this many */

extern const char *const cv_shard_tables[CV_SHARD_NTABLES];

typedef struct cv_shard cv_shard_t;

/* A TallyReply built by the shard, with every string and array it points
 * to.  Its corr is the request's. */
typedef struct cv_shard_reply cv_shard_reply_t;

/* One write request of a group and what it produced: either a CmdBatch and
 * its acks, or a change (a TallyRequest holding set_status, merge_out or
 * merge_in) and its reply. */
typedef struct {
    const Canvass__V1__CmdBatch *batch;      /* in: borrowed, must outlive the acks;
                                                NULL for a change */
    const Canvass__V1__TallyRequest *change; /* in: borrowed, when batch is NULL */
    Canvass__V1__ShardAck *acks;             /* out: batch->n_cmds acks, owned */
    Canvass__V1__ShardAck **ack_ptrs;        /* out: pointers to them, for AckBatch */
    cv_shard_reply_t *reply;                 /* out: the change's reply, owned */
} cv_shard_job_t;

/* Opens (creating when missing) the shard store in dir as shard `shard` of
 * `shards`, with the given durability and initial map size in bytes.
 * Returns 0 and sets *out; CV_EMISMATCH when the store was created for
 * another shard id or count, or by a newer schema (a one-line reason is then
 * written to why); or CV_EIO / CV_ENOMEM (logged). */
int cv_shard_open(const char *dir, uint32_t shard, uint32_t shards, cv_durability_t durability,
                  size_t map_bytes, cv_shard_t **out, char *why, size_t whylen);

/* Closes the store (flushing it first when durability is "os"); safe on
 * NULL and twice; nulls *shard_p. */
void cv_shard_close(cv_shard_t **shard_p);

/* The open release cycle, and when it opened (wall-clock ms). */
uint64_t cv_shard_cycle(const cv_shard_t *s);
uint64_t cv_shard_opened_ms(const cv_shard_t *s);

/* Sets the trending half-life (default CV_SHARD_HALF_LIFE_MS); ms > 0. */
void cv_shard_set_half_life(cv_shard_t *s, uint64_t ms);

/* Replaces the wall clock (cv_now_ms) the shard reads for trends, status
 * changes without a time and standings; for tests.  NULL restores it. */
void cv_shard_set_clock(cv_shard_t *s, uint64_t (*now_ms)(void));

/* Applies every job of jobs[0..njobs) in order, in one write transaction,
 * and commits.  On return 0 the group is durable; every batch job's
 * acks/ack_ptrs hold one ShardAck per command (same seq, same order) and
 * every change job's reply is set.  A command or change that cannot be
 * applied (unknown feature, closed feature, invalid fields) gets its status
 * and error text in its ack or reply; it does not fail the group.  Returns
 * CV_EIO or CV_ENOMEM when the group could not be committed: then nothing of
 * it is stored and neither acks nor replies are set.  Call
 * cv_shard_job_release() on every job afterwards, whatever the result.
 *
 * Votes (ShardAck):
 *   OK, changed, feature_id, cycle           stored (changed = false when the
 *                                            stored vote already said so or
 *                                            the stamp is not newer)
 *   OK, redirect_to = feature_id = DST       the feature was merged into DST:
 *                                            nothing stored
 *   NOT_FOUND "no feature 'ID'"
 *   CLOSED    "feature 'ID' is shipped" | "feature 'ID' is declined"
 *   INVALID   cv_validate_vote's text, or
 *             "vote on feature 'ID' has no ordering stamp"
 *   INTERNAL  "feature 'ID' is merged but names no target" (damaged record)
 *
 * set_status (reply: feature = the standing after the change):
 *   INVALID   "set_status.feature_id must be 1-64 bytes of [A-Za-z0-9_-]"
 *             "unknown status 'x'" (not open, planned, in_progress, shipped,
 *             declined)
 *             "status 'merged' is set only by merging"
 *             "release must be at most 128 bytes of UTF-8"
 *             "feature 'ID' was merged into 'DST'; its status cannot change"
 *   NOT_FOUND "no feature 'ID'"
 *   at_ms 0 means now.
 *
 * merge_out (reply: merge = {src, dst, votes: every record of SRC, retracts
 * (value 0) included, in user order, with tier and stamp}):
 *   INVALID   "merge_out.src must be 1-64 bytes of [A-Za-z0-9_-]" (or .dst)
 *             "cannot merge feature 'ID' into itself"
 *             "feature 'SRC' was already merged into 'OTHER'"
 *   NOT_FOUND "no feature 'SRC'"
 *   SRC already merged into DST: nothing changes, the votes are returned.
 *
 * merge_in (reply: merge = {src, dst, moved, kept}):
 *   INVALID   "merge_in.dst must be 1-64 bytes of [A-Za-z0-9_-]" (or .src)
 *             "cannot merge feature 'ID' into itself"
 *             "merge_in vote N: <reason>" (a bad user id, value or tier;
 *             nothing is applied)
 *             "feature 'DST' was merged into 'X'; merge into 'X' instead"
 *   NOT_FOUND "no feature 'DST'"
 *   moved = votes DST took in this run; kept = non-zero moved votes of users
 *   DST already had a different non-zero vote from.  A vote DST already
 *   holds with the same stamp (an earlier run, or a redirected resend)
 *   counts in neither, so a re-run reports moved 0 and changes nothing. */
int cv_shard_apply(cv_shard_t *s, cv_shard_job_t *jobs, size_t njobs);

/* Frees what cv_shard_apply() put in the job (not the batch or change). */
void cv_shard_job_release(cv_shard_job_t *job);

/* Closes cycle `cycle`: the open cycle becomes max(open, cycle + 1), so
 * closing the same cycle again is harmless.  When it does open a new cycle,
 * that cycle's start is opened_at_ms, or now when opened_at_ms is 0, and the
 * standings of the cycle closed are stored in `closed` in the same
 * transaction (the close answer below is what uses them).  Committed before
 * it returns.  Returns 0, CV_EIO or CV_ENOMEM. */
int cv_shard_close_cycle(cv_shard_t *s, uint64_t cycle, uint64_t opened_at_ms);

/* Answers a request that is not a write of the group, after the group's
 * commit so that it sees it: close, standings (live), feature (one
 * FeatureStanding), voters (one VoterPage) or created (one CreatedPage).
 * Returns 0 and sets *out to the reply, whose status may be
 *   NOT_FOUND "no feature 'ID'" (feature, voters)
 *   INVALID   "feature.feature_id must be 1-64 bytes of [A-Za-z0-9_-]",
 *             "voters.feature_id ...", "voters.after must be at most 128 bytes"
 * or CV_EIO / CV_ENOMEM; CV_EINVAL for any other op (a bug).
 *
 * Close N: when N is the open cycle (or a later one), closes it as
 * cv_shard_close_cycle() does and answers the standings taken in that same
 * transaction, with the trend of the cycle closed and Standings.cycle = the
 * cycle it opened.  When N is already closed, answers the standings stored
 * at its first close, byte for byte (so Standings.cycle and at_ms are those
 * of that close); when none are stored (older than the last
 * CV_SHARD_CLOSED_KEEP closes, or closed before schema 3), the current
 * standings with the trend of N, logged as a warning.
 *
 * Voters: the feature's non-zero votes in user-id (byte) order, starting
 * after the user `after` ("" = from the start), at most `limit` (0 = 100,
 * more than 1000 = 1000); next_after is the last user returned when more
 * remain, "" otherwise; total is the feature's voters counter.
 *
 * Created: the records of the features whose index stamp (cv_votes.h) is
 * greater than `after`, in index order (the order their creations were
 * committed), at most `limit` (0 = 100, more than 1000 = 1000); `last` is
 * the index stamp of the last one returned (`after` when none), and `more`
 * is set when more follow.  Index stamps only grow, so a reader that asks
 * again with after = last misses no feature, whenever its creation is
 * committed, and sees none twice.  An index entry whose record cannot be
 * read (damage, which --check reports) is skipped, logged, and counted in
 * `last` so that the reader moves past it. */
int cv_shard_answer(cv_shard_t *s, const Canvass__V1__TallyRequest *req, cv_shard_reply_t **out);

/* The reply message; valid until cv_shard_reply_destroy(). */
const Canvass__V1__TallyReply *cv_shard_reply_msg(const cv_shard_reply_t *r);

/* Frees the reply; safe on NULL and twice; nulls *r_p. */
void cv_shard_reply_destroy(cv_shard_reply_t **r_p);

/* Standings: every feature with its record, counters and trend in the open
 * cycle, as of one read transaction (Standings.at_ms = now).  The message and everything it points
 * to belong to the cv_standings_t. */
typedef struct cv_standings cv_standings_t;

/* Builds the standings.  Returns 0 and sets *out, or CV_EIO / CV_ENOMEM. */
int cv_shard_standings(cv_shard_t *s, cv_standings_t **out);

/* The Standings message; valid until cv_standings_destroy(). */
const Canvass__V1__Standings *cv_standings_msg(const cv_standings_t *st);

/* Frees the standings; safe on NULL and twice; nulls *st_p. */
void cv_standings_destroy(cv_standings_t **st_p);

/* Sets how many logged votes the overlay holds before they are written to
 * the votes table in one sorted batch (docs/STORAGE.md) -- at least; a
 * larger store indexes 1/CV_SHARD_INDEX_SHARE of its stored votes at once,
 * up to CV_SHARD_INDEX_MAX, so that the pages a batch rewrites stay few per
 * vote as the store grows; 0 turns the log off
 * and writes every vote to the tables in its own group, as schema 3 did.
 * Settles what is logged first.  Returns 0 or a store error. */
int cv_shard_set_index_batch(cv_shard_t *s, size_t votes);

/* Called when the shard's socket has been quiet: indexes the logged votes,
 * so that a restart replays little and offline tools read the tables.
 * Returns 0 or a store error. */
int cv_shard_idle(cv_shard_t *s);

/* Clears stale reader slots of crashed readers; returns how many. */
int cv_shard_reader_check(cv_shard_t *s);

/* Opens an existing shard store without checking its meta, for the offline
 * tools.  Returns NULL (with a reason on stderr) when dir holds no store or
 * it cannot be opened.  Close with cv_store_close(). */
cv_store_t *cv_shard_store_open_existing(const char *dir);

#endif
