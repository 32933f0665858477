/* server: libuv connections, frames and replies for ingest (see server.h).
 *
 * A connection (cv__conn_t) embeds its uv_tcp_t and lives until two things
 * are over: its handle is closed (the close callback has run) and no command
 * it sent is still in the router.  Both are counted in `refs`: one reference
 * for the open handle, one per command handed to the router.  The memory is
 * freed by whichever drops the last reference, so neither a late completion
 * nor a libuv callback ever sees freed memory.
 *
 * Life of a connection:
 *   OPEN      reading frames (paused by backpressure, never by state);
 *   DRAINING  no more reading (peer's EOF, or the server is stopping);
 *             replies are still written; moves to FINISHING when the last
 *             command it sent has been answered;
 *   FINISHING replies produced from now on are dropped; the flush writes
 *             what is buffered, then uv_shutdown, then uv_close;
 *   CLOSED    uv_close was called.
 *
 * Replies are appended, framed, to the connection's out buffer and the
 * connection is put on the dirty list; cv_server_flush turns each out buffer
 * into one uv_write.  The write request owns the buffer and frees it in its
 * callback.  Reading uses one server-wide buffer: libuv's read callback runs
 * right after the read and the frame reader copies what it keeps.
 */
#include "server.h"
#include "limits.h"
#include "cv_err.h"
#include "cv_frame.h"
#include "cv_log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <utlist.h>

/* Backpressure thresholds; reading resumes at the lower mark. */
#define CV__WQ_HIGH (8u << 20)
#define CV__WQ_LOW (1u << 20)
#define CV__INFLIGHT_HIGH 65536
#define CV__INFLIGHT_LOW 32768

#define CV__READ_BUF 65536
#define CV__BACKLOG 1024

enum { CONN_OPEN, CONN_DRAINING, CONN_FINISHING, CONN_CLOSED };

typedef struct cv__conn {
    uv_tcp_t tcp; /* tcp.data points back here */
    cv_server_t *srv;
    uint64_t id;
    int state;
    unsigned refs;   /* 1 while the handle is open + 1 per command in the router */
    size_t inflight; /* commands in the router */
    bool reading;
    bool dirty;
    bool shutdown_sent;
    cv_limits_conn_t lim;      /* its deadline clocks */
    size_t queued;             /* bytes handed to uv_write, not yet written */
    cv_frame_reader_t reader;
    cv_admit_conn_t admit; /* its app (after Hello) and its rate bucket */
    uint8_t *out; /* framed replies not yet handed to uv_write */
    size_t out_len, out_cap;
    uv_shutdown_t shutdown_req;
    struct cv__conn *prev, *next;   /* s->conns */
    struct cv__conn *dprev, *dnext; /* s->dirty */
} cv__conn_t;

typedef struct {
    uv_write_t req;
    cv__conn_t *conn;
    uint8_t *buf; /* owned */
    size_t len;
} cv__write_t;

struct cv_server {
    uv_loop_t *loop;
    cv_server_opts_t opts;
    uv_tcp_t listener;
    bool listener_open;
    cv__conn_t *conns;
    cv__conn_t *dirty;
    size_t nconns;   /* connections whose handle is not closed yet */
    size_t nhandles; /* every handle of ours not closed yet, listener included */
    uint64_t next_id;
    uv_timer_t sweep; /* the deadlines */
    bool sweep_open;
    cv_limits_t limits; /* the budget: unsent replies and commands in flight */
    char readbuf[CV__READ_BUF];
};

static void charge(cv_server_t *s, size_t n);
static void refund(cv_server_t *s, size_t n);

/* Reply bytes held for the connection: framed, or in a write not done. */
static size_t conn_unsent(const cv__conn_t *c)
{
    return c->out_len + c->queued;
}

/* ---- connection lifetime --------------------------------------------------- */

static void conn_unref(cv__conn_t *c)
{
    if (--c->refs == 0) {
        cv_frame_reader_free(&c->reader);
        free(c->out);
        free(c);
    }
}

static void undirty(cv__conn_t *c)
{
    if (c->dirty) {
        DL_DELETE2(c->srv->dirty, c, dprev, dnext);
        c->dirty = false;
    }
}

