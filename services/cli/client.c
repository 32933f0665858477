/* client: a blocking TCP connection speaking the A4 client protocol.
 *
 * This file implements what client.h promises: address parsing, a connect
 * with a deadline (non-blocking connect() then poll()), and a request/reply
 * exchange in which the request is written as one length-prefixed frame and
 * frames are read back through cv_frame_reader until the reply with the
 * request's id arrives.  Every wait is bounded by poll() against one deadline
 * per call, so a silent server yields a clear timeout and never a hang.
 */
#include "client.h"
#include "cv_err.h"
#include "cv_frame.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct cv_client {
    int fd;
    char *server; /* as given to cv_client_open */
    cv_frame_reader_t reader;
};

/* ---- time ---------------------------------------------------------------- */

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* "10 s" or "250 ms": how a timeout reads in an error message. */
static void duration_text(long ms, char *out, size_t cap)
{
    if (ms % 1000 == 0)
        snprintf(out, cap, "%ld s", ms / 1000);
    else
        snprintf(out, cap, "%ld ms", ms);
}

/* Waits for `events` on fd until the deadline.  Returns 1 when ready, 0 on
 * timeout, or -errno. */
static int wait_fd(int fd, short events, long long deadline)
{
    for (;;) {
        long long left = deadline - mono_ms();
        if (left <= 0)
            return 0;
        struct pollfd p = {.fd = fd, .events = events};
        int r = poll(&p, 1, left > 1000000 ? 1000000 : (int)left);
        if (r > 0)
            return 1;
        if (r < 0 && errno != EINTR)
            return -errno;
    }
}

/* ---- addresses ----------------------------------------------------------- */

int cv_client_addr_split(const char *addr, char *host, size_t hostcap, char *port, size_t portcap)
{
    if (strncmp(addr, "tcp://", 6) == 0)
        addr += 6;
    const char *h = addr, *colon;
    size_t hlen;
    if (*addr == '[') { /* "[::1]:7700": the brackets keep the v6 colons apart */
        const char *close = strchr(addr, ']');
        if (!close || close[1] != ':')
            return CV_EINVAL;
        h = addr + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(addr, ':');
        if (!colon)
            return CV_EINVAL;
        hlen = (size_t)(colon - addr);
    }
    const char *p = colon + 1;
    char *end;
    errno = 0;
    long pn = strtol(p, &end, 10);
    if (!*p || *end || errno || pn < 1 || pn > 65535 || hlen == 0 || hlen >= hostcap ||
        strlen(p) >= portcap)
        return CV_EINVAL;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    strcpy(port, p);
    return 0;
}

/* ---- connecting ---------------------------------------------------------- */

/* Tries one resolved address.  Returns the connected fd, or -errno. */
static int connect_one(const struct addrinfo *ai, long long deadline)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
    if (fd < 0)
        return -errno;
    int err = 0;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        if (errno != EINPROGRESS) {
            err = errno;
        } else {
            int r = wait_fd(fd, POLLOUT, deadline);
            socklen_t len = sizeof err;
            if (r == 0)
                err = ETIMEDOUT;
            else if (r < 0)
                err = -r;
            else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
                err = errno;
        }
    }
    if (err) {
        close(fd);
        return -err;
    }
    /* Requests are single small frames: send each at once. */
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

int cv_client_open(cv_client_t **out, const char *server, long timeout_ms, char *err, size_t errlen)
{
    char host[256], port[16], dur[32];
    *out = NULL;
    if (cv_client_addr_split(server, host, sizeof host, port, sizeof port) < 0) {
        snprintf(err, errlen, "bad server address '%s' (want host:port)", server);
        return CV_EINVAL;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(host, port, &hints, &res);
    if (gai != 0) {
        snprintf(err, errlen, "cannot resolve %s: %s", host, gai_strerror(gai));
        return CV_EIO;
    }
    long long deadline = mono_ms() + timeout_ms;
    int fd = -ECONNREFUSED;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next)
        fd = connect_one(ai, deadline);
    freeaddrinfo(res);
    if (fd == -ETIMEDOUT) {
        duration_text(timeout_ms, dur, sizeof dur);
        snprintf(err, errlen, "cannot connect to %s within %s", server, dur);
        return CV_ETIMEOUT;
    }
    if (fd < 0) {
        snprintf(err, errlen, "cannot connect to %s: %s (is the cluster up? see canvass up)",
                 server, strerror(-fd));
        return CV_EIO;
    }
    cv_client_t *c = calloc(1, sizeof *c);
    if (!c || !(c->server = strdup(server))) {
        free(c);
        close(fd);
        snprintf(err, errlen, "out of memory");
        return CV_ENOMEM;
    }
    c->fd = fd;
    cv_frame_reader_init(&c->reader, CV_FRAME_DEFAULT_MAX);
    *out = c;
    return 0;
}

