/* backend_pg: the loadgen's PostgreSQL peer (see backend.h, bench/README.md).
 *
 * The store (created by prepare when missing):
 *   votes(feature text, user_id text, value smallint,
 *         primary key (feature, user_id))   the vote as state, one row per
 *                                           (feature, user); 0 = retracted
 *   counters(feature text primary key, up bigint, down bigint)
 *   cv_vote(feature, user, value) -> boolean   a plpgsql function: locks the
 *       user's row (or inserts it, INSERT ... ON CONFLICT DO NOTHING, going
 *       round again if another session inserted it first), returns false
 *       when the value is unchanged, else stores it and upserts the
 *       feature's counters by the difference (INSERT ... ON CONFLICT DO
 *       UPDATE), and returns true (the VoteAck's `changed`).
 * Each vote is one `SELECT cv_vote($1, $2, $3)` followed by a Sync, so each
 * is its own transaction, committed (synchronous_commit as the server is
 * set: bench/run.sh keeps it on) before its reply is read.  A Submit
 * inserts the feature's counters row under an id the back end makes.
 *
 * Connections are non-blocking libpq connections in pipeline mode on the
 * run's libuv loop (a uv_poll on libpq's socket), with up to --depth
 * statements in flight, each with its own Sync.  --server is host:port or a
 * libpq connection string ("host=... port=... user=... dbname=...").
 *
 * Verification reads every counters row, with the number of non-zero
 * votes rows per feature as its voters.
 */
#ifndef CV_LOADGEN_BACKEND_PG_H
#define CV_LOADGEN_BACKEND_PG_H

#include "backend.h"

extern const char CV_PG_SCHEMA[];
extern const cv_backend_t cv_backend_pg;

#endif
