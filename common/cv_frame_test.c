/* cv_frame_test: the incremental frame reader against streams split at
 * every byte, bad lengths, the limits, and the shared A4 test vectors. */
#include "cv_err.h"
#include "cv_frame.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define NELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* ---- a stream of frames and what a reader got out of it ------------------ */

typedef struct {
    uint8_t *data;
    size_t len, cap;
} bytes_t;

static void bytes_add(bytes_t *b, const void *p, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        b->data = realloc(b->data, cap);
        assert_non_null(b->data);
        b->cap = cap;
    }
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
}

static void bytes_free(bytes_t *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

/* Appends one frame with a payload of `len` bytes derived from `seed`, so
 * that frames differ from each other and a mix-up is noticed. */
static void add_frame(bytes_t *stream, uint32_t len, unsigned seed)
{
    uint8_t hdr[CV_FRAME_HEADER];
    cv_frame_put_header(hdr, len);
    bytes_add(stream, hdr, sizeof hdr);
    for (uint32_t i = 0; i < len; i++) {
        uint8_t c = (uint8_t)(seed * 31 + i * 7 + (i >> 8));
        bytes_add(stream, &c, 1);
    }
}

/* Takes every whole frame out of r and appends it to got, re-framed, so a
 * correct reader rebuilds exactly the input stream.  Returns the number of
 * frames taken. */
static int drain(cv_frame_reader_t *r, bytes_t *got)
{
    const uint8_t *p;
    size_t len;
    int n = 0, rc;
    while ((rc = cv_frame_reader_next(r, &p, &len)) == 1) {
        uint8_t hdr[CV_FRAME_HEADER];
        assert_true(len >= 1 && len <= r->max_frame);
        cv_frame_put_header(hdr, (uint32_t)len);
        bytes_add(got, hdr, sizeof hdr);
        bytes_add(got, p, len);
        n++;
    }
    assert_int_equal(rc, 0);
    return n;
}

/* Frame sizes chosen around the edges: 1 byte, a header's worth, the
 * reader's initial buffer (4096) and the maximum. */
static const uint32_t sizes[] = {1, 2, 3, 4, 5, 100, 255, 256, 1, 1000, 4091, 4092, 4096, 1, 8192};
#define SMALL_MAX 8192

static void build_stream(bytes_t *s)
{
    for (size_t i = 0; i < NELEMS(sizes); i++)
        add_frame(s, sizes[i], (unsigned)i);
}

/* ---- tests ---------------------------------------------------------------- */

static void test_split_at_every_offset(void **state)
{
    (void)state;
    bytes_t in = {0};
    build_stream(&in);

    for (size_t cut = 0; cut <= in.len; cut++) {
        cv_frame_reader_t r;
        bytes_t got = {0};
        cv_frame_reader_init(&r, SMALL_MAX);
        int n = 0;
        if (cut > 0) { /* empty feeds have their own test */
            assert_int_equal(cv_frame_reader_feed(&r, in.data, cut), 0);
            n = drain(&r, &got);
        }
        assert_int_equal(cv_frame_reader_pending(&r), cut - got.len);
        if (cut < in.len)
            assert_int_equal(cv_frame_reader_feed(&r, in.data + cut, in.len - cut), 0);
        n += drain(&r, &got);
        assert_int_equal(n, NELEMS(sizes));
        assert_int_equal(got.len, in.len);
        if (memcmp(got.data, in.data, in.len) != 0)
            fail_msg("stream split at byte %zu read back wrong", cut);
        assert_int_equal(cv_frame_reader_pending(&r), 0);
        bytes_free(&got);
        cv_frame_reader_free(&r);
    }
    bytes_free(&in);
}

static void test_byte_by_byte(void **state)
{
    (void)state;
    bytes_t in = {0}, got = {0};
    build_stream(&in);
    cv_frame_reader_t r;
    cv_frame_reader_init(&r, SMALL_MAX);
    int n = 0;
    for (size_t i = 0; i < in.len; i++) {
        assert_int_equal(cv_frame_reader_feed(&r, in.data + i, 1), 0);
        n += drain(&r, &got);
    }
    assert_int_equal(n, NELEMS(sizes));
    assert_int_equal(got.len, in.len);
    assert_memory_equal(got.data, in.data, in.len);
    assert_int_equal(cv_frame_reader_pending(&r), 0);
    cv_frame_reader_free(&r);
    bytes_free(&in);
    bytes_free(&got);
}

static void test_random_chunks(void **state)
{
    (void)state;
    bytes_t in = {0};
    build_stream(&in);
    srand(12345);
    for (int round = 0; round < 200; round++) {
        cv_frame_reader_t r;
        bytes_t got = {0};
        cv_frame_reader_init(&r, SMALL_MAX);
        int n = 0;
        for (size_t off = 0; off < in.len;) {
            size_t k = 1 + (size_t)rand() % 3000;
            if (k > in.len - off)
                k = in.len - off;
            assert_int_equal(cv_frame_reader_feed(&r, in.data + off, k), 0);
            off += k;
            n += drain(&r, &got);
        }
        assert_int_equal(n, NELEMS(sizes));
        assert_int_equal(got.len, in.len);
        assert_memory_equal(got.data, in.data, in.len);
        bytes_free(&got);
        cv_frame_reader_free(&r);
    }
    bytes_free(&in);
}

/* A read of 0 bytes (libuv reports them) is fed as is: a no-op, also on a
 * fresh reader that has no buffer yet. */
static void test_feed_empty(void **state)
{
    (void)state;
    cv_frame_reader_t r;
    const uint8_t *p;
    size_t len;
    cv_frame_reader_init(&r, CV_FRAME_DEFAULT_MAX);
    assert_int_equal(cv_frame_reader_feed(&r, "", 0), 0);
    assert_int_equal(cv_frame_reader_pending(&r), 0);
    assert_int_equal(cv_frame_reader_next(&r, &p, &len), 0);
    assert_int_equal(cv_frame_reader_feed(&r, "\0\0\0\1", 4), 0);
    assert_int_equal(cv_frame_reader_feed(&r, "", 0), 0);
    assert_int_equal(cv_frame_reader_pending(&r), 4);
    assert_int_equal(cv_frame_reader_feed(&r, "!", 1), 0);
    assert_int_equal(cv_frame_reader_next(&r, &p, &len), 1);
    assert_int_equal(len, 1);
    assert_int_equal(p[0], '!');
    cv_frame_reader_free(&r);
}

static void test_coalesced(void **state)
{
    (void)state;
    bytes_t in = {0};
    for (unsigned i = 0; i < 50; i++)
        add_frame(&in, 1 + i % 7, i);
    cv_frame_reader_t r;
    cv_frame_reader_init(&r, CV_FRAME_DEFAULT_MAX);
    assert_int_equal(cv_frame_reader_feed(&r, in.data, in.len), 0);
    assert_int_equal(cv_frame_reader_pending(&r), in.len);

    /* Frames come out one per call, each borrowed in place. */
    size_t off = 0;
    for (unsigned i = 0; i < 50; i++) {
        const uint8_t *p;
        size_t len;
        assert_int_equal(cv_frame_reader_next(&r, &p, &len), 1);
        assert_int_equal(len, 1 + i % 7);
        assert_memory_equal(p, in.data + off + CV_FRAME_HEADER, len);
        off += CV_FRAME_HEADER + len;
        assert_int_equal(cv_frame_reader_pending(&r), in.len - off);
    }
    const uint8_t *p;
    size_t len;
    assert_int_equal(cv_frame_reader_next(&r, &p, &len), 0);
    cv_frame_reader_free(&r);
    bytes_free(&in);
}

static void test_length_zero(void **state)
{
    (void)state;
    cv_frame_reader_t r;
    const uint8_t *p;
    size_t len;
    cv_frame_reader_init(&r, CV_FRAME_DEFAULT_MAX);
    r.bad_len = 12345;
    assert_int_equal(cv_frame_reader_feed(&r, "\0\0\0", 3), 0);
    assert_int_equal(cv_frame_reader_next(&r, &p, &len), 0); /* header not whole */
    assert_int_equal(cv_frame_reader_feed(&r, "\0", 1), 0);
    assert_int_equal(cv_frame_reader_next(&r, &p, &len), CV_EFRAME);
    assert_int_equal(r.bad_len, 0);
    /* The stream cannot resynchronise: it stays broken. */
    assert_int_equal(cv_frame_reader_feed(&r, "\0\0\0\1x", 5), 0);
    assert_int_equal(cv_frame_reader_next(&r, &p, &len), CV_EFRAME);
    cv_frame_reader_free(&r);
}

/* A good frame, then a bad length: the good one is delivered first. */
static void test_bad_after_good(void **state)
{
    (void)state;
    cv_frame_reader_t r;
    const uint8_t *p;
    size_t len;
    cv_frame_reader_init(&r, CV_FRAME_DEFAULT_MAX);
    assert_int_equal(cv_frame_reader_feed(&r, "\0\0\0\2hi\0\0\0\0", 10), 0);
    assert_int_equal(cv_frame_reader_next(&r, &p, &len), 1);
    assert_int_equal(len, 2);
    assert_memory_equal(p, "hi", 2);
    assert_int_equal(cv_frame_reader_next(&r, &p, &len), CV_EFRAME);
    assert_int_equal(r.bad_len, 0);
    cv_frame_reader_free(&r);
}

static void test_length_over_max(void **state)
{
    (void)state;
    static const size_t maxes[] = {1, 10, 4096, CV_FRAME_DEFAULT_MAX};
    for (size_t m = 0; m < NELEMS(maxes); m++) {
        cv_frame_reader_t r;
        const uint8_t *p;
        size_t len;
        uint8_t hdr[CV_FRAME_HEADER];
        cv_frame_reader_init(&r, maxes[m]);
        cv_frame_put_header(hdr, (uint32_t)maxes[m] + 1);
        /* Byte by byte: nothing until the 4th header byte, then the error
         * at once, though not one byte of the body was sent. */
        for (int i = 0; i < 3; i++) {
            assert_int_equal(cv_frame_reader_feed(&r, hdr + i, 1), 0);
            assert_int_equal(cv_frame_reader_next(&r, &p, &len), 0);
        }
        assert_int_equal(cv_frame_reader_feed(&r, hdr + 3, 1), 0);
        assert_int_equal(cv_frame_reader_next(&r, &p, &len), CV_EFRAME);
        assert_int_equal(r.bad_len, maxes[m] + 1);
        assert_int_equal(cv_frame_reader_next(&r, &p, &len), CV_EFRAME);
        cv_frame_reader_free(&r);
    }

    /* The largest length a header can say. */
    cv_frame_reader_t r;
    const uint8_t *p;
    size_t len;
    cv_frame_reader_init(&r, CV_FRAME_DEFAULT_MAX);
    assert_int_equal(cv_frame_reader_feed(&r, "\xff\xff\xff\xff", 4), 0);
    assert_int_equal(cv_frame_reader_next(&r, &p, &len), CV_EFRAME);
    assert_int_equal(r.bad_len, 0xFFFFFFFFu);
    cv_frame_reader_free(&r);
}

static void test_length_exactly_max(void **state)
{
    (void)state;
    bytes_t in = {0};
    add_frame(&in, CV_FRAME_DEFAULT_MAX, 3);
    add_frame(&in, 1, 4);
    cv_frame_reader_t r;
    const uint8_t *p;
    size_t len;
    cv_frame_reader_init(&r, CV_FRAME_DEFAULT_MAX);

    /* All but the last body byte: not yet. */
    size_t first = CV_FRAME_HEADER + CV_FRAME_DEFAULT_MAX;
    assert_int_equal(cv_frame_reader_feed(&r, in.data, first - 1), 0);
    assert_int_equal(cv_frame_reader_next(&r, &p, &len), 0);
    assert_int_equal(cv_frame_reader_feed(&r, in.data + first - 1, in.len - first + 1), 0);
    assert_int_equal(cv_frame_reader_next(&r, &p, &len), 1);
    assert_int_equal(len, CV_FRAME_DEFAULT_MAX);
    assert_memory_equal(p, in.data + CV_FRAME_HEADER, len);
    assert_int_equal(cv_frame_reader_next(&r, &p, &len), 1);
    assert_int_equal(len, 1);
    assert_int_equal(p[0], in.data[in.len - 1]);
    assert_int_equal(cv_frame_reader_next(&r, &p, &len), 0);
    cv_frame_reader_free(&r);
    bytes_free(&in);

    /* A reader with max 1 takes 1-byte frames. */
    cv_frame_reader_init(&r, 1);
    assert_int_equal(cv_frame_reader_feed(&r, "\0\0\0\1Z", 5), 0);
    assert_int_equal(cv_frame_reader_next(&r, &p, &len), 1);
    assert_int_equal(len, 1);
    assert_int_equal(p[0], 'Z');
    cv_frame_reader_free(&r);
}

static void test_one_byte_frame(void **state)
{
    (void)state;
    cv_frame_reader_t r;
    const uint8_t *p;
    size_t len;
    cv_frame_reader_init(&r, CV_FRAME_DEFAULT_MAX);
    assert_int_equal(cv_frame_reader_feed(&r, "\0\0\0\1", 4), 0);
    assert_int_equal(cv_frame_reader_next(&r, &p, &len), 0);
    assert_int_equal(cv_frame_reader_pending(&r), 4);
    assert_int_equal(cv_frame_reader_feed(&r, "\x2a", 1), 0);
    assert_int_equal(cv_frame_reader_next(&r, &p, &len), 1);
    assert_int_equal(len, 1);
    assert_int_equal(p[0], 0x2a);
    assert_int_equal(cv_frame_reader_pending(&r), 0);
    cv_frame_reader_free(&r);
    cv_frame_reader_free(&r); /* freeing twice is harmless */
}

static void test_header_round_trip(void **state)
{
    (void)state;
    static const struct {
        uint32_t len;
        uint8_t bytes[4];
    } cases[] = {
        {0, {0, 0, 0, 0}},
        {1, {0, 0, 0, 1}},
        {255, {0, 0, 0, 0xff}},
        {256, {0, 0, 1, 0}},
        {65536, {0, 1, 0, 0}},
        {0x01020304, {1, 2, 3, 4}},
        {0xFFFFFFFF, {0xff, 0xff, 0xff, 0xff}},
    };
    for (size_t i = 0; i < NELEMS(cases); i++) {
        uint8_t hdr[CV_FRAME_HEADER];
        cv_frame_put_header(hdr, cases[i].len);
        assert_memory_equal(hdr, cases[i].bytes, 4);
    }
    /* And the reader reads back what the helper wrote. */
    for (uint32_t l = 1; l <= 300; l++) {
        bytes_t in = {0};
        add_frame(&in, l, l);
        cv_frame_reader_t r;
        const uint8_t *p;
        size_t len;
        cv_frame_reader_init(&r, 300);
        assert_int_equal(cv_frame_reader_feed(&r, in.data, in.len), 0);
        assert_int_equal(cv_frame_reader_next(&r, &p, &len), 1);
        assert_int_equal(len, l);
        assert_memory_equal(p, in.data + CV_FRAME_HEADER, l);
        cv_frame_reader_free(&r);
        bytes_free(&in);
    }
}

/* ---- the shared test vectors --------------------------------------------- */

#define TESTVECTORS_DEFAULT "../shared/testvectors/client-frames.tsv"

static int unhex(const char *hex, bytes_t *out)
{
    size_t n = strlen(hex);
    if (n % 2)
        return -1;
    for (size_t i = 0; i < n; i += 2) {
        unsigned v;
        if (sscanf(hex + i, "%2x", &v) != 1)
            return -1;
        uint8_t b = (uint8_t)v;
        bytes_add(out, &b, 1);
    }
    return 0;
}

/* Reads every frame of client-frames.tsv (rows: name, direction, message,
 * frame_hex) into frames[], returning how many.  Fails the test when the
 * file is missing: skipping would hide a broken checkout. */
static size_t load_vectors(bytes_t *frames, size_t cap, char names[][64])
{
    const char *path = getenv("CANVASS_TESTVECTORS");
    if (!path)
        path = TESTVECTORS_DEFAULT;
    FILE *f = fopen(path, "r");
    if (!f)
        fail_msg("cannot open test vectors %s (tests run from the repository root; "
                 "CANVASS_TESTVECTORS overrides the path)",
                 path);
    char line[8192];
    size_t n = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] == '#' || line[0] == '\0' || !strncmp(line, "name\t", 5))
            continue;
        char *fields[4];
        char *save = NULL, *tok = strtok_r(line, "\t", &save);
        int k = 0;
        while (tok && k < 4) {
            fields[k++] = tok;
            tok = strtok_r(NULL, "\t", &save);
        }
        if (k != 4)
            fail_msg("%s: malformed row '%s'", path, line);
        assert_true(n < cap);
        snprintf(names[n], 64, "%s", fields[0]);
        memset(&frames[n], 0, sizeof frames[n]);
        if (unhex(fields[3], &frames[n]) < 0)
            fail_msg("%s: row %s has bad hex", path, fields[0]);
        n++;
    }
    fclose(f);
    return n;
}

