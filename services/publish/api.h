/* api: the release-manager API on publish's REP socket (DESIGN A7).
 *
 * Each request is one frame holding an AdminRequest; each answer one frame
 * holding an AdminReply.  A REP socket that received a request must answer
 * it before it can receive the next, so every request gets exactly one
 * reply, whatever it holds.  The replies (status, error text):
 *
 *   ranked {cycle, limit, order}
 *     cycle "" / "latest"  the last closed cycle's stored list;
 *                          NOT_FOUND "no cycle has closed yet" when none
 *     cycle "N" (decimal)  cycle N's stored list;
 *                          NOT_FOUND "cycle N is not closed" otherwise
 *     cycle "live"         the open cycle ranked now from every shard's live
 *                          standings (closed_at_ms 0, scheduled_at_ms = the
 *                          due time or 0); UNAVAILABLE "shard I did not
 *                          answer within T ms" when a shard is silent
 *     other cycle          INVALID "bad cycle 'x' (a number, latest or live)"
 *     limit                0 = every entry, K = the first K (total_votes
 *                          still counts the whole list)
 *     order "" / "score"   the list as stored: for a closed cycle with no
 *                          limit cutting it, the RankedList bytes are exactly
 *                          the stored (and broadcast) bytes
 *     order "wilson"       re-sorted at pull time, ranks renumbered, and
 *                          prev_rank taken from the previous cycle's list
 *                          re-sorted the same way
 *     order "trending"     INVALID "order 'trending' is not available yet
 *                          (score, wilson)"
 *     other order          INVALID "unknown order 'x' (score, trending,
 *                          wilson)"
 *   cycles                 CycleList: every closed cycle in order, then the
 *                          open one (state "open", scheduled_at_ms = its due
 *                          time or 0)
 *   close                  CycleInfo of the cycle just closed, or the close's
 *                          error (e.g. UNAVAILABLE "shard 1 did not answer
 *                          within 5000 ms"; the cycle then stays open)
 *   no operation set       INVALID "request has no operation (ranked, cycles
 *                          or close)"
 *   undecodable bytes, or more than one frame
 *                          INVALID "undecodable request"
 *
 * AdminRequest.app_key is not checked yet (A9 admin keys are a later issue).
 */
#ifndef PUB_API_H
#define PUB_API_H

#include "cv_bus.h"
#include "cycles.h"

#include <stddef.h>
#include <stdint.h>

/* Answers one request: returns the packed AdminReply in a new buffer the
 * caller frees and sets *len; NULL only when out of memory. */
uint8_t *pub_api_handle(pub_cycles_t *c, const uint8_t *req, size_t reqlen, size_t *len);

/* Receives one request waiting on rep (without blocking) and answers it.
 * Returns 0, CV_EAGAIN when nothing was waiting, or CV_EIO. */
int pub_api_serve(pub_cycles_t *c, cv_sock_t *rep);

#endif
