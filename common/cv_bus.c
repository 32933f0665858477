/* cv_bus: ZeroMQ sockets (see cv_bus.h). */
#include "cv_bus.h"
#include "cv_err.h"
#include "cv_log.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define CV__ZAP_DOMAIN "canvass"
#define CV__ALLOW_MAX 4096

struct cv_bus {
    void *ctx;
    int curve;                                 /* keys set: CURVE on every socket */
    char pub[CV_CURVE_KEY_LEN + 1];            /* own key pair */
    char sec[CV_CURVE_KEY_LEN + 1];
    char server[CV_CURVE_KEY_LEN + 1];         /* what connections expect */
    uint8_t (*allow)[32];                      /* client keys admitted, binary */
    size_t nallow;
    void *zap_sock;                            /* the ZAP handler's REP socket */
    pthread_t zap;
    int zap_running;
};

struct cv_sock {
    void *zs;
    cv_bus_t *bus;
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
    cv_bus_t *b = *bus_p;
    zmq_ctx_term(b->ctx); /* the ZAP thread's recv fails with ETERM: it closes and ends */
    if (b->zap_running)
        pthread_join(b->zap, NULL);
    free(b->allow);
    free(b);
    *bus_p = NULL;
}

/* ---- CURVE ------------------------------------------------------------------- */

int cv_curve_keypair(char pub[CV_CURVE_KEY_LEN + 1], char sec[CV_CURVE_KEY_LEN + 1])
{
    if (zmq_curve_keypair(pub, sec) != 0) {
        cv_log(CV_LOG_ERROR, "msg=\"zmq_curve_keypair failed\" err=\"%s\"", zmq_strerror(errno));
        return CV_EIO;
    }
    return 0;
}

static int z85_key(const char *s)
{
    uint8_t bin[32];
    return strlen(s) == CV_CURVE_KEY_LEN && zmq_z85_decode(bin, s) != NULL;
}

/* '#' is a Z85 digit, but never a key's first (a key's first digit is at
 * most 2^32 / 85^4 = 82, '#' is 84): a line starting with it is a comment. */
static int is_comment(const char *p)
{
    return *p == '#';
}

int cv_curve_read(const char *path, char pub[CV_CURVE_KEY_LEN + 1],
                  char sec[CV_CURVE_KEY_LEN + 1], char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "cannot read key file %s: %s", path, strerror(errno));
        return errno == ENOENT ? CV_ENOTFOUND : CV_EINVAL;
    }
    char line[256];
    pub[0] = sec[0] = '\0';
    int rc = 0, n = 0;
    while (rc == 0 && fgets(line, sizeof line, f)) {
        n++;
        char *p = line, *word, *key;
        while (isspace((unsigned char)*p))
            p++;
        if (!*p || is_comment(p))
            continue;
        word = strtok(p, " \t\r\n");
        key = strtok(NULL, " \t\r\n");
        if (!key) { /* a bare key: a .pub file */
            key = word;
            word = "public";
        }
        if (!z85_key(key) || (strcmp(word, "public") && strcmp(word, "secret"))) {
            snprintf(err, errlen, "%s line %d: want \"public KEY\" or \"secret KEY\" "
                     "(40 Z85 characters)", path, n);
            rc = CV_EINVAL;
        } else {
            memcpy(!strcmp(word, "public") ? pub : sec, key, CV_CURVE_KEY_LEN + 1);
        }
    }
    fclose(f);
    if (rc == 0 && !pub[0]) {
        snprintf(err, errlen, "%s has no public key", path);
        rc = CV_EINVAL;
    }
    return rc;
}

/* Reads the allow file: one public key a line (or "public KEY"), #
 * comments; `canvass keygen` .pub files may simply be concatenated. */
static int allow_read(cv_bus_t *b, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "cannot read allow file %s: %s", path, strerror(errno));
        return CV_EINVAL;
    }
    if (!(b->allow = calloc(CV__ALLOW_MAX, sizeof *b->allow))) {
        fclose(f);
        return CV_ENOMEM;
    }
    char line[256];
    int n = 0, rc = 0;
    while (rc == 0 && fgets(line, sizeof line, f)) {
        n++;
        char *p = line;
        while (isspace((unsigned char)*p))
            p++;
        if (!*p || is_comment(p))
            continue;
        char *w = strtok(p, " \t\r\n"), *k = strtok(NULL, " \t\r\n");
        if (k && strcmp(w, "public"))
            k = NULL; /* a "secret" line has no business here */
        else if (!k)
            k = w;
        if (!k || !z85_key(k) || b->nallow == CV__ALLOW_MAX) {
            snprintf(err, errlen, "%s line %d: want one public key (40 Z85 characters)%s", path,
                     n, b->nallow == CV__ALLOW_MAX ? ", at most 4096" : "");
            rc = CV_EINVAL;
        } else {
            zmq_z85_decode(b->allow[b->nallow++], k);
        }
    }
    fclose(f);
    return rc;
}

