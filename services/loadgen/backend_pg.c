/* backend_pg: the PostgreSQL peer over libpq in pipeline mode (see
 * backend_pg.h).
 *
 * States: IDLE (no PGconn; the back-off timer may be running), CONNECTING
 * (PQconnectPoll steps, driven by the poll handle), PREPARING (the two
 * statements are being prepared) and UP.  Replies come back in the order
 * the statements were sent, so what is in flight is a FIFO ring of entries,
 * the first one the preparation; an entry is complete at its
 * PGRES_PIPELINE_SYNC and takes the worst status among the results before
 * it.  The poll handle is allocated per connection attempt and freed in its
 * close callback, because libpq's socket (and so the handle) changes from
 * one attempt to the next; it is closed before PQfinish closes the socket.
 */
#include "backend_pg.h"
#include "cv_err.h"
#include "cv_log.h"

#include <postgresql/libpq-fe.h> /* Debian: libpq-dev, outside the default path */
#include <stdlib.h>
#include <string.h>

const char CV_PG_SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS votes (\n"
    "  feature text NOT NULL, user_id text NOT NULL, value smallint NOT NULL,\n"
    "  PRIMARY KEY (feature, user_id));\n"
    "CREATE TABLE IF NOT EXISTS counters (\n"
    "  feature text PRIMARY KEY, up bigint NOT NULL DEFAULT 0, down bigint NOT NULL DEFAULT 0);\n"
    "CREATE OR REPLACE FUNCTION cv_vote(f text, u text, v smallint) RETURNS boolean\n"
    "LANGUAGE plpgsql AS $$\n"
    "DECLARE old smallint; inserted boolean := false;\n"
    "BEGIN\n"
    "  LOOP\n"
    "    SELECT value INTO old FROM votes WHERE feature = f AND user_id = u FOR UPDATE;\n"
    "    EXIT WHEN FOUND;\n"
    "    IF v = 0 THEN RETURN false; END IF;\n"
    "    INSERT INTO votes (feature, user_id, value) VALUES (f, u, v)\n"
    "      ON CONFLICT (feature, user_id) DO NOTHING;\n"
    "    IF FOUND THEN old := 0; inserted := true; EXIT; END IF;\n"
    "    -- another session inserted it first: read it again, locked\n"
    "  END LOOP;\n"
    "  IF old = v THEN RETURN false; END IF;\n"
    "  IF NOT inserted THEN\n"
    "    UPDATE votes SET value = v WHERE feature = f AND user_id = u;\n"
    "  END IF;\n"
    "  INSERT INTO counters AS c (feature, up, down)\n"
    "    VALUES (f, (v = 1)::int - (old = 1)::int, (v = -1)::int - (old = -1)::int)\n"
    "    ON CONFLICT (feature) DO UPDATE SET up = c.up + EXCLUDED.up, down = c.down + EXCLUDED.down;\n"
    "  RETURN true;\n"
    "END $$;\n";

#define VOTE_SQL "SELECT cv_vote($1, $2, $3::smallint)"
#define SUBMIT_SQL "INSERT INTO counters (feature, up, down) VALUES ($1, 0, 0) ON CONFLICT DO NOTHING"
#define CONNINFO_CAP 1024

typedef enum { S_IDLE, S_CONNECTING, S_PREPARING, S_UP } state_t;
typedef enum { E_PREPARE, E_VOTE, E_SUBMIT } kind_t;

typedef struct {
    kind_t kind;
    void *req;
    int status; /* worst so far, a canvass.v1 Status */
    bool changed;
    char error[200];
    char id[32]; /* E_SUBMIT: the feature it creates */
} entry_t;

typedef struct {
    uv_loop_t *loop;
    uv_timer_t timer;
    uv_poll_t *poll; /* NULL when there is no socket */
    int fd, events;
    char conninfo[CONNINFO_CAP];
    unsigned index, depth;
    const cv_link_ops_t *ops;
    void *ctx;

    PGconn *pg;
    state_t state;
    bool stopping, timer_closed;
    unsigned failures;
    entry_t *ring; /* depth + 1 entries: the votes and the preparation */
    unsigned head, count;
} pconn_t;

static void pconn_connect(pconn_t *c);
static void pconn_fill(void *conn);

static void on_backoff_over(uv_timer_t *t)
{
    pconn_connect(t->data);
}

/* ---- sockets -------------------------------------------------------------------- */

static void on_poll_closed(uv_handle_t *h)
{
    free(h);
}

static void poll_close(pconn_t *c)
{
    if (c->poll) {
        uv_close((uv_handle_t *)c->poll, on_poll_closed);
        c->poll = NULL;
    }
}

static void on_poll(uv_poll_t *h, int status, int events);

/* Polls libpq's current socket for events; a new socket gets a new handle.
 * Returns 0 or a libuv error. */
static int poll_want(pconn_t *c, int events)
{
    int fd = PQsocket(c->pg);
    if (fd < 0)
        return UV_EBADF;
    if (c->poll && c->fd != fd)
        poll_close(c);
    if (!c->poll) {
        uv_poll_t *p = malloc(sizeof *p);
        if (!p)
            return UV_ENOMEM;
        int rc = uv_poll_init(c->loop, p, fd);
        if (rc < 0) {
            free(p);
            return rc;
        }
        p->data = c;
        c->poll = p;
        c->fd = fd;
        c->events = 0;
    }
    if (events == c->events)
        return 0;
    c->events = events;
    return uv_poll_start(c->poll, events, on_poll);
}

/* Closes the connection; the requests in flight go back to the owner unless
 * we are stopping.  Then says why and tries again later. */
static void conn_fail(pconn_t *c, const char *why)
{
    poll_close(c);
    if (c->pg) {
        PQfinish(c->pg);
        c->pg = NULL;
    }
    c->state = S_IDLE;
    while (c->count) {
        entry_t *e = &c->ring[c->head];
        c->head = (c->head + 1) % (c->depth + 1);
        c->count--;
        if (e->kind != E_PREPARE && !c->stopping)
            c->ops->lost(c->ctx, c->index, e->req);
    }
    if (c->stopping)
        return;
    c->ops->event(c->ctx, c->index, CV_CONN_DOWN, why);
    if (!c->stopping)
        uv_timer_start(&c->timer, on_backoff_over, cv_backend_backoff_ms(++c->failures), 0);
}

/* The first line of libpq's message, for a one-line reason. */
static const char *pq_why(PGconn *pg, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s", pg ? PQerrorMessage(pg) : "out of memory");
    buf[strcspn(buf, "\n")] = '\0';
    return buf;
}

/* ---- results -------------------------------------------------------------------- */

/* SQLSTATE classes after which the transaction was rolled back and may be
 * tried again: 40 (serialization failure, deadlock), 53 (insufficient
 * resources), 55P03 (lock not available), 57014 (cancelled). */
static int status_of_sqlstate(const char *st)
{
    if (st && (strncmp(st, "40", 2) == 0 || strncmp(st, "53", 2) == 0 ||
               strcmp(st, "55P03") == 0 || strcmp(st, "57014") == 0))
        return CV_ST_UNAVAILABLE;
    return CV_ST_INTERNAL;
}

static void entry_result(entry_t *e, PGresult *res)
{
    switch (PQresultStatus(res)) {
    case PGRES_TUPLES_OK:
        if (e->kind == E_VOTE) {
            bool one = PQntuples(res) == 1 && PQnfields(res) == 1;
            if (one)
                e->changed = PQgetvalue(res, 0, 0)[0] == 't';
            else
                e->status = CV_ST_INTERNAL;
        }
        break;
    case PGRES_COMMAND_OK:
        break;
    case PGRES_PIPELINE_ABORTED:
        /* Only after an earlier error in the same pipeline segment, which
         * already set the status. */
        break;
    default: {
        const char *st = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
        e->status = status_of_sqlstate(st);
        snprintf(e->error, sizeof e->error, "postgres %s: %s", st ? st : "?",
                 msg ? msg : PQresStatus(PQresultStatus(res)));
        break;
    }
    }
}

static void entry_done(pconn_t *c, entry_t *e)
{
    if (e->kind == E_PREPARE) {
        if (e->status != CV_ST_OK) {
            conn_fail(c, e->error);
            return;
        }
        c->state = S_UP;
        c->failures = 0;
        c->ops->event(c->ctx, c->index, CV_CONN_UP, "connected");
        return;
    }
    Canvass__V1__Reply rep = CANVASS__V1__REPLY__INIT;
    Canvass__V1__VoteAck ack = CANVASS__V1__VOTE_ACK__INIT;
    Canvass__V1__Submitted sub = CANVASS__V1__SUBMITTED__INIT;
    rep.status = e->status;
    rep.error = e->error;
    if (e->status == CV_ST_OK && e->kind == E_SUBMIT) {
        sub.feature_id = e->id;
        rep.result_case = CANVASS__V1__REPLY__RESULT_SUBMITTED;
        rep.submitted = &sub;
    } else if (e->status == CV_ST_OK) {
        ack.changed = e->changed;
        rep.result_case = CANVASS__V1__REPLY__RESULT_VOTE_ACK;
        rep.vote_ack = &ack;
    }
    c->ops->reply(c->ctx, c->index, e->req, &rep);
}

/* Takes every result that has arrived.  Returns false when the connection
 * was closed meanwhile (failed, or stopped by the owner). */
static bool take_results(pconn_t *c)
{
    unsigned nulls = 0;
    while (c->count && c->pg && !PQisBusy(c->pg)) {
        PGresult *res = PQgetResult(c->pg);
        if (!res) {
            /* The end of one statement's results; a second in a row means
             * nothing more is there. */
            if (++nulls > 1)
                break;
            continue;
        }
        nulls = 0;
        entry_t *e = &c->ring[c->head];
        if (PQresultStatus(res) != PGRES_PIPELINE_SYNC) {
            entry_result(e, res);
            PQclear(res);
            continue;
        }
        PQclear(res);
        c->head = (c->head + 1) % (c->depth + 1);
        c->count--;
        entry_t done = *e;
        entry_done(c, &done);
        if (c->state == S_IDLE || c->stopping)
            return false;
    }
    return c->pg != NULL;
}

/* Flushes what libpq holds and polls for what comes next. */
static void pump(pconn_t *c)
{
    char why[300];
    int f = PQflush(c->pg);
    if (f < 0) {
        conn_fail(c, pq_why(c->pg, why, sizeof why));
        return;
    }
    int rc = poll_want(c, UV_READABLE | (f == 1 ? UV_WRITABLE : 0));
    if (rc < 0)
        conn_fail(c, uv_strerror(rc));
}

/* ---- sending -------------------------------------------------------------------- */

static entry_t *entry_push(pconn_t *c, kind_t kind, void *req)
{
    entry_t *e = &c->ring[(c->head + c->count) % (c->depth + 1)];
    memset(e, 0, sizeof *e);
    e->kind = kind;
    e->req = req;
    e->status = CV_ST_OK;
    c->count++;
    return e;
}

static int send_request(pconn_t *c, void *req, const Canvass__V1__Request *msg)
{
    int ok;
    if (msg->op_case == CANVASS__V1__REQUEST__OP_VOTE) {
        char value[8];
        snprintf(value, sizeof value, "%d", (int)msg->vote->value);
        const char *params[] = {msg->vote->feature_id, msg->vote->user_id, value};
        ok = PQsendQueryPrepared(c->pg, "vote", 3, params, NULL, NULL, 0);
        if (ok)
            entry_push(c, E_VOTE, req);
    } else if (msg->op_case == CANVASS__V1__REQUEST__OP_SUBMIT) {
        char id[32];
        cv_backend_feature_id(id);
        const char *params[] = {id};
        ok = PQsendQueryPrepared(c->pg, "submit", 1, params, NULL, NULL, 0);
        if (ok)
            memcpy(entry_push(c, E_SUBMIT, req)->id, id, sizeof id);
    } else {
        return CV_EINVAL;
    }
    if (!ok)
        return CV_EIO;
    /* A Sync after each statement: each vote its own transaction. */
    return PQpipelineSync(c->pg) ? 0 : CV_EIO;
}

static void pconn_fill(void *conn)
{
    pconn_t *c = conn;
    if (c->state != S_UP || c->stopping)
        return;
    while (c->count < c->depth) {
        Canvass__V1__Request msg = CANVASS__V1__REQUEST__INIT;
        void *req = c->ops->next(c->ctx, c->index, &msg);
        if (!req)
            break;
        int rc = send_request(c, req, &msg);
        if (rc == CV_EINVAL) {
            c->ops->lost(c->ctx, c->index, req);
            conn_fail(c, "only votes and submits go to postgres");
            return;
        }
        if (rc < 0) {
            char why[300];
            conn_fail(c, pq_why(c->pg, why, sizeof why)); /* req is in the ring */
            return;
        }
    }
    pump(c);
}

/* ---- the event loop ------------------------------------------------------------- */

static void connect_step(pconn_t *c)
{
    char why[300];
    switch (PQconnectPoll(c->pg)) {
    case PGRES_POLLING_READING:
        if (poll_want(c, UV_READABLE) < 0)
            conn_fail(c, "cannot poll the socket");
        return;
    case PGRES_POLLING_WRITING:
        if (poll_want(c, UV_WRITABLE) < 0)
            conn_fail(c, "cannot poll the socket");
        return;
    case PGRES_POLLING_FAILED:
        conn_fail(c, pq_why(c->pg, why, sizeof why));
        return;
    default: /* PGRES_POLLING_OK */
        break;
    }
    if (PQsetnonblocking(c->pg, 1) != 0 || !PQenterPipelineMode(c->pg) ||
        !PQsendPrepare(c->pg, "vote", VOTE_SQL, 3, NULL) ||
        !PQsendPrepare(c->pg, "submit", SUBMIT_SQL, 1, NULL) || !PQpipelineSync(c->pg)) {
        conn_fail(c, pq_why(c->pg, why, sizeof why));
        return;
    }
    c->state = S_PREPARING;
    entry_push(c, E_PREPARE, NULL);
    pump(c);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    pconn_t *c = h->data;
    if (c->poll != h || c->stopping)
        return;
    char why[300];
    if (status < 0) {
        conn_fail(c, uv_strerror(status));
        return;
    }
    if (c->state == S_CONNECTING) {
        connect_step(c);
        return;
    }
    if ((events & UV_READABLE) && !PQconsumeInput(c->pg)) {
        conn_fail(c, pq_why(c->pg, why, sizeof why));
        return;
    }
    if (!take_results(c))
        return;
    if (c->state == S_UP)
        pconn_fill(c);
    else
        pump(c);
}

/* The server's notices (e.g. "terminating connection") go to the log, not
 * straight to stderr as libpq would print them. */
static void on_notice(void *arg, const char *message)
{
    pconn_t *c = arg;
    cv_log(CV_LOG_INFO, "msg=\"postgres notice\" conn=%u notice=\"%.*s\"", c->index,
           (int)strcspn(message, "\n"), message);
}

static void pconn_connect(pconn_t *c)
{
    if (c->stopping || c->state != S_IDLE)
        return;
    char why[300];
    c->pg = PQconnectStart(c->conninfo);
    if (!c->pg || PQstatus(c->pg) == CONNECTION_BAD) {
        conn_fail(c, pq_why(c->pg, why, sizeof why));
        return;
    }
    PQsetNoticeProcessor(c->pg, on_notice, c);
    c->state = S_CONNECTING;
    if (poll_want(c, UV_WRITABLE) < 0)
        conn_fail(c, "cannot poll the socket");
}

/* ---- the connection ------------------------------------------------------------- */

/* host:port becomes "host=H port=P"; anything with '=' or a URI is libpq's. */
static int conninfo_of(const char *server, char *out, size_t cap)
{
    if (strchr(server, '=') || strncmp(server, "postgres", 8) == 0)
        return snprintf(out, cap, "%s", server) < (int)cap ? 0 : CV_EINVAL;
    char host[256];
    int port;
    if (cv_backend_split_hostport(server, host, sizeof host, &port) < 0)
        return CV_EINVAL;
    snprintf(out, cap, "host=%s port=%d", host, port);
    return 0;
}

static void *pconn_new(uv_loop_t *loop, const cv_link_opts_t *o)
{
    pconn_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    if (conninfo_of(o->server, c->conninfo, sizeof c->conninfo) < 0) {
        cv_log(CV_LOG_ERROR,
               "msg=\"postgres server must be host:port or a libpq connection string\" "
               "server=\"%s\"",
               o->server);
        free(c);
        return NULL;
    }
    if (!(c->ring = calloc(o->depth + 1, sizeof *c->ring))) {
        free(c);
        return NULL;
    }
    c->loop = loop;
    c->index = o->index;
    c->depth = o->depth;
    c->ops = o->ops;
    c->ctx = o->ctx;
    c->fd = -1;
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    return c;
}

static void pconn_start(void *conn)
{
    pconn_t *c = conn;
    if (!uv_is_active((uv_handle_t *)&c->timer))
        pconn_connect(c);
}

static void on_timer_closed(uv_handle_t *h)
{
    ((pconn_t *)h->data)->timer_closed = true;
}

static void pconn_stop(void *conn)
{
    pconn_t *c = conn;
    if (c->stopping)
        return;
    c->stopping = true;
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, on_timer_closed);
    conn_fail(c, "stopped");
}

