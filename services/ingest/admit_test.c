/* admit_test: the order of ingest's admission checks, on a fake clock:
 * what a refused request costs (nothing from the user's bucket), which
 * check answers first, and the open cluster's behaviour. */
#include "admit.h"
#include "cv_auth.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#define SEC 1000000000ull
#define NOW 1800000000ull /* wall clock for tokens */
#define SECRET "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

static const char *const KEYS = "forum-0123456789abcdef " SECRET " vote,submit forum\n"
                                "ops-0123456789abcdef - admin ops\n";

typedef struct {
    Canvass__V1__Request req;
    Canvass__V1__Vote vote;
    Canvass__V1__Hello hello;
    Canvass__V1__Ping ping;
    uint8_t token[CV_AUTH_TOKEN_LEN];
} msg_t;

static Canvass__V1__Request *hello(msg_t *m, const char *key)
{
    canvass__v1__request__init(&m->req);
    canvass__v1__hello__init(&m->hello);
    m->hello.app_key = (char *)key;
    m->req.op_case = CANVASS__V1__REQUEST__OP_HELLO;
    m->req.hello = &m->hello;
    return &m->req;
}

static Canvass__V1__Request *ping(msg_t *m)
{
    canvass__v1__request__init(&m->req);
    canvass__v1__ping__init(&m->ping);
    m->req.op_case = CANVASS__V1__REQUEST__OP_PING;
    m->req.ping = &m->ping;
    return &m->req;
}

/* A vote by user; token: 0 none, 1 valid, -1 forged. */
static Canvass__V1__Request *vote(msg_t *m, const char *user, int token)
{
    canvass__v1__request__init(&m->req);
    canvass__v1__vote__init(&m->vote);
    m->vote.user_id = (char *)user;
    m->vote.feature_id = "F1";
    m->vote.value = 1;
    if (token) {
        uint8_t secret[32];
        for (int i = 0; i < 32; i++)
            secret[i] = (uint8_t)i;
        cv_auth_token_sign(secret, sizeof secret, user, "member", NOW + 60, m->token);
        if (token < 0)
            m->token[20] ^= 1;
        m->vote.user_token.data = m->token;
        m->vote.user_token.len = sizeof m->token;
    }
    m->req.op_case = CANVASS__V1__REQUEST__OP_VOTE;
    m->req.vote = &m->vote;
    return &m->req;
}

static cv_auth_t *keys(void)
{
    cv_auth_t *a;
    char err[256];
    assert_int_equal(cv_auth_parse("keys", KEYS, strlen(KEYS), &a, err, sizeof err), 0);
    return a;
}

/* Runs one request through admission and checks its status and, unless
 * want_err is NULL, its text. */
static void admit_line(int line, cv_admit_t *a, cv_admit_conn_t *c, Canvass__V1__Request *r,
                       uint64_t t, cv_status_t want_st, const char *want_err)
{
    char err[256] = "";
    cv_status_t st = cv_admit_request(a, c, r, t, NOW, err, sizeof err);
    if (st != want_st || (want_err && strcmp(err, want_err)))
        fail_msg("line %d: got %s \"%s\", want %s \"%s\"", line, cv_status_name(st), err,
                 cv_status_name(want_st), want_err ? want_err : "(any)");
}
#define ADMIT(...) admit_line(__LINE__, __VA_ARGS__)

/* Votes refused for a bad token, or before Hello, take nothing from the
 * user's bucket: alice still has her whole burst afterwards. */
static void test_refusals_cost_the_user_nothing(void **state)
{
    (void)state;
    cv_auth_t *k = keys();
    cv_admit_opts_t o = {k, {0, 1}, {1, 3}, 100, NULL};
    cv_admit_t *a = cv_admit_new(&o);
    cv_admit_conn_t c;
    cv_admit_conn_init(a, &c, SEC);
    msg_t m;
    for (int i = 0; i < 10; i++)
        ADMIT(a, &c, vote(&m, "alice", 1), SEC, CV_ST_UNAUTHENTICATED,
              "send Hello with an app key first");
    ADMIT(a, &c, hello(&m, "forum-0123456789abcdef"), SEC, CV_ST_OK, "");
    for (int i = 0; i < 10; i++)
        ADMIT(a, &c, vote(&m, "alice", -1), SEC, CV_ST_UNAUTHENTICATED,
              "user token does not match user or tier");
    assert_int_equal(cv_admit_users(a), 0);
    for (int i = 0; i < 3; i++)
        ADMIT(a, &c, vote(&m, "alice", 1), SEC, CV_ST_OK, "");
    ADMIT(a, &c, vote(&m, "alice", 1), SEC, CV_ST_RATE_LIMITED, "user 'alice' is over 1 votes/s");
    ADMIT(a, &c, vote(&m, "alice", 0), SEC + SEC, CV_ST_OK, ""); /* a token is optional here */
    assert_int_equal(cv_admit_users(a), 1);
    cv_admit_destroy(&a);
    assert_null(a);
    cv_auth_destroy(&k);
}

