/* backend_redis: the Redis peer over hiredis's asynchronous API (see
 * backend_redis.h).
 *
 * States: IDLE (no context; the back-off timer may be running), CONNECTING,
 * LOADING (connected, SCRIPT LOAD sent) and UP.  hiredis owns the context:
 * it frees it after the connect callback reports a failure, after the
 * disconnect callback, or when we call redisAsyncFree, and before freeing it
 * calls every pending command's callback with a NULL reply.  Those NULL
 * replies are how the requests in flight come back to the owner (ops.lost)
 * when a connection fails; when we stop, they are dropped.  The timer handle
 * lives as long as the connection.
 *
 * hiredis is tied to the loop by our own copy of its adapters/libuv.h: the
 * one Debian ships (hiredis 0.14) ignores a poll error, and libuv reports a
 * reset socket (a server killed or restarted) as just that, status UV_EBADF
 * with the handle stopped, so the connection would hang for good.  Later
 * hiredis versions let hiredis read or write on an error, which finds the
 * error and disconnects; so does this one.
 */
#include "backend_redis.h"
#include "cv_err.h"
#include "cv_log.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdlib.h>
#include <string.h>

/* KEYS: votes:<f>, up:<f>, down:<f>, score.  ARGV: user, value, feature. */
const char CV_REDIS_VOTE_SCRIPT[] =
    "local old = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')\n"
    "local new = tonumber(ARGV[2])\n"
    "if old == new then return 0 end\n"
    "if new == 0 then redis.call('HDEL', KEYS[1], ARGV[1])\n"
    "else redis.call('HSET', KEYS[1], ARGV[1], new) end\n"
    "if old == 1 then redis.call('DECR', KEYS[2])\n"
    "elseif old == -1 then redis.call('DECR', KEYS[3]) end\n"
    "if new == 1 then redis.call('INCR', KEYS[2])\n"
    "elseif new == -1 then redis.call('INCR', KEYS[3]) end\n"
    "redis.call('ZINCRBY', KEYS[4], new - old, ARGV[3])\n"
    "return 1\n";

#define KEY_CAP 96 /* "votes:" + a feature id of at most 64 bytes */
#define VERIFY_CHUNK 1000

typedef enum { S_IDLE, S_CONNECTING, S_LOADING, S_UP, S_CLOSING } state_t;

typedef struct {
    uv_loop_t *loop;
    uv_timer_t timer;
    char host[256];
    int port;
    unsigned index, depth, in_flight;
    const cv_link_ops_t *ops;
    void *ctx;

    redisAsyncContext *ac; /* NULL when IDLE */
    state_t state;
    bool stopping, timer_closed;
    unsigned failures; /* attempts since the last success, for the back-off */
    char sha[48];      /* the script's SHA1, from SCRIPT LOAD */
} rconn_t;

static void rconn_connect(rconn_t *c);

/* ---- hiredis on libuv ----------------------------------------------------------- */

typedef struct {
    redisAsyncContext *ac; /* NULL once hiredis let go of it */
    uv_poll_t poll;
    int events;
} rpoll_t;

static void rpoll_on_event(uv_poll_t *h, int status, int events)
{
    rpoll_t *p = h->data;
    int ev = status < 0 ? p->events : events; /* an error: let hiredis find it */
    if (p->ac && (ev & UV_READABLE))
        redisAsyncHandleRead(p->ac);
    if (p->ac && (ev & UV_WRITABLE))
        redisAsyncHandleWrite(p->ac);
}

static void rpoll_set(rpoll_t *p, int events)
{
    p->events = events;
    if (events)
        uv_poll_start(&p->poll, events, rpoll_on_event);
    else
        uv_poll_stop(&p->poll);
}

static void rpoll_add_read(void *d)
{
    rpoll_set(d, ((rpoll_t *)d)->events | UV_READABLE);
}

static void rpoll_del_read(void *d)
{
    rpoll_set(d, ((rpoll_t *)d)->events & ~UV_READABLE);
}

static void rpoll_add_write(void *d)
{
    rpoll_set(d, ((rpoll_t *)d)->events | UV_WRITABLE);
}

static void rpoll_del_write(void *d)
{
    rpoll_set(d, ((rpoll_t *)d)->events & ~UV_WRITABLE);
}

static void rpoll_on_closed(uv_handle_t *h)
{
    free(h->data);
}