static void pconn_destroy(void **conn_p)
{
    pconn_t *c = *conn_p;
    if (!c)
        return;
    free(c->ring);
    free(c);
    *conn_p = NULL;
}

/* ---- prepare and verify --------------------------------------------------------- */

static PGconn *connect_sync(const char *server, char *why, size_t whylen)
{
    char conninfo[CONNINFO_CAP];
    if (conninfo_of(server, conninfo, sizeof conninfo) < 0) {
        snprintf(why, whylen, "postgres server must be host:port or a connection string, got '%s'",
                 server);
        return NULL;
    }
    PGconn *pg = PQconnectdb(conninfo);
    if (!pg || PQstatus(pg) != CONNECTION_OK) {
        char buf[300];
        snprintf(why, whylen, "cannot connect to postgres at '%s': %s", server,
                 pq_why(pg, buf, sizeof buf));
        PQfinish(pg);
        return NULL;
    }
    return pg;
}

static int pg_prepare(const char *server, char *why, size_t whylen)
{
    PGconn *pg = connect_sync(server, why, whylen);
    if (!pg)
        return CV_EIO;
    /* Quiet the NOTICEs of IF NOT EXISTS. */
    PGresult *res = PQexec(pg, "SET client_min_messages = warning");
    PQclear(res);
    res = PQexec(pg, CV_PG_SCHEMA);
    int rc = 0;
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        char buf[300];
        snprintf(why, whylen, "cannot create the schema: %s", pq_why(pg, buf, sizeof buf));
        rc = CV_EIO;
    }
    PQclear(res);
    /* The comparison is only fair with durable commits: say so if not. */
    const char *settings[] = {"synchronous_commit", "fsync"};
    for (size_t i = 0; rc == 0 && i < 2; i++) {
        char q[64];
        snprintf(q, sizeof q, "SHOW %s", settings[i]);
        res = PQexec(pg, q);
        if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
            strcmp(PQgetvalue(res, 0, 0), "on") != 0)
            cv_log(CV_LOG_WARN, "msg=\"postgres commits are not durable\" %s=%s", settings[i],
                   PQgetvalue(res, 0, 0));
        PQclear(res);
    }
    PQfinish(pg);
    return rc;
}

