/* conn_test: unit tests for the loadgen's client connection (conn.c),
 * against a small ingest stand-in served by libuv in the same loop.
 *
 * The stand-in reads real frames and canvass.v1 Requests and answers Pings
 * with Pongs carrying the same nonce, so each test can check that every
 * reply reached the request it belongs to.  Modes: hold a batch and answer
 * it in reverse order; drop the first connection after reading requests
 * without answering (the connection must hand them back and reconnect);
 * refuse the Hello and send a reply nobody asked for.
 */
#include "conn.h"
#include "cv_frame.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define TOTAL 40
#define MAXQ 64

/* ---- the stand-in server ------------------------------------------------------- */

typedef enum { MODE_REVERSE, MODE_DROP_FIRST, MODE_REFUSE_HELLO } smode_t;

typedef struct {
    uv_tcp_t listener;
    uv_tcp_t client;
    bool client_open;
    int connections;
    smode_t mode;
    unsigned batch;
    cv_frame_reader_t rd;
    uint64_t held_id[MAXQ], held_nonce[MAXQ];
    unsigned nheld;
    int port;
} server_t;

typedef struct {
    uv_write_t req;
    uint8_t *data;
} swrite_t;

static void on_swrite(uv_write_t *req, int status)
{
    swrite_t *w = (swrite_t *)req;
    free(w->data);
    free(w);
}

static void server_send(server_t *s, uint64_t id, int status, uint64_t nonce)
{
    Canvass__V1__Reply rep = CANVASS__V1__REPLY__INIT;
    Canvass__V1__Pong pong = CANVASS__V1__PONG__INIT;
    rep.request_id = id;
    rep.status = status;
    if (status == CV_ST_OK) {
        pong.nonce = nonce;
        rep.result_case = CANVASS__V1__REPLY__RESULT_PONG;
        rep.pong = &pong;
    } else {
        rep.error = "refused by the test";
    }
    size_t len = protobuf_c_message_get_packed_size(&rep.base);
    swrite_t *w = malloc(sizeof *w);
    assert_non_null(w);
    w->data = malloc(CV_FRAME_HEADER + len);
    assert_non_null(w->data);
    cv_frame_put_header(w->data, (uint32_t)len);
    protobuf_c_message_pack(&rep.base, w->data + CV_FRAME_HEADER);
    uv_buf_t buf = uv_buf_init((char *)w->data, (unsigned)(CV_FRAME_HEADER + len));
    assert_int_equal(uv_write(&w->req, (uv_stream_t *)&s->client, &buf, 1, on_swrite), 0);
}

static void on_client_closed(uv_handle_t *h)
{
    server_t *s = h->data;
    s->client_open = false;
    cv_frame_reader_free(&s->rd);
}

static void server_drop_client(server_t *s)
{
    uv_read_stop((uv_stream_t *)&s->client);
    uv_close((uv_handle_t *)&s->client, on_client_closed);
}

static void server_request(server_t *s, const Canvass__V1__Request *req)
{
    if (req->op_case == CANVASS__V1__REQUEST__OP_HELLO) {
        assert_string_equal(req->hello->app_key, "key-1");
        assert_int_equal(req->hello->protocol_version, 1);
        server_send(s, req->request_id, CV_ST_FORBIDDEN, 0);
        server_send(s, req->request_id ^ 0x5a5a0000ULL, CV_ST_OK, 7); /* a stray */
        return;
    }
    assert_int_equal(req->op_case, CANVASS__V1__REQUEST__OP_PING);
    uint64_t id = req->request_id, nonce = req->ping->nonce;
    if (s->mode == MODE_DROP_FIRST && s->connections == 1) {
        /* Read, never answer; drop once a few have come in. */
        if (++s->nheld == 3)
            server_drop_client(s);
        return;
    }
    if (s->mode == MODE_REVERSE) {
        s->held_id[s->nheld] = id;
        s->held_nonce[s->nheld] = nonce;
        if (++s->nheld == s->batch) {
            while (s->nheld > 0) {
                s->nheld--;
                server_send(s, s->held_id[s->nheld], CV_ST_OK, s->held_nonce[s->nheld]);
            }
        }
        return;
    }
    server_send(s, id, CV_ST_OK, nonce);
}

static void on_salloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static char rbuf[65536];
    *buf = uv_buf_init(rbuf, sizeof rbuf);
}