static void mark_dirty(cv__conn_t *c)
{
    if (!c->dirty) {
        DL_APPEND2(c->srv->dirty, c, dprev, dnext);
        c->dirty = true;
    }
}

static void on_conn_closed(uv_handle_t *h)
{
    cv__conn_t *c = h->data;
    cv_server_t *s = c->srv;
    DL_DELETE(s->conns, c);
    s->nconns--;
    s->nhandles--;
    cv_log(CV_LOG_DEBUG, "msg=\"connection closed\" conn=%" PRIu64 " inflight=%zu", c->id,
           c->inflight);
    conn_unref(c);
}

static void conn_close(cv__conn_t *c)
{
    if (c->state == CONN_CLOSED)
        return;
    /* The queued writes are cancelled by the close (their callbacks see
     * CONN_CLOSED), so every reply byte held leaves the budget now; the
     * commands in flight stay charged until the router answers them. */
    size_t held = conn_unsent(c);
    c->state = CONN_CLOSED;
    c->reading = false;
    undirty(c);
    free(c->out);
    c->out = NULL;
    c->out_len = c->out_cap = 0;
    c->queued = 0;
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
    refund(c->srv, held);
}

/* Replies from now on are dropped; what is buffered is written at the next
 * flush, then the connection shuts down and closes. */
static void conn_finish(cv__conn_t *c)
{
    if (c->state == CONN_OPEN || c->state == CONN_DRAINING) {
        c->state = CONN_FINISHING;
        if (c->reading) {
            uv_read_stop((uv_stream_t *)&c->tcp);
            c->reading = false;
        }
        mark_dirty(c);
    }
}

