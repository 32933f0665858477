/* http_test: publish's HTTP API against a scripted REP socket.
 *
 * The server runs for real (cv_http on a loopback port, its REQ socket over
 * inproc); in place of publish's loop a responder thread holds the REP end,
 * records each AdminRequest and answers with the reply the test set.  So
 * what is checked is the translation both ways: HTTP request -> the exact
 * AdminRequest fields (app_key included), and every AdminReply status ->
 * its HTTP status and JSON body, including the statuses the real publish
 * cannot easily be made to return, a publish that does not answer, and one
 * that answers garbage.  The full cluster is exercised by tests/test_http.py.
 */
#include "cv_bus.h"
#include "cv_codec.h"
#include "cv_err.h"
#include "cv_log.h"
#include "cv_metrics.h"
#include "http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#define ENDPOINT "inproc://http-test-admin"
#define TIMEOUT_MS 400

/* ---- the scripted publish ------------------------------------------------- */

enum { ANSWER, SILENT, GARBAGE };

typedef struct {
    pthread_mutex_t lock;
    cv_sock_t *rep;
    int stop;
    int mode;
    uint8_t *reply; /* packed AdminReply to send */
    size_t reply_len;
    Canvass__V1__AdminRequest *last; /* the last request received */
    int requests;
} responder_t;

static responder_t R = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void *responder(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&R.lock);
        int stop = R.stop;
        pthread_mutex_unlock(&R.lock);
        if (stop)
            return NULL;
        cv_parts_t parts;
        if (cv_sock_recv(R.rep, &parts, 50) != 0)
            continue;
        pthread_mutex_lock(&R.lock);
        if (R.last)
            canvass__v1__admin_request__free_unpacked(R.last, NULL);
        R.last = canvass__v1__admin_request__unpack(NULL, parts.size[0], parts.data[0]);
        R.requests++;
        int mode = R.mode;
        uint8_t *out = malloc(R.reply_len ? R.reply_len : 1);
        memcpy(out, R.reply, R.reply_len);
        size_t len = R.reply_len;
        pthread_mutex_unlock(&R.lock);
        cv_parts_free(&parts);
        if (mode == SILENT) /* answer only after the HTTP side gave up */
            usleep((TIMEOUT_MS + 300) * 1000);
        static const uint8_t garbage[] = {0xff, 0xff, 0xff};
        const void *data[1] = {mode == GARBAGE ? (const void *)garbage : out};
        size_t size[1] = {mode == GARBAGE ? sizeof garbage : len};
        cv_sock_send(R.rep, 1, data, size, 0);
        free(out);
    }
}

/* Sets the reply the responder sends next (and after). */
static void script(int mode, const Canvass__V1__AdminReply *r)
{
    size_t len = 0;
    uint8_t *buf = cv_codec_pack(&r->base, &len);
    assert_non_null(buf);
    pthread_mutex_lock(&R.lock);
    free(R.reply);
    R.reply = buf;
    R.reply_len = len;
    R.mode = mode;
    pthread_mutex_unlock(&R.lock);
}

static void script_status(int status, const char *error)
{
    Canvass__V1__AdminReply r = CANVASS__V1__ADMIN_REPLY__INIT;
    r.status = status;
    r.error = (char *)error;
    script(ANSWER, &r);
}

/* ---- a raw HTTP client ---------------------------------------------------- */

typedef struct {
    int status;
    char *text; /* the whole answer */
    const char *body;
} answer_t;

static answer_t request(int port, const char *method, const char *target, const char *headers,
                        const char *body)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    char *req = NULL;
    int n = asprintf(&req, "%s %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n%sContent-Length: "
                           "%zu\r\n\r\n%s",
                     method, target, headers ? headers : "", body ? strlen(body) : 0,
                     body ? body : "");
    assert_true(n > 0);
    assert_int_equal(send(fd, req, (size_t)n, MSG_NOSIGNAL), n);
    free(req);
    size_t cap = 1 << 16, len = 0;
    answer_t ans = {.text = malloc(cap)};
    assert_non_null(ans.text);
    ssize_t got;
    while (len + 1 < cap && (got = recv(fd, ans.text + len, cap - len - 1, 0)) > 0)
        len += (size_t)got;
    close(fd);
    ans.text[len] = '\0';
    assert_int_equal(sscanf(ans.text, "HTTP/1.1 %d", &ans.status), 1);
    const char *p = strstr(ans.text, "\r\n\r\n");
    assert_non_null(p);
    ans.body = p + 4;
    return ans;
}

/* Asserts status and body of an answer, then frees it. */
static void expect(answer_t a, int status, const char *body)
{
    if (a.status != status || strcmp(a.body, body) != 0)
        fail_msg("got %d %s\nwant %d %s", a.status, a.body, status, body);
    free(a.text);
}

