/* cv_bus_test: CURVE key files (the format `canvass keygen` writes), the
 * settings' errors, and the handshake itself over ipc between two buses in
 * this process: an allowed key is answered, an unknown key or a peer
 * without CURVE is not (DESIGN A9). */
#include "cv_bus.h"
#include "cv_err.h"
#include "cv_log.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

typedef struct {
    char pub[CV_CURVE_KEY_LEN + 1];
    char sec[CV_CURVE_KEY_LEN + 1];
} pair_t;

static char dir[64];

static int setup(void **state)
{
    (void)state;
    cv_log_init("cv_bus_test", -1, CV_LOG_ERROR); /* refusals are expected here */
    snprintf(dir, sizeof dir, "/tmp/cv_bus_test-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static const char *path_of(const char *name)
{
    static char p[16][128];
    static int i;
    i = (i + 1) % 16;
    snprintf(p[i], sizeof p[i], "%s/%s", dir, name);
    return p[i];
}

static const char *put(const char *name, const char *text)
{
    const char *p = path_of(name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
    return p;
}

static pair_t pair(void)
{
    pair_t k;
    assert_int_equal(cv_curve_keypair(k.pub, k.sec), 0);
    assert_int_equal(strlen(k.pub), CV_CURVE_KEY_LEN);
    return k;
}

/* The .key file keygen writes, read back. */
static const char *key_file(const char *name, const pair_t *k)
{
    char text[200];
    snprintf(text, sizeof text, "# canvass CURVE key pair: keep secret\npublic %s\nsecret %s\n",
             k->pub, k->sec);
    return put(name, text);
}

static void test_key_files(void **state)
{
    (void)state;
    char pub[CV_CURVE_KEY_LEN + 1], sec[CV_CURVE_KEY_LEN + 1], err[256];
    pair_t k = pair();
    assert_int_equal(cv_curve_read(key_file("a.key", &k), pub, sec, err, sizeof err), 0);
    assert_string_equal(pub, k.pub);
    assert_string_equal(sec, k.sec);

    /* A .pub file: the bare key; no secret. */
    char text[100];
    snprintf(text, sizeof text, "%s\n", k.pub);
    assert_int_equal(cv_curve_read(put("a.pub", text), pub, sec, err, sizeof err), 0);
    assert_string_equal(pub, k.pub);
    assert_string_equal(sec, "");

    /* Comments, blank lines, indentation.  ('#' is a
     * Z85 digit, but never a key's first: 2^32 / 85^4 < 84, its index.) */
    snprintf(text, sizeof text, "  # comment\n\n\t%s\n", k.pub);
    assert_int_equal(cv_curve_read(put("c.pub", text), pub, sec, err, sizeof err), 0);
    assert_string_equal(pub, k.pub);
}

static void test_key_file_errors(void **state)
{
    (void)state;
    char pub[CV_CURVE_KEY_LEN + 1], sec[CV_CURVE_KEY_LEN + 1], err[256];
    assert_int_equal(cv_curve_read(path_of("missing.key"), pub, sec, err, sizeof err),
                     CV_ENOTFOUND);
    assert_non_null(strstr(err, "cannot read key file"));

    pair_t k = pair();
    char text[200];
    snprintf(text, sizeof text, "public %s\nsecret %.39s\n", k.pub, k.sec); /* one short */
    assert_int_equal(cv_curve_read(put("short.key", text), pub, sec, err, sizeof err), CV_EINVAL);
    assert_non_null(strstr(err, "line 2"));

    snprintf(text, sizeof text, "private %s\n", k.sec);
    assert_int_equal(cv_curve_read(put("word.key", text), pub, sec, err, sizeof err), CV_EINVAL);
    assert_non_null(strstr(err, "line 1"));

    snprintf(text, sizeof text, "secret %s\n", k.sec);
    assert_int_equal(cv_curve_read(put("nopub.key", text), pub, sec, err, sizeof err), CV_EINVAL);
    assert_non_null(strstr(err, "no public key"));
}

/* What a service's three settings do when they are wrong: it must not start. */
static void test_setup_errors(void **state)
{
    (void)state;
    char err[256];
    pair_t k = pair();
    char text[100];
    snprintf(text, sizeof text, "%s\n", k.pub);
    const char *key = key_file("s.key", &k), *pub = put("s.pub", text);
    struct {
        const char *key, *server, *allow, *why;
    } bad[] = {
        {path_of("none.key"), NULL, NULL, "cannot read key file"},
        {pub, NULL, NULL, "no secret key"},
        {key, "not-a-key", NULL, "cannot read key file"},
        {key, NULL, path_of("none.allow"), "cannot read allow file"},
        {key, NULL, put("bad.allow", "public tooshort\n"), "line 1"},
        {key, NULL, put("sec.allow", "secret 0000000000000000000000000000000000000000\n"),
         "want one public key"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cv_bus_t *b = cv_bus_new();
        assert_non_null(b);
        err[0] = '\0';
        assert_int_equal(
            cv_bus_curve_setup(b, bad[i].key, bad[i].server, bad[i].allow, err, sizeof err),
            CV_EINVAL);
        if (!strstr(err, bad[i].why))
            fail_msg("case %zu: %s (want %s)", i, err, bad[i].why);
        cv_bus_destroy(&b);
    }
    /* No key: CURVE off, and that is not an error. */
    cv_bus_t *b = cv_bus_new();
    assert_int_equal(cv_bus_curve_setup(b, "", NULL, NULL, err, sizeof err), 0);
    assert_int_equal(cv_bus_curve_setup(b, NULL, NULL, NULL, err, sizeof err), 0);
    /* A server key given as the 40 characters, and a .pub file, both work. */
    assert_int_equal(cv_bus_curve_setup(b, key, k.pub, NULL, err, sizeof err), 0);
    cv_bus_destroy(&b);
    b = cv_bus_new();
    assert_int_equal(cv_bus_curve_setup(b, key, pub, NULL, err, sizeof err), 0);
    cv_bus_destroy(&b);
}

/* One request from a client bus (keys NULL: no CURVE) to the REP socket;
 * 1 when the echo came back within timeout_ms. */
static int ask(const char *endpoint, const char *key, const char *server_pub, long timeout_ms)
{
    char err[256];
    cv_bus_t *b = cv_bus_new();
    assert_non_null(b);
    assert_int_equal(cv_bus_curve_setup(b, key, server_pub, NULL, err, sizeof err), 0);
    cv_sock_t *s = cv_sock_new(b, CV_SOCK_REQ);
    assert_non_null(s);
    assert_int_equal(cv_sock_connect(s, endpoint), 0);
    const void *data[1] = {"ping"};
    size_t size[1] = {4};
    assert_int_equal(cv_sock_send(s, 1, data, size, 0), 0);
    cv_parts_t p = {0};
    int rc = cv_sock_recv(s, &p, timeout_ms);
    int ok = rc == 0 && p.n == 1 && p.size[0] == 4 && !memcmp(p.data[0], "pong", 4);
    cv_parts_free(&p);
    cv_sock_destroy(&s);
    cv_bus_destroy(&b);
    return ok;
}

typedef struct {
    cv_sock_t *rep;
    volatile int stop;
} server_t;

static void *serve(void *arg)
{
    server_t *sv = arg;
    while (!sv->stop) {
        cv_parts_t p = {0};
        if (cv_sock_recv(sv->rep, &p, 50) == 0) {
            const void *data[1] = {"pong"};
            size_t size[1] = {4};
            cv_sock_send(sv->rep, 1, data, size, 0);
        }
        cv_parts_free(&p);
    }
    return NULL;
}

static void test_handshake(void **state)
{
    (void)state;
    char err[256], endpoint[128], text[100];
    pair_t server = pair(), known = pair(), stranger = pair();
    const char *skey = key_file("server.key", &server);
    const char *kkey = key_file("known.key", &known);
    const char *xkey = key_file("stranger.key", &stranger);
    snprintf(text, sizeof text, "# clients\n%s\n", known.pub);
    const char *allow = put("allow", text);
    snprintf(endpoint, sizeof endpoint, "ipc://%s/rep", dir);

    cv_bus_t *b = cv_bus_new();
    assert_non_null(b);
    assert_int_equal(cv_bus_curve_setup(b, skey, NULL, allow, err, sizeof err), 0);
    server_t sv = {cv_sock_new(b, CV_SOCK_REP), 0};
    assert_non_null(sv.rep);
    assert_int_equal(cv_sock_bind(sv.rep, endpoint), 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, serve, &sv), 0);

    assert_true(ask(endpoint, kkey, server.pub, 10000));  /* listed */
    assert_true(ask(endpoint, skey, NULL, 10000));        /* the servers' own pair */
    assert_false(ask(endpoint, xkey, server.pub, 500));   /* unknown key */
    assert_false(ask(endpoint, NULL, NULL, 500));         /* no CURVE */
    assert_false(ask(endpoint, kkey, stranger.pub, 500)); /* wrong server key */
    assert_true(ask(endpoint, kkey, server.pub, 10000));  /* still serving */

    sv.stop = 1;
    pthread_join(t, NULL);
    cv_sock_destroy(&sv.rep);
    cv_bus_destroy(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_files),
        cmocka_unit_test(test_key_file_errors),
        cmocka_unit_test(test_setup_errors),
        cmocka_unit_test(test_handshake),
    };
    return cmocka_run_group_tests_name("cv_bus", tests, setup, teardown);
}