static void conn_drain(cv__conn_t *c)
{
    if (c->state != CONN_OPEN)
        return;
    c->state = CONN_DRAINING;
    if (c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
    if (c->inflight == 0)
        conn_finish(c);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);

/* Starts or stops reading as state and backpressure say.  The two marks per
 * limit keep a connection near a limit from toggling on every reply. */
static void update_reading(cv__conn_t *c)
{
    size_t wq = conn_unsent(c);
    bool want = c->state == CONN_OPEN && !c->srv->limits.over &&
                wq <= (c->reading ? CV__WQ_HIGH : CV__WQ_LOW) &&
                c->inflight < (c->reading ? CV__INFLIGHT_HIGH : CV__INFLIGHT_LOW);
    if (want == c->reading)
        return;
    if (want) {
        int rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
        if (rc < 0) {
            cv_log(CV_LOG_WARN, "msg=\"cannot read from connection\" conn=%" PRIu64 " err=\"%s\"",
                   c->id, uv_strerror(rc));
            conn_close(c);
            return;
        }
        c->reading = true;
        cv_limits_conn_resumed(&c->lim, uv_hrtime());
    } else {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
        cv_log(CV_LOG_DEBUG, "msg=\"reading paused\" conn=%" PRIu64 " unsent=%zu inflight=%zu",
               c->id, wq, c->inflight);
    }
}

/* ---- replies --------------------------------------------------------------- */

/* Appends one framed Reply to the out buffer.  Out of memory closes the
 * connection: a reply cannot be silently skipped. */
static void conn_reply(cv__conn_t *c, const Canvass__V1__Reply *rep)
{
    if (c->state != CONN_OPEN && c->state != CONN_DRAINING)
        return;
    size_t n = protobuf_c_message_get_packed_size(&rep->base);
    size_t need = c->out_len + CV_FRAME_HEADER + n;
    bool owed_nothing = conn_unsent(c) == 0;
    if (need > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap : 1024;
        while (cap < need)
            cap *= 2;
        uint8_t *b = realloc(c->out, cap);
        if (!b) {
            cv_log(CV_LOG_ERROR, "msg=\"out of memory for a reply; closing\" conn=%" PRIu64, c->id);
            conn_close(c);
            return;
        }
        c->out = b;
        c->out_cap = cap;
    }
    cv_frame_put_header(c->out + c->out_len, (uint32_t)n);
    protobuf_c_message_pack(&rep->base, c->out + c->out_len + CV_FRAME_HEADER);
    c->out_len = need;
    mark_dirty(c);
    if (owed_nothing)
        cv_limits_conn_owed(&c->lim, uv_hrtime()); /* the write deadline runs from here */
    charge(c->srv, CV_FRAME_HEADER + n);
}

static void reply_status(cv__conn_t *c, uint64_t request_id, cv_status_t st, const char *error)
{
    Canvass__V1__Reply rep = CANVASS__V1__REPLY__INIT;
    rep.request_id = request_id;
    rep.status = st;
    rep.error = (char *)error; /* packing only reads it */
    conn_reply(c, &rep);
}

/* The one reply to an unreadable stream; the connection then closes. */
static void bad_frame(cv__conn_t *c, const char *error)
{
    cv_log(CV_LOG_INFO, "msg=\"bad frame; closing\" conn=%" PRIu64 " error=\"%s\"", c->id, error);
    reply_status(c, 0, CV_ST_BAD_FRAME, error);
    conn_finish(c);
}

void cv_server_on_result(void *owner, uint64_t request_id, int op, const cv_router_result_t *res)
{
    cv__conn_t *c = owner;
    Canvass__V1__Reply rep = CANVASS__V1__REPLY__INIT;
    Canvass__V1__VoteAck ack = CANVASS__V1__VOTE_ACK__INIT;
    Canvass__V1__Submitted sub = CANVASS__V1__SUBMITTED__INIT;

    c->inflight--;
    rep.request_id = request_id;
    rep.status = res->status;
    if (res->status != CV_ST_OK) {
        rep.error = (char *)res->error;
    } else if (op == CANVASS__V1__REQUEST__OP_VOTE) {
        ack.feature_id = (char *)res->feature_id;
        ack.changed = res->changed;
        ack.cycle = res->cycle;
        rep.result_case = CANVASS__V1__REPLY__RESULT_VOTE_ACK;
        rep.vote_ack = &ack;
    } else {
        sub.feature_id = (char *)res->feature_id;
        rep.result_case = CANVASS__V1__REPLY__RESULT_SUBMITTED;
        rep.submitted = &sub;
    }
    conn_reply(c, &rep);
    refund(c->srv, CV_LIMITS_COMMAND_COST); /* after the reply's charge: no false resume */
    if (c->state == CONN_DRAINING && c->inflight == 0)
        conn_finish(c);
    else
        update_reading(c);
    conn_unref(c);
}

/* ---- requests -------------------------------------------------------------- */

/* Answers or routes one decoded request; takes ownership of req. */
static void handle_request(cv__conn_t *c, Canvass__V1__Request *req)
{
    char err[256];
    cv_status_t st = cv_admit_request(c->srv->opts.admit, &c->admit, req, uv_hrtime(),
                                      (uint64_t)time(NULL), err, sizeof err);
    if (st != CV_ST_OK) {
        cv_log(CV_LOG_DEBUG, "msg=\"request refused\" conn=%" PRIu64 " request_id=%" PRIu64
               " status=%s error=\"%s\"", c->id, req->request_id, cv_status_name(st), err);
        reply_status(c, req->request_id, st, err);
    } else if (req->op_case == CANVASS__V1__REQUEST__OP_PING) {
        Canvass__V1__Reply rep = CANVASS__V1__REPLY__INIT;
        Canvass__V1__Pong pong = CANVASS__V1__PONG__INIT;
        pong.nonce = req->ping->nonce;
        rep.request_id = req->request_id;
        rep.result_case = CANVASS__V1__REPLY__RESULT_PONG;
        rep.pong = &pong;
        conn_reply(c, &rep);
    } else if (req->op_case == CANVASS__V1__REQUEST__OP_HELLO) {
        /* The admission has checked the key (with app keys) and the
         * protocol version. */
        reply_status(c, req->request_id, CV_ST_OK, "");
    } else {
        uint64_t id = req->request_id;
        c->refs++;
        c->inflight++;
        charge(c->srv, CV_LIMITS_COMMAND_COST); /* refunded by cv_server_on_result */
        int rc = cv_router_send(c->srv->opts.router, &req, c); /* NULLs req on success */
        if (rc < 0) {
            c->refs--;
            c->inflight--;
            refund(c->srv, CV_LIMITS_COMMAND_COST);
            if (rc == CV_ECLOSED)
                reply_status(c, id, CV_ST_UNAVAILABLE, "ingest is shutting down; safe to retry");
            else
                reply_status(c, id, CV_ST_INTERNAL, cv_strerror(rc));
        }
        update_reading(c);
    }
    if (req)
        canvass__v1__request__free_unpacked(req, NULL);
}

static void handle_frame(cv__conn_t *c, const uint8_t *payload, size_t len)
{
    Canvass__V1__Request *req = (Canvass__V1__Request *)cv_codec_unpack(&canvass__v1__request__descriptor, len, payload);
    if (!req) {
        char err[96];
        snprintf(err, sizeof err, "undecodable request: %zu bytes are not a canvass.v1.Request",
                 len);
        bad_frame(c, err);
        return;
    }
    handle_request(c, req);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    cv__conn_t *c = h->data;
    buf->base = c->srv->readbuf;
    buf->len = sizeof c->srv->readbuf;
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    cv__conn_t *c = st->data;
    if (nread == 0 || c->state != CONN_OPEN)
        return;
    if (nread == UV_EOF) {
        cv_log(CV_LOG_DEBUG, "msg=\"peer finished sending\" conn=%" PRIu64 " inflight=%zu",
               c->id, c->inflight);
        conn_drain(c);
        return;
    }
    if (nread < 0) {
        cv_log(CV_LOG_DEBUG, "msg=\"read failed; closing\" conn=%" PRIu64 " err=\"%s\"", c->id,
               uv_strerror((int)nread));
        conn_close(c);
        return;
    }
    if (cv_frame_reader_feed(&c->reader, buf->base, (size_t)nread) < 0) {
        cv_log(CV_LOG_ERROR, "msg=\"out of memory reading; closing\" conn=%" PRIu64, c->id);
        conn_close(c);
        return;
    }
    uint64_t now = uv_hrtime();
    bool completed = false;
    while (c->state == CONN_OPEN) {
        const uint8_t *payload;
        size_t len;
        int rc = cv_frame_reader_next(&c->reader, &payload, &len);
        if (rc == 0)
            break;
        completed = true;
        if (rc < 0) {
            char err[96];
            if (c->reader.bad_len == 0)
                snprintf(err, sizeof err, "frame length 0");
            else
                snprintf(err, sizeof err, "frame length %" PRIu32 " exceeds limit %zu",
                         c->reader.bad_len, c->reader.max_frame);
            bad_frame(c, err);
            break;
        }
        handle_frame(c, payload, len);
    }
    cv_limits_conn_read(&c->lim, now, completed, cv_frame_reader_pending(&c->reader) > 0);
    /* Replies made by this read may have passed the connection's mark. */
    update_reading(c);
}

/* ---- writing --------------------------------------------------------------- */

static void on_write(uv_write_t *req, int status)
{
    cv__write_t *w = (cv__write_t *)req;
    cv__conn_t *c = w->conn;
    size_t n = w->len;
    free(w->buf);
    free(w);
    if (c->state == CONN_CLOSED)
        return; /* cancelled by the close, which refunded it; the handle still holds c */
    c->queued -= n;
    cv_limits_conn_wrote(&c->lim, uv_hrtime());
    refund(c->srv, n);
    if (status < 0) {
        cv_log(CV_LOG_DEBUG, "msg=\"write failed; closing\" conn=%" PRIu64 " err=\"%s\"", c->id,
               uv_strerror(status));
        conn_close(c);
        return;
    }
    update_reading(c);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    cv__conn_t *c = req->data;
    conn_close(c);
}

static void conn_flush(cv__conn_t *c)
{
    if (c->out_len) {
        cv__write_t *w = malloc(sizeof *w);
        if (!w) {
            cv_log(CV_LOG_ERROR, "msg=\"out of memory writing; closing\" conn=%" PRIu64, c->id);
            conn_close(c);
            return;
        }
        w->conn = c;
        w->buf = c->out;
        w->len = c->out_len;
        uv_buf_t b = uv_buf_init((char *)c->out, (unsigned)c->out_len);
        c->out = NULL;
        c->out_len = c->out_cap = 0;
        int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write);
        if (rc < 0) {
            size_t lost = w->len;
            free(w->buf);
            free(w);
            cv_log(CV_LOG_DEBUG, "msg=\"write failed; closing\" conn=%" PRIu64 " err=\"%s\"",
                   c->id, uv_strerror(rc));
            conn_close(c);
            refund(c->srv, lost);
            return;
        }
        c->queued += w->len; /* charged when framed (conn_reply) */
    }
    if (c->state == CONN_FINISHING && !c->shutdown_sent) {
        /* uv_shutdown waits for the queued writes, so the last reply is
         * written before the FIN. */
        c->shutdown_sent = true;
        c->shutdown_req.data = c;
        if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, on_shutdown) < 0)
            conn_close(c);
        return;
    }
    update_reading(c);
}

