/* fuzz_http: publish's HTTP API (DESIGN A3 P+80, A7) from raw bytes on a
 * TCP connection to the answer, through the real stack: libmicrohttpd and
 * cv_http, publish's routes, query and JSON body parsing (services/publish
 * http.c), the AdminRequest over ZeroMQ to publish's API (served here on
 * the fuzzing thread with pub_api_serve, as publish's main loop does), two
 * real tally shards behind it (fz_cluster), and the JSON or CSV rendering.
 *
 * Input: the bytes a client sends on one connection (several requests may
 * be pipelined); the client then shuts its sending side and reads until
 * the server closes or stays silent for IDLE_MS.  Every input starts from the same cluster (fz_cluster
 * reset: features a..d with votes, cycle 1 open).
 *
 * Checked, beyond the sanitizers (in this process; libmicrohttpd itself is
 * not instrumented): every response starts with an HTTP/1.x status line;
 * no request gets a 500 or a JSON 5xx (publish and its shards are up and
 * answering, so a 500 or 503 is a bug); every application/json body is one
 * JSON object followed by a newline, and an error body holds "status" and
 * "error"; everything publish broadcast decodes; the shards' counters equal
 * a recount afterwards.  A hang would show as a libFuzzer timeout.
 * FUZZ_SHOW=1 in the environment prints each response.
 */
#include "api.h"
#include "cv_err.h"
#include "cv_metrics.h"
#include "fz_cluster.h"
#include "fz_util.h"
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define ADMIN_ENDPOINT "inproc://fz-http-admin"
#define RESPONSE_MAX (4 << 20)
#define WAIT_MS 30000
/* libmicrohttpd does not always close a keep-alive connection whose client
 * has shut its sending side; once everything is sent, this long a silence
 * ends the exchange. */
#define IDLE_MS 100

static fz_cluster_t *cl;
static cv_sock_t *rep;
static cv_metrics_t *metrics;
static pub_http_t *http;
static int port;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fz_init_log("fuzz_http");
    cl = fz_cluster_new("http");
    rep = cv_sock_new(fz_cluster_bus(cl), CV_SOCK_REP);
    FZ_CHECK(rep && cv_sock_bind(rep, ADMIN_ENDPOINT) == 0, "cannot bind %s", ADMIN_ENDPOINT);
    metrics = cv_metrics_new();
    FZ_CHECK(metrics != NULL, "out of memory");
    pub_http_opts_t o = {.host = "127.0.0.1",
                         .port = 0,
                         .bus = fz_cluster_bus(cl),
                         .endpoint = ADMIN_ENDPOINT,
                         .timeout_ms = FZ_SHARD_TIMEOUT_MS * 2,
                         .metrics = metrics};
    http = pub_http_start(&o);
    FZ_CHECK(http != NULL, "cannot start publish's HTTP server");
    pub_http_set_ready(http, 1);
    port = pub_http_port(http);
    return 0;
}

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000;
}

/* Sends the input on a fresh connection, serving publish's API meanwhile,
 * and returns everything the server sent (malloc'd, NUL-terminated). */
