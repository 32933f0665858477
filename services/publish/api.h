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
 *     order "trending" / "wilson"
 *                          re-sorted at pull time (docs/ORDERS.md), ranks
 *                          renumbered, and prev_rank taken from the
 *                          previous cycle's list re-sorted the same way;
 *                          every entry keeps its weighted score in `score`
 *                          (trend in `trend`)
 *     other order          INVALID "unknown order 'x' (score, trending,
 *                          wilson)"
 *   cycles                 CycleList: every closed cycle in order, then the
 *                          open one (state "open", scheduled_at_ms = its due
 *                          time or 0)
 *   close                  CycleInfo of the cycle just closed, or the close's
 *                          error (e.g. UNAVAILABLE "shard 1 did not answer
 *                          within 5000 ms"; the cycle then stays open)
 *
 *   Feature actions (features.c, merges.c).  Common to them:
 *     INVALID "bad feature id 'x' (1-64 bytes of [A-Za-z0-9_-])"
 *     NOT_FOUND "no feature 'ID'" (the owning shard's answer)
 *     UNAVAILABLE "shard I did not answer within T ms"
 *     a shard's INVALID / CLOSED refusal, in the shard's words
 *   feature_show {feature_id}
 *                          feature = FeatureDetail{standing (record with its
 *                          status history, counters, trend now), ranks (its
 *                          rank, score, up, down in every closed cycle that
 *                          ranked it, oldest first), live_rank, live_score
 *                          (in the live score list; 0 when not ranked)};
 *                          the live list needs every shard: UNAVAILABLE when
 *                          one is silent
 *   feature_status {feature_id, status, release}
 *                          feature = FeatureDetail after the change (as
 *                          show; live_rank 0 when a shard is silent, the
 *                          change being committed).  Setting the status and
 *                          release the feature already has changes nothing
 *                          and broadcasts nothing; a change broadcasts
 *                          "feature" + FeatureEvent{kind "shipped" (status
 *                          shipped) or "status", feature_id, status,
 *                          release, voters = users to notify, at_ms, title}.
 *     INVALID "use merge to merge a feature" (status merged)
 *     INVALID "unknown status 'x' (open, planned, in_progress, shipped,
 *             declined)"
 *     INVALID "a release is only given with status shipped"
 *     INVALID "release must be at most 128 bytes of UTF-8" (the shard)
 *     INVALID "feature 'ID' was merged into 'DST'; its status cannot
 *             change" (the shard)
 *   feature_merge {src, dst}
 *                          merge = MergeResult{src, dst, moved, kept}; see
 *                          merges.h for every reply and the broadcast
 *   feature_voters {feature_id, after, limit}
 *                          voters = VoterPage{feature_id, voters (user order,
 *                          non-zero votes, after `after`), next_after ("" on
 *                          the last page), total}; limit 0 = 100, at most
 *                          1000 (the shard's paging)
 *     INVALID "voters.after must be at most 128 bytes" (the shard)
 *   features {}            features = FeatureTable: every feature of every
 *                          shard, whatever its status, by feature id
 *                          (bytewise); UNAVAILABLE when a shard is silent
 *
 *   no operation set       INVALID "request has no operation (ranked,
 *                          cycles, close, feature_show, feature_status,
 *                          feature_merge, feature_voters or features)"
 *   undecodable bytes, or more than one frame
 *                          INVALID "undecodable request"
 *
 * With app keys (pub_api_set_keys), every request is first checked for
 * AdminRequest.app_key of an app with the admin right (cv_auth_check_key):
 *   UNAUTHENTICATED "no app key: this cluster needs one (app keys are in use)"
 *   UNAUTHENTICATED "unknown app key"
 *   FORBIDDEN "app 'NAME' may not use the release-manager API (needs the
 *             admin right)"
 * Over HTTP the key is the "Authorization: Bearer KEY" header (http.h).
 */
#ifndef PUB_API_H
#define PUB_API_H

#include "cv_auth.h"
#include "cv_bus.h"
#include "cycles.h"
#include "features.h"

#include <stddef.h>
#include <stdint.h>

/* Requires an admin key on every request from now on (keys borrowed, must
 * outlive the API's use); NULL, the default, leaves the API open. */
void pub_api_set_keys(const cv_auth_t *keys);

/* Answers one request: returns the packed AdminReply in a new buffer the
 * caller frees and sets *len; NULL only when out of memory. */
uint8_t *pub_api_handle(pub_cycles_t *c, pub_features_t *f, const uint8_t *req, size_t reqlen,
                        size_t *len);

/* Receives one request waiting on rep (without blocking) and answers it.
 * Returns 0, CV_EAGAIN when nothing was waiting, or CV_EIO. */
int pub_api_serve(pub_cycles_t *c, pub_features_t *f, cv_sock_t *rep);

#endif
