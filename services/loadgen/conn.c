/* conn: a pipelined, self-reconnecting client connection (see conn.h).
 *
 * In-flight requests sit in `depth` slots plus one reserved for the Hello.
 * A request_id is (sends on this connection << 16) | slot, so a reply finds
 * its slot in O(1), and a reply for a slot that has since been reused (or
 * an id we never sent) does not match the id stored there and is a stray.
 *
 * States: IDLE (no socket; the back-off timer may be running), CONNECTING,
 * UP (reading, sending) and CLOSING (socket closing; IDLE follows, or the
 * end when stopping).  The timer handle lives as long as the connection; the
 * TCP handle is initialised afresh for every attempt.  Frames gathered in
 * one fill are written with uv_try_write and, for what the kernel did not
 * take at once, one uv_write that owns the buffer.
 */
#include "conn.h"
#include "cv_err.h"
#include "cv_frame.h"
#include "cv_log.h"

#include <stdlib.h>
#include <string.h>

#define SLOT_BITS 16
#define BACKOFF_MIN_MS 50
#define BACKOFF_MAX_MS 2000
#define READ_BUF 65536

typedef enum { S_IDLE, S_CONNECTING, S_UP, S_CLOSING } state_t;

struct cv_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_connect_t connect_req;
    uv_loop_t *loop;
    struct sockaddr_storage addr;
    cv_conn_ops_t ops;
    void *ctx;
    unsigned index;
    const char *app_key;

    state_t state;
    bool stopping;
    int handles; /* open libuv handles: the timer, and the socket unless IDLE */
    unsigned backoff_ms;

    unsigned depth, in_flight;
    void **slots;        /* depth + 1; [depth] marks the Hello */
    uint64_t *ids;       /* the request_id each used slot was sent with */
    unsigned *free_slots; /* stack of unused slots 0..depth-1 */
    unsigned nfree;
    uint64_t sends;

    cv_frame_reader_t reader;
    uint8_t *out; /* frames not yet written */
    size_t out_len, out_cap;
    uint8_t rbuf[READ_BUF];
};

typedef struct {
    uv_write_t req;
    uint8_t *data; /* owned */
} write_t;

static void conn_connect(cv_conn_t *c);

static void on_backoff_over(uv_timer_t *t)
{
    conn_connect(t->data);
}

/* ---- handles ------------------------------------------------------------------ */

static void on_handle_closed(uv_handle_t *h)
{
    cv_conn_t *c = h->data;
    c->handles--;
    if ((uv_handle_t *)&c->tcp != h)
        return;
    c->state = S_IDLE;
    if (!c->stopping) {
        uv_timer_start(&c->timer, on_backoff_over, c->backoff_ms, 0);
        c->backoff_ms = c->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : c->backoff_ms * 2;
    }
}

static void close_socket(cv_conn_t *c)
{
    c->state = S_CLOSING;
    uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
}

/* Frees every slot; with give_back, hands the requests back to the owner. */
static void release_slots(cv_conn_t *c, bool give_back)
{
    c->nfree = 0;
    for (unsigned i = c->depth + 1; i-- > 0;) {
        void *req = c->slots[i];
        c->slots[i] = NULL;
        if (i < c->depth)
            c->free_slots[c->nfree++] = i;
        if (req && i < c->depth && give_back)
            c->ops.lost(c->ctx, c, req);
    }
    c->in_flight = 0;
}

/* The connection failed: give the requests back, say why, reconnect later. */
static void conn_drop(cv_conn_t *c, const char *why)
{
    if (c->state != S_UP && c->state != S_CONNECTING)
        return;
    if (c->state == S_UP)
        uv_read_stop((uv_stream_t *)&c->tcp);
    close_socket(c);
    cv_frame_reader_free(&c->reader);
    cv_frame_reader_init(&c->reader, CV_FRAME_DEFAULT_MAX);
    c->out_len = 0;
    release_slots(c, true);
    c->ops.event(c->ctx, c, CV_CONN_DOWN, why);
}

/* ---- writing ------------------------------------------------------------------- */

