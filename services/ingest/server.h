/* server: ingest's client side, the TCP protocol of DESIGN A4.
 *
 * The server accepts connections with libuv, splits each byte stream into
 * frames, decodes each Request and passes it through the admission checks
 * (admit.h: rate limits, validation, app keys, rights, user tokens), answers
 * Ping and Hello at once and hands Vote and Submit to the router, whose
 * completion (cv_server_on_result) becomes the Reply.  Replies carry the
 * request's id and go out in completion order, not request order.
 *
 * Per connection:
 *   - a frame with length 0 or over max_frame, or bytes that do not decode
 *     as a Request, get one Reply{request_id 0, BAD_FRAME} and the
 *     connection closes once that reply is written (replies still owed for
 *     earlier requests are dropped);
 *   - a request the admission refuses gets its status and text (INVALID,
 *     UNAUTHENTICATED, FORBIDDEN, RATE_LIMITED), and the connection stays
 *     open;
 *   - the peer's end of stream (shutdown of its write side) stops reading,
 *     and the connection closes after every reply it is owed is written;
 *   - reading pauses while more than 8 MiB of its replies are unsent, or
 *     while 65536 of its commands wait for their shard, and resumes well
 *     below;
 *   - deadlines (limits.h; checked every quarter of the shortest, at most
 *     once a second, so a close comes up to a quarter late):
 *       idle_ms   no frame completed for this long while it is owed
 *                 nothing and holds no partial frame: shut down gracefully
 *                 (FIN after what it was owed);
 *       read_ms   a frame begun and not finished this long after the
 *                 frame's first byte (slowloris: a byte a second does not
 *                 help): closed;
 *       write_ms  replies unsent and not one byte of them taken by the
 *                 socket for this long (a client that never reads): closed,
 *                 its buffers freed;
 *     while ingest itself is not reading a connection (backpressure, the
 *     budget) its idle and read clocks stand still and restart on resume.
 * Across connections, one budget, max_buffered bytes, holds every reply
 * byte not yet written (framed or in the socket's queue) plus 256 bytes per
 * command in flight to a shard (limits.h).  Past it every connection stops
 * reading -- so no new work is taken and no new replies are made, except
 * the answers to commands already in flight, which are charged already --
 * until the total is back under three quarters of it.  Who is paused is not
 * chosen: a client that reads nothing is not singled out but cut off by the
 * write deadline, which is what releases the budget it holds.
 * What clients can make ingest hold is therefore bounded by
 *   max_buffered, plus the replies to one 64 KiB read (the over-shoot
 *   before reading stops: a few hundred KiB at most), plus per connection
 *   ~1 KiB of state and its frame reader.  The reader holds the unfinished
 *   frame and the last read, in a buffer under 2 x (max_frame + 64 KiB + 4)
 *   (256 KiB with the defaults) right after a read; the sweep then frees it
 *   when no frame is unfinished, or cuts it down to the unfinished frame's
 *   bytes (under 2 x (max_frame + 4): 128 KiB with the defaults, for a
 *   frame all but complete), and read_ms ends any unfinished frame.
 * So with the defaults: 256 MiB + max_connections x ~1 KiB, rising towards
 * max_connections x 128 KiB only while clients hold nearly whole frames
 * unfinished, for at most read_ms.
 * A connection that goes away with commands in flight is kept (not its
 * socket) until the router has completed them; their replies are dropped.
 *
 * Replies produced during one loop turn are written with one uv_write per
 * connection by cv_server_flush(), called once per turn after the router's
 * flush.
 */
#ifndef CV_INGEST_SERVER_H
#define CV_INGEST_SERVER_H

#include "admit.h"
#include "router.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct cv_server cv_server_t;

typedef struct {
    const char *listen;     /* "host:port", "[v6addr]:port"; host may be a name */
    size_t max_frame;       /* payload bytes per frame, both directions */
    size_t max_connections; /* past this, accept, answer UNAVAILABLE, close */
    uint64_t idle_ms;       /* no complete frame, nothing owed: shut down (0: never) */
    uint64_t read_ms;       /* a frame begun and not finished: close (0: never) */
    uint64_t write_ms;      /* unsent replies stuck: close (0: never) */
    size_t max_buffered;    /* budget in bytes across connections before reading pauses (0: none) */
    cv_router_t *router;    /* borrowed; must outlive the server's handles */
    cv_admit_t *admit;      /* borrowed; must outlive the server */
} cv_server_opts_t;

/* Binds and listens.  Returns NULL after logging why (bad address, address
 * in use, out of memory); then no handle was left open. */
cv_server_t *cv_server_new(uv_loop_t *loop, const cv_server_opts_t *opts);

/* The router's done callback (cv_router_opts_t.done); owner is the
 * connection that sent the request. */
void cv_server_on_result(void *owner, uint64_t request_id, int op, const cv_router_result_t *res);

/* Writes the replies produced during this turn.  Call once per loop turn,
 * after cv_router_flush() (a uv_check handle). */
void cv_server_flush(cv_server_t *s);

/* Starts a graceful stop: closes the listener and stops reading from every
 * connection; each connection then closes as soon as every command it sent
 * is answered and the answers are written.  Idempotent. */
void cv_server_drain(cv_server_t *s);

/* Closes the listener and every connection now; unwritten replies are lost.
 * Idempotent. */
void cv_server_close(cv_server_t *s);

/* True once every handle of the server has finished closing. */
bool cv_server_closed(const cv_server_t *s);

/* Open client connections. */
size_t cv_server_connections(const cv_server_t *s);

/* Bytes charged to the budget now (unsent replies, commands in flight;
 * limits.h): what the max_buffered bound is checked against. */
size_t cv_server_buffered(const cv_server_t *s);

/* Frees the server.  cv_server_closed() must be true.  Connections still
 * referenced by the router are not the server's to free (the router frees
 * them through cv_server_on_result), so destroy the router's pending work
 * first (cv_router_close).  Safe on NULL and twice; nulls *s_p. */
void cv_server_destroy(cv_server_t **s_p);

#endif
