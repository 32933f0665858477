/* http: publish's HTTP API (DESIGN A3 port P+80, A7), JSON and CSV.
 *
 * The HTTP server runs on its own thread (cv_http) and never touches
 * publish's state: each API request becomes one packed AdminRequest sent
 * over a ZeroMQ REQ socket, owned by the HTTP thread, to the same REP
 * socket the CLI uses (bound also to PUB_HTTP_ADMIN_ENDPOINT, inproc, in the
 * same context), and the AdminReply is rendered with cv_json.  So every
 * action behaves exactly as over ZeroMQ, one request at a time.
 *
 * Routes (JSON answers end with a newline, like the CLI's):
 *   GET  /v1/ranked?cycle=&limit=&order=&format=json|csv  ranked list
 *   GET  /v1/cycles                          {"cycles": [...]}
 *   POST /v1/cycles/close                    the closed cycle's object
 *   GET  /v1/features                        {"features": [...]}
 *   GET  /v1/features/ID                     the feature, history and ranks
 *   POST /v1/features/ID/status              body {"status": "shipped",
 *                                            "release": "2026.11.27"}
 *   POST /v1/features/SRC/merge              body {"into": "DST"}
 *   GET  /v1/features/ID/voters?after=&limit=  one page of voters
 *   GET  /healthz, /readyz (503 until the store is open), /metrics
 * Publish's status maps to HTTP: OK 200, INVALID 400, UNAUTHENTICATED 401,
 * FORBIDDEN 403, NOT_FOUND 404, CLOSED 409, RATE_LIMITED 429, INTERNAL 500,
 * UNAVAILABLE 503.  The server itself answers a wrong method 405 (with
 * Allow), an unknown path 404, a bad query parameter or body 400, a bad
 * Authorization header 401, no answer from publish within the timeout 503;
 * every error as {"status": "...", "error": "..."}.  An `Authorization:
 * Bearer KEY` header becomes AdminRequest.app_key (A9).
 *
 * One thread serves everything, so a slow action (a close waits for every
 * shard) holds up the requests behind it, /healthz included, for at most
 * the timeout.
 */
#ifndef PUB_HTTP_H
#define PUB_HTTP_H

#include "cv_bus.h"
#include "cv_metrics.h"

#define PUB_HTTP_ADMIN_ENDPOINT "inproc://canvass-admin"

typedef struct pub_http pub_http_t;

typedef struct {
    const char *host;     /* listen address (cv_http_parse_addr) */
    int port;
    cv_bus_t *bus;        /* the process's context: inproc needs the same one */
    const char *endpoint; /* the REP socket, normally PUB_HTTP_ADMIN_ENDPOINT */
    long timeout_ms;      /* how long a request waits for publish's answer */
    cv_metrics_t *metrics; /* borrowed: /metrics, and the request counters */
} pub_http_opts_t;

/* Starts the server.  It answers /readyz 503 and API requests 503 until
 * pub_http_set_ready(h, 1).  Returns NULL after logging why. */
pub_http_t *pub_http_start(const pub_http_opts_t *opts);

/* Marks publish ready (its store is open and its REP socket served) or not
 * (stopping).  Any thread. */
void pub_http_set_ready(pub_http_t *h, int ready);

/* The port the server listens on. */
int pub_http_port(const pub_http_t *h);

/* Stops the server (a request waiting for publish gives up within 100 ms
 * and is answered 503) and closes the REQ socket, so call it before the
 * context is destroyed.  Safe on NULL and twice; nulls *h_p. */
void pub_http_stop(pub_http_t **h_p);

#endif