/* Appends msg as one frame.  Returns 0 or CV_ENOMEM. */
static int append_frame(cv_conn_t *c, const Canvass__V1__Request *msg)
{
    size_t len = protobuf_c_message_get_packed_size(&msg->base);
    size_t need = c->out_len + CV_FRAME_HEADER + len;
    if (need > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap : 4096;
        while (cap < need)
            cap *= 2;
        uint8_t *p = realloc(c->out, cap);
        if (!p)
            return -1;
        c->out = p;
        c->out_cap = cap;
    }
    cv_frame_put_header(c->out + c->out_len, (uint32_t)len);
    protobuf_c_message_pack(&msg->base, c->out + c->out_len + CV_FRAME_HEADER);
    c->out_len = need;
    return 0;
}

static void on_write(uv_write_t *req, int status)
{
    write_t *w = (write_t *)req;
    cv_conn_t *c = req->handle->data;
    free(w->data);
    free(w);
    if (status < 0 && status != UV_ECANCELED && c->state == S_UP)
        conn_drop(c, uv_strerror(status));
}

static void flush_out(cv_conn_t *c)
{
    if (c->out_len == 0)
        return;
    uv_buf_t buf = uv_buf_init((char *)c->out, (unsigned)c->out_len);
    int n = uv_try_write((uv_stream_t *)&c->tcp, &buf, 1);
    if (n == (int)c->out_len) {
        c->out_len = 0;
        return;
    }
    if (n < 0 && n != UV_EAGAIN) {
        conn_drop(c, uv_strerror(n));
        return;
    }
    size_t done = n > 0 ? (size_t)n : 0;
    write_t *w = malloc(sizeof *w);
    if (!w) {
        conn_drop(c, "out of memory");
        return;
    }
    /* The write takes the buffer; the next fill starts a new one. */
    w->data = c->out;
    c->out = NULL;
    c->out_cap = 0;
    buf = uv_buf_init((char *)w->data + done, (unsigned)(c->out_len - done));
    c->out_len = 0;
    int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &buf, 1, on_write);
    if (rc < 0) {
        free(w->data);
        free(w);
        conn_drop(c, uv_strerror(rc));
    }
}

/* Puts req into a free slot (or the Hello slot) and frames msg for it. */
static int send_in_slot(cv_conn_t *c, unsigned slot, void *req, Canvass__V1__Request *msg)
{
    uint64_t id = (++c->sends << SLOT_BITS) | slot;
    msg->request_id = id;
    if (append_frame(c, msg) < 0)
        return -1;
    c->slots[slot] = req;
    c->ids[slot] = id;
    return 0;
}

void cv_conn_fill(cv_conn_t *c)
{
    if (c->state != S_UP || c->stopping)
        return;
    while (c->in_flight < c->depth) {
        Canvass__V1__Request msg = CANVASS__V1__REQUEST__INIT;
        void *req = c->ops.next(c->ctx, c, &msg);
        if (!req)
            break;
        unsigned slot = c->free_slots[--c->nfree];
        c->in_flight++;
        if (send_in_slot(c, slot, req, &msg) < 0) {
            c->slots[slot] = req; /* so that conn_drop hands it back */
            conn_drop(c, "out of memory");
            return;
        }
    }
    if (c->state == S_UP && !c->stopping) /* the owner may have stopped us in next() */
        flush_out(c);
}

static void send_hello(cv_conn_t *c)
{
    Canvass__V1__Hello hello = CANVASS__V1__HELLO__INIT;
    Canvass__V1__Request msg = CANVASS__V1__REQUEST__INIT;
    hello.app_key = (char *)c->app_key;
    hello.client_name = "canvass-loadgen";
    hello.protocol_version = 1;
    msg.op_case = CANVASS__V1__REQUEST__OP_HELLO;
    msg.hello = &hello;
    /* The slot needs a non-NULL marker; the Hello has no owner request. */
    if (send_in_slot(c, c->depth, c, &msg) < 0)
        conn_drop(c, "out of memory");
}