static int requests_seen(void)
{
    pthread_mutex_lock(&R.lock);
    int n = R.requests;
    pthread_mutex_unlock(&R.lock);
    return n;
}

/* The last request the responder saw (borrowed until the next request). */
static Canvass__V1__AdminRequest *last_request(void)
{
    pthread_mutex_lock(&R.lock);
    Canvass__V1__AdminRequest *r = R.last;
    pthread_mutex_unlock(&R.lock);
    assert_non_null(r);
    return r;
}

/* ---- the fixture ------------------------------------------------------------ */

typedef struct {
    cv_bus_t *bus;
    cv_metrics_t *metrics;
    pub_http_t *http;
    pthread_t thread;
    int port;
} fixture_t;

static int setup(void **state)
{
    static fixture_t fx;
    memset(&fx, 0, sizeof fx);
    fx.bus = cv_bus_new();
    fx.metrics = cv_metrics_new();
    R.rep = cv_sock_new(fx.bus, CV_SOCK_REP);
    if (!R.rep || cv_sock_bind(R.rep, ENDPOINT) < 0)
        return -1;
    R.stop = 0;
    script_status(CV_ST_OK, "");
    pthread_create(&fx.thread, NULL, responder, NULL);
    pub_http_opts_t o = {.host = "127.0.0.1",
                         .port = 0,
                         .bus = fx.bus,
                         .endpoint = ENDPOINT,
                         .timeout_ms = TIMEOUT_MS,
                         .metrics = fx.metrics};
    if (!(fx.http = pub_http_start(&o)))
        return -1;
    fx.port = pub_http_port(fx.http);
    *state = &fx;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *fx = *state;
    pub_http_stop(&fx->http);
    pthread_mutex_lock(&R.lock);
    R.stop = 1;
    pthread_mutex_unlock(&R.lock);
    pthread_join(fx->thread, NULL);
    cv_sock_destroy(&R.rep);
    if (R.last)
        canvass__v1__admin_request__free_unpacked(R.last, NULL);
    R.last = NULL;
    free(R.reply);
    R.reply = NULL;
    cv_bus_destroy(&fx->bus);
    cv_metrics_destroy(&fx->metrics);
    return 0;
}

/* ---- tests -------------------------------------------------------------------- */

static void test_not_ready_then_ready(void **state)
{
    fixture_t *fx = *state;
    expect(request(fx->port, "GET", "/v1/cycles", NULL, NULL), 503,
           "{\"status\": \"UNAVAILABLE\", \"error\": \"publish is not ready (starting, or "
           "stopping)\"}\n");
    expect(request(fx->port, "GET", "/readyz", NULL, NULL), 503,
           "{\"status\": \"UNAVAILABLE\", \"error\": \"publish's store is not open yet\"}\n");
    expect(request(fx->port, "GET", "/healthz", NULL, NULL), 200, "{\"status\": \"ok\"}\n");
    assert_int_equal(requests_seen(), 0); /* nothing reached publish */
    pub_http_set_ready(fx->http, 1);
    expect(request(fx->port, "GET", "/readyz", NULL, NULL), 200, "{\"status\": \"ready\"}\n");
}

static void test_status_mapping(void **state)
{
    fixture_t *fx = *state;
    pub_http_set_ready(fx->http, 1);
    static const struct {
        int status, http;
        const char *name;
    } map[] = {
        {CV_ST_INVALID, 400, "INVALID"},
        {CV_ST_BAD_FRAME, 400, "BAD_FRAME"},
        {CV_ST_UNAUTHENTICATED, 401, "UNAUTHENTICATED"},
        {CV_ST_FORBIDDEN, 403, "FORBIDDEN"},
        {CV_ST_NOT_FOUND, 404, "NOT_FOUND"},
        {CV_ST_CLOSED, 409, "CLOSED"},
        {CV_ST_RATE_LIMITED, 429, "RATE_LIMITED"},
        {CV_ST_INTERNAL, 500, "INTERNAL"},
        {CV_ST_UNAVAILABLE, 503, "UNAVAILABLE"},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        script_status(map[i].status, "why \"it\" failed");
        char want[128];
        snprintf(want, sizeof want, "{\"status\": \"%s\", \"error\": \"why \\\"it\\\" failed\"}\n",
                 map[i].name);
        expect(request(fx->port, "GET", "/v1/features/F1", NULL, NULL), map[i].http, want);
    }
    /* OK with no result: a bare status object. */
    script_status(CV_ST_OK, "");
    expect(request(fx->port, "POST", "/v1/cycles/close", NULL, NULL), 200,
           "{\"status\": \"OK\"}\n");

    /* The counters saw each answer by action and code. */
    char *text = cv_metrics_render(fx->metrics, NULL);
    assert_non_null(strstr(
        text, "canvass_publish_http_requests_total{action=\"feature_show\",code=\"409\"} 1\n"));
    assert_non_null(
        strstr(text, "canvass_publish_http_requests_total{action=\"feature_show\",code=\"400\"} 2\n"));
    free(text);
}

