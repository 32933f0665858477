/* shard: the vote store of one tally shard (DESIGN A4 guarantees, B1, B3).
 *
 * A shard owns one cv_store environment with the tables described in
 * cv_votes.h.  It applies the CmdBatch messages of one drain of its socket in
 * a single write transaction (group commit), so the caller can acknowledge
 * every command of the group once cv_shard_apply() has returned: nothing is
 * acknowledged before it is committed.  A full map is grown and the group run
 * again from the start, so it never fails a vote.
 *
 * The shard id and shard count are recorded in `meta` when the store is
 * created and checked at every open (B3: the count is fixed for the life of a
 * cluster).  `meta` also holds the open release cycle, 1 on a new store.
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
enum { CV_SHARD_VOTES, CV_SHARD_FEATURES, CV_SHARD_TALLIES, CV_SHARD_META, CV_SHARD_NTABLES };
extern const char *const cv_shard_tables[CV_SHARD_NTABLES];

typedef struct cv_shard cv_shard_t;

/* One CmdBatch of a group and the acks computed for it. */
typedef struct {
    const Canvass__V1__CmdBatch *batch; /* in: borrowed, must outlive the acks */
    Canvass__V1__ShardAck *acks;        /* out: batch->n_cmds acks, owned */
    Canvass__V1__ShardAck **ack_ptrs;   /* out: pointers to them, for AckBatch */
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

/* The open release cycle. */
uint64_t cv_shard_cycle(const cv_shard_t *s);

/* Applies every command of jobs[0..njobs) in order, in one write
 * transaction, and commits.  On return 0 every job's acks/ack_ptrs hold one
 * ShardAck per command (same seq, same order), and the group is durable.  A
 * command that cannot be applied (unknown feature, closed feature, invalid
 * fields) gets its status and error text in its ack; it does not fail the
 * group.  Returns CV_EIO or CV_ENOMEM when the group could not be committed:
 * then nothing of it is stored and the acks are not set.  Call
 * cv_shard_job_release() on every job afterwards, whatever the result. */
int cv_shard_apply(cv_shard_t *s, cv_shard_job_t *jobs, size_t njobs);

/* Frees what cv_shard_apply() put in the job (not the batch). */
void cv_shard_job_release(cv_shard_job_t *job);

/* Closes cycle `cycle`: the open cycle becomes max(open, cycle + 1), so
 * closing the same cycle again is harmless.  Committed before it returns.
 * Returns 0, CV_EIO or CV_ENOMEM. */
int cv_shard_close_cycle(cv_shard_t *s, uint64_t cycle);

/* Standings: every feature with its record and counters, as of one read
 * transaction.  The message and everything it points to belong to the
 * cv_standings_t. */
typedef struct cv_standings cv_standings_t;

/* Builds the standings.  Returns 0 and sets *out, or CV_EIO / CV_ENOMEM. */
int cv_shard_standings(cv_shard_t *s, cv_standings_t **out);

/* The Standings message; valid until cv_standings_destroy(). */
const Canvass__V1__Standings *cv_standings_msg(const cv_standings_t *st);

/* Frees the standings; safe on NULL and twice; nulls *st_p. */
void cv_standings_destroy(cv_standings_t **st_p);

/* Clears stale reader slots of crashed readers; returns how many. */
int cv_shard_reader_check(cv_shard_t *s);

/* Opens an existing shard store without checking its meta, for the offline
 * tools.  Returns NULL (with a reason on stderr) when dir holds no store or
 * it cannot be opened.  Close with cv_store_close(). */
cv_store_t *cv_shard_store_open_existing(const char *dir);

#endif
