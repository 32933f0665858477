/* http: publish's HTTP API (see http.h).
 *
 * Everything here runs on the HTTP thread.  The REQ socket is made on the
 * first request and thrown away after a request that got no answer in time:
 * a REQ socket that sent must receive before it can send again, and the late
 * answer, should it come, then goes to a socket that no longer exists (REP
 * drops it).  The wait is cut into short slices so that a stop is not held
 * up by a request waiting for a publish loop that has already ended.
 */
#include "http.h"
#include "cv_codec.h"
#include "cv_err.h"
#include "cv_http.h"
#include "cv_json.h"
#include "cv_log.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define WAIT_SLICE_MS 100

struct pub_http {
    cv_http_t *server;
    cv_bus_t *bus;
    char *endpoint;
    long timeout_ms;
    cv_metrics_t *metrics;
    cv_sock_t *req;  /* HTTP thread only */
    atomic_int ready;
    atomic_int stopping;
};

/* ---- talking to publish ---------------------------------------------------- */

/* The HTTP status for a publish status. */
static int http_status(int st)
{
    switch (st) {
    case CV_ST_OK:
        return 200;
    case CV_ST_INVALID:
    case CV_ST_BAD_FRAME:
        return 400;
    case CV_ST_UNAUTHENTICATED:
        return 401;
    case CV_ST_FORBIDDEN:
        return 403;
    case CV_ST_NOT_FOUND:
        return 404;
    case CV_ST_CLOSED:
        return 409;
    case CV_ST_RATE_LIMITED:
        return 429;
    case CV_ST_UNAVAILABLE:
        return 503;
    default:
        return 500;
    }
}

static void drop_socket(pub_http_t *h)
{
    cv_sock_destroy(&h->req);
}

/* Sends req to publish and waits for the AdminReply.  Returns the unpacked
 * reply (the caller frees it), or NULL after filling resp with the error. */
static Canvass__V1__AdminReply *ask(pub_http_t *h, Canvass__V1__AdminRequest *req,
                                    cv_http_resp_t *resp)
{
    if (!atomic_load(&h->ready)) {
        cv_http_reply_error(resp, 503, CV_ST_UNAVAILABLE,
                            "publish is not ready (starting, or stopping)");
        return NULL;
    }
    if (!h->req) {
        h->req = cv_sock_new(h->bus, CV_SOCK_REQ);
        if (h->req && cv_sock_connect(h->req, h->endpoint) < 0)
            drop_socket(h);
        if (!h->req) {
            cv_http_reply_error(resp, 500, CV_ST_INTERNAL, "cannot open a socket to publish");
            return NULL;
        }
    }
    size_t len;
    uint8_t *buf = cv_codec_pack(&req->base, &len);
    if (!buf)
        return NULL; /* resp stays a 500 without body: "out of memory" */
    const void *data[1] = {buf};
    size_t size[1] = {len};
    int rc = cv_sock_send(h->req, 1, data, size, 1);
    free(buf);
    if (rc < 0) {
        drop_socket(h);
        cv_http_reply_error(resp, 503, CV_ST_UNAVAILABLE, "cannot reach publish's API socket");
        return NULL;
    }
    cv_parts_t parts = {0};
    rc = CV_EAGAIN;
    for (long waited = 0; rc == CV_EAGAIN && waited < h->timeout_ms && !atomic_load(&h->stopping);
         waited += WAIT_SLICE_MS)
        rc = cv_sock_recv(h->req, &parts, WAIT_SLICE_MS);
    if (rc < 0) {
        drop_socket(h);
        char text[128];
        if (rc == CV_EAGAIN && !atomic_load(&h->stopping))
            snprintf(text, sizeof text, "publish did not answer within %ld ms", h->timeout_ms);
        else
            snprintf(text, sizeof text, "publish is stopping");
        cv_log(CV_LOG_WARN, "msg=\"http: no answer from the API\" err=\"%s\"", text);
        cv_http_reply_error(resp, 503, CV_ST_UNAVAILABLE, text);
        return NULL;
    }
    Canvass__V1__AdminReply *reply =
        parts.n == 1 ? canvass__v1__admin_reply__unpack(NULL, parts.size[0], parts.data[0]) : NULL;
    cv_parts_free(&parts);
    if (!reply)
        cv_http_reply_error(resp, 500, CV_ST_INTERNAL, "undecodable answer from publish");
    return reply;
}

/* Renders an AdminReply: the error, or the result in JSON (CSV for a ranked
 * list when csv). */