static int allowed(const cv_bus_t *b, const uint8_t key[32])
{
    uint8_t own[32];
    zmq_z85_decode(own, b->pub);
    if (!memcmp(own, key, 32))
        return 1;
    for (size_t i = 0; i < b->nallow; i++)
        if (!memcmp(b->allow[i], key, 32))
            return 1;
    return 0;
}

/* The ZAP handler (RFC 27): one REP socket on inproc://zeromq.zap.01 in the
 * bus's context, answering each handshake 200 or 400.  The socket is bound
 * by cv_bus_curve before any socket of the bus binds: a libzmq without
 * ZMQ_ZAP_ENFORCE_DOMAIN admits every CURVE key while no handler listens. */
static void *zap_main(void *arg)
{
    cv_bus_t *b = arg;
    void *s = b->zap_sock; /* handed over once: pthread_create is the barrier */
    for (;;) {
        char part[7][256];
        int len[7], n = 0, more = 1;
        while (more) {
            int r = zmq_recv(s, n < 7 ? part[n] : part[6], 255, 0);
            if (r < 0) {
                zmq_close(s); /* ETERM: the bus is being destroyed */
                return NULL;
            }
            if (n < 7)
                len[n++] = r > 255 ? 255 : r; /* zmq_recv truncated the rest */
            size_t sz = sizeof more;
            zmq_getsockopt(s, ZMQ_RCVMORE, &more, &sz);
        }
        /* version, request id, domain, address, identity, mechanism, key */
        int ok = n == 7 && len[0] == 3 && !memcmp(part[0], "1.0", 3) &&
                 len[2] == (int)strlen(CV__ZAP_DOMAIN) &&
                 !memcmp(part[2], CV__ZAP_DOMAIN, (size_t)len[2]) && len[5] == 5 &&
                 !memcmp(part[5], "CURVE", 5) && len[6] == 32 &&
                 allowed(b, (const uint8_t *)part[6]);
        if (!ok) {
            char z85[CV_CURVE_KEY_LEN + 1] = "-";
            if (n == 7 && len[6] == 32)
                zmq_z85_encode(z85, (const uint8_t *)part[6], 32);
            cv_log(CV_LOG_WARN, "msg=\"curve: peer refused\" address=\"%.*s\" mechanism=%.*s "
                   "key=%s", n > 3 ? (len[3] > 64 ? 64 : len[3]) : 0, part[3],
                   n > 5 ? (len[5] > 16 ? 16 : len[5]) : 0, part[5], z85);
        }
        zmq_send(s, "1.0", 3, ZMQ_SNDMORE);
        zmq_send(s, part[1], n > 1 ? (size_t)len[1] : 0, ZMQ_SNDMORE);
        zmq_send(s, ok ? "200" : "400", 3, ZMQ_SNDMORE);
        zmq_send(s, ok ? "OK" : "unknown peer", ok ? 2 : 12, ZMQ_SNDMORE);
        zmq_send(s, "", 0, ZMQ_SNDMORE);
        zmq_send(s, "", 0, 0);
    }
}

int cv_bus_curve(cv_bus_t *b, const char *pub, const char *sec, const char *server_pub,
                 const char *allow_path, char *err, size_t errlen)
{
    if (!z85_key(pub) || !z85_key(sec) || (server_pub && !z85_key(server_pub))) {
        snprintf(err, errlen, "CURVE keys must be 40 Z85 characters");
        return CV_EINVAL;
    }
    memcpy(b->pub, pub, sizeof b->pub);
    memcpy(b->sec, sec, sizeof b->sec);
    memcpy(b->server, server_pub ? server_pub : pub, sizeof b->server);
    int rc, zero = 0;
    if (b->curve) {
        snprintf(err, errlen, "CURVE is already on for this bus");
        return CV_EINVAL;
    }
    if (allow_path && *allow_path && (rc = allow_read(b, allow_path, err, errlen)) < 0)
        return rc;
    if (!(b->zap_sock = zmq_socket(b->ctx, ZMQ_REP)) ||
        zmq_setsockopt(b->zap_sock, ZMQ_LINGER, &zero, sizeof zero) != 0 ||
        zmq_bind(b->zap_sock, "inproc://zeromq.zap.01") != 0) {
        snprintf(err, errlen, "cannot start the ZAP handler: %s", zmq_strerror(errno));
        if (b->zap_sock)
            zmq_close(b->zap_sock);
        b->zap_sock = NULL;
        return CV_EIO;
    }
    if (pthread_create(&b->zap, NULL, zap_main, b) != 0) {
        snprintf(err, errlen, "cannot start the ZAP thread");
        zmq_close(b->zap_sock);
        b->zap_sock = NULL;
        return CV_EIO;
    }
    b->zap_running = 1;
    b->curve = 1;
    return 0;
}

