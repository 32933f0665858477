/* cv_http_test: a real server on a loopback port, spoken to over a plain
 * socket.
 *
 * Each test starts a server on 127.0.0.1 with port 0 (the kernel picks a
 * free one), writes raw HTTP/1.1 and reads the whole answer, so what is
 * checked is the bytes a client sees: status line, headers and body.
 */
#include "cv_err.h"
#include "cv_http.h"
#include "cv_log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

/* ---- a raw client --------------------------------------------------------- */

static int dial(const char *ip, int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, ip, &a.sin_addr);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void send_all(int fd, const char *data, size_t len)
{
    while (len) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        if (n <= 0)
            return; /* the server may close early (413); the answer tells */
        data += n;
        len -= (size_t)n;
    }
}

/* Reads until the server closes; returns the whole answer (caller frees). */
static char *read_all(int fd)
{
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    for (;;) {
        if (len + 1024 > cap)
            assert_non_null(buf = realloc(buf, cap *= 2));
        ssize_t n = recv(fd, buf + len, cap - len - 1, 0);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    return buf;
}

/* Sends one request (with Connection: close) and returns the answer. */
static char *exchange(int port, const char *head, const char *body, size_t body_len)
{
    int fd = dial("127.0.0.1", port);
    assert_true(fd >= 0);
    send_all(fd, head, strlen(head));
    if (body_len)
        send_all(fd, body, body_len);
    char *answer = read_all(fd);
    close(fd);
    return answer;
}

static int status_of(const char *answer)
{
    int status = 0;
    if (sscanf(answer, "HTTP/1.1 %d", &status) != 1)
        fail_msg("no status line in: %.200s", answer);
    return status;
}

static const char *body_of(const char *answer)
{
    const char *p = strstr(answer, "\r\n\r\n");
    assert_non_null(p);
    return p + 4;
}

/* The value of header `name` in answer, into out; asserts it is there. */
static void header_of(const char *answer, const char *name, char *out, size_t cap)
{
    char key[128];
    snprintf(key, sizeof key, "\r\n%s: ", name);
    const char *p = strcasestr(answer, key);
    if (!p)
        fail_msg("no header %s in: %.300s", name, answer);
    p += strlen(key);
    size_t n = strcspn(p, "\r");
    assert_true(n < cap);
    memcpy(out, p, n);
    out[n] = '\0';
}

/* ---- an echo handler ------------------------------------------------------ */

static void echo(void *arg, const cv_http_req_t *req, cv_http_resp_t *resp)
{
    atomic_int *calls = arg;
    atomic_fetch_add(calls, 1);
    if (!strcmp(req->path, "/nobody"))
        return; /* a handler that produced nothing: the server says 500 */
    const char *q = cv_http_query(req, "q"), *x = cv_http_header(req, "x-test");
    char *out = NULL;
    int n = asprintf(&out, "%s %s q=%s x=%s len=%zu body=%s", req->method, req->path,
                     q ? q : "(none)", x ? x : "(none)", req->body_len, req->body);
    assert_true(n > 0);
    resp->status = 201;
    resp->content_type = "text/plain";
    resp->body = out;
}

static void test_requests(void **state)
{
    (void)state;
    atomic_int calls = 0;
    cv_http_t *h = cv_http_start("127.0.0.1", 0, echo, &calls);
    assert_non_null(h);
    int port = cv_http_port(h);
    assert_true(port > 0);

    char *a = exchange(port,
                       "GET /some%20where?q=a%20b&r=1 HTTP/1.1\r\nHost: x\r\nX-Test: yes\r\n"
                       "Connection: close\r\n\r\n",
                       NULL, 0);
    assert_int_equal(status_of(a), 201);
    char ct[128];
    header_of(a, "Content-Type", ct, sizeof ct);
    assert_string_equal(ct, "text/plain");
    assert_string_equal(body_of(a), "GET /some where q=a b x=yes len=0 body=");
    free(a);

    const char *body = "{\"status\": \"planned\"}";
    char head[256];
    snprintf(head, sizeof head,
             "POST /v1/x HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
             strlen(body));
    a = exchange(port, head, body, strlen(body));
    assert_int_equal(status_of(a), 201);
    assert_string_equal(body_of(a), "POST /v1/x q=(none) x=(none) len=21 body={\"status\": "
                                    "\"planned\"}");
    free(a);

    /* A query parameter without '=' reads as absent. */
    a = exchange(port, "GET /p?q HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", NULL, 0);
    assert_string_equal(body_of(a), "GET /p q=(none) x=(none) len=0 body=");
    free(a);

    a = exchange(port, "GET /nobody HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", NULL, 0);
    assert_int_equal(status_of(a), 500);
    assert_string_equal(body_of(a), "{\"status\": \"INTERNAL\", \"error\": \"out of memory\"}\n");
    free(a);

    assert_int_equal(atomic_load(&calls), 4);
    cv_http_stop(&h);
    assert_null(h);
    cv_http_stop(&h); /* twice is safe */
}

static void test_body_limit(void **state)
{
    (void)state;
    atomic_int calls = 0;
    cv_http_t *h = cv_http_start("127.0.0.1", 0, echo, &calls);
    assert_non_null(h);
    int port = cv_http_port(h);
    const char *want = "{\"status\": \"INVALID\", \"error\": \"request body over 1048576 "
                       "bytes\"}\n";

    /* Announced by Content-Length: refused before the body is sent. */
    char head[256];
    snprintf(head, sizeof head,
             "POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nConnection: close\r\n\r\n",
             CV_HTTP_BODY_MAX + 1);
    char *a = exchange(port, head, NULL, 0);
    assert_int_equal(status_of(a), 413);
    assert_string_equal(body_of(a), want);
    free(a);

    /* Chunked: found out while reading, answered at the end. */
    size_t chunk = 64 * 1024;
    char *data = malloc(chunk + 64);
    assert_non_null(data);
    int n = snprintf(data, 64, "%zx\r\n", chunk);
    memset(data + n, 'a', chunk);
    memcpy(data + n + chunk, "\r\n", 2);
    int fd = dial("127.0.0.1", port);
    const char *chead = "POST /big HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                        "Connection: close\r\n\r\n";
    send_all(fd, chead, strlen(chead));
    for (size_t sent = 0; sent <= CV_HTTP_BODY_MAX; sent += chunk)
        send_all(fd, data, (size_t)n + chunk + 2);
    send_all(fd, "0\r\n\r\n", 5);
    a = read_all(fd);
    close(fd);
    free(data);
    assert_int_equal(status_of(a), 413);
    assert_string_equal(body_of(a), want);
    free(a);

    /* Exactly at the limit is fine. */
    char *big = malloc(CV_HTTP_BODY_MAX);
    assert_non_null(big);
    memset(big, 'b', CV_HTTP_BODY_MAX);
    snprintf(head, sizeof head,
             "POST /ok HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nConnection: close\r\n\r\n",
             CV_HTTP_BODY_MAX);
    a = exchange(port, head, big, CV_HTTP_BODY_MAX);
    assert_int_equal(status_of(a), 201);
    assert_non_null(strstr(a, "len=1048576 body=bbb"));
    free(a);
    free(big);

    assert_int_equal(atomic_load(&calls), 1); /* only the last reached the handler */
    cv_http_stop(&h);
}

/* ---- probes --------------------------------------------------------------- */

static int is_ready(void *arg, char *why, size_t cap)
{
    if (atomic_load((atomic_int *)arg))
        return 1;
    snprintf(why, cap, "the store is not open yet");
    return 0;
}

static void test_probes(void **state)
{
    (void)state;
    atomic_int ready = 0;
    cv_metrics_t *m = cv_metrics_new();
    cv_metric_inc(cv_metrics_counter(m, "t_requests_total", "requests", "status", "OK", NULL));
    cv_http_t *h = cv_http_start_probes("127.0.0.1", 0, m, is_ready, &ready);
    assert_non_null(h);
    int port = cv_http_port(h);

    char *a = exchange(port, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                       NULL, 0);
    assert_int_equal(status_of(a), 200);
    char ct[128];
    header_of(a, "Content-Type", ct, sizeof ct);
    assert_string_equal(ct, "application/json");
    assert_string_equal(body_of(a), "{\"status\": \"ok\"}\n");
    free(a);

    a = exchange(port, "GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", NULL, 0);
    assert_int_equal(status_of(a), 503);
    assert_string_equal(body_of(a), "{\"status\": \"UNAVAILABLE\", \"error\": \"the store is "
                                    "not open yet\"}\n");
    free(a);
    atomic_store(&ready, 1);
    a = exchange(port, "GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", NULL, 0);
    assert_int_equal(status_of(a), 200);
    assert_string_equal(body_of(a), "{\"status\": \"ready\"}\n");
    free(a);

    a = exchange(port, "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", NULL, 0);
    assert_int_equal(status_of(a), 200);
    header_of(a, "Content-Type", ct, sizeof ct);
    assert_string_equal(ct, "text/plain; version=0.0.4; charset=utf-8");
    assert_string_equal(body_of(a), "# HELP t_requests_total requests\n"
                                    "# TYPE t_requests_total counter\n"
                                    "t_requests_total{status=\"OK\"} 1\n");
    free(a);

    a = exchange(port,
                 "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: "
                 "close\r\n\r\n",
                 NULL, 0);
    assert_int_equal(status_of(a), 405);
    char allow[64];
    header_of(a, "Allow", allow, sizeof allow);
    assert_string_equal(allow, "GET, HEAD");
    assert_string_equal(body_of(a), "{\"status\": \"INVALID\", \"error\": \"method POST is not "
                                    "allowed on /healthz (use GET)\"}\n");
    free(a);

    a = exchange(port, "GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", NULL, 0);
    assert_int_equal(status_of(a), 404);
    assert_string_equal(body_of(a),
                        "{\"status\": \"NOT_FOUND\", \"error\": \"no route for GET /nope\"}\n");
    free(a);

    /* Keep-alive: two requests on one connection. */
    int fd = dial("127.0.0.1", port);
    const char *two = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                      "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    send_all(fd, two, strlen(two));
    a = read_all(fd);
    close(fd);
    const char *second = strstr(a + 1, "HTTP/1.1 200");
    assert_non_null(second);
    assert_int_equal(status_of(second), 200);
    free(a);

    cv_http_stop(&h);
    cv_metrics_destroy(&m);
}

static void test_bind_and_addr(void **state)
{
    (void)state;
    atomic_int calls = 0;
    cv_http_t *h = cv_http_start("127.0.0.1", 0, echo, &calls);
    assert_non_null(h);
    int port = cv_http_port(h);
    /* Bound to 127.0.0.1 only: another loopback address is refused. */
    int fd = dial("127.0.0.2", port);
    assert_int_equal(fd, -1);
    /* The port is taken: a second server cannot have it. */
    assert_null(cv_http_start("127.0.0.1", port, echo, &calls));
    cv_http_stop(&h);
    assert_null(cv_http_start("no-such-host.invalid", 0, echo, &calls));

    char host[64];
    int p = -1;
    assert_int_equal(cv_http_parse_addr("127.0.0.1:7780", host, sizeof host, &p), 0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(p, 7780);
    assert_int_equal(cv_http_parse_addr("[::1]:80", host, sizeof host, &p), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(p, 80);
    assert_int_equal(cv_http_parse_addr("localhost:0", host, sizeof host, &p), 0);
    assert_int_equal(p, 0);
    assert_int_equal(cv_http_parse_addr("off", host, sizeof host, &p), 1);
    static const char *bad[] = {"",         "7780",          ":7780",         "h:",
                                "h:65536",  "h:12x",         "::1:80",        "[::1]80",
                                "h:123456", "[]:80"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (cv_http_parse_addr(bad[i], host, sizeof host, &p) != CV_EINVAL)
            fail_msg("'%s' was accepted", bad[i]);
    assert_int_equal(cv_http_parse_addr("a-very-long-host-name:1", host, 8, &p), CV_EINVAL);
}

int main(void)
{
    cv_log_init("cv_http_test", -1, CV_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_requests),
        cmocka_unit_test(test_body_limit),
        cmocka_unit_test(test_probes),
        cmocka_unit_test(test_bind_and_addr),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
