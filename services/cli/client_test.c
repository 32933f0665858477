/* client_test: unit tests for the CLI's client-protocol connection (client.c).
 *
 * A scripted peer on a loopback port plays the server: it reads what the
 * client sends and answers with bytes taken from the shared test vectors
 * (../shared/testvectors/client-frames.tsv, encoded by Google's protobuf
 * runtime), so these tests check the client against the A4 wire format
 * itself, not against our own encoder.  Each case covers one way a server
 * can behave: answering at once, in single bytes, with other replies first,
 * with a BAD_FRAME reply (id 0), with a bad length, by closing, by staying
 * silent.
 */
#include "client.h"
#include "cv_err.h"

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
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

/* Frames from client-frames.tsv. */
#define VEC_VOTE_UP "0000001a08035a160a096d6966616e2d3130301207463161326233631802"
#define VEC_REPLY_VOTE_ACK "000000110803520d0a07463161326233631001180c"
#define VEC_REPLY_NOT_FOUND "00000019080710051a136e6f206665617475726520276e6f7375636827"
#define VEC_REPLY_BAD_FRAME "0000001210021a0e6672616d65206c656e6774682030"
#define VEC_REPLY_PONG "0000000608016202082a"

static size_t unhex(const char *hex, uint8_t *out)
{
    size_t n = strlen(hex) / 2;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        sscanf(hex + 2 * i, "%2x", &v);
        out[i] = (uint8_t)v;
    }
    return n;
}

/* ---- the scripted peer ----------------------------------------------------- */

typedef enum { PEER_ANSWER, PEER_BYTEWISE, PEER_CLOSE, PEER_SILENT } peer_mode_t;

typedef struct {
    int listen_fd, port;
    peer_mode_t mode;
    const char *answer_hex; /* sent after the request has been read */
    uint8_t got[512];       /* what the client sent */
    size_t got_len;
    pthread_t thread;
} peer_t;

static void *peer_main(void *arg)
{
    peer_t *p = arg;
    int fd = accept(p->listen_fd, NULL, NULL);
    if (fd < 0)
        return NULL;
    /* Read one whole frame: header, then the length it announces. */
    while (p->got_len < 4 || p->got_len < 4 + (size_t)(p->got[0] << 24 | p->got[1] << 16 |
                                                       p->got[2] << 8 | p->got[3])) {
        ssize_t n = read(fd, p->got + p->got_len, sizeof p->got - p->got_len);
        if (n <= 0)
            break;
        p->got_len += (size_t)n;
    }
    uint8_t out[512];
    size_t n = p->answer_hex ? unhex(p->answer_hex, out) : 0;
    if (p->mode == PEER_ANSWER) {
        if (write(fd, out, n) != (ssize_t)n)
            fprintf(stderr, "peer: short write\n");
    } else if (p->mode == PEER_BYTEWISE) {
        for (size_t i = 0; i < n && write(fd, out + i, 1) == 1; i++)
            usleep(1000);
    } else if (p->mode == PEER_SILENT) {
        char c;
        while (read(fd, &c, 1) > 0) /* until the client gives up and closes */
            ;
    }
    close(fd);
    return NULL;
}

static void peer_start(peer_t *p, peer_mode_t mode, const char *answer_hex)
{
    memset(p, 0, sizeof *p);
    p->mode = mode;
    p->answer_hex = answer_hex;
    p->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(p->listen_fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(p->listen_fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(p->listen_fd, 1), 0);
    socklen_t len = sizeof a;
    getsockname(p->listen_fd, (struct sockaddr *)&a, &len);
    p->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&p->thread, NULL, peer_main, p), 0);
}

static void peer_join(peer_t *p)
{
    pthread_join(p->thread, NULL);
    close(p->listen_fd);
}

/* The vote_up request of the test vectors, built with the generated code. */
static Canvass__V1__Vote vote_up = CANVASS__V1__VOTE__INIT;
static Canvass__V1__Request vote_request(void)
{
    vote_up.user_id = "mifan-100";
    vote_up.feature_id = "F1a2b3c";
    vote_up.value = 1;
    Canvass__V1__Request r = CANVASS__V1__REQUEST__INIT;
    r.request_id = 3;
    r.op_case = CANVASS__V1__REQUEST__OP_VOTE;
    r.vote = &vote_up;
    return r;
}

/* Opens a client to the peer, sends the vote_up request, returns the call's
 * result with *reply and err filled in. */
static int exchange(peer_t *p, long timeout_ms, Canvass__V1__Reply **reply, char *err,
                    size_t errlen)
{
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", p->port);
    cv_client_t *c;
    assert_int_equal(cv_client_open(&c, addr, 2000, err, errlen), 0);
    Canvass__V1__Request req = vote_request();
    int rc = cv_client_call(c, &req, reply, timeout_ms, err, errlen);
    cv_client_destroy(&c);
    cv_client_destroy(&c); /* safe twice */
    assert_null(c);
    return rc;
}

/* ---- cases ------------------------------------------------------------------ */