void cv_server_flush(cv_server_t *s)
{
    while (s->dirty) {
        cv__conn_t *c = s->dirty;
        undirty(c);
        conn_flush(c);
    }
}

/* ---- limits (the rules are limits.c's) ------------------------------------- */

/* The budget was passed or recovered: every connection pauses or resumes. */
static void budget_changed(cv_server_t *s)
{
    bool over = s->limits.over;
    cv_log(over ? CV_LOG_WARN : CV_LOG_INFO,
           "msg=\"%s\" buffered=%zu max_buffered=%zu connections=%zu",
           over ? "unsent replies over budget: reading paused" : "reading resumed",
           s->limits.charged, s->opts.max_buffered, s->nconns);
    cv__conn_t *c, *tmp;
    DL_FOREACH_SAFE(s->conns, c, tmp)
        update_reading(c);
}

static void charge(cv_server_t *s, size_t n)
{
    if (cv_limits_charge(&s->limits, n))
        budget_changed(s);
}

static void refund(cv_server_t *s, size_t n)
{
    if (cv_limits_refund(&s->limits, n))
        budget_changed(s);
}

static const char *const close_why[] = {
    [CV_LIMITS_IDLE] = "idle deadline: nothing sent or owed; shutting down",
    [CV_LIMITS_READ] = "read deadline: a frame was not finished; closing",
    [CV_LIMITS_WRITE] = "write deadline: the client reads nothing; closing",
};