static char *exchange(const uint8_t *data, size_t size, size_t *outlen)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    FZ_CHECK(fd >= 0, "socket: %s", strerror(errno));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    FZ_CHECK(connect(fd, (struct sockaddr *)&a, sizeof a) == 0, "connect: %s", strerror(errno));

    char *out = malloc(RESPONSE_MAX + 1);
    FZ_CHECK(out != NULL, "out of memory");
    size_t got = 0, sent = 0;
    int eof = 0;
    long deadline = now_ms() + WAIT_MS, last = now_ms();
    while (!eof) {
        if (sent >= size && now_ms() - last >= IDLE_MS)
            break;
        if (now_ms() >= deadline) {
            out[got] = '\0';
            fz_fail("no end of the response within %d ms (sent %zu of %zu bytes, got %zu): "
                    "%.2000s", WAIT_MS, sent, size, got, out);
        }
        while (pub_api_serve(fz_cluster_cycles(cl), fz_cluster_features(cl), rep) == 0)
            ;
        struct pollfd p = {.fd = fd, .events = POLLIN | (sent < size ? POLLOUT : 0)};
        if (poll(&p, 1, 1) <= 0)
            continue;
        if (p.revents & POLLOUT) {
            ssize_t n = send(fd, data + sent, size - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n > 0) {
                sent += (size_t)n;
                last = now_ms();
            }
            else if (n < 0 && errno != EAGAIN)
                sent = size; /* the server closed: read what it said */
            if (sent == size)
                shutdown(fd, SHUT_WR);
        }
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = recv(fd, out + got, RESPONSE_MAX - got, MSG_DONTWAIT);
            if (n > 0) {
                got += (size_t)n;
                last = now_ms();
            } else if (n == 0 || (errno != EAGAIN && errno != EINTR))
                eof = 1;
            FZ_CHECK(got < RESPONSE_MAX, "a response of more than %d bytes", RESPONSE_MAX);
        }
        if (size == 0 && sent == 0) {
            shutdown(fd, SHUT_WR);
            sent = 1; /* nothing to send */
        }
    }
    close(fd);
    out[got] = '\0';
    *outlen = got;
    return out;
}

/* Checks one response at p (of the n bytes left); returns its length, or 0
 * when what is left is not a whole response (the server closed midway). */
static size_t check_response(const char *p, size_t n)
{
    FZ_CHECK(n >= 12 && !memcmp(p, "HTTP/1.", 7) && p[8] == ' ',
             "the server sent no status line: '%.60s'", p);
    int code = atoi(p + 9);
    FZ_CHECK(code >= 100 && code <= 599, "status code %d", code);
    const char *end = strstr(p, "\r\n\r\n");
    if (!end)
        return 0;
    size_t head = (size_t)(end - p) + 4;
    long clen = -1;
    int json = 0;
    for (const char *h = p; h < end; h = strstr(h, "\r\n") + 2) {
        if (!strncasecmp(h, "Content-Length:", 15))
            clen = atol(h + 15);
        if (!strncasecmp(h, "Content-Type: application/json", 30))
            json = 1;
    }
    const char *body = p + head;
    if (clen > 0 && n - head >= 7 && !memcmp(body, "HTTP/1.", 7))
        clen = 0; /* the answer to a HEAD: a length, no body */
    if (clen < 0 || head + (size_t)clen > n)
        return 0;
    /* publish and its shards are up, so a 5xx of ours (JSON) means a bug;
     * libmicrohttpd answers some bad requests itself in HTML (505 for an
     * unknown HTTP version), but its 500 means our handler failed. */
    FZ_CHECK(code < 500 || (!json && code != 500), "HTTP %d: %.*s", code,
             (int)(clen < 300 ? clen : 300), body);
    if (json && clen > 0) {
        FZ_CHECK(body[clen - 1] == '\n', "a JSON body without its final newline");
        json_error_t err;
        json_t *j = json_loadb(body, (size_t)clen - 1, JSON_REJECT_DUPLICATES, &err);
        FZ_CHECK(j != NULL, "invalid JSON (%s): %.*s", err.text, (int)(clen < 300 ? clen : 300),
                 body);
        FZ_CHECK(json_is_object(j), "a JSON body that is not an object");
        if (code >= 400)
            FZ_CHECK(json_is_string(json_object_get(j, "status")) &&
                         json_is_string(json_object_get(j, "error")),
                     "HTTP %d without status and error: %.*s", code,
                     (int)(clen < 300 ? clen : 300), body);
        json_decref(j);
    }
    return head + (size_t)clen;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_cluster_reset(cl);
    size_t n;
    char *out = exchange(data, size, &n);
    if (getenv("FUZZ_SHOW")) /* to see what an input gets: FUZZ_SHOW=1 fuzz_http FILE */
        fwrite(out, 1, n, stdout);
    size_t off = 0;
    while (off < n) {
        size_t k = check_response(out + off, n - off);
        if (!k)
            break;
        off += k;
    }
    free(out);
    fz_cluster_check_events(cl);
    fz_cluster_check_stores(cl);
    return 0;
}