int cv_bus_curve_setup(cv_bus_t *bus, const char *key, const char *server, const char *allow,
                       char *err, size_t errlen)
{
    if (!key || !*key) {
        cv_log(CV_LOG_INFO, "msg=\"ZeroMQ sockets unencrypted (no --curve-key)\"");
        return 0;
    }
    char pub[CV_CURVE_KEY_LEN + 1], sec[CV_CURVE_KEY_LEN + 1];
    char spub[CV_CURVE_KEY_LEN + 1], ssec[CV_CURVE_KEY_LEN + 1];
    int rc = cv_curve_read(key, pub, sec, err, errlen);
    if (rc < 0)
        return CV_EINVAL;
    if (!sec[0]) {
        snprintf(err, errlen, "%s has no secret key (give the .key file, not the .pub)", key);
        return CV_EINVAL;
    }
    const char *server_pub = NULL;
    if (server && *server) {
        if (z85_key(server)) {
            server_pub = server;
        } else if (cv_curve_read(server, spub, ssec, err, errlen) < 0) {
            return CV_EINVAL;
        } else {
            server_pub = spub;
        }
    }
    if ((rc = cv_bus_curve(bus, pub, sec, server_pub, allow, err, errlen)) < 0)
        return rc;
    cv_log(CV_LOG_INFO, "msg=\"CURVE on: unknown peers are refused\" public_key=%s "
           "allowed_clients=%zu", pub, bus->nallow);
    return 0;
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
    s->bus = bus;
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

/* CURVE options go on before the bind or connect. */
static int curve_server(cv_sock_t *s)
{
    cv_bus_t *b = s->bus;
    int one = 1;
    if (zmq_setsockopt(s->zs, ZMQ_CURVE_SERVER, &one, sizeof one) ||
        zmq_setsockopt(s->zs, ZMQ_CURVE_SECRETKEY, b->sec, CV_CURVE_KEY_LEN) ||
        zmq_setsockopt(s->zs, ZMQ_ZAP_DOMAIN, CV__ZAP_DOMAIN, strlen(CV__ZAP_DOMAIN)))
        return CV_EIO;
    /* ZMQ_ZAP_ENFORCE_DOMAIN (93, a draft option in 4.3): where the library
     * has it, a peer is refused even when no ZAP handler answers; the
     * handler checks the domain itself either way, and is always bound
     * before this socket (cv_bus_curve). */
    (void)zmq_setsockopt(s->zs, 93 /* ZMQ_ZAP_ENFORCE_DOMAIN */, &one, sizeof one);
    return 0;
}

static int curve_client(cv_sock_t *s)
{
    cv_bus_t *b = s->bus;
    if (zmq_setsockopt(s->zs, ZMQ_CURVE_SERVERKEY, b->server, CV_CURVE_KEY_LEN) ||
        zmq_setsockopt(s->zs, ZMQ_CURVE_PUBLICKEY, b->pub, CV_CURVE_KEY_LEN) ||
        zmq_setsockopt(s->zs, ZMQ_CURVE_SECRETKEY, b->sec, CV_CURVE_KEY_LEN))
        return CV_EIO;
    return 0;
}

int cv_sock_bind(cv_sock_t *s, const char *endpoint)
{
    if (s->bus->curve && curve_server(s) < 0) {
        cv_log(CV_LOG_ERROR, "msg=\"CURVE options failed\" err=\"%s\"", zmq_strerror(errno));
        return CV_EIO;
    }
    if (zmq_bind(s->zs, endpoint) != 0) {
        cv_log(CV_LOG_ERROR, "msg=\"bind failed\" endpoint=%s err=\"%s\"", endpoint,
               zmq_strerror(errno));
        return CV_EIO;
    }
    return 0;
}

int cv_sock_connect(cv_sock_t *s, const char *endpoint)
{
    if (s->bus->curve && curve_client(s) < 0) {
        cv_log(CV_LOG_ERROR, "msg=\"CURVE options failed\" err=\"%s\"", zmq_strerror(errno));
        return CV_EIO;
    }
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