/* A frame reader keeps the largest buffer it ever grew to (a whole 64 KiB
 * read on top of a partial frame).  Between frames it needs none, and a
 * stalled partial frame needs only its own bytes: so that connections that
 * sit still hold little, the sweep gives the rest back. */
static void shrink_reader(cv__conn_t *c)
{
    cv_frame_reader_t *r = &c->reader;
    size_t pending = cv_frame_reader_pending(r);
    if (pending == 0 && r->cap) {
        cv_frame_reader_free(r);
        cv_frame_reader_init(r, c->srv->opts.max_frame);
    } else if (pending && r->cap > 8192 && r->cap / 4 > pending) {
        cv_frame_reader_t small;
        cv_frame_reader_init(&small, c->srv->opts.max_frame);
        if (cv_frame_reader_feed(&small, r->buf + r->start, pending) == 0) {
            cv_frame_reader_free(r);
            *r = small;
        }
    }
}

static void on_sweep(uv_timer_t *t)
{
    cv_server_t *s = t->data;
    uint64_t now = uv_hrtime();
    cv__conn_t *c, *tmp;
    DL_FOREACH_SAFE(s->conns, c, tmp) {
        if (c->state == CONN_CLOSED)
            continue;
        cv_limits_state_t st = {
            .open = c->state == CONN_OPEN,
            .reading = c->reading,
            .owed = c->inflight > 0,
            .unsent = conn_unsent(c),
            .socket_unsent = c->tcp.write_queue_size,
        };
        cv_limits_verdict_t v = cv_limits_check(&s->limits, &c->lim, &st, now);
        if (v == CV_LIMITS_OK) {
            shrink_reader(c);
            continue;
        }
        cv_log(CV_LOG_INFO, "msg=\"%s\" conn=%" PRIu64 " unsent=%zu held=%zu inflight=%zu",
               close_why[v], c->id, st.unsent, cv_frame_reader_pending(&c->reader), c->inflight);
        if (v == CV_LIMITS_IDLE)
            conn_finish(c);
        else
            conn_close(c);
    }
    cv_server_flush(s); /* the shutdowns of idle ones */
}

static void on_sweep_closed(uv_handle_t *h)
{
    cv_server_t *s = h->data;
    s->nhandles--;
}

static void close_sweep(cv_server_t *s)
{
    if (s->sweep_open) {
        s->sweep_open = false;
        uv_close((uv_handle_t *)&s->sweep, on_sweep_closed);
    }
}