static void test_vectors_read_back(void **state)
{
    (void)state;
    bytes_t frames[64];
    char names[64][64];
    size_t n = load_vectors(frames, 64, names);
    assert_true(n >= 10); /* the file has 6 requests and 4 replies */

    bytes_t all = {0}, got = {0};
    for (size_t i = 0; i < n; i++) {
        cv_frame_reader_t r;
        const uint8_t *p;
        size_t len;
        const bytes_t *fr = &frames[i];
        assert_true(fr->len > CV_FRAME_HEADER);
        cv_frame_reader_init(&r, CV_FRAME_DEFAULT_MAX);
        assert_int_equal(cv_frame_reader_feed(&r, fr->data, fr->len), 0);
        if (cv_frame_reader_next(&r, &p, &len) != 1)
            fail_msg("vector %s: no whole frame", names[i]);
        if (len != fr->len - CV_FRAME_HEADER || memcmp(p, fr->data + CV_FRAME_HEADER, len))
            fail_msg("vector %s: payload read back wrong", names[i]);
        assert_int_equal(cv_frame_reader_pending(&r), 0);
        cv_frame_reader_free(&r);
        bytes_add(&all, fr->data, fr->len);
    }

    /* All of them back to back, byte by byte. */
    cv_frame_reader_t r;
    cv_frame_reader_init(&r, CV_FRAME_DEFAULT_MAX);
    size_t count = 0;
    for (size_t i = 0; i < all.len; i++) {
        assert_int_equal(cv_frame_reader_feed(&r, all.data + i, 1), 0);
        count += (size_t)drain(&r, &got);
    }
    assert_int_equal(count, n);
    assert_int_equal(got.len, all.len);
    assert_memory_equal(got.data, all.data, all.len);
    cv_frame_reader_free(&r);
    bytes_free(&all);
    bytes_free(&got);
    for (size_t i = 0; i < n; i++)
        bytes_free(&frames[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_at_every_offset),
        cmocka_unit_test(test_byte_by_byte),
        cmocka_unit_test(test_random_chunks),
        cmocka_unit_test(test_feed_empty),
        cmocka_unit_test(test_coalesced),
        cmocka_unit_test(test_length_zero),
        cmocka_unit_test(test_bad_after_good),
        cmocka_unit_test(test_length_over_max),
        cmocka_unit_test(test_length_exactly_max),
        cmocka_unit_test(test_one_byte_frame),
        cmocka_unit_test(test_header_round_trip),
        cmocka_unit_test(test_vectors_read_back),
    };
    return cmocka_run_group_tests_name("cv_frame", tests, NULL, NULL);
}
