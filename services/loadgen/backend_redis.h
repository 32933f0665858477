/* backend_redis: the loadgen's Redis peer (see backend.h, bench/README.md).
 *
 * A vote is one EVALSHA of CV_REDIS_VOTE_SCRIPT, which keeps the vote as
 * state, deduplicated per (feature, user):
 *   votes:<feature>  hash, field user -> its stored value (1 or -1; a
 *                    retraction deletes the field, so HLEN is the voters)
 *   up:<feature>, down:<feature>   counters of stored up and down votes
 *   score            sorted set, member feature, score up - down
 * The script returns 1 when the stored value changed, 0 when it already
 * had this value (the VoteAck's `changed`).  A Submit is one HSETNX of the
 * feature's title into the hash `features`, under an id the back end makes.
 *
 * Connections use hiredis's asynchronous API on the run's libuv loop; each
 * loads the script (SCRIPT LOAD) when it connects, before its first vote,
 * so a restarted server that lost its script cache is served too.  Every
 * command sent in one turn of the loop goes out in one write: --depth is the
 * pipeline depth.  --server is host:port.
 *
 * Verification reads, per feature, up:, down:, HLEN votes: and the feature's
 * score, and also checks that the score equals up - down.
 */
#ifndef CV_LOADGEN_BACKEND_REDIS_H
#define CV_LOADGEN_BACKEND_REDIS_H

#include "backend.h"

extern const char CV_REDIS_VOTE_SCRIPT[];
extern const cv_backend_t cv_backend_redis;

#endif
