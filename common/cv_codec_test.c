/* cv_codec_test: conformance with the A4 test vectors, which were encoded by
 * Google's protobuf runtime.  Each row's message column is written out here
 * as the message it describes; decoding the row's frame must give exactly
 * that message, and packing that message must give exactly the row's bytes.
 * Also the status and tier names. */
#include "cv_codec.h"
#include "cv_frame.h"
#include "cv_validate.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define NELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* ---- the vectors file ----------------------------------------------------- */

#define TESTVECTORS_DEFAULT "../shared/testvectors/client-frames.tsv"
#define MAX_ROWS 64

typedef struct {
    char name[64];
    char direction[16];
    uint8_t *frame; /* header + payload */
    size_t len;
} row_t;

static row_t rows[MAX_ROWS];
static size_t nrows;

static int unhex(const char *hex, uint8_t **out, size_t *len)
{
    size_t n = strlen(hex);
    if (n % 2 || n == 0)
        return -1;
    *out = malloc(n / 2);
    assert_non_null(*out);
    for (size_t i = 0; i < n; i += 2) {
        unsigned v;
        if (sscanf(hex + i, "%2x", &v) != 1)
            return -1;
        (*out)[i / 2] = (uint8_t)v;
    }
    *len = n / 2;
    return 0;
}

/* Loads client-frames.tsv; 0 or -1 after printing why. */
static int load_vectors(void)
{
    const char *path = getenv("CANVASS_TESTVECTORS");
    if (!path)
        path = TESTVECTORS_DEFAULT;
    FILE *f = fopen(path, "r");
    if (!f) {
        print_error("cannot open test vectors %s (tests run from the repository root; "
                    "CANVASS_TESTVECTORS overrides the path)\n",
                    path);
        return -1;
    }
    char line[8192];
    nrows = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] == '#' || line[0] == '\0' || !strncmp(line, "name\t", 5))
            continue;
        char *fields[4], *save = NULL, *tok = strtok_r(line, "\t", &save);
        int k = 0;
        while (tok && k < 4) {
            fields[k++] = tok;
            tok = strtok_r(NULL, "\t", &save);
        }
        if (k != 4 || nrows == MAX_ROWS) {
            print_error("%s: malformed row or too many rows\n", path);
            fclose(f);
            return -1;
        }
        row_t *r = &rows[nrows++];
        snprintf(r->name, sizeof r->name, "%s", fields[0]);
        snprintf(r->direction, sizeof r->direction, "%s", fields[1]);
        if (unhex(fields[3], &r->frame, &r->len) < 0) {
            print_error("%s: row %s has bad hex\n", path, r->name);
            fclose(f);
            return -1;
        }
    }
    fclose(f);
    return 0;
}

/* Loads the vectors once; fails (not skips) the calling test when the file
 * is missing or bad, so a broken checkout cannot pass unnoticed. */
static void need_vectors(void)
{
    static int loaded;
    if (!loaded) {
        if (load_vectors() < 0)
            fail_msg("no test vectors");
        loaded = 1;
    }
    assert_true(nrows > 0);
}

static int free_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < nrows; i++)
        free(rows[i].frame);
    nrows = 0;
    return 0;
}

/* The row's payload, after checking that its header gives its length. */
static const uint8_t *payload_of(const row_t *r, size_t *len)
{
    uint8_t hdr[CV_FRAME_HEADER];
    assert_true(r->len > CV_FRAME_HEADER);
    *len = r->len - CV_FRAME_HEADER;
    cv_frame_put_header(hdr, (uint32_t)*len);
    if (memcmp(hdr, r->frame, CV_FRAME_HEADER) != 0)
        fail_msg("row %s: header does not match payload length %zu", r->name, *len);
    return r->frame + CV_FRAME_HEADER;
}

/* ---- the messages the rows describe --------------------------------------- */

/* Storage for one described message and its parts. */
typedef struct {
    Canvass__V1__Request req;
    Canvass__V1__Reply rep;
    Canvass__V1__Hello hello;
    Canvass__V1__Vote vote;
    Canvass__V1__Submit submit;
    Canvass__V1__Ping ping;
    Canvass__V1__VoteAck ack;
    Canvass__V1__Pong pong;
    char *tags[8];
} described_t;