typedef struct {
    const char *id;
    size_t index;
} named_t;

static int by_id(const void *a, const void *b)
{
    return strcmp(((const named_t *)a)->id, ((const named_t *)b)->id);
}

static int pg_verify(const char *server, const cv_verify_opts_t *vo, const cv_workload_t *w,
                     cv_report_t *rep, FILE *out)
{
    rep->verify = CV_VERIFY_ERROR;
    char why[300];
    PGconn *pg = connect_sync(server, why, sizeof why);
    if (!pg) {
        fprintf(out, "verify: %s\n", why);
        return CV_EIO;
    }
    size_t n = cv_workload_features(w), nnamed = 0;
    cv_counts_t *have = calloc(n, sizeof *have);
    named_t *named = calloc(n, sizeof *named);
    PGresult *res = NULL;
    int rc = CV_ENOMEM;
    if (!have || !named) {
        fprintf(out, "verify: out of memory\n");
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        if (cv_workload_feature_id(w, i))
            named[nnamed++] = (named_t){cv_workload_feature_id(w, i), i};
    qsort(named, nnamed, sizeof *named, by_id);
    res = PQexec(pg, "SELECT coalesce(c.feature, v.feature), coalesce(c.up, -1), "
                     "coalesce(c.down, -1), coalesce(v.n, 0) "
                     "FROM counters c FULL JOIN (SELECT feature, count(*) AS n FROM votes "
                     "WHERE value <> 0 GROUP BY feature) v ON v.feature = c.feature");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        fprintf(out, "verify: cannot read the counters: %s\n", pq_why(pg, why, sizeof why));
        rc = CV_EIO;
        goto done;
    }
    uint64_t bad = 0;
    for (int row = 0; row < PQntuples(res); row++) {
        named_t key = {PQgetvalue(res, row, 0), 0};
        named_t *hit = bsearch(&key, named, nnamed, sizeof *named, by_id);
        if (!hit)
            continue; /* another run's feature */
        long long up = atoll(PQgetvalue(res, row, 1)), down = atoll(PQgetvalue(res, row, 2));
        if (up < 0 || down < 0) {
            fprintf(out, "verify: %s: votes rows without a counters row\n", key.id);
            bad++;
            continue;
        }
        have[hit->index] = (cv_counts_t){true, (uint64_t)up, (uint64_t)down,
                                         (uint64_t)atoll(PQgetvalue(res, row, 3))};
    }
    rc = cv_backend_compare(w, have, bad, rep, out);
done:
    PQclear(res);
    PQfinish(pg);
    free(have);
    free(named);
    return rc;
}

const cv_backend_t cv_backend_pg = {
    .name = "postgres",
    .default_server = "host=127.0.0.1 port=5432",
    .prepare = pg_prepare,
    .conn_new = pconn_new,
    .start = pconn_start,
    .fill = pconn_fill,
    .stop = pconn_stop,
    .destroy = pconn_destroy,
    .verify = pg_verify,
};