static void rpoll_cleanup(void *d)
{
    rpoll_t *p = d;
    p->ac = NULL;
    uv_close((uv_handle_t *)&p->poll, rpoll_on_closed);
}

/* Ties ac to the loop.  Returns REDIS_OK or REDIS_ERR. */
static int rpoll_attach(redisAsyncContext *ac, uv_loop_t *loop)
{
    if (ac->ev.data)
        return REDIS_ERR;
    rpoll_t *p = calloc(1, sizeof *p);
    if (!p)
        return REDIS_ERR;
    if (uv_poll_init(loop, &p->poll, ac->c.fd) != 0) {
        free(p);
        return REDIS_ERR;
    }
    p->poll.data = p;
    p->ac = ac;
    ac->ev.addRead = rpoll_add_read;
    ac->ev.delRead = rpoll_del_read;
    ac->ev.addWrite = rpoll_add_write;
    ac->ev.delWrite = rpoll_del_write;
    ac->ev.cleanup = rpoll_cleanup;
    ac->ev.data = p;
    return REDIS_OK;
}

static void on_backoff_over(uv_timer_t *t)
{
    rconn_connect(t->data);
}

/* The context is gone (hiredis frees it): say why, try again later. */
static void went_down(rconn_t *c, const char *why)
{
    c->ac = NULL;
    c->state = S_IDLE;
    c->in_flight = 0;
    if (c->stopping)
        return;
    c->ops->event(c->ctx, c->index, CV_CONN_DOWN, why);
    if (!c->stopping)
        uv_timer_start(&c->timer, on_backoff_over, cv_backend_backoff_ms(++c->failures), 0);
}

/* Hands a connection that misbehaved back to hiredis to close; its pending
 * callbacks and then on_disconnect follow. */
static void drop(rconn_t *c)
{
    if (c->ac && c->state != S_IDLE && c->state != S_CLOSING) {
        c->state = S_CLOSING;
        redisAsyncDisconnect(c->ac);
    }
}

/* ---- replies ---------------------------------------------------------------------- */

static void reply_with(rconn_t *c, void *req, int status, const char *error, bool changed,
                       const char *feature_id)
{
    Canvass__V1__Reply rep = CANVASS__V1__REPLY__INIT;
    Canvass__V1__VoteAck ack = CANVASS__V1__VOTE_ACK__INIT;
    Canvass__V1__Submitted sub = CANVASS__V1__SUBMITTED__INIT;
    rep.status = status;
    rep.error = (char *)(error ? error : "");
    if (status == CV_ST_OK && feature_id) {
        sub.feature_id = (char *)feature_id;
        rep.result_case = CANVASS__V1__REPLY__RESULT_SUBMITTED;
        rep.submitted = &sub;
    } else if (status == CV_ST_OK) {
        ack.changed = changed;
        rep.result_case = CANVASS__V1__REPLY__RESULT_VOTE_ACK;
        rep.vote_ack = &ack;
    }
    c->ops->reply(c->ctx, c->index, req, &rep);
}

/* A server error: the ones Redis gives before running anything may be
 * retried; after any other the vote's fate is unknown. */
static int status_of_error(const char *err)
{
    static const char *retry[] = {"LOADING", "BUSY", "TRYAGAIN", "MASTERDOWN", "NOSCRIPT"};
    for (size_t i = 0; i < sizeof retry / sizeof *retry; i++)
        if (strncmp(err, retry[i], strlen(retry[i])) == 0)
            return CV_ST_UNAVAILABLE;
    return CV_ST_INTERNAL;
}

/* A submit in flight: the request and the id it creates. */
typedef struct {
    void *req;
    char id[32];
} submit_t;

static void rconn_fill(void *conn);

static void on_command(redisAsyncContext *ac, void *reply, void *privdata, bool submit)
{
    rconn_t *c = ac->data;
    submit_t *s = submit ? privdata : NULL;
    void *req = submit ? s->req : privdata;
    c->in_flight--;
    if (c->stopping) {
        free(s);
        return;
    }
    redisReply *r = reply;
    if (!r) {
        c->state = S_IDLE; /* hiredis is freeing the context: no more sends */
        c->ops->lost(c->ctx, c->index, req);
    } else if (r->type == REDIS_REPLY_ERROR) {
        int st = status_of_error(r->str);
        if (strncmp(r->str, "NOSCRIPT", 8) == 0)
            drop(c); /* reconnecting loads it again */
        reply_with(c, req, st, r->str, false, NULL);
    } else if (r->type != REDIS_REPLY_INTEGER) {
        reply_with(c, req, CV_ST_INTERNAL, "unexpected reply type from redis", false, NULL);
    } else {
        reply_with(c, req, CV_ST_OK, NULL, r->integer != 0, submit ? s->id : NULL);
    }
    free(s);
    rconn_fill(c);
}