static void test_request_translation(void **state)
{
    fixture_t *fx = *state;
    pub_http_set_ready(fx->http, 1);
    script_status(CV_ST_OK, "");

    free(request(fx->port, "GET", "/v1/ranked?cycle=3&limit=5&order=wilson",
                 "Authorization: Bearer k1\r\n", NULL)
             .text);
    Canvass__V1__AdminRequest *r = last_request();
    assert_int_equal(r->op_case, CANVASS__V1__ADMIN_REQUEST__OP_RANKED);
    assert_string_equal(r->ranked->cycle, "3");
    assert_int_equal(r->ranked->limit, 5);
    assert_string_equal(r->ranked->order, "wilson");
    assert_string_equal(r->app_key, "k1");

    free(request(fx->port, "GET", "/v1/ranked", NULL, NULL).text);
    r = last_request();
    assert_string_equal(r->ranked->cycle, "");
    assert_int_equal(r->ranked->limit, 0);
    assert_string_equal(r->app_key, "");

    free(request(fx->port, "POST", "/v1/features/Fa_1/status", NULL,
                 "{\"status\": \"shipped\", \"release\": \"2026.11.27\"}")
             .text);
    r = last_request();
    assert_int_equal(r->op_case, CANVASS__V1__ADMIN_REQUEST__OP_FEATURE_STATUS);
    assert_string_equal(r->feature_status->feature_id, "Fa_1");
    assert_string_equal(r->feature_status->status, "shipped");
    assert_string_equal(r->feature_status->release, "2026.11.27");

    free(request(fx->port, "POST", "/v1/features/Fsrc/merge", NULL, "{\"into\": \"Fdst\"}").text);
    r = last_request();
    assert_int_equal(r->op_case, CANVASS__V1__ADMIN_REQUEST__OP_FEATURE_MERGE);
    assert_string_equal(r->feature_merge->src, "Fsrc");
    assert_string_equal(r->feature_merge->dst, "Fdst");

    free(request(fx->port, "GET", "/v1/features/Fx/voters?after=bob&limit=2", NULL, NULL).text);
    r = last_request();
    assert_int_equal(r->op_case, CANVASS__V1__ADMIN_REQUEST__OP_FEATURE_VOTERS);
    assert_string_equal(r->feature_voters->feature_id, "Fx");
    assert_string_equal(r->feature_voters->after, "bob");
    assert_int_equal(r->feature_voters->limit, 2);

    free(request(fx->port, "GET", "/v1/features", NULL, NULL).text);
    assert_int_equal(last_request()->op_case, CANVASS__V1__ADMIN_REQUEST__OP_FEATURES);
    free(request(fx->port, "GET", "/v1/cycles", NULL, NULL).text);
    assert_int_equal(last_request()->op_case, CANVASS__V1__ADMIN_REQUEST__OP_CYCLES);
    free(request(fx->port, "POST", "/v1/cycles/close", NULL, NULL).text);
    assert_int_equal(last_request()->op_case, CANVASS__V1__ADMIN_REQUEST__OP_CLOSE);
    free(request(fx->port, "GET", "/v1/features/F%2Dx", NULL, NULL).text);
    r = last_request();
    assert_int_equal(r->op_case, CANVASS__V1__ADMIN_REQUEST__OP_FEATURE_SHOW);
    assert_string_equal(r->feature_show->feature_id, "F-x"); /* percent-decoded */

    /* Requests refused before publish is asked leave it alone. */
    int before = requests_seen();
    expect(request(fx->port, "GET", "/v1/cycles", "Authorization: Token x\r\n", NULL), 401,
           "{\"status\": \"UNAUTHENTICATED\", \"error\": \"the Authorization header must be "
           "'Bearer KEY'\"}\n");
    expect(request(fx->port, "POST", "/v1/features/F1/merge", NULL, "{\"into\": 1}"), 400,
           "{\"status\": \"INVALID\", \"error\": \"'into' must be a string\"}\n");
    expect(request(fx->port, "GET", "/v1/ranked?limit=4294967296", NULL, NULL), 400,
           "{\"status\": \"INVALID\", \"error\": \"bad limit '4294967296' (a whole number from 0 "
           "to 4294967295)\"}\n");
    expect(request(fx->port, "PUT", "/v1/features/F1/status", NULL, "{}"), 405,
           "{\"status\": \"INVALID\", \"error\": \"method PUT is not allowed on "
           "/v1/features/F1/status (use POST)\"}\n");
    expect(request(fx->port, "GET", "/v1/features//voters", NULL, NULL), 404,
           "{\"status\": \"NOT_FOUND\", \"error\": \"no route for GET /v1/features//voters\"}\n");
    assert_int_equal(requests_seen(), before);
}