static void on_sread(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    server_t *s = st->data;
    if (nread < 0) {
        server_drop_client(s);
        return;
    }
    assert_int_equal(cv_frame_reader_feed(&s->rd, buf->base, (size_t)nread), 0);
    const uint8_t *p;
    size_t len;
    while (s->client_open && !uv_is_closing((uv_handle_t *)&s->client) &&
           cv_frame_reader_next(&s->rd, &p, &len) == 1) {
        Canvass__V1__Request *req = canvass__v1__request__unpack(NULL, len, p);
        assert_non_null(req);
        server_request(s, req);
        canvass__v1__request__free_unpacked(req, NULL);
    }
}

static void on_sconnection(uv_stream_t *l, int status)
{
    server_t *s = l->data;
    assert_int_equal(status, 0);
    assert_false(s->client_open); /* the tests use one connection at a time */
    uv_tcp_init(l->loop, &s->client);
    s->client.data = s;
    s->client_open = true;
    s->connections++;
    s->nheld = 0;
    cv_frame_reader_init(&s->rd, CV_FRAME_DEFAULT_MAX);
    assert_int_equal(uv_accept(l, (uv_stream_t *)&s->client), 0);
    uv_read_start((uv_stream_t *)&s->client, on_salloc, on_sread);
}

/* Listens on a free port in 20000-60000 on 127.0.0.1. */
static void server_start(uv_loop_t *loop, server_t *s, smode_t mode, unsigned batch)
{
    memset(s, 0, sizeof *s);
    s->mode = mode;
    s->batch = batch;
    uv_tcp_init(loop, &s->listener);
    s->listener.data = s;
    srand((unsigned)uv_hrtime());
    for (int tries = 0; tries < 100; tries++) {
        struct sockaddr_in a;
        int port = 20000 + rand() % 40000;
        uv_ip4_addr("127.0.0.1", port, &a);
        if (uv_tcp_bind(&s->listener, (struct sockaddr *)&a, 0) == 0 &&
            uv_listen((uv_stream_t *)&s->listener, 16, on_sconnection) == 0) {
            s->port = port;
            return;
        }
        uv_close((uv_handle_t *)&s->listener, NULL);
        uv_run(loop, UV_RUN_NOWAIT);
        uv_tcp_init(loop, &s->listener);
        s->listener.data = s;
    }
    fail_msg("no free port");
}

static void server_stop(server_t *s)
{
    if (!uv_is_closing((uv_handle_t *)&s->listener))
        uv_close((uv_handle_t *)&s->listener, NULL);
    if (s->client_open && !uv_is_closing((uv_handle_t *)&s->client))
        server_drop_client(s);
}

/* ---- the owner ------------------------------------------------------------------ */

typedef struct {
    cv_conn_t *c;
    server_t *s;
    unsigned depth;
    uint64_t next_nonce;
    uint64_t queue[MAXQ]; /* lost requests to send again */
    unsigned nq;
    int replied[TOTAL];
    int nreplied, lost, ups, downs, refused, strays;
    unsigned max_in_flight;
    Canvass__V1__Ping ping;
} owner_t;

/* A request is its nonce + 1 cast to a pointer (never NULL). */
static void *on_next(void *ctx, cv_conn_t *c, Canvass__V1__Request *msg)
{
    owner_t *o = ctx;
    uint64_t nonce;
    if (o->nq > 0)
        nonce = o->queue[--o->nq];
    else if (o->next_nonce < TOTAL)
        nonce = o->next_nonce++;
    else
        return NULL;
    unsigned in_flight = cv_conn_in_flight(c) + 1;
    assert_true(in_flight <= o->depth);
    if (in_flight > o->max_in_flight)
        o->max_in_flight = in_flight;
    canvass__v1__ping__init(&o->ping);
    o->ping.nonce = nonce;
    msg->op_case = CANVASS__V1__REQUEST__OP_PING;
    msg->ping = &o->ping;
    return (void *)(uintptr_t)(nonce + 1);
}

static void on_reply(void *ctx, cv_conn_t *c, void *req, const Canvass__V1__Reply *rep)
{
    owner_t *o = ctx;
    uint64_t nonce = (uintptr_t)req - 1;
    assert_true(nonce < TOTAL);
    assert_int_equal(rep->status, CV_ST_OK);
    assert_int_equal(rep->result_case, CANVASS__V1__REPLY__RESULT_PONG);
    assert_int_equal(rep->pong->nonce, nonce); /* the reply found its own request */
    o->replied[nonce]++;
    if (++o->nreplied == TOTAL) {
        cv_conn_stop(c);
        server_stop(o->s);
    }
}