static void vote_of(described_t *d, uint64_t id, char *user, int32_t value, char *tier)
{
    canvass__v1__vote__init(&d->vote);
    d->vote.user_id = user;
    d->vote.feature_id = "F1a2b3c";
    d->vote.value = value;
    d->vote.tier = tier;
    d->req.request_id = id;
    d->req.op_case = CANVASS__V1__REQUEST__OP_VOTE;
    d->req.vote = &d->vote;
}

/* Fills d with the message the row named `name` describes; returns 1 for a
 * Request, 2 for a Reply, 0 for a name this test does not know. */
static int describe(const char *name, described_t *d)
{
    memset(d, 0, sizeof *d);
    canvass__v1__request__init(&d->req);
    canvass__v1__reply__init(&d->rep);

    /* ping: Request{request_id=1, ping{nonce=42}} */
    if (!strcmp(name, "ping")) {
        canvass__v1__ping__init(&d->ping);
        d->ping.nonce = 42;
        d->req.request_id = 1;
        d->req.op_case = CANVASS__V1__REQUEST__OP_PING;
        d->req.ping = &d->ping;
        return 1;
    }
    /* hello: Request{request_id=2, hello{app_key='forum-app',
     * client_name='mi-forum', protocol_version=1}} */
    if (!strcmp(name, "hello")) {
        canvass__v1__hello__init(&d->hello);
        d->hello.app_key = "forum-app";
        d->hello.client_name = "mi-forum";
        d->hello.protocol_version = 1;
        d->req.request_id = 2;
        d->req.op_case = CANVASS__V1__REQUEST__OP_HELLO;
        d->req.hello = &d->hello;
        return 1;
    }
    /* vote_up: Request{request_id=3, vote{user_id='mifan-100',
     * feature_id='F1a2b3c', value=+1}} */
    if (!strcmp(name, "vote_up")) {
        vote_of(d, 3, "mifan-100", 1, "");
        return 1;
    }
    /* vote_down_honorary: Request{request_id=4, vote{user_id='rongzu-7',
     * feature_id='F1a2b3c', value=-1, tier='honorary'}} */
    if (!strcmp(name, "vote_down_honorary")) {
        vote_of(d, 4, "rongzu-7", -1, "honorary");
        return 1;
    }
    /* vote_retract: Request{request_id=5, vote{user_id='mifan-100',
     * feature_id='F1a2b3c', value=0}} */
    if (!strcmp(name, "vote_retract")) {
        vote_of(d, 5, "mifan-100", 0, "");
        return 1;
    }
    /* submit: Request{request_id=6, submit{user_id='mifan-100',
     * title='Dark mode for settings', body='Please.', tags=['ui','settings']}} */
    if (!strcmp(name, "submit")) {
        canvass__v1__submit__init(&d->submit);
        d->submit.user_id = "mifan-100";
        d->submit.title = "Dark mode for settings";
        d->submit.body = "Please.";
        d->tags[0] = "ui";
        d->tags[1] = "settings";
        d->submit.tags = d->tags;
        d->submit.n_tags = 2;
        d->req.request_id = 6;
        d->req.op_case = CANVASS__V1__REQUEST__OP_SUBMIT;
        d->req.submit = &d->submit;
        return 1;
    }
    /* reply_vote_ack: Reply{request_id=3, status=OK,
     * vote_ack{feature_id='F1a2b3c', changed=true, cycle=12}} */
    if (!strcmp(name, "reply_vote_ack")) {
        canvass__v1__vote_ack__init(&d->ack);
        d->ack.feature_id = "F1a2b3c";
        d->ack.changed = 1;
        d->ack.cycle = 12;
        d->rep.request_id = 3;
        d->rep.status = CV_ST_OK;
        d->rep.result_case = CANVASS__V1__REPLY__RESULT_VOTE_ACK;
        d->rep.vote_ack = &d->ack;
        return 2;
    }
    /* reply_not_found: Reply{request_id=7, status=NOT_FOUND,
     * error="no feature 'nosuch'"} */
    if (!strcmp(name, "reply_not_found")) {
        d->rep.request_id = 7;
        d->rep.status = CV_ST_NOT_FOUND;
        d->rep.error = "no feature 'nosuch'";
        return 2;
    }
    /* reply_bad_frame: Reply{request_id=0, status=BAD_FRAME,
     * error='frame length 0'} */
    if (!strcmp(name, "reply_bad_frame")) {
        d->rep.request_id = 0;
        d->rep.status = CV_ST_BAD_FRAME;
        d->rep.error = "frame length 0";
        return 2;
    }
    /* reply_pong: Reply{request_id=1, status=OK, pong{nonce=42}} */
    if (!strcmp(name, "reply_pong")) {
        canvass__v1__pong__init(&d->pong);
        d->pong.nonce = 42;
        d->rep.request_id = 1;
        d->rep.status = CV_ST_OK;
        d->rep.result_case = CANVASS__V1__REPLY__RESULT_PONG;
        d->rep.pong = &d->pong;
        return 2;
    }
    return 0;
}