static void on_vote(redisAsyncContext *ac, void *reply, void *privdata)
{
    on_command(ac, reply, privdata, false);
}

static void on_submit(redisAsyncContext *ac, void *reply, void *privdata)
{
    on_command(ac, reply, privdata, true);
}

/* ---- sending ---------------------------------------------------------------------- */

static int send_vote(rconn_t *c, void *req, const Canvass__V1__Vote *v)
{
    char votes[KEY_CAP], up[KEY_CAP], down[KEY_CAP], value[8];
    snprintf(votes, sizeof votes, "votes:%s", v->feature_id);
    snprintf(up, sizeof up, "up:%s", v->feature_id);
    snprintf(down, sizeof down, "down:%s", v->feature_id);
    snprintf(value, sizeof value, "%d", (int)v->value);
    const char *argv[] = {"EVALSHA", c->sha, "4", votes, up, down, "score",
                          v->user_id, value, v->feature_id};
    size_t len[sizeof argv / sizeof *argv];
    for (size_t i = 0; i < sizeof argv / sizeof *argv; i++)
        len[i] = strlen(argv[i]);
    return redisAsyncCommandArgv(c->ac, on_vote, req, (int)(sizeof argv / sizeof *argv), argv,
                                 len) == REDIS_OK
               ? 0
               : CV_EIO;
}

static int send_submit(rconn_t *c, void *req, const Canvass__V1__Submit *sm)
{
    submit_t *s = malloc(sizeof *s);
    if (!s)
        return CV_ENOMEM;
    s->req = req;
    cv_backend_feature_id(s->id);
    const char *argv[] = {"HSETNX", "features", s->id, sm->title};
    size_t len[] = {6, 8, strlen(s->id), strlen(sm->title)};
    if (redisAsyncCommandArgv(c->ac, on_submit, s, 4, argv, len) != REDIS_OK) {
        free(s);
        return CV_EIO;
    }
    return 0;
}

static void rconn_fill(void *conn)
{
    rconn_t *c = conn;
    while (c->state == S_UP && !c->stopping && c->in_flight < c->depth) {
        Canvass__V1__Request msg = CANVASS__V1__REQUEST__INIT;
        void *req = c->ops->next(c->ctx, c->index, &msg);
        if (!req)
            break;
        int rc = msg.op_case == CANVASS__V1__REQUEST__OP_VOTE     ? send_vote(c, req, msg.vote)
                 : msg.op_case == CANVASS__V1__REQUEST__OP_SUBMIT ? send_submit(c, req, msg.submit)
                                                                   : CV_EINVAL;
        if (rc < 0) {
            /* Nothing was queued: the request is the owner's again. */
            c->ops->lost(c->ctx, c->index, req);
            if (c->stopping)
                return;
            c->ops->event(c->ctx, c->index, CV_CONN_DOWN,
                          rc == CV_EINVAL ? "only votes and submits go to redis"
                                          : "cannot queue a command");
            drop(c);
            return;
        }
        c->in_flight++;
    }
}

/* ---- connecting ------------------------------------------------------------------- */