static void test_addr_split(void **state)
{
    (void)state;
    char host[64], port[8];
    assert_int_equal(cv_client_addr_split("127.0.0.1:7700", host, sizeof host, port, sizeof port),
                     0);
    assert_string_equal(host, "127.0.0.1");
    assert_string_equal(port, "7700");
    assert_int_equal(
        cv_client_addr_split("tcp://localhost:1", host, sizeof host, port, sizeof port), 0);
    assert_string_equal(host, "localhost");
    assert_string_equal(port, "1");
    assert_int_equal(cv_client_addr_split("[::1]:7721", host, sizeof host, port, sizeof port), 0);
    assert_string_equal(host, "::1");
    assert_string_equal(port, "7721");
    static const char *bad[] = {"localhost", ":7700", "h:",        "h:0",
                                "h:65536",   "h:77x", "[::1]7700", "tcp://"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(cv_client_addr_split(bad[i], host, sizeof host, port, sizeof port),
                         CV_EINVAL);
}

static void test_vote_matches_vector(void **state)
{
    (void)state;
    peer_t p;
    char err[256];
    Canvass__V1__Reply *rep;
    peer_start(&p, PEER_ANSWER, VEC_REPLY_VOTE_ACK);
    assert_int_equal(exchange(&p, 2000, &rep, err, sizeof err), 0);
    peer_join(&p);

    uint8_t want[128];
    size_t want_len = unhex(VEC_VOTE_UP, want);
    assert_int_equal(p.got_len, want_len);
    assert_memory_equal(p.got, want, want_len);

    assert_int_equal(rep->request_id, 3);
    assert_int_equal(rep->status, CV_ST_OK);
    assert_int_equal(rep->result_case, CANVASS__V1__REPLY__RESULT_VOTE_ACK);
    assert_string_equal(rep->vote_ack->feature_id, "F1a2b3c");
    assert_true(rep->vote_ack->changed);
    assert_int_equal(rep->vote_ack->cycle, 12);
    canvass__v1__reply__free_unpacked(rep, NULL);
}

static void test_reply_in_single_bytes_after_others(void **state)
{
    (void)state;
    peer_t p;
    char err[256];
    Canvass__V1__Reply *rep;
    /* A pong for request 1 and a NOT_FOUND for request 7 come first: the
     * client must skip them and return the reply to request 3. */
    peer_start(&p, PEER_BYTEWISE, VEC_REPLY_PONG VEC_REPLY_NOT_FOUND VEC_REPLY_VOTE_ACK);
    assert_int_equal(exchange(&p, 5000, &rep, err, sizeof err), 0);
    peer_join(&p);
    assert_int_equal(rep->request_id, 3);
    assert_string_equal(rep->vote_ack->feature_id, "F1a2b3c");
    canvass__v1__reply__free_unpacked(rep, NULL);
}

static void test_bad_frame_reply_has_id_zero(void **state)
{
    (void)state;
    peer_t p;
    char err[256];
    Canvass__V1__Reply *rep;
    peer_start(&p, PEER_ANSWER, VEC_REPLY_BAD_FRAME);
    assert_int_equal(exchange(&p, 2000, &rep, err, sizeof err), 0);
    peer_join(&p);
    assert_int_equal(rep->request_id, 0);
    assert_int_equal(rep->status, CV_ST_BAD_FRAME);
    assert_string_equal(rep->error, "frame length 0");
    canvass__v1__reply__free_unpacked(rep, NULL);
}

static void test_bad_length_and_garbage(void **state)
{
    (void)state;
    peer_t p;
    char err[256];
    Canvass__V1__Reply *rep;
    peer_start(&p, PEER_ANSWER, "00000000");
    assert_int_equal(exchange(&p, 2000, &rep, err, sizeof err), CV_EFRAME);
    peer_join(&p);
    assert_null(rep);
    assert_non_null(strstr(err, "bad length 0"));

    peer_start(&p, PEER_ANSWER, "00000002ffff"); /* not a protobuf message */
    assert_int_equal(exchange(&p, 2000, &rep, err, sizeof err), CV_EDECODE);
    peer_join(&p);
    assert_non_null(strstr(err, "does not decode"));
}

static void test_server_closes(void **state)
{
    (void)state;
    peer_t p;
    char err[256];
    Canvass__V1__Reply *rep;
    peer_start(&p, PEER_CLOSE, NULL);
    assert_int_equal(exchange(&p, 2000, &rep, err, sizeof err), CV_EIO);
    peer_join(&p);
    assert_non_null(strstr(err, "closed the connection before replying"));
}

static void test_silent_server_times_out(void **state)
{
    (void)state;
    peer_t p;
    char err[256];
    Canvass__V1__Reply *rep;
    struct timespec t0, t1;
    peer_start(&p, PEER_SILENT, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(exchange(&p, 300, &rep, err, sizeof err), CV_ETIMEOUT);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    peer_join(&p);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    assert_true(ms >= 290 && ms < 3000);
    assert_non_null(strstr(err, "did not answer within 300 ms"));
}

static void test_refused(void **state)
{
    (void)state;
    /* A port that was just free: bind, note it, close. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    bind(fd, (struct sockaddr *)&a, sizeof a);
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd);
    char addr[64], err[256];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", ntohs(a.sin_port));
    cv_client_t *c = (cv_client_t *)&c;
    assert_int_equal(cv_client_open(&c, addr, 1000, err, sizeof err), CV_EIO);
    assert_null(c);
    assert_non_null(strstr(err, "Connection refused"));
    assert_int_equal(cv_client_open(&c, "no-port-here", 1000, err, sizeof err), CV_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_addr_split),
        cmocka_unit_test(test_vote_matches_vector),
        cmocka_unit_test(test_reply_in_single_bytes_after_others),
        cmocka_unit_test(test_bad_frame_reply_has_id_zero),
        cmocka_unit_test(test_bad_length_and_garbage),
        cmocka_unit_test(test_server_closes),
        cmocka_unit_test(test_silent_server_times_out),
        cmocka_unit_test(test_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
