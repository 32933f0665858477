/* conn: one pipelined client connection to ingest (DESIGN A4), with libuv.
 *
 * A connection carries up to `depth` requests at a time.  It asks its owner
 * for the next request whenever it has room (ops.next), gives each a
 * request_id of its own, writes all the frames gathered in one go with a
 * single write, and matches each Reply to its request by id, in whatever
 * order replies come (ops.reply).  Requests stay the owner's: a connection
 * only borrows them while they are in flight.
 *
 * When the connection fails (refused, reset, closed by the server, a reply
 * that does not decode) every request in flight is handed back (ops.lost),
 * the owner is told (ops.event CV_CONN_DOWN), and the connection reconnects
 * by itself after a back-off of 50 ms doubling to 2 s.  With an app key, the
 * first request on every new connection is a Hello; a Hello refused by the
 * server is reported as CV_CONN_REFUSED and the connection stays up.
 *
 * Callbacks run on the loop thread, from inside the connection's own libuv
 * callbacks; the owner may call cv_conn_fill on other connections and
 * cv_conn_stop on any connection (this one included) from them.
 */
#ifndef CV_LOADGEN_CONN_H
#define CV_LOADGEN_CONN_H

#include "cv_codec.h"

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#define CV_CONN_DEPTH_MAX 4096

typedef struct cv_conn cv_conn_t;

typedef enum {
    CV_CONN_UP,      /* connected (again) */
    CV_CONN_DOWN,    /* connection lost or refused; why says how */
    CV_CONN_REFUSED, /* the server answered the Hello with an error; why is it */
    CV_CONN_STRAY    /* a reply whose request_id matches nothing in flight */
} cv_conn_event_t;

typedef struct {
    /* The next request to send on c, or NULL when there is none now.  Fills
     * msg's op (request_id is the connection's); every pointer put into msg
     * must stay valid until the next call. */
    void *(*next)(void *ctx, cv_conn_t *c, Canvass__V1__Request *msg);
    /* The reply to req, which is the owner's again.  rep is freed on return. */
    void (*reply)(void *ctx, cv_conn_t *c, void *req, const Canvass__V1__Reply *rep);
    /* req was in flight when c was lost; it is the owner's again. */
    void (*lost)(void *ctx, cv_conn_t *c, void *req);
    void (*event)(void *ctx, cv_conn_t *c, cv_conn_event_t ev, const char *why);
} cv_conn_ops_t;

typedef struct {
    const struct sockaddr *addr; /* copied */
    unsigned depth;              /* 1..CV_CONN_DEPTH_MAX */
    unsigned index;              /* the owner's number for it */
    const char *app_key;         /* NULL or "": no Hello; else borrowed, must outlive c */
    const cv_conn_ops_t *ops;    /* borrowed */
    void *ctx;
} cv_conn_opts_t;

/* Creates an idle connection; NULL when out of memory or on bad options. */
cv_conn_t *cv_conn_new(uv_loop_t *loop, const cv_conn_opts_t *opts);

/* Starts connecting.  Idempotent while connecting or connected. */
void cv_conn_start(cv_conn_t *c);

/* Sends requests (ops.next) until depth are in flight or the owner has no
 * more.  Does nothing unless connected. */
void cv_conn_fill(cv_conn_t *c);

/* Closes the connection for good.  Requests in flight stay the owner's and
 * are not handed back; no callback runs afterwards.  Idempotent. */
void cv_conn_stop(cv_conn_t *c);

/* True once cv_conn_stop was called and every handle has closed. */
bool cv_conn_closed(const cv_conn_t *c);

unsigned cv_conn_index(const cv_conn_t *c);
unsigned cv_conn_in_flight(const cv_conn_t *c);

/* Resolves "host:port" or "[v6addr]:port" (the host may be a name; this
 * blocks) into *out.  Returns 0 or CV_EINVAL (logged). */
int cv_conn_resolve(uv_loop_t *loop, const char *server, struct sockaddr_storage *out);

/* Frees the connection; cv_conn_closed must be true.  Safe on NULL and
 * twice; nulls *c_p. */
void cv_conn_destroy(cv_conn_t **c_p);

#endif
