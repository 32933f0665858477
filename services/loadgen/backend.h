/* backend: the kinds of server the loadgen can drive, behind one interface.
 *
 * run.c drives connections; a back end says how one connection talks to its
 * kind of server.  Every back end keeps conn.h's contract, so the run, the
 * vote stream, the pipelining, the retries and the report are the same
 * whichever server is measured:
 *   - it asks its owner for the next request whenever it has room
 *     (ops.next fills a canvass.v1 Request holding a Vote or a Submit) and
 *     keeps at most `depth` requests in flight;
 *   - it answers each with a canvass.v1 Reply (ops.reply): OK with a VoteAck
 *     (changed) or a Submitted (feature id), UNAVAILABLE when the request
 *     was not carried out and may be sent again, INTERNAL when its fate is
 *     unknown;
 *   - when its connection fails it hands the requests in flight back
 *     (ops.lost), says so (ops.event CV_CONN_DOWN) and reconnects by itself
 *     after a back-off.
 * Callbacks name the connection by its index (the owner's number for it).
 *
 * The back ends:
 *   canvass   conn.c: the client protocol to ingest (DESIGN A4);
 *   redis     backend_redis.c: one EVALSHA of a Lua script per vote;
 *   postgres  backend_pg.c: one transaction per vote, libpq pipeline mode.
 * See bench/README.md for what the peers store and why it is the same work.
 */
#ifndef CV_LOADGEN_BACKEND_H
#define CV_LOADGEN_BACKEND_H

#include "conn.h"
#include "report.h"
#include "verify.h"
#include "workload.h"

#include <stdbool.h>
#include <stdio.h>
#include <uv.h>

typedef struct {
    void *(*next)(void *ctx, unsigned conn, Canvass__V1__Request *msg);
    void (*reply)(void *ctx, unsigned conn, void *req, const Canvass__V1__Reply *rep);
    void (*lost)(void *ctx, unsigned conn, void *req);
    void (*event)(void *ctx, unsigned conn, cv_conn_event_t ev, const char *why);
} cv_link_ops_t;

typedef struct {
    const char *server;       /* the back end's address form (see cv_backend_t.server_help) */
    unsigned depth;           /* 1..CV_CONN_DEPTH_MAX */
    unsigned index;           /* the owner's number for it */
    const char *app_key;      /* canvass only; NULL or "": no Hello */
    const cv_link_ops_t *ops; /* borrowed */
    void *ctx;
} cv_link_opts_t;

typedef struct {
    const char *name;           /* "canvass", "redis", "postgres" */
    const char *default_server; /* used when --server is empty */

    /* Once before the run: checks that the server answers and sets up what
     * every connection relies on (tables, functions).  NULL when there is
     * nothing to do.  Returns 0, or a CV_E* code with why filled in. */
    int (*prepare)(const char *server, char *why, size_t whylen);

    /* A connection, idle until started; NULL when out of memory or when
     * server cannot be parsed or resolved (logged). */
    void *(*conn_new)(uv_loop_t *loop, const cv_link_opts_t *opts);
    void (*start)(void *conn);
    /* Sends requests (ops.next) until depth are in flight or none is left. */
    void (*fill)(void *conn);
    /* Closes for good; requests in flight stay the owner's, no callback
     * runs afterwards.  The loop must run on until every handle closed. */
    void (*stop)(void *conn);
    /* Frees a stopped connection whose handles have closed.  Safe on NULL
     * and twice; nulls *conn_p. */
    void (*destroy)(void **conn_p);

    /* Compares the store's counters for every named feature of w with w's
     * record; same contract as cv_verify (verify.h).  server is this back
     * end's address; canvass asks publish (vo->publish) instead. */
    int (*verify)(const char *server, const cv_verify_opts_t *vo, const cv_workload_t *w,
                  cv_report_t *rep, FILE *out);
} cv_backend_t;

/* The back end called name, or NULL. */
const cv_backend_t *cv_backend_find(const char *name);

/* What a peer's store holds for one feature. */
typedef struct {
    bool found;               /* false: the store has nothing for it */
    uint64_t up, down, voters;
} cv_counts_t;

/* Compares have[i] (one per workload feature) with w's record for every
 * named feature, printing one "verify: ..." line per difference on out and
 * filling rep's verify fields; extra_bad is added to the mismatches (the
 * caller's own checks).  A feature the store has nothing for matches a
 * record of no votes.  Returns 0 or CV_EMISMATCH. */
int cv_backend_compare(const cv_workload_t *w, const cv_counts_t *have, uint64_t extra_bad,
                       cv_report_t *rep, FILE *out);

/* Writes a new feature id into out[32], for the peers, which have no ids of
 * their own: unique to this process and to the call. */
void cv_backend_feature_id(char out[32]);

/* Splits "host:port" (or "[v6addr]:port") into host (NUL-terminated,
 * hostcap bytes) and *port.  Returns 0 or CV_EINVAL. */
int cv_backend_split_hostport(const char *server, char *host, size_t hostcap, int *port);

/* The back-off before reconnect attempt `failures` (1, 2, ...): 50 ms
 * doubling to 2 s, as conn.c. */
unsigned cv_backend_backoff_ms(unsigned failures);

#endif
