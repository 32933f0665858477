/* cv_http: a small HTTP server for the services' JSON API and probes.
 *
 * A thin layer over libmicrohttpd (this is the one file that includes
 * microhttpd.h): one server is one MHD daemon with its own polling thread,
 * bound to one address.  Every request is handed, once its body has been
 * read, to the handler on that thread, one request at a time; the handler
 * fills in a response (status, content type, body) and the server sends it.
 * So a handler never runs concurrently with itself, and must not touch the
 * service thread's state: it reads atomics or asks the service over a
 * socket.
 *
 * The server answers on its own, without calling the handler:
 *   a body over CV_HTTP_BODY_MAX (1 MiB)  413 {"status": "INVALID", "error":
 *                                          "request body over 1048576 bytes"}
 *   a handler that produced no body       500 {"status": "INTERNAL", ...}
 *
 * For the services' probes there is a ready-made handler piece,
 * cv_http_probes(), serving /healthz, /readyz and /metrics (DESIGN A3, B3),
 * and cv_http_start_probes() to run a server that serves only those.
 */
#ifndef CV_HTTP_H
#define CV_HTTP_H

#include "cv_metrics.h"

#include <stddef.h>

#define CV_HTTP_BODY_MAX (1024 * 1024)

typedef struct cv_http cv_http_t;

/* One request, borrowed for the duration of the handler call. */
typedef struct {
    const char *method; /* "GET", "POST", ... as sent */
    const char *path;   /* percent-decoded, without the query: "/v1/ranked" */
    const char *body;   /* the body, NUL-terminated ("" when none) */
    size_t body_len;    /* its length (it may hold NUL bytes) */
    void *conn;         /* private: for cv_http_query / cv_http_header */
} cv_http_req_t;

/* What the handler answers.  The server starts it as {status 500, no
 * content type, no body}; the handler sets status, content_type (a static
 * string, e.g. "application/json") and body (malloc'd: the server takes and
 * frees it; body_len is its length, or strlen(body) when left 0).  `allow`,
 * when set (static), is sent as the Allow header (for 405). */
typedef struct {
    int status;
    const char *content_type;
    char *body;
    size_t body_len;
    const char *allow;
} cv_http_resp_t;

typedef void (*cv_http_handler_fn)(void *arg, const cv_http_req_t *req, cv_http_resp_t *resp);

/* Splits a listen address "HOST:PORT" ("[v6addr]:PORT" for IPv6) into host
 * (at most hostcap bytes with the NUL) and port 0-65535.  Returns 0, 1 when
 * text is "off" (no server wanted), or CV_EINVAL. */
int cv_http_parse_addr(const char *text, char *host, size_t hostcap, int *port);

/* Starts a server on host:port (an IP address or a name resolving to one;
 * port 0 picks a free port, see cv_http_port) calling fn(arg, ...) for each
 * request, on the server's own thread.  It listens on that address only.
 * Returns NULL after logging why (cannot resolve, address in use, out of
 * memory). */
cv_http_t *cv_http_start(const char *host, int port, cv_http_handler_fn fn, void *arg);

/* The port the server listens on. */
int cv_http_port(const cv_http_t *h);

/* Stops the server: stops accepting, waits for the handler call in progress
 * (if any) to return, closes every connection and joins the thread.  Safe on
 * NULL and twice; nulls *h_p. */
void cv_http_stop(cv_http_t **h_p);

/* The percent-decoded value of query parameter `name` ("?cycle=3"), or NULL
 * when it is absent or has no '=' ("?cycle").  With a name given twice, the
 * first.  Borrowed: valid during the handler call. */
const char *cv_http_query(const cv_http_req_t *req, const char *name);

/* The value of request header `name` (case-insensitive), or NULL.  Borrowed:
 * valid during the handler call. */
const char *cv_http_header(const cv_http_req_t *req, const char *name);

/* Sets resp to status with a JSON body cv_json_error(cv_status, error)
 * followed by a newline.  Returns 0 or CV_ENOMEM (resp then stays a 500
 * without body, which the server answers with its own text). */
int cv_http_reply_error(cv_http_resp_t *resp, int http_status, int cv_status, const char *error);

/* Sets resp to status with `json` (malloc'd, taken; NULL = out of memory)
 * plus a newline as an application/json body.  Returns 0 or CV_ENOMEM. */
int cv_http_reply_json(cv_http_resp_t *resp, int http_status, char *json);

/* ---- probes --------------------------------------------------------------- */

/* Tells whether the service is ready; on no, writes the reason into why.
 * Called on the HTTP thread: it may only read what is safe to read from
 * there (atomics). */
typedef int (*cv_http_ready_fn)(void *arg, char *why, size_t whylen);

/* Serves the three probe paths, for GET (and HEAD):
 *   /healthz  200 {"status": "ok"}: the process is up and answering
 *   /readyz   200 {"status": "ready"} when ready(arg) says so (or ready is
 *             NULL); else 503 {"status": "UNAVAILABLE", "error": why}
 *   /metrics  200, cv_metrics_render(metrics) (404 when metrics is NULL)
 * and 405 for another method on them.  Returns 1 when req was one of them
 * and resp is filled in, 0 when it was not (resp untouched). */
int cv_http_probes(const cv_http_req_t *req, cv_http_resp_t *resp, cv_metrics_t *metrics,
                   cv_http_ready_fn ready, void *arg);

/* Starts a server (like cv_http_start) that serves the probes and answers
 * 404 {"status": "NOT_FOUND", "error": "no route for GET /x"} to anything
 * else.  metrics and arg are borrowed and must outlive the server. */
cv_http_t *cv_http_start_probes(const char *host, int port, cv_metrics_t *metrics,
                                cv_http_ready_fn ready, void *arg);

#endif