static void on_lost(void *ctx, cv_conn_t *c, void *req)
{
    owner_t *o = ctx;
    assert_true(o->nq < MAXQ);
    o->queue[o->nq++] = (uintptr_t)req - 1;
    o->lost++;
}

static void on_event(void *ctx, cv_conn_t *c, cv_conn_event_t ev, const char *why)
{
    owner_t *o = ctx;
    assert_non_null(why);
    switch (ev) {
    case CV_CONN_UP:
        o->ups++;
        break;
    case CV_CONN_DOWN:
        o->downs++;
        break;
    case CV_CONN_REFUSED:
        o->refused++;
        assert_non_null(strstr(why, "FORBIDDEN: refused by the test"));
        break;
    case CV_CONN_STRAY:
        o->strays++;
        break;
    }
}

static const cv_conn_ops_t ops = {on_next, on_reply, on_lost, on_event};

static void on_timeout(uv_timer_t *t)
{
    fail_msg("the test did not finish in time");
}

/* Runs one connection against a stand-in in the given mode until every
 * request has its reply (or a test-specific stop). */
static void run_case(owner_t *o, server_t *s, smode_t mode, unsigned depth, unsigned batch,
                     const char *app_key, int stop_after_refused)
{
    uv_loop_t loop;
    uv_timer_t timer;
    assert_int_equal(uv_loop_init(&loop), 0);
    server_start(&loop, s, mode, batch);
    memset(o, 0, sizeof *o);
    o->s = s;
    o->depth = depth;
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", s->port, &a);
    cv_conn_opts_t co = {(struct sockaddr *)&a, depth, 0, app_key, &ops, o};
    o->c = cv_conn_new(&loop, &co);
    assert_non_null(o->c);
    uv_timer_init(&loop, &timer);
    uv_timer_start(&timer, on_timeout, 10000, 0);
    uv_unref((uv_handle_t *)&timer);
    cv_conn_start(o->c);
    while (!cv_conn_closed(o->c)) {
        uv_run(&loop, UV_RUN_ONCE);
        if (stop_after_refused && o->refused && o->strays) {
            cv_conn_stop(o->c);
            server_stop(s);
        }
    }
    uv_close((uv_handle_t *)&timer, NULL);
    server_stop(s);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    cv_conn_destroy(&o->c);
    assert_null(o->c);
}

/* ---- tests ------------------------------------------------------------------------ */

static void test_pipelined_out_of_order(void **state)
{
    owner_t o;
    server_t s;
    run_case(&o, &s, MODE_REVERSE, 8, 8, NULL, 0);
    for (int i = 0; i < TOTAL; i++)
        assert_int_equal(o.replied[i], 1);
    assert_int_equal(o.max_in_flight, 8); /* the pipeline was full */
    assert_int_equal(o.ups, 1);
    assert_int_equal(o.downs, 0);
    assert_int_equal(o.lost, 0);
    assert_int_equal(o.strays, 0);
}

static void test_lost_connection_hands_back_and_reconnects(void **state)
{
    owner_t o;
    server_t s;
    run_case(&o, &s, MODE_DROP_FIRST, 4, 0, NULL, 0);
    assert_int_equal(o.lost, 4); /* the whole first pipeline came back */
    assert_true(o.downs >= 1);
    assert_int_equal(o.ups, 2);
    assert_int_equal(s.connections, 2);
    for (int i = 0; i < TOTAL; i++) /* each answered once, after the resend */
        assert_int_equal(o.replied[i], 1);
}

static void test_hello_refused_and_stray_reply(void **state)
{
    owner_t o;
    server_t s;
    run_case(&o, &s, MODE_REFUSE_HELLO, 4, 0, "key-1", 1);
    assert_int_equal(o.refused, 1);
    assert_int_equal(o.strays, 1);
    assert_int_equal(o.downs, 0); /* a refused Hello does not close the connection */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pipelined_out_of_order),
        cmocka_unit_test(test_lost_connection_hands_back_and_reconnects),
        cmocka_unit_test(test_hello_refused_and_stray_reply),
    };
    return cmocka_run_group_tests_name("loadgen_conn", tests, NULL, NULL);
}
