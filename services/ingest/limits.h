/* limits: the deadlines and the memory budget that bound what a client can
 * make ingest hold (DESIGN A9; server.h says what a client sees of them).
 *
 * Pure bookkeeping on a caller's clock (nanoseconds, uv_hrtime in ingest):
 * no sockets, no libuv, so every rule is testable on a fake clock
 * (limits_test.c).  server.c reports what happens to a connection -- bytes
 * read, frames completed, replies made and written, reading paused and
 * resumed, commands routed and answered -- and asks in a periodic sweep
 * which deadline, if any, the connection has passed.
 *
 * The deadlines, per connection:
 *   idle   no frame completed for idle_ms, while the connection is owed
 *          nothing (no command in flight, no reply unsent) and holds no
 *          partial frame;
 *   read   a frame begun (its first byte arrived) and not completed within
 *          read_ms.  Measured from the frame's first byte, never from the
 *          last, so a byte a second (slowloris) cannot keep it alive;
 *   write  replies unsent and no write progress for write_ms: a client that
 *          never reads.  Progress is any byte taken by the socket.
 * The idle and read clocks stop while the server itself is not reading the
 * connection (its backpressure, or the budget below): a client is never cut
 * off for bytes that wait in its socket because ingest chose not to read
 * them.  When reading resumes both clocks start again from then.
 *
 * The budget, process-wide: every byte of reply held for a client (framed
 * but unsent, or handed to the socket and not yet written) and every command
 * in flight to a shard (CV_LIMITS_COMMAND_COST, its request in the router and
 * its reply to come) are charged to one account.  Past max_buffered the
 * server stops reading on every connection, so no new work arrives; reading
 * resumes when the account is back under three quarters of max_buffered.
 * The charge is made when the reply is framed, not when it is written, so
 * the account passes max_buffered by at most what one read callback's
 * requests produce (one 64 KiB read) plus the replies to commands already in
 * flight (which are charged already).
 */
#ifndef CV_INGEST_LIMITS_H
#define CV_INGEST_LIMITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bytes charged per command in flight: its request kept by the router for
 * resends (~150) and the reply it will become (~100). */
#define CV_LIMITS_COMMAND_COST 256

typedef struct {
    uint64_t idle_ms;    /* 0: never */
    uint64_t read_ms;    /* 0: never */
    uint64_t write_ms;   /* 0: never */
    size_t max_buffered; /* bytes; 0: no budget */
} cv_limits_opts_t;

/* The process-wide account.  Fields are read-only outside limits.c. */
typedef struct {
    cv_limits_opts_t opts;
    size_t charged; /* bytes held for clients, see above */
    bool over;      /* reading is paused everywhere */
} cv_limits_t;

/* One connection's clocks.  Fields are read-only outside limits.c. */
typedef struct {
    uint64_t frame_ns;   /* accept, the last completed frame, or reading resumed */
    uint64_t partial_ns; /* first byte of the unfinished frame; 0: none */
    uint64_t write_ns;   /* replies became owed, or last write progress */
    size_t socket_seen;  /* the socket's unwritten bytes at the last sweep */
} cv_limits_conn_t;

/* What the server knows of a connection when it asks cv_limits_check(). */
typedef struct {
    bool open;           /* still taking requests (not draining or finishing) */
    bool reading;        /* the server reads it now */
    bool owed;           /* commands in flight */
    size_t unsent;       /* reply bytes not yet written, framed or in the socket's queue */
    size_t socket_unsent; /* of those, bytes in the socket's queue (uv write_queue_size) */
} cv_limits_state_t;

typedef enum {
    CV_LIMITS_OK = 0,
    CV_LIMITS_IDLE,  /* shut it down gracefully: it is owed nothing */
    CV_LIMITS_READ,  /* close it: a frame was not finished in time */
    CV_LIMITS_WRITE, /* close it and free its replies: it reads nothing */
} cv_limits_verdict_t;

/* Starts an empty account. */
void cv_limits_init(cv_limits_t *l, const cv_limits_opts_t *opts);

/* How often to sweep, in milliseconds: a quarter of the shortest deadline,
 * between 10 and 1000 (1000 with no deadline: the sweep also frees idle
 * buffers). */
uint64_t cv_limits_sweep_ms(const cv_limits_t *l);

/* Adds n bytes to the account.  Returns true when this passed the budget
 * (l->over became true): the caller pauses reading everywhere. */
bool cv_limits_charge(cv_limits_t *l, size_t n);

/* Takes n bytes (charged before) off the account.  Returns true when this
 * brought it back under three quarters of the budget (l->over became false):
 * the caller resumes reading where nothing else holds it back. */
bool cv_limits_refund(cv_limits_t *l, size_t n);

/* A connection was accepted at now. */
void cv_limits_conn_init(cv_limits_conn_t *lc, uint64_t now);

/* Bytes were read at now.  completed: at least one frame was completed;
 * partial: bytes of an unfinished frame are held after it. */
void cv_limits_conn_read(cv_limits_conn_t *lc, uint64_t now, bool completed, bool partial);

/* The server started reading the connection again at now: the idle and
 * read clocks restart. */
void cv_limits_conn_resumed(cv_limits_conn_t *lc, uint64_t now);

/* Replies became owed (unsent went from 0 to more) at now: the write clock
 * starts. */
void cv_limits_conn_owed(cv_limits_conn_t *lc, uint64_t now);

/* A write completed at now: progress. */
void cv_limits_conn_wrote(cv_limits_conn_t *lc, uint64_t now);

/* Which deadline the connection has passed at now, the write deadline
 * first (it frees the most).  Also notes write progress seen in
 * st->socket_unsent since the last call. */
cv_limits_verdict_t cv_limits_check(const cv_limits_t *l, cv_limits_conn_t *lc,
                                    const cv_limits_state_t *st, uint64_t now);

#endif