/* ---- reading ------------------------------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    cv_conn_t *c = h->data;
    *buf = uv_buf_init((char *)c->rbuf, sizeof c->rbuf);
}

static void handle_reply(cv_conn_t *c, const Canvass__V1__Reply *rep)
{
    if (rep->request_id == 0) {
        /* The server could not read one of our frames and closes. */
        char why[300];
        snprintf(why, sizeof why, "server could not read a request: %s: %s",
                 cv_status_name(rep->status), rep->error);
        conn_drop(c, why);
        return;
    }
    unsigned slot = (unsigned)(rep->request_id & ((1u << SLOT_BITS) - 1));
    if (slot > c->depth || !c->slots[slot] || c->ids[slot] != rep->request_id) {
        c->ops.event(c->ctx, c, CV_CONN_STRAY, "reply matches no request in flight");
        return;
    }
    void *req = c->slots[slot];
    c->slots[slot] = NULL;
    if (slot == c->depth) {
        if (rep->status != CV_ST_OK) {
            char why[300];
            snprintf(why, sizeof why, "%s: %s", cv_status_name(rep->status), rep->error);
            c->ops.event(c->ctx, c, CV_CONN_REFUSED, why);
        }
        return;
    }
    c->free_slots[c->nfree++] = slot;
    c->in_flight--;
    c->ops.reply(c->ctx, c, req, rep);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    cv_conn_t *c = st->data;
    if (nread < 0) {
        conn_drop(c, nread == UV_EOF ? "server closed the connection" : uv_strerror((int)nread));
        return;
    }
    if (cv_frame_reader_feed(&c->reader, buf->base, (size_t)nread) < 0) {
        conn_drop(c, "out of memory");
        return;
    }
    for (;;) {
        const uint8_t *payload;
        size_t len;
        int r = cv_frame_reader_next(&c->reader, &payload, &len);
        if (r == 0)
            break;
        if (r < 0) {
            char why[80];
            snprintf(why, sizeof why, "server sent a frame of bad length %u", c->reader.bad_len);
            conn_drop(c, why);
            return;
        }
        Canvass__V1__Reply *rep = canvass__v1__reply__unpack(NULL, len, payload);
        if (!rep) {
            conn_drop(c, "server sent a reply that does not decode");
            return;
        }
        handle_reply(c, rep);
        canvass__v1__reply__free_unpacked(rep, NULL);
        if (c->state != S_UP || c->stopping) /* dropped or stopped meanwhile */
            return;
    }
    cv_conn_fill(c);
}

/* ---- connecting ---------------------------------------------------------------- */

static void on_connect(uv_connect_t *req, int status)
{
    cv_conn_t *c = req->data;
    if (status == UV_ECANCELED || c->state != S_CONNECTING)
        return;
    if (status < 0) {
        char why[160];
        snprintf(why, sizeof why, "cannot connect: %s", uv_strerror(status));
        conn_drop(c, why);
        return;
    }
    int rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (rc < 0) {
        conn_drop(c, uv_strerror(rc));
        return;
    }
    c->state = S_UP;
    c->backoff_ms = BACKOFF_MIN_MS;
    if (c->app_key && *c->app_key) {
        send_hello(c);
        if (c->state != S_UP)
            return;
    }
    c->ops.event(c->ctx, c, CV_CONN_UP, "connected");
    cv_conn_fill(c);
}

static void conn_connect(cv_conn_t *c)
{
    if (c->stopping || c->state != S_IDLE)
        return;
    int rc = uv_tcp_init(c->loop, &c->tcp);
    if (rc < 0) {
        /* Nothing was opened: try again after the back-off. */
        cv_log(CV_LOG_WARN, "msg=\"cannot create a socket\" conn=%u err=\"%s\"", c->index,
               uv_strerror(rc));
        uv_timer_start(&c->timer, on_backoff_over, c->backoff_ms, 0);
        return;
    }
    c->handles++;
    c->tcp.data = c;
    c->state = S_CONNECTING;
    uv_tcp_nodelay(&c->tcp, 1);
    c->connect_req.data = c;
    rc = uv_tcp_connect(&c->connect_req, &c->tcp, (const struct sockaddr *)&c->addr, on_connect);
    if (rc < 0) {
        char why[160];
        snprintf(why, sizeof why, "cannot connect: %s", uv_strerror(rc));
        conn_drop(c, why);
    }
}