static void render(const Canvass__V1__AdminReply *r, int csv, cv_http_resp_t *resp)
{
    if (r->status != CV_ST_OK) {
        cv_http_reply_error(resp, http_status(r->status), r->status,
                            *r->error ? r->error : cv_status_name(r->status));
        return;
    }
    switch (r->result_case) {
    case CANVASS__V1__ADMIN_REPLY__RESULT_RANKED:
        if (csv) {
            char *text = cv_json_ranked_csv(r->ranked);
            if (text) {
                resp->status = 200;
                resp->content_type = "text/csv";
                resp->body = text;
            }
            return;
        }
        cv_http_reply_json(resp, 200, cv_json_ranked(r->ranked));
        return;
    case CANVASS__V1__ADMIN_REPLY__RESULT_CYCLES:
        cv_http_reply_json(resp, 200, cv_json_cycles(r->cycles));
        return;
    case CANVASS__V1__ADMIN_REPLY__RESULT_CLOSED:
        cv_http_reply_json(resp, 200, cv_json_cycle(r->closed));
        return;
    case CANVASS__V1__ADMIN_REPLY__RESULT_FEATURE:
        cv_http_reply_json(resp, 200, cv_json_feature(r->feature));
        return;
    case CANVASS__V1__ADMIN_REPLY__RESULT_MERGE:
        cv_http_reply_json(resp, 200, cv_json_merge(r->merge));
        return;
    case CANVASS__V1__ADMIN_REPLY__RESULT_VOTERS:
        cv_http_reply_json(resp, 200, cv_json_voters(r->voters));
        return;
    case CANVASS__V1__ADMIN_REPLY__RESULT_FEATURES:
        cv_http_reply_json(resp, 200, cv_json_features(r->features));
        return;
    default:
        cv_http_reply_json(resp, 200, cv_json_status("OK"));
        return;
    }
}

/* Forwards req and renders the answer into resp. */
static void call(pub_http_t *h, Canvass__V1__AdminRequest *req, int csv, cv_http_resp_t *resp)
{
    Canvass__V1__AdminReply *reply = ask(h, req, resp);
    if (!reply)
        return;
    render(reply, csv, resp);
    canvass__v1__admin_reply__free_unpacked(reply, NULL);
}

/* ---- request parts ---------------------------------------------------------- */

/* A query parameter as a uint32 ("" or absent: 0).  Returns 0, or -1 after
 * filling resp with a 400. */
static int query_u32(const cv_http_req_t *req, const char *name, uint32_t *out,
                     cv_http_resp_t *resp)
{
    const char *s = cv_http_query(req, name);
    uint64_t v = 0;
    *out = 0;
    if (!s || !*s)
        return 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9' || (v = v * 10 + (uint64_t)(*p - '0')) > UINT32_MAX) {
            char text[160];
            snprintf(text, sizeof text, "bad %s '%.32s' (a whole number from 0 to 4294967295)",
                     name, s);
            cv_http_reply_error(resp, 400, CV_ST_INVALID, text);
            return -1;
        }
    }
    *out = (uint32_t)v;
    return 0;
}

/* A query parameter as a string, "" when absent. */
static char *query_str(const cv_http_req_t *req, const char *name)
{
    const char *s = cv_http_query(req, name);
    return (char *)(s ? s : "");
}

/* The admin key from "Authorization: Bearer KEY" into *key (borrowed; ""
 * without the header).  Returns 0, or -1 after filling resp with a 401. */
static int bearer_key(const cv_http_req_t *req, const char **key, cv_http_resp_t *resp)
{
    const char *auth = cv_http_header(req, "Authorization");
    *key = "";
    if (!auth)
        return 0;
    if (strncasecmp(auth, "Bearer ", 7) != 0 || !auth[7]) {
        cv_http_reply_error(resp, 401, CV_ST_UNAUTHENTICATED,
                            "the Authorization header must be 'Bearer KEY'");
        return -1;
    }
    *key = auth + 7;
    return 0;
}

/* ---- routes ----------------------------------------------------------------- */

enum { M_GET, M_POST };

typedef struct {
    const char *action; /* metrics label */
    int method;
    const char *id; /* the feature in the path, NUL-terminated copy; or NULL */
} route_t;

/* Matches path against the routes.  Returns 1 and fills r, or 0 (no route).
 * idbuf receives the feature id segment. */