const char *cv_client_server(const cv_client_t *c)
{
    return c->server;
}

void cv_client_destroy(cv_client_t **c_p)
{
    if (!c_p || !*c_p)
        return;
    cv_client_t *c = *c_p;
    if (c->fd >= 0)
        close(c->fd);
    cv_frame_reader_free(&c->reader);
    free(c->server);
    free(c);
    *c_p = NULL;
}

/* ---- one exchange -------------------------------------------------------- */

/* Writes all n bytes before the deadline.  Returns 0, CV_ETIMEOUT or CV_EIO
 * (with errno kept in *sys_err). */
static int write_all(int fd, const uint8_t *p, size_t n, long long deadline, int *sys_err)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            *sys_err = errno;
            return CV_EIO;
        }
        int r = wait_fd(fd, POLLOUT, deadline);
        if (r == 0)
            return CV_ETIMEOUT;
        if (r < 0) {
            *sys_err = -r;
            return CV_EIO;
        }
    }
    return 0;
}

/* Takes the frames already buffered; returns 1 and sets *reply when one
 * answers `want`, 0 when more bytes are needed, or a negative CV_E*. */
static int take_reply(cv_client_t *c, uint64_t want, Canvass__V1__Reply **reply, char *err,
                      size_t errlen)
{
    const uint8_t *payload;
    size_t len;
    int r;
    while ((r = cv_frame_reader_next(&c->reader, &payload, &len)) == 1) {
        Canvass__V1__Reply *rep = canvass__v1__reply__unpack(NULL, len, payload);
        if (!rep) {
            snprintf(err, errlen, "%s sent a reply that does not decode (%zu bytes)", c->server,
                     len);
            return CV_EDECODE;
        }
        if (rep->request_id == want || rep->request_id == 0) {
            *reply = rep;
            return 1;
        }
        canvass__v1__reply__free_unpacked(rep, NULL);
    }
    if (r == CV_EFRAME) {
        snprintf(err, errlen, "%s sent a frame of bad length %u", c->server,
                 (unsigned)c->reader.bad_len);
        return CV_EFRAME;
    }
    return 0;
}

int cv_client_call(cv_client_t *c, const Canvass__V1__Request *req, Canvass__V1__Reply **reply,
                   long timeout_ms, char *err, size_t errlen)
{
    char dur[32];
    *reply = NULL;
    size_t len;
    uint8_t *payload = cv_codec_pack(&req->base, &len);
    uint8_t *frame = payload ? malloc(CV_FRAME_HEADER + len) : NULL;
    if (!frame) {
        free(payload);
        snprintf(err, errlen, "out of memory");
        return CV_ENOMEM;
    }
    cv_frame_put_header(frame, (uint32_t)len);
    memcpy(frame + CV_FRAME_HEADER, payload, len);
    free(payload);

    long long deadline = mono_ms() + timeout_ms;
    int sys_err = 0;
    int rc = write_all(c->fd, frame, CV_FRAME_HEADER + len, deadline, &sys_err);
    free(frame);
    while (rc == 0) {
        rc = take_reply(c, req->request_id, reply, err, errlen);
        if (rc == 1)
            return 0;
        if (rc < 0)
            return rc;
        int w = wait_fd(c->fd, POLLIN, deadline);
        if (w == 0) {
            rc = CV_ETIMEOUT;
            break;
        }
        if (w < 0) {
            sys_err = -w;
            rc = CV_EIO;
            break;
        }
        uint8_t buf[8192];
        ssize_t n = recv(c->fd, buf, sizeof buf, 0);
        if (n == 0) {
            snprintf(err, errlen, "%s closed the connection before replying", c->server);
            return CV_EIO;
        }
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
                continue;
            sys_err = errno;
            rc = CV_EIO;
            break;
        }
        if (cv_frame_reader_feed(&c->reader, buf, (size_t)n) < 0) {
            snprintf(err, errlen, "out of memory");
            return CV_ENOMEM;
        }
    }
    if (rc == CV_ETIMEOUT) {
        duration_text(timeout_ms, dur, sizeof dur);
        snprintf(err, errlen, "%s did not answer within %s", c->server, dur);
    } else {
        snprintf(err, errlen, "connection to %s failed: %s", c->server, strerror(sys_err));
    }
    return rc;
}