/* ---- field-by-field comparison ------------------------------------------ */

static void same_str(const char *row, const char *field, const char *got, const char *want)
{
    if (strcmp(got ? got : "", want ? want : "") != 0)
        fail_msg("row %s: %s is '%s', want '%s'", row, field, got ? got : "(null)", want);
}

static void same_int(const char *row, const char *field, long long got, long long want)
{
    if (got != want)
        fail_msg("row %s: %s is %lld, want %lld", row, field, got, want);
}

static void same_request(const char *row, const Canvass__V1__Request *got,
                         const Canvass__V1__Request *want)
{
    same_int(row, "request_id", (long long)got->request_id, (long long)want->request_id);
    same_int(row, "op_case", got->op_case, want->op_case);
    switch (want->op_case) {
    case CANVASS__V1__REQUEST__OP_PING:
        assert_non_null(got->ping);
        same_int(row, "ping.nonce", (long long)got->ping->nonce, (long long)want->ping->nonce);
        break;
    case CANVASS__V1__REQUEST__OP_HELLO:
        assert_non_null(got->hello);
        same_str(row, "hello.app_key", got->hello->app_key, want->hello->app_key);
        same_str(row, "hello.client_name", got->hello->client_name, want->hello->client_name);
        same_int(row, "hello.protocol_version", got->hello->protocol_version,
                 want->hello->protocol_version);
        break;
    case CANVASS__V1__REQUEST__OP_VOTE:
        assert_non_null(got->vote);
        same_str(row, "vote.user_id", got->vote->user_id, want->vote->user_id);
        same_str(row, "vote.feature_id", got->vote->feature_id, want->vote->feature_id);
        same_int(row, "vote.value", got->vote->value, want->vote->value);
        same_str(row, "vote.tier", got->vote->tier, want->vote->tier);
        same_int(row, "vote.user_token.len", (long long)got->vote->user_token.len, 0);
        break;
    case CANVASS__V1__REQUEST__OP_SUBMIT:
        assert_non_null(got->submit);
        same_str(row, "submit.user_id", got->submit->user_id, want->submit->user_id);
        same_str(row, "submit.title", got->submit->title, want->submit->title);
        same_str(row, "submit.body", got->submit->body, want->submit->body);
        same_int(row, "submit.n_tags", (long long)got->submit->n_tags,
                 (long long)want->submit->n_tags);
        for (size_t i = 0; i < want->submit->n_tags; i++)
            same_str(row, "submit.tags[i]", got->submit->tags[i], want->submit->tags[i]);
        break;
    default:
        fail_msg("row %s: unexpected op", row);
    }
}

static void same_reply(const char *row, const Canvass__V1__Reply *got,
                       const Canvass__V1__Reply *want)
{
    same_int(row, "request_id", (long long)got->request_id, (long long)want->request_id);
    same_int(row, "status", got->status, want->status);
    same_str(row, "error", got->error, want->error);
    same_int(row, "result_case", got->result_case, want->result_case);
    switch (want->result_case) {
    case CANVASS__V1__REPLY__RESULT_VOTE_ACK:
        assert_non_null(got->vote_ack);
        same_str(row, "vote_ack.feature_id", got->vote_ack->feature_id, want->vote_ack->feature_id);
        same_int(row, "vote_ack.changed", got->vote_ack->changed, want->vote_ack->changed);
        same_int(row, "vote_ack.cycle", (long long)got->vote_ack->cycle,
                 (long long)want->vote_ack->cycle);
        break;
    case CANVASS__V1__REPLY__RESULT_PONG:
        assert_non_null(got->pong);
        same_int(row, "pong.nonce", (long long)got->pong->nonce, (long long)want->pong->nonce);
        break;
    case CANVASS__V1__REPLY__RESULT__NOT_SET:
        break;
    default:
        fail_msg("row %s: unexpected result", row);
    }
}