static void start_sweep(cv_server_t *s)
{
    uint64_t every = cv_limits_sweep_ms(&s->limits);
    uv_timer_init(s->loop, &s->sweep);
    s->sweep.data = s;
    s->sweep_open = true;
    s->nhandles++;
    uv_timer_start(&s->sweep, on_sweep, every, every);
}

/* ---- accepting ------------------------------------------------------------- */

static void on_rejected_closed(uv_handle_t *h)
{
    cv_server_t *s = h->data;
    s->nhandles--;
    free(h);
}

/* Past --max-connections: accept (or the listener stalls), tell the client
 * why in one best-effort write, close. */
static void reject(cv_server_t *s)
{
    uv_tcp_t *t = malloc(sizeof *t);
    if (!t || uv_tcp_init(s->loop, t) < 0) {
        free(t);
        cv_log(CV_LOG_ERROR, "msg=\"cannot accept a connection: out of memory\"");
        return;
    }
    t->data = s;
    s->nhandles++;
    if (uv_accept((uv_stream_t *)&s->listener, (uv_stream_t *)t) == 0) {
        Canvass__V1__Reply rep = CANVASS__V1__REPLY__INIT;
        uint8_t buf[64];
        rep.status = CV_ST_UNAVAILABLE;
        rep.error = (char *)"too many connections";
        size_t n = protobuf_c_message_pack(&rep.base, buf + CV_FRAME_HEADER);
        cv_frame_put_header(buf, (uint32_t)n);
        uv_buf_t b = uv_buf_init((char *)buf, (unsigned)(CV_FRAME_HEADER + n));
        (void)uv_try_write((uv_stream_t *)t, &b, 1);
    }
    cv_log(CV_LOG_WARN, "msg=\"connection refused: too many connections\" limit=%zu",
           s->opts.max_connections);
    uv_close((uv_handle_t *)t, on_rejected_closed);
}

/* Writes the address into ip and returns the port. */
static int sockaddr_text(const struct sockaddr_storage *ss, char *ip, size_t iplen)
{
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        uv_ip6_name(a, ip, iplen);
        return ntohs(a->sin6_port);
    }
    const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
    uv_ip4_name(a, ip, iplen);
    return ntohs(a->sin_port);
}

static void on_connection(uv_stream_t *listener, int status)
{
    cv_server_t *s = listener->data;
    if (status < 0) {
        cv_log(CV_LOG_WARN, "msg=\"accept failed\" err=\"%s\"", uv_strerror(status));
        return;
    }
    if (s->nconns >= s->opts.max_connections) {
        reject(s);
        return;
    }
    cv__conn_t *c = calloc(1, sizeof *c);
    if (!c || uv_tcp_init(s->loop, &c->tcp) < 0) {
        free(c);
        cv_log(CV_LOG_ERROR, "msg=\"cannot accept a connection: out of memory\"");
        return;
    }
    c->srv = s;
    c->id = ++s->next_id;
    c->refs = 1;
    c->state = CONN_OPEN;
    c->tcp.data = c;
    cv_limits_conn_init(&c->lim, uv_hrtime());
    cv_frame_reader_init(&c->reader, s->opts.max_frame);
    cv_admit_conn_init(s->opts.admit, &c->admit, uv_hrtime());
    DL_APPEND(s->conns, c);
    s->nconns++;
    s->nhandles++;
    int rc = uv_accept(listener, (uv_stream_t *)&c->tcp);
    if (rc < 0) {
        cv_log(CV_LOG_WARN, "msg=\"accept failed\" err=\"%s\"", uv_strerror(rc));
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    if (cv_log_level <= CV_LOG_DEBUG) {
        struct sockaddr_storage ss;
        int len = sizeof ss;
        char ip[64] = "?";
        int port = 0;
        if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0)
            port = sockaddr_text(&ss, ip, sizeof ip);
        cv_log(CV_LOG_DEBUG, "msg=\"connection accepted\" conn=%" PRIu64 " peer=\"%s:%d\" open=%zu",
               c->id, ip, port, s->nconns);
    }
    update_reading(c);
}

/* ---- server ---------------------------------------------------------------- */