static void on_loaded(redisAsyncContext *ac, void *reply, void *privdata)
{
    rconn_t *c = ac->data;
    redisReply *r = reply;
    if (c->stopping || !r)
        return; /* a NULL reply: the disconnect callback follows */
    if (r->type != REDIS_REPLY_STRING || r->len >= sizeof c->sha) {
        char why[200];
        snprintf(why, sizeof why, "SCRIPT LOAD failed: %s",
                 r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        c->ops->event(c->ctx, c->index, CV_CONN_DOWN, why);
        drop(c);
        return;
    }
    memcpy(c->sha, r->str, r->len);
    c->sha[r->len] = '\0';
    c->state = S_UP;
    c->failures = 0;
    c->ops->event(c->ctx, c->index, CV_CONN_UP, "connected");
    rconn_fill(c);
}

static void on_connect(const redisAsyncContext *cac, int status)
{
    rconn_t *c = cac->data;
    if (status != REDIS_OK) {
        char why[200];
        snprintf(why, sizeof why, "cannot connect: %s", cac->errstr);
        went_down(c, why); /* hiredis frees the context after this */
        return;
    }
    if (c->stopping)
        return;
    c->state = S_LOADING;
    const char *argv[] = {"SCRIPT", "LOAD", CV_REDIS_VOTE_SCRIPT};
    size_t len[] = {6, 4, sizeof CV_REDIS_VOTE_SCRIPT - 1};
    if (redisAsyncCommandArgv(c->ac, on_loaded, NULL, 3, argv, len) != REDIS_OK)
        drop(c);
}

static void on_disconnect(const redisAsyncContext *cac, int status)
{
    rconn_t *c = cac->data;
    char why[200];
    snprintf(why, sizeof why, "%s",
             status == REDIS_OK ? "connection closed" : cac->errstr[0] ? cac->errstr : "error");
    went_down(c, why);
}

static void rconn_connect(rconn_t *c)
{
    if (c->stopping || c->state != S_IDLE)
        return;
    redisAsyncContext *ac = redisAsyncConnect(c->host, c->port);
    if (!ac || ac->err) {
        char why[200];
        snprintf(why, sizeof why, "cannot connect: %s", ac ? ac->errstr : "out of memory");
        if (ac)
            redisAsyncFree(ac);
        went_down(c, why);
        return;
    }
    ac->data = c;
    if (rpoll_attach(ac, c->loop) != REDIS_OK) {
        redisAsyncFree(ac);
        went_down(c, "cannot attach to the event loop");
        return;
    }
    c->ac = ac;
    c->state = S_CONNECTING;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
}

/* ---- the connection --------------------------------------------------------------- */

static void *rconn_new(uv_loop_t *loop, const cv_link_opts_t *o)
{
    rconn_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    if (cv_backend_split_hostport(o->server, c->host, sizeof c->host, &c->port) < 0) {
        cv_log(CV_LOG_ERROR, "msg=\"redis server must be host:port\" server=\"%s\"", o->server);
        free(c);
        return NULL;
    }
    c->loop = loop;
    c->index = o->index;
    c->depth = o->depth;
    c->ops = o->ops;
    c->ctx = o->ctx;
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    return c;
}

static void rconn_start(void *conn)
{
    rconn_t *c = conn;
    if (!uv_is_active((uv_handle_t *)&c->timer))
        rconn_connect(c);
}

static void on_timer_closed(uv_handle_t *h)
{
    ((rconn_t *)h->data)->timer_closed = true;
}

static void rconn_stop(void *conn)
{
    rconn_t *c = conn;
    if (c->stopping)
        return;
    c->stopping = true;
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, on_timer_closed);
    if (c->ac) {
        redisAsyncContext *ac = c->ac;
        c->ac = NULL;
        redisAsyncFree(ac); /* deferred by hiredis when inside its callback */
    }
}

static void rconn_destroy(void **conn_p)
{
    rconn_t *c = *conn_p;
    if (!c)
        return;
    free(c);
    *conn_p = NULL;
}

/* ---- prepare and verify ----------------------------------------------------------- */

static redisContext *connect_sync(const char *server, char *why, size_t whylen)
{
    char host[256];
    int port;
    if (cv_backend_split_hostport(server, host, sizeof host, &port) < 0) {
        snprintf(why, whylen, "redis server must be host:port, got '%s'", server);
        return NULL;
    }
    struct timeval tv = {10, 0};
    redisContext *rc = redisConnectWithTimeout(host, port, tv);
    if (!rc || rc->err) {
        snprintf(why, whylen, "cannot connect to redis at %s: %s", server,
                 rc ? rc->errstr : "out of memory");
        if (rc)
            redisFree(rc);
        return NULL;
    }
    redisSetTimeout(rc, tv);
    return rc;
}

static int redis_prepare(const char *server, char *why, size_t whylen)
{
    redisContext *rc = connect_sync(server, why, whylen);
    if (!rc)
        return CV_EIO;
    redisReply *r = redisCommand(rc, "PING");
    int ok = r && (r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_STRING);
    if (!ok)
        snprintf(why, whylen, "redis at %s does not answer PING: %s", server,
                 r && r->type == REDIS_REPLY_ERROR ? r->str : rc->errstr);
    freeReplyObject(r);
    redisFree(rc);
    return ok ? 0 : CV_EIO;
}

