/* router: ingest's side of the tally shards (DESIGN B1).
 *
 * The router turns validated Vote and Submit requests into ShardCmds for the
 * owning shard, stamps each with the hybrid clock when it first arrives, and
 * keeps it in a pending table until that shard's ShardAck for its seq comes
 * back.  Everything queued during one event-loop turn goes to a shard as one
 * TallyRequest (cv_router_flush, called once per turn from a uv_check
 * handle).  A command still unacknowledged after resend_ms is sent again
 * with the same seq and stamp (harmless: a vote is state and the stamp
 * orders it) if its shard has been silent for resend_ms or has answered a
 * later request without acking it; a shard that is answering but still
 * behind is not sent more work.  After deadline_ms the owner is told
 * UNAVAILABLE and the command is forgotten, so a later ack for it is
 * ignored, as is a duplicate ack.
 *
 * A vote acknowledged with redirect_to (its feature was merged) is sent on,
 * same stamp and same deadline, to the shard owning the merge target, for
 * at most 4 hops; then it completes with INTERNAL "merge chain of 'ID' is
 * too long" (ID = the feature the client voted for).  Its result names the
 * feature that finally took the vote.
 *
 * Every command accepted by cv_router_send() is completed exactly once
 * through the done callback: by its ack, by the deadline, or by
 * cv_router_abort().  The callback may call back into the router.
 *
 * One DEALER socket per shard; ZeroMQ is driven from the libuv loop through
 * each socket's (edge-triggered) notification fd.
 */
#ifndef CV_INGEST_ROUTER_H
#define CV_INGEST_ROUTER_H

#include "cv_bus.h"
#include "cv_codec.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct cv_router cv_router_t;

/* The outcome of one command, borrowed for the duration of the callback. */
typedef struct {
    cv_status_t status;
    const char *error;      /* "" when status is OK */
    const char *feature_id; /* vote: the feature holding the vote (the merge
                               target when merged); submit: the new id */
    bool changed;           /* vote only */
    uint64_t cycle;         /* vote only: the open cycle */
} cv_router_result_t;

/* op is CANVASS__V1__REQUEST__OP_VOTE or _SUBMIT. */
typedef void (*cv_router_done_fn)(void *owner, uint64_t request_id, int op,
                                  const cv_router_result_t *res);

typedef struct {
    const char *const *endpoints; /* shard i's ROUTER, in shard order */
    uint32_t nshards;             /* >= 1 */
    uint32_t node;                /* 0..CV_NODE_MAX, for stamps and feature ids */
    uint64_t resend_ms;           /* resend a command unacknowledged this long */
    uint64_t deadline_ms;         /* answer UNAVAILABLE after this long */
    cv_router_done_fn done;
} cv_router_opts_t;

/* Creates the router: one DEALER per shard connected to its endpoint, a poll
 * handle on each and the resend timer, all on loop.  Returns NULL after
 * logging why (a bad endpoint, out of memory). */
cv_router_t *cv_router_new(uv_loop_t *loop, cv_bus_t *bus, const cv_router_opts_t *opts);

/* Takes a validated request whose op is vote or submit and queues its
 * ShardCmd for the next flush.  On success the router owns *req_p (freed
 * after completion) and sets it to NULL; `owner` and the request id are
 * handed to the done callback later, never from within this call.  Returns
 * 0, CV_EINVAL (another op; a bug), CV_ECLOSED (the router is closing) or
 * CV_ENOMEM; on failure *req_p stays the caller's and done is never called. */
int cv_router_send(cv_router_t *r, Canvass__V1__Request **req_p, void *owner);

/* Sends what was queued this turn (one TallyRequest per shard) and drains
 * every socket's replies.  Call once per event-loop turn, after the poll
 * phase (a uv_check handle). */
void cv_router_flush(cv_router_t *r);

/* Commands accepted and not yet completed. */
size_t cv_router_pending(const cv_router_t *r);

/* Completes every pending command at once with UNAVAILABLE and `why` (used
 * when shutdown cannot wait any longer). */
void cv_router_abort(cv_router_t *r, const char *why);

/* Closes the router's libuv handles (the sockets stay until destroy) and
 * refuses further commands.  Pending commands are aborted first.  The loop
 * must then run until the close callbacks have fired. */
void cv_router_close(cv_router_t *r);

/* Frees the router and closes its sockets.  cv_router_close() must have been
 * called and the loop run since.  Safe on NULL and twice; nulls *r_p. */
void cv_router_destroy(cv_router_t **r_p);

#endif