static void test_results_and_csv(void **state)
{
    fixture_t *fx = *state;
    pub_http_set_ready(fx->http, 1);
    Canvass__V1__RankedEntry e = CANVASS__V1__RANKED_ENTRY__INIT;
    e.rank = 1;
    e.feature_id = "Fa";
    e.title = "Dark, mode";
    e.score = 3;
    e.up = 3;
    e.voters = 3;
    e.status = "open";
    Canvass__V1__RankedEntry *es[] = {&e};
    Canvass__V1__RankedList l = CANVASS__V1__RANKED_LIST__INIT;
    l.cycle = 2;
    l.closed_at_ms = 1795798800000ULL;
    l.order = "score";
    l.entries = es;
    l.n_entries = 1;
    Canvass__V1__AdminReply r = CANVASS__V1__ADMIN_REPLY__INIT;
    r.result_case = CANVASS__V1__ADMIN_REPLY__RESULT_RANKED;
    r.ranked = &l;
    script(ANSWER, &r);
    answer_t a = request(fx->port, "GET", "/v1/ranked?format=csv", NULL, NULL);
    assert_non_null(strstr(a.text, "\r\nContent-Type: text/csv\r\n"));
    expect(a, 200,
           "rank,feature_id,title,score,up,down,voters,prev_rank,status,tags\n"
           "1,Fa,\"Dark, mode\",3,3,0,3,,open,\n");
    a = request(fx->port, "GET", "/v1/ranked?format=json", NULL, NULL);
    assert_non_null(strstr(a.text, "\r\nContent-Type: application/json\r\n"));
    expect(a, 200,
           "{\"cycle\": 2, \"closed_at\": \"2026-11-27T17:00:00.000Z\", \"order\": \"score\", "
           "\"entries\": [{\"rank\": 1, \"feature_id\": \"Fa\", \"title\": \"Dark, mode\", "
           "\"score\": 3, \"up\": 3, \"down\": 0, \"voters\": 3, \"prev_rank\": null, "
           "\"status\": \"open\", \"tags\": []}]}\n");

    Canvass__V1__MergeResult m = CANVASS__V1__MERGE_RESULT__INIT;
    m.src = "Fa";
    m.dst = "Fb";
    m.moved = 2;
    m.kept = 1;
    Canvass__V1__AdminReply rm = CANVASS__V1__ADMIN_REPLY__INIT;
    rm.result_case = CANVASS__V1__ADMIN_REPLY__RESULT_MERGE;
    rm.merge = &m;
    script(ANSWER, &rm);
    expect(request(fx->port, "POST", "/v1/features/Fa/merge", NULL, "{\"into\": \"Fb\"}"), 200,
           "{\"src\": \"Fa\", \"dst\": \"Fb\", \"moved\": 2, \"kept\": 1}\n");
}

static void test_silent_and_garbage(void **state)
{
    fixture_t *fx = *state;
    pub_http_set_ready(fx->http, 1);
    Canvass__V1__AdminReply ok = CANVASS__V1__ADMIN_REPLY__INIT;
    script(SILENT, &ok);
    char want[128];
    snprintf(want, sizeof want,
             "{\"status\": \"UNAVAILABLE\", \"error\": \"publish did not answer within %d ms\"}\n",
             TIMEOUT_MS);
    expect(request(fx->port, "GET", "/v1/cycles", NULL, NULL), 503, want);
    /* The late answer goes nowhere; the next request gets its own. */
    script(ANSWER, &ok);
    usleep(500 * 1000);
    expect(request(fx->port, "GET", "/v1/cycles", NULL, NULL), 200, "{\"status\": \"OK\"}\n");

    script(GARBAGE, &ok);
    expect(request(fx->port, "GET", "/v1/cycles", NULL, NULL), 500,
           "{\"status\": \"INTERNAL\", \"error\": \"undecodable answer from publish\"}\n");
    script(ANSWER, &ok);
    expect(request(fx->port, "GET", "/v1/cycles", NULL, NULL), 200, "{\"status\": \"OK\"}\n");
}

int main(void)
{
    cv_log_init("http_test", -1, CV_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_not_ready_then_ready, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_mapping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_translation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_results_and_csv, setup, teardown),
        cmocka_unit_test_setup_teardown(test_silent_and_garbage, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