static int match(const char *path, route_t *r, char *idbuf, size_t idcap)
{
    static const struct {
        const char *path, *action;
        int method;
    } fixed[] = {
        {"/v1/ranked", "ranked", M_GET},
        {"/v1/cycles", "cycles", M_GET},
        {"/v1/cycles/close", "close", M_POST},
        {"/v1/features", "features", M_GET},
    };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        if (!strcmp(path, fixed[i].path)) {
            *r = (route_t){fixed[i].action, fixed[i].method, NULL};
            return 1;
        }
    static const char prefix[] = "/v1/features/";
    if (strncmp(path, prefix, sizeof prefix - 1) != 0)
        return 0;
    const char *id = path + sizeof prefix - 1, *slash = strchr(id, '/');
    size_t idlen = slash ? (size_t)(slash - id) : strlen(id);
    if (idlen == 0 || idlen >= idcap)
        return 0;
    memcpy(idbuf, id, idlen);
    idbuf[idlen] = '\0';
    if (!slash)
        *r = (route_t){"feature_show", M_GET, idbuf};
    else if (!strcmp(slash, "/status"))
        *r = (route_t){"feature_status", M_POST, idbuf};
    else if (!strcmp(slash, "/merge"))
        *r = (route_t){"feature_merge", M_POST, idbuf};
    else if (!strcmp(slash, "/voters"))
        *r = (route_t){"feature_voters", M_GET, idbuf};
    else
        return 0;
    return 1;
}

/* Reads the body's named string members; returns 0, or -1 after filling
 * resp with a 400 (or leaving it a 500 when out of memory). */
static int body_strings(const cv_http_req_t *req, const char *const *names, char **values,
                        size_t n, cv_http_resp_t *resp)
{
    char err[256];
    int rc = cv_json_parse_strings(req->body, req->body_len, names, values, n, err, sizeof err);
    if (rc == CV_EINVAL)
        cv_http_reply_error(resp, 400, CV_ST_INVALID, err);
    return rc < 0 ? -1 : 0;
}

static void serve_route(pub_http_t *h, const cv_http_req_t *req, const route_t *rt,
                        cv_http_resp_t *resp)
{
    Canvass__V1__AdminRequest ar = CANVASS__V1__ADMIN_REQUEST__INIT;
    const char *key;
    if (bearer_key(req, &key, resp) < 0)
        return;
    ar.app_key = (char *)key;
    int csv = 0;

    if (!strcmp(rt->action, "ranked")) {
        Canvass__V1__RankedQuery q = CANVASS__V1__RANKED_QUERY__INIT;
        const char *format = cv_http_query(req, "format");
        if (format && *format && strcmp(format, "json") && strcmp(format, "csv")) {
            char text[96];
            snprintf(text, sizeof text, "bad format '%.32s' (json or csv)", format);
            cv_http_reply_error(resp, 400, CV_ST_INVALID, text);
            return;
        }
        csv = format && !strcmp(format, "csv");
        if (query_u32(req, "limit", &q.limit, resp) < 0)
            return;
        q.cycle = query_str(req, "cycle");
        q.order = query_str(req, "order");
        ar.op_case = CANVASS__V1__ADMIN_REQUEST__OP_RANKED;
        ar.ranked = &q;
        call(h, &ar, csv, resp);
    } else if (!strcmp(rt->action, "cycles")) {
        Canvass__V1__CyclesQuery q = CANVASS__V1__CYCLES_QUERY__INIT;
        ar.op_case = CANVASS__V1__ADMIN_REQUEST__OP_CYCLES;
        ar.cycles = &q;
        call(h, &ar, 0, resp);
    } else if (!strcmp(rt->action, "close")) {
        Canvass__V1__CloseNow q = CANVASS__V1__CLOSE_NOW__INIT;
        ar.op_case = CANVASS__V1__ADMIN_REQUEST__OP_CLOSE;
        ar.close = &q;
        call(h, &ar, 0, resp);
    } else if (!strcmp(rt->action, "features")) {
        Canvass__V1__FeatureList q = CANVASS__V1__FEATURE_LIST__INIT;
        ar.op_case = CANVASS__V1__ADMIN_REQUEST__OP_FEATURES;
        ar.features = &q;
        call(h, &ar, 0, resp);
    } else if (!strcmp(rt->action, "feature_show")) {
        Canvass__V1__FeatureShow q = CANVASS__V1__FEATURE_SHOW__INIT;
        q.feature_id = (char *)rt->id;
        ar.op_case = CANVASS__V1__ADMIN_REQUEST__OP_FEATURE_SHOW;
        ar.feature_show = &q;
        call(h, &ar, 0, resp);
    } else if (!strcmp(rt->action, "feature_voters")) {
        Canvass__V1__VotersQuery q = CANVASS__V1__VOTERS_QUERY__INIT;
        q.feature_id = (char *)rt->id;
        q.after = query_str(req, "after");
        if (query_u32(req, "limit", &q.limit, resp) < 0)
            return;
        ar.op_case = CANVASS__V1__ADMIN_REQUEST__OP_FEATURE_VOTERS;
        ar.feature_voters = &q;
        call(h, &ar, 0, resp);
    } else if (!strcmp(rt->action, "feature_status")) {
        static const char *const names[] = {"status", "release"};
        char *v[2];
        if (body_strings(req, names, v, 2, resp) < 0)
            return;
        if (!v[0]) {
            cv_http_reply_error(resp, 400, CV_ST_INVALID,
                                "missing 'status' (open, planned, in_progress, shipped or "
                                "declined)");
        } else {
            Canvass__V1__FeatureStatus q = CANVASS__V1__FEATURE_STATUS__INIT;
            q.feature_id = (char *)rt->id;
            q.status = v[0];
            q.release = v[1] ? v[1] : "";
            ar.op_case = CANVASS__V1__ADMIN_REQUEST__OP_FEATURE_STATUS;
            ar.feature_status = &q;
            call(h, &ar, 0, resp);
        }
        free(v[0]);
        free(v[1]);
    } else if (!strcmp(rt->action, "feature_merge")) {
        static const char *const names[] = {"into"};
        char *into;
        if (body_strings(req, names, &into, 1, resp) < 0)
            return;
        if (!into) {
            cv_http_reply_error(resp, 400, CV_ST_INVALID,
                                "missing 'into': the feature to merge into");
        } else {
            Canvass__V1__FeatureMerge q = CANVASS__V1__FEATURE_MERGE__INIT;
            q.src = (char *)rt->id;
            q.dst = into;
            ar.op_case = CANVASS__V1__ADMIN_REQUEST__OP_FEATURE_MERGE;
            ar.feature_merge = &q;
            call(h, &ar, 0, resp);
        }
        free(into);
    }
}

