/* cv_http: an HTTP server over libmicrohttpd (see cv_http.h).
 *
 * MHD runs one internal polling thread per server (MHD_USE_INTERNAL_POLLING_
 * THREAD, no thread pool), so the handler is called for one request at a
 * time.  MHD calls the access handler several times per request: first with
 * the headers only, then once per chunk of body, then with no data when the
 * body is complete.  The per-request state (con_cls) collects the body; the
 * handler runs on the last call.  A body over the limit is refused with 413
 * at the first call when Content-Length announces it (MHD then sends no
 * "100 Continue" and closes the connection after the answer); a chunked body
 * that grows past the limit is read to its end and thrown away, because MHD
 * only accepts a response before the body or after all of it.
 *
 * The polling thread is started with every signal blocked, so the process's
 * signals (SIGTERM, SIGINT) keep going to the threads that wait for them.
 */
#include "cv_http.h"
#include "cv_codec.h"
#include "cv_err.h"
#include "cv_json.h"
#include "cv_log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* Connections at once, and how long an idle one is kept (seconds). */
#define HTTP_CONN_MAX 64
#define HTTP_IDLE_S 30

struct cv_http {
    struct MHD_Daemon *daemon;
    cv_http_handler_fn fn;
    void *arg;
    int port;
    /* for cv_http_start_probes */
    cv_metrics_t *metrics;
    cv_http_ready_fn ready;
    void *ready_arg;
};

/* One request in progress. */
typedef struct {
    char *body;
    size_t len, cap;
    int too_big;
} conn_state_t;

static const char nomem_body[] = "{\"status\": \"INTERNAL\", \"error\": \"out of memory\"}\n";

/* ---- addresses ------------------------------------------------------------ */

int cv_http_parse_addr(const char *text, char *host, size_t hostcap, int *port)
{
    if (!strcmp(text, "off"))
        return 1;
    const char *colon, *h = text;
    size_t hlen;
    if (*text == '[') {
        const char *close = strchr(text, ']');
        if (!close || close[1] != ':')
            return CV_EINVAL;
        h = text + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(text, ':');
        if (!colon || strchr(text, ':') != colon)
            return CV_EINVAL; /* an IPv6 address needs its brackets */
        hlen = (size_t)(colon - text);
    }
    if (hlen == 0 || hlen >= hostcap)
        return CV_EINVAL;
    const char *p = colon + 1;
    long v = 0;
    if (!*p || strlen(p) > 5)
        return CV_EINVAL;
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return CV_EINVAL;
        v = v * 10 + (*p - '0');
    }
    if (v > 65535)
        return CV_EINVAL;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *port = (int)v;
    return 0;
}

/* ---- responses ------------------------------------------------------------ */

int cv_http_reply_json(cv_http_resp_t *resp, int http_status, char *json)
{
    if (!json)
        return CV_ENOMEM;
    size_t n = strlen(json);
    char *body = realloc(json, n + 2);
    if (!body) {
        free(json);
        return CV_ENOMEM;
    }
    body[n] = '\n';
    body[n + 1] = '\0';
    free(resp->body);
    resp->status = http_status;
    resp->content_type = "application/json";
    resp->body = body;
    resp->body_len = n + 1;
    return 0;
}

int cv_http_reply_error(cv_http_resp_t *resp, int http_status, int cv_status, const char *error)
{
    return cv_http_reply_json(resp, http_status, cv_json_error(cv_status, error));
}

static enum MHD_Result queue(struct MHD_Connection *conn, const cv_http_resp_t *r)
{
    struct MHD_Response *resp;
    int status = r->status;
    if (r->body) {
        resp = MHD_create_response_from_buffer(r->body_len, r->body, MHD_RESPMEM_MUST_FREE);
        if (!resp)
            free(r->body);
    } else {
        /* The handler (or the body's allocation) ran out of memory. */
        status = MHD_HTTP_INTERNAL_SERVER_ERROR;
        resp = NULL;
    }
    if (!resp) {
        status = MHD_HTTP_INTERNAL_SERVER_ERROR;
        resp = MHD_create_response_from_buffer(sizeof nomem_body - 1, (void *)nomem_body,
                                               MHD_RESPMEM_PERSISTENT);
        if (!resp)
            return MHD_NO; /* MHD closes the connection */
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    } else {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                r->content_type ? r->content_type : "text/plain; charset=utf-8");
        if (r->allow)
            MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r->allow);
    }
    enum MHD_Result rc = MHD_queue_response(conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return rc;
}