/* The connection's bucket answers before anything else: even a Hello with a
 * good key, or an invalid request, is refused once it is empty. */
static void test_connection_limit_first(void **state)
{
    (void)state;
    cv_auth_t *k = keys();
    cv_admit_opts_t o = {k, {10, 2}, {0, 1}, 100, NULL};
    cv_admit_t *a = cv_admit_new(&o);
    cv_admit_conn_t c, c2;
    cv_admit_conn_init(a, &c, 0);
    cv_admit_conn_init(a, &c2, 0);
    msg_t m;
    ADMIT(a, &c, ping(&m), 0, CV_ST_UNAUTHENTICATED, "send Hello with an app key first");
    ADMIT(a, &c, hello(&m, "nope"), 0, CV_ST_UNAUTHENTICATED, "unknown app key");
    ADMIT(a, &c, hello(&m, "forum-0123456789abcdef"), 0, CV_ST_RATE_LIMITED,
          "connection is over 10 requests/s");
    Canvass__V1__Request *bad = vote(&m, "", 0); /* invalid: empty user id */
    ADMIT(a, &c, bad, 0, CV_ST_RATE_LIMITED, "connection is over 10 requests/s");
    ADMIT(a, &c2, bad, 0, CV_ST_INVALID, NULL); /* another connection: its own bucket */
    ADMIT(a, &c, hello(&m, "forum-0123456789abcdef"), SEC / 10, CV_ST_OK, "");
    cv_admit_destroy(&a);
    cv_auth_destroy(&k);
}

/* An app whose Hello failed is forgotten: the earlier good Hello no longer
 * counts.  A known app without a right is FORBIDDEN. */
static void test_hello_replaces_the_app(void **state)
{
    (void)state;
    cv_auth_t *k = keys();
    cv_admit_opts_t o = {k, {0, 1}, {0, 1}, 100, NULL};
    cv_admit_t *a = cv_admit_new(&o);
    cv_admit_conn_t c;
    cv_admit_conn_init(a, &c, 0);
    msg_t m;
    ADMIT(a, &c, hello(&m, "ops-0123456789abcdef"), 0, CV_ST_OK, "");
    ADMIT(a, &c, vote(&m, "u", 0), 0, CV_ST_FORBIDDEN, "app 'ops' may not vote");
    ADMIT(a, &c, hello(&m, "forum-0123456789abcdef"), 0, CV_ST_OK, "");
    ADMIT(a, &c, vote(&m, "u", 0), 0, CV_ST_OK, "");
    ADMIT(a, &c, hello(&m, ""), 0, CV_ST_UNAUTHENTICATED,
          "no app key: this cluster needs one (app keys are in use)");
    ADMIT(a, &c, vote(&m, "u", 0), 0, CV_ST_UNAUTHENTICATED, "send Hello with an app key first");
    cv_admit_destroy(&a);
    cv_auth_destroy(&k);
}

/* Without keys: no Hello needed, tokens ignored, tiers honoured. */
static void test_open_cluster(void **state)
{
    (void)state;
    cv_admit_opts_t o = {NULL, {0, 1}, {0, 1}, 100, NULL};
    cv_admit_t *a = cv_admit_new(&o);
    cv_admit_conn_t c;
    cv_admit_conn_init(a, &c, 0);
    msg_t m;
    ADMIT(a, &c, ping(&m), 0, CV_ST_OK, "");
    ADMIT(a, &c, vote(&m, "u", -1), 0, CV_ST_OK, "");
    Canvass__V1__Request *r = vote(&m, "u", 0);
    m.vote.tier = "honorary";
    ADMIT(a, &c, r, 0, CV_ST_OK, "");
    ADMIT(a, &c, hello(&m, "anything"), 0, CV_ST_OK, "");
    cv_admit_destroy(&a);

    cv_admit_opts_t bad = {NULL, {-1, 1}, {0, 1}, 100, NULL};
    assert_null(cv_admit_new(&bad));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refusals_cost_the_user_nothing),
        cmocka_unit_test(test_connection_limit_first),
        cmocka_unit_test(test_hello_replaces_the_app),
        cmocka_unit_test(test_open_cluster),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