/* Splits "host:port" or "[v6]:port" into host and port (in place). */
static int split_host_port(char *spec, char **host, char **port)
{
    char *colon = strrchr(spec, ':');
    if (!colon || colon == spec || !colon[1])
        return CV_EINVAL;
    *colon = '\0';
    *port = colon + 1;
    *host = spec;
    if (spec[0] == '[') {
        size_t n = strlen(spec);
        if (n < 3 || spec[n - 1] != ']')
            return CV_EINVAL;
        spec[n - 1] = '\0';
        *host = spec + 1;
    }
    return 0;
}

static void on_listener_closed(uv_handle_t *h)
{
    cv_server_t *s = h->data;
    s->nhandles--;
}

static void close_listener(cv_server_t *s)
{
    if (s->listener_open) {
        s->listener_open = false;
        uv_close((uv_handle_t *)&s->listener, on_listener_closed);
    }
}

cv_server_t *cv_server_new(uv_loop_t *loop, const cv_server_opts_t *opts)
{
    cv_server_t *s = calloc(1, sizeof *s);
    char *spec = strdup(opts->listen);
    char *host, *port;
    if (!s || !spec) {
        free(s);
        free(spec);
        return NULL;
    }
    s->loop = loop;
    s->opts = *opts;
    cv_limits_opts_t lo = {.idle_ms = opts->idle_ms,
                           .read_ms = opts->read_ms,
                           .write_ms = opts->write_ms,
                           .max_buffered = opts->max_buffered};
    cv_limits_init(&s->limits, &lo);
    if (split_host_port(spec, &host, &port) < 0) {
        cv_log(CV_LOG_ERROR, "msg=\"listen address must be host:port\" listen=\"%s\"", opts->listen);
        goto fail;
    }

    /* Synchronous (no callback): resolving once at start-up may block. */
    uv_getaddrinfo_t gai;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    int rc = uv_getaddrinfo(loop, &gai, NULL, host, port, &hints);
    if (rc < 0) {
        cv_log(CV_LOG_ERROR, "msg=\"cannot resolve listen address\" listen=\"%s\" err=\"%s\"",
               opts->listen, uv_strerror(rc));
        goto fail;
    }
    uv_tcp_init(loop, &s->listener);
    s->listener.data = s;
    s->listener_open = true;
    s->nhandles = 1;
    rc = uv_tcp_bind(&s->listener, gai.addrinfo->ai_addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&s->listener, CV__BACKLOG, on_connection);
    uv_freeaddrinfo(gai.addrinfo);
    if (rc == 0) {
        struct sockaddr_storage ss;
        int len = sizeof ss;
        char ip[64] = "?";
        int p = 0;
        if (uv_tcp_getsockname(&s->listener, (struct sockaddr *)&ss, &len) == 0)
            p = sockaddr_text(&ss, ip, sizeof ip);
        cv_log(CV_LOG_INFO, "msg=\"listening for clients\" addr=\"%s\" port=%d", ip, p);
        start_sweep(s);
    } else {
        cv_log(CV_LOG_ERROR, "msg=\"cannot listen\" listen=\"%s\" err=\"%s\"", opts->listen,
               uv_strerror(rc));
        close_listener(s);
        while (s->nhandles > 0 && uv_run(loop, UV_RUN_ONCE))
            ;
        goto fail;
    }
    free(spec);
    return s;
fail:
    free(spec);
    free(s);
    return NULL;
}

void cv_server_drain(cv_server_t *s)
{
    close_listener(s);
    close_sweep(s);
    cv__conn_t *c, *tmp;
    DL_FOREACH_SAFE(s->conns, c, tmp)
        conn_drain(c);
}

void cv_server_close(cv_server_t *s)
{
    close_listener(s);
    close_sweep(s);
    cv__conn_t *c, *tmp;
    DL_FOREACH_SAFE(s->conns, c, tmp)
        conn_close(c);
}

bool cv_server_closed(const cv_server_t *s)
{
    return s->nhandles == 0;
}

size_t cv_server_connections(const cv_server_t *s)
{
    return s->nconns;
}

size_t cv_server_buffered(const cv_server_t *s)
{
    return s->limits.charged;
}

void cv_server_destroy(cv_server_t **s_p)
{
    if (!s_p || !*s_p)
        return;
    free(*s_p);
    *s_p = NULL;
}
