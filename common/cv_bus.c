/* cv_bus: ZeroMQ sockets (see cv_bus.h). */
#include "cv_bus.h"
#include "cv_err.h"
#include "cv_log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

struct cv_bus {
    void *ctx;
};

struct cv_sock {
    void *zs;
};

cv_bus_t *cv_bus_new(void)
{
    cv_bus_t *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->ctx = zmq_ctx_new();
    if (!b->ctx) {
        free(b);
        return NULL;
    }
    return b;
}

void cv_bus_destroy(cv_bus_t **bus_p)
{
    if (!bus_p || !*bus_p)
        return;
    zmq_ctx_term((*bus_p)->ctx);
    free(*bus_p);
    *bus_p = NULL;
}

cv_sock_t *cv_sock_new(cv_bus_t *bus, cv_sock_type_t type)
{
    static const int types[] = {ZMQ_ROUTER, ZMQ_DEALER, ZMQ_PUB, ZMQ_SUB, ZMQ_REP, ZMQ_REQ};
    cv_sock_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->zs = zmq_socket(bus->ctx, types[type]);
    if (!s->zs) {
        cv_log(CV_LOG_ERROR, "msg=\"zmq_socket failed\" err=\"%s\"", zmq_strerror(errno));
        free(s);
        return NULL;
    }
    int zero = 0;
    zmq_setsockopt(s->zs, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(s->zs, ZMQ_SNDHWM, &zero, sizeof zero);
    zmq_setsockopt(s->zs, ZMQ_RCVHWM, &zero, sizeof zero);
    if (type == CV_SOCK_DEALER || type == CV_SOCK_REQ) {
        int ivl = 100, max = 1000;
        zmq_setsockopt(s->zs, ZMQ_RECONNECT_IVL, &ivl, sizeof ivl);
        zmq_setsockopt(s->zs, ZMQ_RECONNECT_IVL_MAX, &max, sizeof max);
    }
    return s;
}

void cv_sock_destroy(cv_sock_t **sock_p)
{
    if (!sock_p || !*sock_p)
        return;
    zmq_close((*sock_p)->zs);
    free(*sock_p);
    *sock_p = NULL;
}

int cv_sock_bind(cv_sock_t *s, const char *endpoint)
{
    if (zmq_bind(s->zs, endpoint) != 0) {
        cv_log(CV_LOG_ERROR, "msg=\"bind failed\" endpoint=%s err=\"%s\"", endpoint,
               zmq_strerror(errno));
        return CV_EIO;
    }
    return 0;
}

int cv_sock_connect(cv_sock_t *s, const char *endpoint)
{
    if (zmq_connect(s->zs, endpoint) != 0) {
        cv_log(CV_LOG_ERROR, "msg=\"connect failed\" endpoint=%s err=\"%s\"", endpoint,
               zmq_strerror(errno));
        return CV_EIO;
    }
    return 0;
}

int cv_sock_subscribe(cv_sock_t *s, const char *prefix)
{
    return zmq_setsockopt(s->zs, ZMQ_SUBSCRIBE, prefix, strlen(prefix)) == 0 ? 0 : CV_EIO;
}

int cv_sock_send(cv_sock_t *s, int n, const void *const *data, const size_t *size, int dontwait)
{
    for (int i = 0; i < n; i++) {
        int flags = (i + 1 < n ? ZMQ_SNDMORE : 0) | (dontwait ? ZMQ_DONTWAIT : 0);
        if (zmq_send(s->zs, data[i], size[i], flags) < 0) {
            /* ZeroMQ queues a multi-part message atomically only once its last
             * part is sent; a failure on the first part sends nothing. */
            if (errno == EAGAIN)
                return CV_EAGAIN;
            cv_log(CV_LOG_WARN, "msg=\"send failed\" err=\"%s\"", zmq_strerror(errno));
            return CV_EIO;
        }
    }
    return 0;
}

void cv_parts_free(cv_parts_t *p)
{
    for (int i = 0; i < p->n; i++)
        free(p->data[i]);
    p->n = 0;
}

int cv_sock_recv(cv_sock_t *s, cv_parts_t *out, long timeout_ms)
{
    out->n = 0;
    if (timeout_ms != 0) {
        zmq_pollitem_t it = {s->zs, 0, ZMQ_POLLIN, 0};
        int r = zmq_poll(&it, 1, timeout_ms);
        if (r < 0)
            return errno == EINTR ? CV_EAGAIN : CV_EIO;
        if (r == 0)
            return CV_EAGAIN;
    }
    int more = 1, overflow = 0;
    while (more) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, s->zs, out->n == 0 && !overflow ? ZMQ_DONTWAIT : 0) < 0) {
            int e = errno;
            zmq_msg_close(&m);
            if (out->n == 0 && !overflow && e == EAGAIN)
                return CV_EAGAIN;
            cv_parts_free(out);
            return e == EINTR ? CV_EAGAIN : CV_EIO;
        }
        more = zmq_msg_more(&m);
        if (out->n < CV_PARTS_MAX) {
            size_t sz = zmq_msg_size(&m);
            uint8_t *d = malloc(sz + 1);
            if (!d) {
                zmq_msg_close(&m);
                overflow = 1; /* keep draining the message's parts */
                continue;
            }
            memcpy(d, zmq_msg_data(&m), sz);
            d[sz] = 0;
            out->data[out->n] = d;
            out->size[out->n++] = sz;
        } else {
            overflow = 1;
        }
        zmq_msg_close(&m);
    }
    if (overflow) {
        cv_parts_free(out);
        return CV_EDECODE;
    }
    return 0;
}

int cv_sock_fd(cv_sock_t *s)
{
    int fd;
    size_t len = sizeof fd;
    return zmq_getsockopt(s->zs, ZMQ_FD, &fd, &len) == 0 ? fd : -1;
}

static int events(cv_sock_t *s)
{
    int ev = 0;
    size_t len = sizeof ev;
    return zmq_getsockopt(s->zs, ZMQ_EVENTS, &ev, &len) == 0 ? ev : 0;
}

int cv_sock_readable(cv_sock_t *s)
{
    return (events(s) & ZMQ_POLLIN) != 0;
}

int cv_sock_writable(cv_sock_t *s)
{
    return (events(s) & ZMQ_POLLOUT) != 0;
}

int cv_bus_poll(cv_sock_t **socks, int n, int *readable, long timeout_ms)
{
    zmq_pollitem_t items[16];
    if (n > 16)
        return CV_EINVAL;
    for (int i = 0; i < n; i++) {
        items[i] = (zmq_pollitem_t){socks[i]->zs, 0, ZMQ_POLLIN, 0};
        readable[i] = 0;
    }
    int r = zmq_poll(items, n, timeout_ms);
    if (r < 0)
        return errno == EINTR ? 0 : CV_EIO;
    for (int i = 0; i < n; i++)
        readable[i] = (items[i].revents & ZMQ_POLLIN) != 0;
    return r;
}