/* ---- tests ---------------------------------------------------------------- */

/* Every row in the file is one this test knows, and every row it knows is in
 * the file: a vector added later must be described here before it passes. */
static void test_rows_known(void **state)
{
    (void)state;
    need_vectors();
    static const char *expected[] = {
        "ping",   "hello",          "vote_up",         "vote_down_honorary", "vote_retract",
        "submit", "reply_vote_ack", "reply_not_found", "reply_bad_frame",    "reply_pong"};
    described_t d;
    for (size_t i = 0; i < nrows; i++) {
        int kind = describe(rows[i].name, &d);
        if (kind == 0)
            fail_msg("row %s is not described in cv_codec_test.c", rows[i].name);
        same_str(rows[i].name, "direction", rows[i].direction, kind == 1 ? "request" : "reply");
    }
    for (size_t e = 0; e < NELEMS(expected); e++) {
        size_t i = 0;
        while (i < nrows && strcmp(rows[i].name, expected[e]))
            i++;
        if (i == nrows)
            fail_msg("row %s missing from the test vectors", expected[e]);
    }
}

static void test_requests_decode(void **state)
{
    (void)state;
    need_vectors();
    int seen = 0;
    for (size_t i = 0; i < nrows; i++) {
        described_t d;
        if (describe(rows[i].name, &d) != 1)
            continue;
        size_t len;
        const uint8_t *p = payload_of(&rows[i], &len);
        Canvass__V1__Request *got = canvass__v1__request__unpack(NULL, len, p);
        if (!got)
            fail_msg("row %s does not decode as a Request", rows[i].name);
        same_request(rows[i].name, got, &d.req);

        /* Every vector is a well-formed request. */
        char err[256];
        if (cv_validate_request(got, err, sizeof err) != CV_ST_OK)
            fail_msg("row %s fails validation: %s", rows[i].name, err);
        canvass__v1__request__free_unpacked(got, NULL);
        seen++;
    }
    assert_int_equal(seen, 6);
}

static void test_replies_decode(void **state)
{
    (void)state;
    need_vectors();
    int seen = 0;
    for (size_t i = 0; i < nrows; i++) {
        described_t d;
        if (describe(rows[i].name, &d) != 2)
            continue;
        size_t len;
        const uint8_t *p = payload_of(&rows[i], &len);
        Canvass__V1__Reply *got = canvass__v1__reply__unpack(NULL, len, p);
        if (!got)
            fail_msg("row %s does not decode as a Reply", rows[i].name);
        same_reply(rows[i].name, got, &d.rep);
        canvass__v1__reply__free_unpacked(got, NULL);
        seen++;
    }
    assert_int_equal(seen, 4);
}

/* Our encoder, given each described message, writes the file's bytes. */
static void test_encoder_conformance(void **state)
{
    (void)state;
    need_vectors();
    int seen = 0;
    for (size_t i = 0; i < nrows; i++) {
        described_t d;
        int kind = describe(rows[i].name, &d);
        if (kind == 0)
            continue;
        size_t want_len, len;
        const uint8_t *want = payload_of(&rows[i], &want_len);
        const ProtobufCMessage *m = kind == 1 ? &d.req.base : &d.rep.base;
        uint8_t *buf = cv_codec_pack(m, &len);
        assert_non_null(buf);
        if (len != want_len || memcmp(buf, want, len) != 0) {
            char hex[512] = "";
            for (size_t k = 0; k < len && 2 * k + 2 < sizeof hex; k++)
                snprintf(hex + 2 * k, 3, "%02x", buf[k]);
            free(buf);
            fail_msg("row %s: packed as %s, not as in the file", rows[i].name, hex);
        }
        free(buf);
        seen++;
    }
    assert_int_equal(seen, 10);
}

/* Cutting a request's last byte leaves its op's length pointing past the
 * end: the decoder must say no rather than read beyond the buffer. */