static enum MHD_Result queue_too_big(struct MHD_Connection *conn)
{
    char text[64];
    snprintf(text, sizeof text, "request body over %d bytes", CV_HTTP_BODY_MAX);
    cv_http_resp_t r = {.status = 500};
    cv_http_reply_error(&r, MHD_HTTP_CONTENT_TOO_LARGE, CV_ST_INVALID, text);
    return queue(conn, &r);
}

/* ---- requests ------------------------------------------------------------- */

const char *cv_http_query(const cv_http_req_t *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *cv_http_header(const cv_http_req_t *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

/* Appends a chunk of body; over the limit, marks the request and drops it. */
static void body_append(conn_state_t *st, const char *data, size_t n)
{
    if (st->too_big)
        return;
    if (n > CV_HTTP_BODY_MAX - st->len) {
        st->too_big = 1;
        free(st->body);
        st->body = NULL;
        st->len = st->cap = 0;
        return;
    }
    if (st->len + n + 1 > st->cap) {
        size_t cap = st->cap ? st->cap : 1024;
        while (cap < st->len + n + 1)
            cap *= 2;
        char *b = realloc(st->body, cap);
        if (!b) {
            /* Answered as a 500 when the body is complete. */
            st->too_big = -1;
            free(st->body);
            st->body = NULL;
            st->len = st->cap = 0;
            return;
        }
        st->body = b;
        st->cap = cap;
    }
    memcpy(st->body + st->len, data, n);
    st->len += n;
    st->body[st->len] = '\0';
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size, void **con_cls)
{
    cv_http_t *h = cls;
    conn_state_t *st = *con_cls;
    if (!st) {
        if (!(st = calloc(1, sizeof *st)))
            return MHD_NO;
        *con_cls = st;
        const char *cl =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > CV_HTTP_BODY_MAX) {
            st->too_big = 1;
            return queue_too_big(conn);
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        body_append(st, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (st->too_big > 0)
        return queue_too_big(conn);
    cv_http_resp_t resp = {.status = MHD_HTTP_INTERNAL_SERVER_ERROR};
    if (st->too_big == 0) {
        cv_http_req_t req = {.method = method,
                             .path = url,
                             .body = st->body ? st->body : "",
                             .body_len = st->len,
                             .conn = conn};
        h->fn(h->arg, &req, &resp);
    }
    if (resp.body && resp.body_len == 0)
        resp.body_len = strlen(resp.body);
    return queue(conn, &resp);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    conn_state_t *st = *con_cls;
    if (!st)
        return;
    free(st->body);
    free(st);
    *con_cls = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char text[512];
    vsnprintf(text, sizeof text, fmt, ap);
    for (char *p = text; *p; p++)
        if (*p == '"' || *p == '\n' || *p == '\r')
            *p = *p == '"' ? '\'' : ' ';
    cv_log(CV_LOG_WARN, "msg=\"http server\" detail=\"%s\"", text);
}

/* ---- the server ----------------------------------------------------------- */

static int http_listen(cv_http_t *h, const char *host, int port)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    int gai = getaddrinfo(host, NULL, &hints, &ai);
    if (gai != 0 || !ai) {
        cv_log(CV_LOG_ERROR, "msg=\"http: cannot resolve the listen address\" host=\"%s\" err=\"%s\"",
               host, gai_strerror(gai));
        return CV_EINVAL;
    }
    struct sockaddr_storage addr;
    memset(&addr, 0, sizeof addr);
    memcpy(&addr, ai->ai_addr, ai->ai_addrlen);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6) {
        ((struct sockaddr_in6 *)&addr)->sin6_port = htons((uint16_t)port);
        flags |= MHD_USE_IPv6;
    } else {
        ((struct sockaddr_in *)&addr)->sin_port = htons((uint16_t)port);
    }
    freeaddrinfo(ai);

    /* The polling thread inherits the mask in force when it is created. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    h->daemon = MHD_start_daemon(
        /* The logger first, so that MHD reports nothing on its own. */
        flags, (uint16_t)port, NULL, NULL, on_request, h, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log,
        h, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr, MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, h, MHD_OPTION_CONNECTION_LIMIT, (unsigned)HTTP_CONN_MAX,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTP_IDLE_S, MHD_OPTION_END);
    int err = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (!h->daemon) {
        cv_log(CV_LOG_ERROR, "msg=\"http: cannot listen\" host=\"%s\" port=%d err=\"%s\"", host,
               port, strerror(err));
        return CV_EIO;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info && info->port ? info->port : port;
    return 0;
}

cv_http_t *cv_http_start(const char *host, int port, cv_http_handler_fn fn, void *arg)
{
    cv_http_t *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->fn = fn;
    h->arg = arg;
    if (http_listen(h, host, port) < 0) {
        free(h);
        return NULL;
    }
    return h;
}

int cv_http_port(const cv_http_t *h)
{
    return h->port;
}

void cv_http_stop(cv_http_t **h_p)
{
    if (!h_p || !*h_p)
        return;
    MHD_stop_daemon((*h_p)->daemon);
    free(*h_p);
    *h_p = NULL;
}

/* ---- probes --------------------------------------------------------------- */

static int is_get(const char *method)
{
    return !strcmp(method, "GET") || !strcmp(method, "HEAD");
}

int cv_http_probes(const cv_http_req_t *req, cv_http_resp_t *resp, cv_metrics_t *metrics,
                   cv_http_ready_fn ready, void *arg)
{
    const char *p = req->path;
    if (strcmp(p, "/healthz") && strcmp(p, "/readyz") && strcmp(p, "/metrics"))
        return 0;
    if (!is_get(req->method)) {
        char text[96];
        snprintf(text, sizeof text, "method %.16s is not allowed on %s (use GET)", req->method, p);
        cv_http_reply_error(resp, MHD_HTTP_METHOD_NOT_ALLOWED, CV_ST_INVALID, text);
        resp->allow = "GET, HEAD";
        return 1;
    }
    if (!strcmp(p, "/healthz")) {
        cv_http_reply_json(resp, MHD_HTTP_OK, cv_json_status("ok"));
    } else if (!strcmp(p, "/readyz")) {
        char why[256] = "not ready";
        if (!ready || ready(arg, why, sizeof why))
            cv_http_reply_json(resp, MHD_HTTP_OK, cv_json_status("ready"));
        else
            cv_http_reply_error(resp, MHD_HTTP_SERVICE_UNAVAILABLE, CV_ST_UNAVAILABLE, why);
    } else if (!metrics) {
        cv_http_reply_error(resp, MHD_HTTP_NOT_FOUND, CV_ST_NOT_FOUND, "no metrics here");
    } else {
        size_t len = 0;
        char *text = cv_metrics_render(metrics, &len);
        if (text) {
            resp->status = MHD_HTTP_OK;
            resp->content_type = CV_METRICS_CONTENT_TYPE;
            resp->body = text;
            resp->body_len = len;
        }
    }
    return 1;
}

static void probes_only(void *arg, const cv_http_req_t *req, cv_http_resp_t *resp)
{
    cv_http_t *h = arg;
    if (cv_http_probes(req, resp, h->metrics, h->ready, h->ready_arg))
        return;
    char text[160];
    snprintf(text, sizeof text, "no route for %.16s %.100s", req->method, req->path);
    cv_http_reply_error(resp, MHD_HTTP_NOT_FOUND, CV_ST_NOT_FOUND, text);
}

cv_http_t *cv_http_start_probes(const char *host, int port, cv_metrics_t *metrics,
                                cv_http_ready_fn ready, void *arg)
{
    cv_http_t *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->fn = probes_only;
    h->arg = h;
    h->metrics = metrics;
    h->ready = ready;
    h->ready_arg = arg;
    if (http_listen(h, host, port) < 0) {
        free(h);
        return NULL;
    }
    return h;
}