static int pub_ready(void *arg, char *why, size_t cap)
{
    pub_http_t *h = arg;
    if (atomic_load(&h->ready))
        return 1;
    snprintf(why, cap, "%s", atomic_load(&h->stopping) ? "publish is stopping"
                                                        : "publish's store is not open yet");
    return 0;
}

static void handle(void *arg, const cv_http_req_t *req, cv_http_resp_t *resp)
{
    pub_http_t *h = arg;
    const char *action = "other";
    char id[256];
    route_t rt;
    if (cv_http_probes(req, resp, h->metrics, pub_ready, h)) {
        action = req->path + 1; /* healthz, readyz, metrics */
    } else if (!match(req->path, &rt, id, sizeof id)) {
        char text[200];
        snprintf(text, sizeof text, "no route for %.16s %.128s", req->method, req->path);
        cv_http_reply_error(resp, 404, CV_ST_NOT_FOUND, text);
    } else {
        action = rt.action;
        int get = !strcmp(req->method, "GET") || !strcmp(req->method, "HEAD");
        int post = !strcmp(req->method, "POST");
        if ((rt.method == M_GET && !get) || (rt.method == M_POST && !post)) {
            char text[200];
            snprintf(text, sizeof text, "method %.16s is not allowed on %.128s (use %s)",
                     req->method, req->path, rt.method == M_GET ? "GET" : "POST");
            cv_http_reply_error(resp, 405, CV_ST_INVALID, text);
            resp->allow = rt.method == M_GET ? "GET, HEAD" : "POST";
        } else {
            serve_route(h, req, &rt, resp);
        }
    }
    char code[8];
    snprintf(code, sizeof code, "%d", resp->body ? resp->status : 500);
    cv_metric_inc(cv_metrics_counter(h->metrics, "canvass_publish_http_requests_total",
                                     "HTTP requests answered, by action and HTTP status code",
                                     "action", action, "code", code, NULL));
}

/* ---- life ------------------------------------------------------------------- */

pub_http_t *pub_http_start(const pub_http_opts_t *o)
{
    pub_http_t *h = calloc(1, sizeof *h);
    if (!h || !(h->endpoint = strdup(o->endpoint))) {
        free(h);
        return NULL;
    }
    h->bus = o->bus;
    h->timeout_ms = o->timeout_ms;
    h->metrics = o->metrics;
    atomic_init(&h->ready, 0);
    atomic_init(&h->stopping, 0);
    if (!(h->server = cv_http_start(o->host, o->port, handle, h))) {
        free(h->endpoint);
        free(h);
        return NULL;
    }
    return h;
}

void pub_http_set_ready(pub_http_t *h, int ready)
{
    if (h)
        atomic_store(&h->ready, ready);
}

int pub_http_port(const pub_http_t *h)
{
    return cv_http_port(h->server);
}

void pub_http_stop(pub_http_t **h_p)
{
    if (!h_p || !*h_p)
        return;
    pub_http_t *h = *h_p;
    atomic_store(&h->ready, 0);
    atomic_store(&h->stopping, 1);
    cv_http_stop(&h->server);
    /* The HTTP thread has been joined: its socket may be closed from here. */
    cv_sock_destroy(&h->req);
    free(h->endpoint);
    free(h);
    *h_p = NULL;
}