/* A counter read back: nil is 0; anything else must be a whole number. */
static bool reply_count(const redisReply *r, int64_t *out)
{
    if (!r || r->type == REDIS_REPLY_NIL) {
        *out = 0;
        return r != NULL;
    }
    if (r->type == REDIS_REPLY_INTEGER) {
        *out = r->integer;
        return true;
    }
    if (r->type != REDIS_REPLY_STRING)
        return false;
    char *end;
    double d = strtod(r->str, &end);
    *out = (int64_t)d;
    return *end == '\0' && (double)*out == d;
}

/* Reads up, down, voters and score of features [from, to) into have. */
static int read_chunk(redisContext *rc, const cv_workload_t *w, size_t from, size_t to,
                      cv_counts_t *have, uint64_t *bad, FILE *out)
{
    for (size_t i = from; i < to; i++) {
        const char *id = cv_workload_feature_id(w, i);
        if (id && (redisAppendCommand(rc, "GET up:%s", id) != REDIS_OK ||
                   redisAppendCommand(rc, "GET down:%s", id) != REDIS_OK ||
                   redisAppendCommand(rc, "HLEN votes:%s", id) != REDIS_OK ||
                   redisAppendCommand(rc, "ZSCORE score %s", id) != REDIS_OK))
            return CV_ENOMEM;
    }
    for (size_t i = from; i < to; i++) {
        const char *id = cv_workload_feature_id(w, i);
        if (!id)
            continue;
        redisReply *r[4] = {0};
        int64_t v[4];
        bool ok = true;
        for (int k = 0; k < 4; k++) {
            void *p = NULL;
            if (redisGetReply(rc, &p) != REDIS_OK) {
                fprintf(out, "verify: redis connection failed: %s\n", rc->errstr);
                for (int j = 0; j < k; j++)
                    freeReplyObject(r[j]);
                return CV_EIO;
            }
            r[k] = p;
            ok = reply_count(r[k], &v[k]) && ok;
        }
        if (!ok || v[0] < 0 || v[1] < 0) {
            fprintf(out, "verify: %s: unreadable or negative counters\n", id);
            (*bad)++;
        } else {
            have[i].found = r[0]->type != REDIS_REPLY_NIL || r[1]->type != REDIS_REPLY_NIL;
            have[i].up = (uint64_t)v[0];
            have[i].down = (uint64_t)v[1];
            have[i].voters = (uint64_t)v[2];
            if (v[3] != v[0] - v[1]) {
                fprintf(out, "verify: %s: score %lld is not up - down = %lld\n", id,
                        (long long)v[3], (long long)(v[0] - v[1]));
                (*bad)++;
            }
        }
        for (int k = 0; k < 4; k++)
            freeReplyObject(r[k]);
    }
    return 0;
}

static int redis_verify(const char *server, const cv_verify_opts_t *vo, const cv_workload_t *w,
                        cv_report_t *rep, FILE *out)
{
    rep->verify = CV_VERIFY_ERROR;
    char why[300];
    redisContext *rc = connect_sync(server, why, sizeof why);
    if (!rc) {
        fprintf(out, "verify: %s\n", why);
        return CV_EIO;
    }
    size_t n = cv_workload_features(w);
    cv_counts_t *have = calloc(n, sizeof *have);
    uint64_t bad = 0;
    int rc_ = have ? 0 : CV_ENOMEM;
    for (size_t from = 0; rc_ == 0 && from < n; from += VERIFY_CHUNK)
        rc_ = read_chunk(rc, w, from, from + VERIFY_CHUNK < n ? from + VERIFY_CHUNK : n, have,
                         &bad, out);
    if (rc_ == 0)
        rc_ = cv_backend_compare(w, have, bad, rep, out);
    else if (rc_ == CV_ENOMEM)
        fprintf(out, "verify: out of memory\n");
    free(have);
    redisFree(rc);
    return rc_;
}

const cv_backend_t cv_backend_redis = {
    .name = "redis",
    .default_server = "127.0.0.1:6379",
    .prepare = redis_prepare,
    .conn_new = rconn_new,
    .start = rconn_start,
    .fill = rconn_fill,
    .stop = rconn_stop,
    .destroy = rconn_destroy,
    .verify = redis_verify,
};