static void test_truncated_requests_rejected(void **state)
{
    (void)state;
    need_vectors();
    for (size_t i = 0; i < nrows; i++) {
        described_t d;
        if (describe(rows[i].name, &d) != 1)
            continue;
        size_t len;
        const uint8_t *p = payload_of(&rows[i], &len);
        /* A private copy of exactly len-1 bytes, so a read past the end is
         * a read past the allocation (visible under ASan). */
        uint8_t *cut = malloc(len - 1);
        assert_non_null(cut);
        memcpy(cut, p, len - 1);
        Canvass__V1__Request *got = canvass__v1__request__unpack(NULL, len - 1, cut);
        if (got) {
            canvass__v1__request__free_unpacked(got, NULL);
            free(cut);
            fail_msg("row %s decoded with its last byte cut", rows[i].name);
        }
        /* Every shorter prefix must at least not crash. */
        for (size_t k = 0; k + 1 < len; k++) {
            got = canvass__v1__request__unpack(NULL, k, cut);
            if (got)
                canvass__v1__request__free_unpacked(got, NULL);
        }
        free(cut);
    }
}

static void test_pack_empty(void **state)
{
    (void)state;
    Canvass__V1__Reply r = CANVASS__V1__REPLY__INIT;
    size_t len = 99;
    uint8_t *buf = cv_codec_pack(&r.base, &len);
    assert_non_null(buf); /* an empty message still gets a buffer */
    assert_int_equal(len, 0);
    free(buf);
}

static void test_status_names(void **state)
{
    (void)state;
    static const struct {
        int status;
        const char *name;
    } names[] = {
        {CV_ST_OK, "OK"},
        {CV_ST_INVALID, "INVALID"},
        {CV_ST_BAD_FRAME, "BAD_FRAME"},
        {CV_ST_UNAUTHENTICATED, "UNAUTHENTICATED"},
        {CV_ST_FORBIDDEN, "FORBIDDEN"},
        {CV_ST_NOT_FOUND, "NOT_FOUND"},
        {CV_ST_CLOSED, "CLOSED"},
        {CV_ST_RATE_LIMITED, "RATE_LIMITED"},
        {CV_ST_UNAVAILABLE, "UNAVAILABLE"},
        {CV_ST_INTERNAL, "INTERNAL"},
    };
    for (size_t i = 0; i < NELEMS(names); i++) {
        assert_int_equal(names[i].status, (int)i); /* the A4 numbering */
        assert_string_equal(cv_status_name(names[i].status), names[i].name);
    }
    assert_string_equal(cv_status_name(10), "UNKNOWN");
    assert_string_equal(cv_status_name(-1), "UNKNOWN");
    assert_string_equal(cv_status_name(1 << 30), "UNKNOWN");
}

static void test_tiers(void **state)
{
    (void)state;
    assert_int_equal(cv_tier_parse(NULL), CV_TIER_MEMBER);
    assert_int_equal(cv_tier_parse(""), CV_TIER_MEMBER);
    assert_int_equal(cv_tier_parse("member"), CV_TIER_MEMBER);
    assert_int_equal(cv_tier_parse("core"), CV_TIER_CORE);
    assert_int_equal(cv_tier_parse("honorary"), CV_TIER_HONORARY);
    static const char *bad[] = {"gold", "Core", "HONORARY", "member ", " core", "hon", "coree"};
    for (size_t i = 0; i < NELEMS(bad); i++)
        if (cv_tier_parse(bad[i]) != -1)
            fail_msg("tier '%s' accepted", bad[i]);
    for (int t = 0; t < CV_TIERS; t++)
        assert_int_equal(cv_tier_parse(cv_tier_name(t)), t);
    assert_string_equal(cv_tier_name(CV_TIER_CORE), "core");
    assert_string_equal(cv_tier_name(-1), "member");
    assert_string_equal(cv_tier_name(CV_TIERS), "member");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rows_known),
        cmocka_unit_test(test_requests_decode),
        cmocka_unit_test(test_replies_decode),
        cmocka_unit_test(test_encoder_conformance),
        cmocka_unit_test(test_truncated_requests_rejected),
        cmocka_unit_test(test_pack_empty),
        cmocka_unit_test(test_status_names),
        cmocka_unit_test(test_tiers),
    };
    return cmocka_run_group_tests_name("cv_codec", tests, NULL, free_vectors);
}