/* ---- lifecycle ------------------------------------------------------------------- */

cv_conn_t *cv_conn_new(uv_loop_t *loop, const cv_conn_opts_t *opts)
{
    if (opts->depth < 1 || opts->depth > CV_CONN_DEPTH_MAX)
        return NULL;
    cv_conn_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->loop = loop;
    size_t alen = opts->addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                     : sizeof(struct sockaddr_in);
    memcpy(&c->addr, opts->addr, alen);
    c->ops = *opts->ops;
    c->ctx = opts->ctx;
    c->index = opts->index;
    c->app_key = opts->app_key;
    c->depth = opts->depth;
    c->backoff_ms = BACKOFF_MIN_MS;
    c->slots = calloc(c->depth + 1, sizeof *c->slots);
    c->ids = calloc(c->depth + 1, sizeof *c->ids);
    c->free_slots = calloc(c->depth, sizeof *c->free_slots);
    if (!c->slots || !c->ids || !c->free_slots) {
        free(c->slots);
        free(c->ids);
        free(c->free_slots);
        free(c);
        return NULL;
    }
    release_slots(c, false);
    cv_frame_reader_init(&c->reader, CV_FRAME_DEFAULT_MAX);
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    c->handles = 1;
    return c;
}

void cv_conn_start(cv_conn_t *c)
{
    if (!c->stopping && c->state == S_IDLE && !uv_is_active((uv_handle_t *)&c->timer))
        conn_connect(c);
}

void cv_conn_stop(cv_conn_t *c)
{
    if (c->stopping)
        return;
    c->stopping = true;
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
    if (c->state == S_UP)
        uv_read_stop((uv_stream_t *)&c->tcp);
    if (c->state == S_UP || c->state == S_CONNECTING)
        close_socket(c);
    release_slots(c, false);
}

bool cv_conn_closed(const cv_conn_t *c)
{
    return c->stopping && c->handles == 0;
}

unsigned cv_conn_index(const cv_conn_t *c)
{
    return c->index;
}

unsigned cv_conn_in_flight(const cv_conn_t *c)
{
    return c->in_flight;
}

void cv_conn_destroy(cv_conn_t **c_p)
{
    cv_conn_t *c = *c_p;
    if (!c)
        return;
    cv_frame_reader_free(&c->reader);
    free(c->out);
    free(c->slots);
    free(c->ids);
    free(c->free_slots);
    free(c);
    *c_p = NULL;
}

int cv_conn_resolve(uv_loop_t *loop, const char *server, struct sockaddr_storage *out)
{
    char spec[300], *host = spec, *port;
    if (snprintf(spec, sizeof spec, "%s", server) >= (int)sizeof spec)
        goto bad;
    char *colon = strrchr(spec, ':');
    if (!colon || colon == spec || !colon[1])
        goto bad;
    *colon = '\0';
    port = colon + 1;
    if (spec[0] == '[') {
        size_t n = strlen(spec);
        if (n < 3 || spec[n - 1] != ']')
            goto bad;
        spec[n - 1] = '\0';
        host = spec + 1;
    }
    uv_getaddrinfo_t gai;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV};
    int rc = uv_getaddrinfo(loop, &gai, NULL, host, port, &hints); /* no callback: blocking */
    if (rc < 0) {
        cv_log(CV_LOG_ERROR, "msg=\"cannot resolve the server\" server=\"%s\" err=\"%s\"",
               server, uv_strerror(rc));
        return CV_EINVAL;
    }
    memcpy(out, gai.addrinfo->ai_addr, gai.addrinfo->ai_addrlen);
    uv_freeaddrinfo(gai.addrinfo);
    return 0;
bad:
    cv_log(CV_LOG_ERROR, "msg=\"server must be host:port\" server=\"%s\"", server);
    return CV_EINVAL;
}
