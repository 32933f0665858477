/* cv_validate_test: both sides of every A4 limit, the UTF-8 validator and
 * the error texts (which clients see, so they are checked word for word). */
#include "cv_validate.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define ERRLEN 256

/* A string of n copies of c, NUL-terminated; the caller frees it. */
static char *repeat(char c, size_t n)
{
    char *s = malloc(n + 1);
    assert_non_null(s);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

static Canvass__V1__Vote good_vote(void)
{
    Canvass__V1__Vote v = CANVASS__V1__VOTE__INIT;
    v.user_id = "mifan-100";
    v.feature_id = "F1a2b3c";
    v.value = 1;
    v.tier = "";
    return v;
}

static Canvass__V1__Submit good_submit(void)
{
    Canvass__V1__Submit s = CANVASS__V1__SUBMIT__INIT;
    s.user_id = "mifan-100";
    s.title = "Dark mode for settings";
    s.body = "Please.";
    return s;
}

static void expect_vote(const Canvass__V1__Vote *v, cv_status_t want, const char *want_err)
{
    char err[ERRLEN];
    memset(err, 'x', sizeof err);
    err[ERRLEN - 1] = '\0';
    assert_int_equal(cv_validate_vote(v, err, sizeof err), want);
    assert_string_equal(err, want_err);
}

static void expect_submit(const Canvass__V1__Submit *s, cv_status_t want, const char *want_err)
{
    char err[ERRLEN];
    memset(err, 'x', sizeof err);
    err[ERRLEN - 1] = '\0';
    assert_int_equal(cv_validate_submit(s, err, sizeof err), want);
    assert_string_equal(err, want_err);
}

/* ---- UTF-8 ---------------------------------------------------------------- */

typedef struct {
    const char *what;
    const char *bytes;
    size_t len;
} sample_t;

#define S(what, lit)                                                                               \
    {                                                                                              \
        what, lit, sizeof(lit) - 1                                                                 \
    }

static const sample_t valid_utf8[] = {
    S("empty", ""),
    S("ascii", "hello, world ~"),
    S("NUL inside the length", "a\0b"),
    S("U+0080", "\xC2\x80"),
    S("U+00E9", "\xC3\xA9"),
    S("U+07FF", "\xDF\xBF"),
    S("U+0800", "\xE0\xA0\x80"),
    S("U+20AC", "\xE2\x82\xAC"),
    S("U+D7FF (below the surrogates)", "\xED\x9F\xBF"),
    S("U+E000 (above the surrogates)", "\xEE\x80\x80"),
    S("U+FFFF", "\xEF\xBF\xBF"),
    S("U+10000", "\xF0\x90\x80\x80"),
    S("U+1F600", "\xF0\x9F\x98\x80"),
    S("U+10FFFF", "\xF4\x8F\xBF\xBF"),
    S("mixed", "Dark \xE6\xA8\xA1\xE5\xBC\x8F mode \xF0\x9F\x8C\x99!"),
};

/* Every kind of malformation: each must be rejected wherever it appears. */
static const sample_t invalid_utf8[] = {
    S("overlong 2-byte C0", "\xC0\x80"),
    S("overlong 2-byte C1", "a\xC1\xBF"),
    S("overlong 3-byte", "\xE0\x80\x80"),
    S("overlong 3-byte top", "\xE0\x9F\xBF"),
    S("overlong 4-byte", "\xF0\x80\x80\x80"),
    S("overlong 4-byte top", "\xF0\x8F\xBF\xBF"),
    S("surrogate U+D800", "\xED\xA0\x80"),
    S("surrogate U+DBFF", "x\xED\xAF\xBFy"),
    S("surrogate U+DC00", "\xED\xB0\x80"),
    S("surrogate U+DFFF", "\xED\xBF\xBF"),
    S("U+110000", "\xF4\x90\x80\x80"),
    S("lead F5", "\xF5\x80\x80\x80"),
    S("lead F8", "\xF8\x88\x80\x80\x80"),
    S("lead FF", "ab\xFF"),
    S("truncated 2-byte", "\xC3"),
    S("truncated 3-byte", "abc\xE2\x82"),
    S("truncated 4-byte", "\xF0\x9F\x98"),
    S("stray continuation", "\x80"),
    S("stray continuation inside", "a\xBF"
                                   "b"),
    S("extra continuation", "\xC3\xA9\xA9"),
    S("bad 2nd byte", "\xC3\x28"),
    S("bad 3rd byte", "\xE2\x82\x28"),
    S("bad 4th byte", "\xF0\x9F\x98\x28"),
    S("lead then lead", "\xE2\xE2\x82\xAC"),
};

#define NELEMS(a) (sizeof(a) / sizeof((a)[0]))

static void test_utf8_samples(void **state)
{
    (void)state;
    for (size_t i = 0; i < NELEMS(valid_utf8); i++) {
        if (!cv_utf8_valid(valid_utf8[i].bytes, valid_utf8[i].len))
            fail_msg("valid sample '%s' rejected", valid_utf8[i].what);
    }
    for (size_t i = 0; i < NELEMS(invalid_utf8); i++) {
        if (cv_utf8_valid(invalid_utf8[i].bytes, invalid_utf8[i].len))
            fail_msg("invalid sample '%s' accepted", invalid_utf8[i].what);
    }
    /* The length bounds the scan: a valid prefix of an invalid buffer. */
    assert_true(cv_utf8_valid("ab\xFF", 2));
    assert_false(cv_utf8_valid("\xE2\x82\xAC", 2));
}

/* An independent reference: decode by arithmetic, then apply Unicode's
 * rules (shortest form, no surrogates, at most U+10FFFF). */
static int ref_valid(const unsigned char *p, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned c = p[i], n;
        uint32_t cp, min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            n = 1, cp = c & 0x1F, min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            n = 2, cp = c & 0x0F, min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            n = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return 0;
        }
        if (i + n >= len)
            return 0; /* truncated */
        for (unsigned k = 1; k <= n; k++) {
            if ((p[i + k] & 0xC0) != 0x80)
                return 0;
            cp = cp << 6 | (p[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += n + 1;
    }
    return 1;
}

/* Every 1-, 2- and 3-byte string, and every 4-byte string whose bytes are
 * the interesting ones (all leads from C0 up, continuation edges and their
 * neighbours), agree with the reference. */
static void test_utf8_exhaustive(void **state)
{
    (void)state;
    unsigned char b[4];
    for (unsigned x = 0; x < 256; x++) {
        b[0] = (unsigned char)x;
        assert_int_equal(cv_utf8_valid((char *)b, 1), ref_valid(b, 1));
        for (unsigned y = 0; y < 256; y++) {
            b[1] = (unsigned char)y;
            if (cv_utf8_valid((char *)b, 2) != ref_valid(b, 2))
                fail_msg("disagree on %02x %02x", x, y);
            for (unsigned z = 0; z < 256; z++) {
                b[2] = (unsigned char)z;
                if (cv_utf8_valid((char *)b, 3) != ref_valid(b, 3))
                    fail_msg("disagree on %02x %02x %02x", x, y, z);
            }
        }
    }
    static const unsigned char tail[] = {0x00, 0x41, 0x7F, 0x80, 0x81, 0x8F, 0x90,
                                         0x9F, 0xA0, 0xBF, 0xC0, 0xC2, 0xF4, 0xFF};
    for (unsigned x = 0xC0; x < 256; x++)
        for (unsigned y = 0; y < 256; y++)
            for (size_t z = 0; z < sizeof tail; z++)
                for (size_t w = 0; w < sizeof tail; w++) {
                    b[0] = (unsigned char)x, b[1] = (unsigned char)y;
                    b[2] = tail[z], b[3] = tail[w];
                    if (cv_utf8_valid((char *)b, 4) != ref_valid(b, 4))
                        fail_msg("disagree on %02x %02x %02x %02x", x, y, b[2], b[3]);
                }
}

/* ---- vote ----------------------------------------------------------------- */

static void test_vote_good(void **state)
{
    (void)state;
    Canvass__V1__Vote v = good_vote();
    expect_vote(&v, CV_ST_OK, "");
}

static void test_vote_user_id_bounds(void **state)
{
    (void)state;
    Canvass__V1__Vote v = good_vote();
    char *s;

    v.user_id = "";
    expect_vote(&v, CV_ST_INVALID, "vote.user_id must be 1-128 bytes, got 0");
    v.user_id = "u";
    expect_vote(&v, CV_ST_OK, "");
    s = repeat('u', 128);
    v.user_id = s;
    expect_vote(&v, CV_ST_OK, "");
    free(s);
    s = repeat('u', 129);
    v.user_id = s;
    expect_vote(&v, CV_ST_INVALID, "vote.user_id must be 1-128 bytes, got 129");
    free(s);

    /* Bytes, not characters: 64 two-byte characters fit, 65 do not. */
    char wide[2 * 65 + 1] = {0};
    for (int i = 0; i < 65; i++)
        memcpy(wide + 2 * i, "\xC3\xA9", 2);
    wide[128] = '\0';
    v.user_id = wide;
    expect_vote(&v, CV_ST_OK, "");
    memcpy(wide + 128, "\xC3\xA9", 2);
    wide[130] = '\0';
    expect_vote(&v, CV_ST_INVALID, "vote.user_id must be 1-128 bytes, got 130");

    /* An absent field (NULL from a hand-built message) is an empty one. */
    v.user_id = NULL;
    expect_vote(&v, CV_ST_INVALID, "vote.user_id must be 1-128 bytes, got 0");
}

static void test_vote_feature_id_bounds(void **state)
{
    (void)state;
    Canvass__V1__Vote v = good_vote();
    char *s;

    v.feature_id = "";
    expect_vote(&v, CV_ST_INVALID, "vote.feature_id must be 1-64 bytes, got 0");
    v.feature_id = "F";
    expect_vote(&v, CV_ST_OK, "");
    s = repeat('a', 64);
    v.feature_id = s;
    expect_vote(&v, CV_ST_OK, "");
    free(s);
    s = repeat('a', 65);
    v.feature_id = s;
    expect_vote(&v, CV_ST_INVALID, "vote.feature_id must be 1-64 bytes, got 65");
    free(s);

    v.feature_id = "azAZ09_-";
    expect_vote(&v, CV_ST_OK, "");
    static const char *bad[] = {"a b", "F.1", "F/1", "F+1", "F:1", "F\x7f", "F\xC3\xA9",
                                "@",   "[",   "`",   "{",   "~",   "F\t",   "'"};
    for (size_t i = 0; i < NELEMS(bad); i++) {
        v.feature_id = (char *)bad[i];
        expect_vote(&v, CV_ST_INVALID, "vote.feature_id may only contain [A-Za-z0-9_-]");
    }
}

static void test_feature_id_valid(void **state)
{
    (void)state;
    char id[2] = {0};
    for (int c = 1; c < 256; c++) {
        id[0] = (char)c;
        int want = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   c == '_' || c == '-';
        if (cv_feature_id_valid(id, 1) != want)
            fail_msg("cv_feature_id_valid wrong for byte 0x%02x", c);
    }
    char long_id[CV_FEATURE_ID_MAX + 1];
    memset(long_id, 'z', sizeof long_id);
    assert_true(cv_feature_id_valid(long_id, CV_FEATURE_ID_MAX));
    assert_false(cv_feature_id_valid(long_id, CV_FEATURE_ID_MAX + 1));
    assert_false(cv_feature_id_valid("", 0));
    assert_false(cv_feature_id_valid("a\0b", 3)); /* NUL is not in the set */
}

static void test_vote_value(void **state)
{
    (void)state;
    Canvass__V1__Vote v = good_vote();
    v.value = -2;
    expect_vote(&v, CV_ST_INVALID, "vote.value must be -1, 0 or 1, got -2");
    v.value = -1;
    expect_vote(&v, CV_ST_OK, "");
    v.value = 0;
    expect_vote(&v, CV_ST_OK, "");
    v.value = 1;
    expect_vote(&v, CV_ST_OK, "");
    v.value = 2;
    expect_vote(&v, CV_ST_INVALID, "vote.value must be -1, 0 or 1, got 2");
    v.value = INT32_MIN;
    expect_vote(&v, CV_ST_INVALID, "vote.value must be -1, 0 or 1, got -2147483648");
    v.value = INT32_MAX;
    expect_vote(&v, CV_ST_INVALID, "vote.value must be -1, 0 or 1, got 2147483647");
}

static void test_vote_tier(void **state)
{
    (void)state;
    Canvass__V1__Vote v = good_vote();
    static const char *good[] = {"", "member", "core", "honorary"};
    for (size_t i = 0; i < NELEMS(good); i++) {
        v.tier = (char *)good[i];
        expect_vote(&v, CV_ST_OK, "");
    }
    v.tier = NULL;
    expect_vote(&v, CV_ST_OK, "");
    v.tier = "gold";
    expect_vote(&v, CV_ST_INVALID, "vote.tier must be member, core or honorary, got 'gold'");
    v.tier = "Member";
    expect_vote(&v, CV_ST_INVALID, "vote.tier must be member, core or honorary, got 'Member'");
    v.tier = "core ";
    expect_vote(&v, CV_ST_INVALID, "vote.tier must be member, core or honorary, got 'core '");
    /* Client bytes are escaped and cut short in the error text. */
    v.tier = "a'\n\xFF";
    expect_vote(&v, CV_ST_INVALID,
                "vote.tier must be member, core or honorary, got 'a\\x27\\x0a\\xff'");
    char *s = repeat('g', 1000);
    v.tier = s;
    char want[ERRLEN];
    snprintf(want, sizeof want, "vote.tier must be member, core or honorary, got '%.32s...'", s);
    expect_vote(&v, CV_ST_INVALID, want);
    free(s);
}

static void test_vote_first_error_wins(void **state)
{
    (void)state;
    Canvass__V1__Vote v = good_vote();
    v.user_id = "";
    v.feature_id = "";
    v.value = 7;
    v.tier = "gold";
    expect_vote(&v, CV_ST_INVALID, "vote.user_id must be 1-128 bytes, got 0");
    v.user_id = "u";
    expect_vote(&v, CV_ST_INVALID, "vote.feature_id must be 1-64 bytes, got 0");
    v.feature_id = "f";
    expect_vote(&v, CV_ST_INVALID, "vote.value must be -1, 0 or 1, got 7");
    v.value = 0;
    expect_vote(&v, CV_ST_INVALID, "vote.tier must be member, core or honorary, got 'gold'");
}

/* ---- submit --------------------------------------------------------------- */

static void test_submit_good(void **state)
{
    (void)state;
    Canvass__V1__Submit s = good_submit();
    expect_submit(&s, CV_ST_OK, "");
    char *tags[] = {"ui", "settings"};
    s.tags = tags;
    s.n_tags = 2;
    expect_submit(&s, CV_ST_OK, "");
}

static void test_submit_user_id_bounds(void **state)
{
    (void)state;
    Canvass__V1__Submit s = good_submit();
    char *u;
    s.user_id = "";
    expect_submit(&s, CV_ST_INVALID, "submit.user_id must be 1-128 bytes, got 0");
    s.user_id = "u";
    expect_submit(&s, CV_ST_OK, "");
    u = repeat('u', 128);
    s.user_id = u;
    expect_submit(&s, CV_ST_OK, "");
    free(u);
    u = repeat('u', 129);
    s.user_id = u;
    expect_submit(&s, CV_ST_INVALID, "submit.user_id must be 1-128 bytes, got 129");
    free(u);
}

static void test_submit_title_bounds(void **state)
{
    (void)state;
    Canvass__V1__Submit s = good_submit();
    char *t;
    s.title = "";
    expect_submit(&s, CV_ST_INVALID, "submit.title must be 1-200 bytes, got 0");
    s.title = "T";
    expect_submit(&s, CV_ST_OK, "");
    t = repeat('t', 200);
    s.title = t;
    expect_submit(&s, CV_ST_OK, "");
    free(t);
    t = repeat('t', 201);
    s.title = t;
    expect_submit(&s, CV_ST_INVALID, "submit.title must be 1-200 bytes, got 201");
    free(t);
}

static void test_submit_body_bounds(void **state)
{
    (void)state;
    Canvass__V1__Submit s = good_submit();
    char *b;
    s.body = "";
    expect_submit(&s, CV_ST_OK, "");
    s.body = NULL;
    expect_submit(&s, CV_ST_OK, "");
    b = repeat('b', 8192);
    s.body = b;
    expect_submit(&s, CV_ST_OK, "");
    free(b);
    b = repeat('b', 8193);
    s.body = b;
    expect_submit(&s, CV_ST_INVALID, "submit.body must be at most 8192 bytes, got 8193");
    free(b);
}

static void test_submit_tags_bounds(void **state)
{
    (void)state;
    Canvass__V1__Submit s = good_submit();
    char *tags[9] = {"t0", "t1", "t2", "t3", "t4", "t5", "t6", "t7", "t8"};
    s.tags = tags;
    s.n_tags = 8;
    expect_submit(&s, CV_ST_OK, "");
    s.n_tags = 9;
    expect_submit(&s, CV_ST_INVALID, "submit.tags has 9 entries, at most 8 allowed");
    s.n_tags = 0;
    expect_submit(&s, CV_ST_OK, "");

    s.n_tags = 3;
    tags[2] = "";
    expect_submit(&s, CV_ST_INVALID, "submit.tags[2] must be 1-32 bytes, got 0");
    tags[2] = "x";
    expect_submit(&s, CV_ST_OK, "");
    char *t = repeat('x', 32);
    tags[2] = t;
    expect_submit(&s, CV_ST_OK, "");
    free(t);
    t = repeat('x', 33);
    tags[2] = t;
    expect_submit(&s, CV_ST_INVALID, "submit.tags[2] must be 1-32 bytes, got 33");
    free(t);
}

/* Every malformed sample, in every UTF-8 field of both messages. */
static void test_invalid_utf8_in_every_field(void **state)
{
    (void)state;
    for (size_t i = 0; i < NELEMS(invalid_utf8); i++) {
        const char *bad = invalid_utf8[i].bytes; /* none holds a NUL */
        assert_int_equal(strlen(bad), invalid_utf8[i].len);
        char *tags[] = {"ok", (char *)bad};

        Canvass__V1__Vote v = good_vote();
        v.user_id = (char *)bad;
        expect_vote(&v, CV_ST_INVALID, "vote.user_id is not valid UTF-8");

        Canvass__V1__Submit s = good_submit();
        s.user_id = (char *)bad;
        expect_submit(&s, CV_ST_INVALID, "submit.user_id is not valid UTF-8");
        s = good_submit();
        s.title = (char *)bad;
        expect_submit(&s, CV_ST_INVALID, "submit.title is not valid UTF-8");
        s = good_submit();
        s.body = (char *)bad;
        expect_submit(&s, CV_ST_INVALID, "submit.body is not valid UTF-8");
        s = good_submit();
        s.tags = tags;
        s.n_tags = 2;
        expect_submit(&s, CV_ST_INVALID, "submit.tags[1] is not valid UTF-8");
    }
    for (size_t i = 0; i < NELEMS(valid_utf8); i++) {
        if (strlen(valid_utf8[i].bytes) == 0 || strlen(valid_utf8[i].bytes) != valid_utf8[i].len)
            continue;
        Canvass__V1__Submit s = good_submit();
        s.title = (char *)valid_utf8[i].bytes;
        s.body = (char *)valid_utf8[i].bytes;
        expect_submit(&s, CV_ST_OK, "");
    }
}

/* ---- hello and request ---------------------------------------------------- */

static void test_hello(void **state)
{
    (void)state;
    char err[ERRLEN];
    Canvass__V1__Hello h = CANVASS__V1__HELLO__INIT;
    h.protocol_version = 0;
    assert_int_equal(cv_validate_hello(&h, err, sizeof err), CV_ST_OK);
    h.protocol_version = 1;
    assert_int_equal(cv_validate_hello(&h, err, sizeof err), CV_ST_OK);
    assert_string_equal(err, "");
    h.protocol_version = 2;
    assert_int_equal(cv_validate_hello(&h, err, sizeof err), CV_ST_INVALID);
    assert_string_equal(err, "hello.protocol_version must be 1, got 2");
    h.protocol_version = UINT32_MAX;
    assert_int_equal(cv_validate_hello(&h, err, sizeof err), CV_ST_INVALID);
    assert_string_equal(err, "hello.protocol_version must be 1, got 4294967295");
}

static void test_request_dispatch(void **state)
{
    (void)state;
    char err[ERRLEN];
    Canvass__V1__Request r = CANVASS__V1__REQUEST__INIT;

    r.request_id = 9;
    assert_int_equal(cv_validate_request(&r, err, sizeof err), CV_ST_INVALID);
    assert_string_equal(err, "request has no operation");
    assert_int_equal(cv_validate_request(NULL, err, sizeof err), CV_ST_INVALID);
    assert_string_equal(err, "request has no operation");

    Canvass__V1__Ping p = CANVASS__V1__PING__INIT;
    r.op_case = CANVASS__V1__REQUEST__OP_PING;
    r.ping = &p;
    assert_int_equal(cv_validate_request(&r, err, sizeof err), CV_ST_OK);

    Canvass__V1__Hello h = CANVASS__V1__HELLO__INIT;
    h.protocol_version = 2;
    r.op_case = CANVASS__V1__REQUEST__OP_HELLO;
    r.hello = &h;
    assert_int_equal(cv_validate_request(&r, err, sizeof err), CV_ST_INVALID);
    assert_string_equal(err, "hello.protocol_version must be 1, got 2");

    Canvass__V1__Vote v = good_vote();
    r.op_case = CANVASS__V1__REQUEST__OP_VOTE;
    r.vote = &v;
    assert_int_equal(cv_validate_request(&r, err, sizeof err), CV_ST_OK);
    v.value = 2;
    assert_int_equal(cv_validate_request(&r, err, sizeof err), CV_ST_INVALID);
    assert_string_equal(err, "vote.value must be -1, 0 or 1, got 2");

    Canvass__V1__Submit s = good_submit();
    r.op_case = CANVASS__V1__REQUEST__OP_SUBMIT;
    r.submit = &s;
    assert_int_equal(cv_validate_request(&r, err, sizeof err), CV_ST_OK);
    s.title = "";
    assert_int_equal(cv_validate_request(&r, err, sizeof err), CV_ST_INVALID);
    assert_string_equal(err, "submit.title must be 1-200 bytes, got 0");
}

/* A frame off the wire: protobuf-c (1.4) unpacks a string field without
 * checking its UTF-8, so the validator is the only line of defence. */
static void test_request_from_wire(void **state)
{
    (void)state;
    char err[ERRLEN];
    Canvass__V1__Request r = CANVASS__V1__REQUEST__INIT;
    Canvass__V1__Submit s = good_submit();
    s.title = "\xED\xA0\x80 surrogate";
    r.request_id = 77;
    r.op_case = CANVASS__V1__REQUEST__OP_SUBMIT;
    r.submit = &s;
    size_t len;
    uint8_t *buf = cv_codec_pack(&r.base, &len);
    assert_non_null(buf);

    Canvass__V1__Request *got = canvass__v1__request__unpack(NULL, len, buf);
    free(buf);
    assert_non_null(got); /* protobuf-c leaves UTF-8 to us */
    assert_int_equal(cv_validate_request(got, err, sizeof err), CV_ST_INVALID);
    assert_string_equal(err, "submit.title is not valid UTF-8");
    canvass__v1__request__free_unpacked(got, NULL);

    /* A request whose op was never set on the wire. */
    uint8_t only_id[] = {0x08, 0x05};
    got = canvass__v1__request__unpack(NULL, sizeof only_id, only_id);
    assert_non_null(got);
    assert_int_equal(cv_validate_request(got, err, sizeof err), CV_ST_INVALID);
    assert_string_equal(err, "request has no operation");
    canvass__v1__request__free_unpacked(got, NULL);
}

static void test_error_buffer_handling(void **state)
{
    (void)state;
    Canvass__V1__Vote v = good_vote();
    v.value = 2;

    char small[10];
    memset(small, 'x', sizeof small);
    assert_int_equal(cv_validate_vote(&v, small, sizeof small), CV_ST_INVALID);
    assert_string_equal(small, "vote.valu"); /* truncated, still terminated */

    char one[1] = {'x'};
    assert_int_equal(cv_validate_vote(&v, one, sizeof one), CV_ST_INVALID);
    assert_int_equal(one[0], '\0');

    /* No buffer at all: the status alone. */
    assert_int_equal(cv_validate_vote(&v, NULL, 0), CV_ST_INVALID);
    v.value = 1;
    assert_int_equal(cv_validate_vote(&v, NULL, 0), CV_ST_OK);

    char err[ERRLEN] = "stale text";
    assert_int_equal(cv_validate_vote(&v, err, sizeof err), CV_ST_OK);
    assert_string_equal(err, ""); /* success clears an old reason */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utf8_samples),
        cmocka_unit_test(test_utf8_exhaustive),
        cmocka_unit_test(test_vote_good),
        cmocka_unit_test(test_vote_user_id_bounds),
        cmocka_unit_test(test_vote_feature_id_bounds),
        cmocka_unit_test(test_feature_id_valid),
        cmocka_unit_test(test_vote_value),
        cmocka_unit_test(test_vote_tier),
        cmocka_unit_test(test_vote_first_error_wins),
        cmocka_unit_test(test_submit_good),
        cmocka_unit_test(test_submit_user_id_bounds),
        cmocka_unit_test(test_submit_title_bounds),
        cmocka_unit_test(test_submit_body_bounds),
        cmocka_unit_test(test_submit_tags_bounds),
        cmocka_unit_test(test_invalid_utf8_in_every_field),
        cmocka_unit_test(test_hello),
        cmocka_unit_test(test_request_dispatch),
        cmocka_unit_test(test_request_from_wire),
        cmocka_unit_test(test_error_buffer_handling),
    };
    return cmocka_run_group_tests_name("cv_validate", tests, NULL, NULL);
}
