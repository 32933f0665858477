/* Unit tests for wire.c against protobuf-c itself: replies and lists are
 * built as protobuf-c messages, packed by protobuf-c, and what the hand
 * reader makes of the bytes is compared with the messages; every prefix and
 * thousands of single-byte corruptions of a packed reply must either fail
 * cleanly or decode to what protobuf-c decodes.
 *
 * Built as $(BUILD)/unit/publish_wire_test. */
#include "cv_err.h"
#include "wire.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* ---- building replies with protobuf-c ------------------------------------------ */

/* A reply with n standings whose contents follow from i and seed; the
 * strings live in a pool freed with the reply. */
typedef struct {
    Canvass__V1__TallyReply reply;
    Canvass__V1__Standings standings;
    Canvass__V1__FeatureStanding *fs;
    Canvass__V1__FeatureStanding **fsp;
    Canvass__V1__FeatureRecord *rec;
    Canvass__V1__StatusChange *hist;
    Canvass__V1__StatusChange **histp;
    uint64_t (*counts)[3][CV_TIERS];
    double (*trends)[CV_TIERS];
    char (*ids)[24], (*titles)[48], (*tagtext)[2][16];
    char *(*tagp)[2];
    size_t n;
} built_t;

static const char *const statuses[] = {"open", "planned", "in_progress", "shipped", "declined"};

static built_t *build_reply(size_t n, unsigned seed)
{
    built_t *b = calloc(1, sizeof *b);
    b->n = n;
    b->fs = calloc(n + 1, sizeof *b->fs);
    b->fsp = calloc(n + 1, sizeof *b->fsp);
    b->rec = calloc(n + 1, sizeof *b->rec);
    b->hist = calloc(n + 1, sizeof *b->hist);
    b->histp = calloc(n + 1, sizeof *b->histp);
    b->counts = calloc(n + 1, sizeof *b->counts);
    b->trends = calloc(n + 1, sizeof *b->trends);
    b->ids = calloc(n + 1, sizeof *b->ids);
    b->titles = calloc(n + 1, sizeof *b->titles);
    b->tagtext = calloc(n + 1, sizeof *b->tagtext);
    b->tagp = calloc(n + 1, sizeof *b->tagp);
    for (size_t i = 0; i < n; i++) {
        unsigned x = seed * 2654435761u + (unsigned)i * 40503u;
        Canvass__V1__FeatureRecord *r = &b->rec[i];
        canvass__v1__feature_record__init(r);
        snprintf(b->ids[i], sizeof b->ids[i], "f-%u-%zu", seed, i);
        snprintf(b->titles[i], sizeof b->titles[i], "title %zu%s", i, x % 5 ? " of a feature" : "");
        r->feature_id = b->ids[i];
        r->title = x % 7 ? b->titles[i] : (char *)""; /* some empty: not written */
        r->body = "a body ranking never reads";
        r->author = "someone";
        r->created_ms = x % 3 ? 1795579268000ULL + x % 100000 : 0;
        r->status = (char *)statuses[x % 5];
        r->n_tags = x % 3;
        for (size_t t = 0; t < r->n_tags; t++) {
            snprintf(b->tagtext[i][t], sizeof b->tagtext[i][t], "tag%zu", t + x % 4);
            b->tagp[i][t] = b->tagtext[i][t];
        }
        r->tags = b->tagp[i];
        canvass__v1__status_change__init(&b->hist[i]);
        b->hist[i].status = "open";
        b->hist[i].at_ms = r->created_ms;
        b->histp[i] = &b->hist[i];
        r->n_history = 1;
        r->history = &b->histp[i];
        Canvass__V1__FeatureStanding *fs = &b->fs[i];
        canvass__v1__feature_standing__init(fs);
        fs->feature = r;
        for (int t = 0; t < CV_TIERS; t++) {
            b->counts[i][0][t] = (x >> t) % 50;
            b->counts[i][1][t] = (x >> (t + 3)) % 7;
            b->trends[i][t] = (double)((int)(x >> (t + 5)) % 9) / 4.0 - 1.0;
        }
        fs->n_up = fs->n_down = fs->n_trend = CV_TIERS;
        fs->up = b->counts[i][0];
        fs->down = b->counts[i][1];
        fs->trend = b->trends[i];
        fs->voters = x % 90;
        b->fsp[i] = fs;
    }
    canvass__v1__standings__init(&b->standings);
    b->standings.shard = 1;
    b->standings.cycle = 7;
    b->standings.at_ms = 1795579268336ULL;
    b->standings.n_features = n;
    b->standings.features = b->fsp;
    canvass__v1__tally_reply__init(&b->reply);
    b->reply.corr = (1ULL << 63) | 6;
    b->reply.result_case = CANVASS__V1__TALLY_REPLY__RESULT_STANDINGS;
    b->reply.standings = &b->standings;
    return b;
}

static void built_free(built_t *b)
{
    free(b->fs);
    free(b->fsp);
    free(b->rec);
    free(b->hist);
    free(b->histp);
    free(b->counts);
    free(b->trends);
    free(b->ids);
    free(b->titles);
    free(b->tagtext);
    free(b->tagp);
    free(b);
}

static uint8_t *pack(const ProtobufCMessage *m, size_t *len)
{
    uint8_t *buf = cv_codec_pack(m, len);
    assert_non_null(buf);
    return buf;
}

/* Asserts that what the hand decoder made equals protobuf-c's message. */
static void assert_same(const pub_wire_standings_t *st, const Canvass__V1__TallyReply *r)
{
    assert_int_equal(st->head.corr, r->corr);
    assert_int_equal(st->head.status, r->status);
    assert_string_equal(st->error, r->error);
    assert_int_equal(st->head.result, r->result_case);
    if (r->result_case != CANVASS__V1__TALLY_REPLY__RESULT_STANDINGS) {
        assert_int_equal(st->n_features, 0);
        return;
    }
    const Canvass__V1__Standings *s = r->standings;
    assert_int_equal(st->shard, s->shard);
    assert_int_equal(st->cycle, s->cycle);
    assert_int_equal(st->at_ms, s->at_ms);
    assert_int_equal(st->n_features, s->n_features);
    for (size_t i = 0; i < s->n_features; i++) {
        const Canvass__V1__FeatureStanding *fs = s->features[i];
        const cv_standing_t *d = &st->features[i];
        assert_int_equal(d->voters, fs->voters);
        for (size_t t = 0; t < CV_TIERS; t++) {
            assert_int_equal(d->up[t], t < fs->n_up ? fs->up[t] : 0);
            assert_int_equal(d->down[t], t < fs->n_down ? fs->down[t] : 0);
            double want = t < fs->n_trend ? fs->trend[t] : 0;
            assert_memory_equal(&d->trend[t], &want, sizeof want); /* NaN too */
        }
        if (!fs->feature) {
            assert_string_equal(d->feature_id, "");
            continue;
        }
        assert_string_equal(d->feature_id, fs->feature->feature_id);
        assert_string_equal(d->title, fs->feature->title);
        assert_string_equal(d->status, fs->feature->status);
        assert_int_equal(d->created_ms, fs->feature->created_ms);
        assert_int_equal(d->ntags, fs->feature->n_tags);
        for (size_t t = 0; t < d->ntags; t++)
            assert_string_equal(d->tags[t], fs->feature->tags[t]);
    }
}

/* ---- standings ------------------------------------------------------------------- */

static void test_standings_as_protobuf_c(void **state)
{
    (void)state;
    built_t *b = build_reply(500, 1);
    size_t len;
    uint8_t *buf = pack(&b->reply.base, &len);
    pub_wire_standings_t *st = NULL;
    assert_int_equal(pub_wire_standings_decode(buf, len, &st), 0);
    assert_same(st, &b->reply);
    assert_null(st->problem);

    pub_wire_head_t h;
    assert_int_equal(pub_wire_reply_head(buf, len, &h), 0);
    assert_int_equal(h.corr, b->reply.corr);
    assert_int_equal(h.status, 0);
    assert_int_equal(h.result, PUB_WIRE_RESULT_STANDINGS);
    pub_wire_standings_destroy(&st);
    pub_wire_standings_destroy(&st); /* twice: harmless */
    assert_null(st);
    free(buf);
    built_free(b);
}

static void test_error_reply_and_other_results(void **state)
{
    (void)state;
    Canvass__V1__TallyReply r = CANVASS__V1__TALLY_REPLY__INIT;
    r.corr = 42;
    r.status = CANVASS__V1__STATUS__UNAVAILABLE;
    r.error = "store busy";
    size_t len;
    uint8_t *buf = pack(&r.base, &len);
    pub_wire_standings_t *st = NULL;
    assert_int_equal(pub_wire_standings_decode(buf, len, &st), 0);
    assert_same(st, &r);
    assert_int_equal(st->head.result, 0);
    pub_wire_standings_destroy(&st);
    free(buf);

    /* A FeatureStanding result (12) is reported by number, not decoded. */
    Canvass__V1__FeatureStanding fs = CANVASS__V1__FEATURE_STANDING__INIT;
    fs.voters = 3;
    r.status = 0;
    r.error = "";
    r.result_case = CANVASS__V1__TALLY_REPLY__RESULT_FEATURE;
    r.feature = &fs;
    buf = pack(&r.base, &len);
    pub_wire_head_t h;
    assert_int_equal(pub_wire_reply_head(buf, len, &h), 0);
    assert_int_equal(h.result, 12);
    assert_int_equal(pub_wire_standings_decode(buf, len, &st), 0);
    assert_int_equal(st->head.result, 12);
    assert_int_equal(st->n_features, 0);
    pub_wire_standings_destroy(&st);
    free(buf);
}

/* Appends a varint. */
static size_t put_varint(uint8_t *out, uint64_t v)
{
    size_t k = 0;
    do {
        out[k++] = (uint8_t)(v & 0x7f) | (v >= 0x80 ? 0x80 : 0);
        v >>= 7;
    } while (v);
    return k;
}

/* Wraps body as field `field` (length-delimited). */
static size_t put_len(uint8_t *out, uint32_t field, const uint8_t *body, size_t n)
{
    size_t k = put_varint(out, (uint64_t)field << 3 | 2);
    k += put_varint(out + k, n);
    memcpy(out + k, body, n);
    return k + n;
}

/* Repeated scalars unpacked, a feature record in two parts (merged), more
 * than three tier counts: what protobuf-c accepts and how it reads it. */
static void test_unpacked_merged_and_too_many_tiers(void **state)
{
    (void)state;
    uint8_t rec1[64], rec2[64], fs[256], standings[300], reply[320];
    size_t n1 = 0, n2 = 0, k = 0;
    n1 += put_len(rec1 + n1, 1, (const uint8_t *)"F1", 2);
    n1 += put_len(rec1 + n1, 4, (const uint8_t *)"a", 1);
    n1 += put_len(rec1 + n1, 7, (const uint8_t *)"open", 4);
    n2 += put_len(rec2 + n2, 2, (const uint8_t *)"Title", 5);
    n2 += put_len(rec2 + n2, 4, (const uint8_t *)"b", 1);
    rec2[n2++] = 6 << 3; /* created_ms = 5 */
    rec2[n2++] = 5;
    k += put_len(fs + k, 1, rec1, n1);
    for (int t = 0; t < 4; t++) { /* up: four unpacked varints */
        fs[k++] = 2 << 3;
        fs[k++] = (uint8_t)(10 + t);
    }
    fs[k++] = 5 << 3 | 1; /* trend: one unpacked double */
    double half = 0.5;
    memcpy(fs + k, &half, 8);
    k += 8;
    k += put_len(fs + k, 1, rec2, n2);
    fs[k++] = 4 << 3; /* voters */
    fs[k++] = 9;
    size_t sk = put_len(standings, 3, fs, k);
    size_t rk = put_len(reply, 11, standings, sk);

    Canvass__V1__TallyReply *r = canvass__v1__tally_reply__unpack(NULL, rk, reply);
    assert_non_null(r); /* protobuf-c takes these bytes... */
    pub_wire_standings_t *st = NULL;
    assert_int_equal(pub_wire_standings_decode(reply, rk, &st), 0);
    const cv_standing_t *d = &st->features[0];
    assert_int_equal(st->n_features, 1);
    assert_string_equal(d->feature_id, "F1");
    assert_string_equal(d->title, "Title");
    assert_string_equal(d->status, "open");
    assert_int_equal(d->created_ms, 5);
    assert_int_equal(d->ntags, 2);
    assert_string_equal(d->tags[0], "a");
    assert_string_equal(d->tags[1], "b");
    assert_int_equal(d->up[0], 10);
    assert_int_equal(d->up[2], 12);
    assert_true(d->trend[0] == 0.5);
    assert_int_equal(d->voters, 9);
    /* ... and reads them the same way, four up counts included */
    const Canvass__V1__FeatureStanding *p = r->standings->features[0];
    assert_int_equal(p->n_up, 4);
    assert_string_equal(p->feature->title, "Title");
    assert_int_equal(p->feature->n_tags, 2);
    assert_string_equal(st->problem, "4/0/1 tier counts for feature 'F1', at most 3");
    canvass__v1__tally_reply__free_unpacked(r, NULL);
    pub_wire_standings_destroy(&st);

    /* A standing without its feature is a problem, not an error. */
    uint8_t empty[8], reply2[16];
    size_t ek = 0;
    empty[ek++] = 4 << 3;
    empty[ek++] = 1;
    uint8_t st_bytes[16];
    size_t sb = put_len(st_bytes, 3, empty, ek);
    size_t rk2 = put_len(reply2, 11, st_bytes, sb);
    assert_int_equal(pub_wire_standings_decode(reply2, rk2, &st), 0);
    assert_string_equal(st->problem, "a standing without a feature");
    pub_wire_standings_destroy(&st);
}

/* Every prefix of a packed reply, and thousands of single-byte changes to
 * it: the decoder either refuses the bytes or reads exactly what protobuf-c
 * reads; and it never refuses what protobuf-c takes unless protobuf-c
 * refuses too (the only leniency is inside skipped fields). */
static void test_prefixes_and_corruptions(void **state)
{
    (void)state;
    built_t *b = build_reply(12, 3);
    b->reply.error = "";
    size_t len;
    uint8_t *buf = pack(&b->reply.base, &len);
    uint8_t *copy = malloc(len);
    int both = 0, neither = 0, lenient = 0;
    for (size_t cut = 0; cut <= len; cut++) {
        pub_wire_standings_t *st = NULL;
        Canvass__V1__TallyReply *r = canvass__v1__tally_reply__unpack(NULL, cut, buf);
        int rc = pub_wire_standings_decode(buf, cut, &st);
        assert_int_equal(rc == 0, r != NULL);
        if (r) {
            assert_same(st, r);
            canvass__v1__tally_reply__free_unpacked(r, NULL);
        }
        pub_wire_standings_destroy(&st);
    }
    unsigned x = 12345;
    for (int round = 0; round < 6000; round++) {
        memcpy(copy, buf, len);
        x = x * 1103515245u + 12345u;
        size_t at = (x >> 8) % len;
        x = x * 1103515245u + 12345u;
        copy[at] = (uint8_t)(x >> 16);
        pub_wire_standings_t *st = NULL;
        Canvass__V1__TallyReply *r = canvass__v1__tally_reply__unpack(NULL, len, copy);
        int rc = pub_wire_standings_decode(copy, len, &st);
        assert_true(rc == 0 || rc == CV_EDECODE);
        pub_wire_head_t h;
        int hrc = pub_wire_reply_head(copy, len, &h);
        if (r) {
            assert_int_equal(rc, 0);
            assert_int_equal(hrc, 0);
            assert_same(st, r);
            assert_int_equal(h.corr, r->corr);
            assert_int_equal(h.result, r->result_case);
            canvass__v1__tally_reply__free_unpacked(r, NULL);
            both++;
        } else if (rc == 0) {
            lenient++;
        } else {
            neither++;
        }
        if (rc == 0)
            assert_int_equal(hrc, 0); /* the envelope of what decodes reads */
        pub_wire_standings_destroy(&st);
    }
    /* The corruptions hit all three cases; most are still decodable. */
    assert_true(both > 1000 && neither > 100);
    assert_true(lenient < neither);
    free(copy);
    free(buf);
    built_free(b);
}

/* ---- ranked lists --------------------------------------------------------------------- */

static Canvass__V1__RankedList *make_list(size_t n, Canvass__V1__RankedEntry **ep,
                                          Canvass__V1__RankedEntry *e, char (*ids)[16])
{
    static Canvass__V1__RankedList l;
    canvass__v1__ranked_list__init(&l);
    l.cycle = 4;
    l.opened_at_ms = 1000;
    l.closed_at_ms = 2000;
    l.scheduled_at_ms = 1999;
    l.order = "score";
    l.total_votes = 77;
    for (size_t i = 0; i < n; i++) {
        canvass__v1__ranked_entry__init(&e[i]);
        snprintf(ids[i], 16, "id%zu", (i * 7) % n);
        e[i].rank = (uint32_t)(i + 1);
        e[i].feature_id = ids[i];
        e[i].title = "t";
        e[i].status = "open";
        e[i].score = (double)(n - i);
        e[i].up = i;
        e[i].prev_rank = (uint32_t)(i % 3);
        ep[i] = &e[i];
    }
    l.n_entries = n;
    l.entries = ep;
    return &l;
}

static void test_list_index_and_cut(void **state)
{
    (void)state;
    enum { N = 300 };
    Canvass__V1__RankedEntry e[N], *ep[N];
    char ids[N][16];
    Canvass__V1__RankedList *l = make_list(N, ep, e, ids);
    size_t len;
    uint8_t *buf = pack(&l->base, &len);

    pub_wire_list_t sum, idx;
    assert_int_equal(pub_wire_list_index(buf, len, 0, &sum), 0);
    assert_int_equal(sum.n, N);
    assert_null(sum.ends);
    assert_int_equal(sum.cycle, 4);
    assert_int_equal(sum.opened_at_ms, 1000);
    assert_int_equal(sum.closed_at_ms, 2000);
    assert_int_equal(sum.scheduled_at_ms, 1999);
    assert_int_equal(sum.total_votes, 77);
    assert_int_equal(pub_wire_list_index(buf, len, 1, &idx), 0);
    assert_int_equal(idx.ends[N - 1], idx.tail_start);

    size_t cuts[] = {0, 1, 2, 100, N - 1, N, N + 5};
    for (size_t c = 0; c < sizeof cuts / sizeof *cuts; c++) {
        size_t k = cuts[c];
        l->n_entries = k < N ? k : N;
        size_t wlen;
        uint8_t *want = pack(&l->base, &wlen);
        const uint8_t *part[3];
        size_t size[3];
        pub_wire_list_cut(buf, len, &idx, k, part, size);
        assert_int_equal(size[0] + size[1] + size[2], wlen);
        uint8_t *got = malloc(wlen + 1);
        memcpy(got, part[0], size[0]);
        memcpy(got + size[0], part[1], size[1]);
        memcpy(got + size[0] + size[1], part[2], size[2]);
        assert_memory_equal(got, want, wlen);
        if (k >= N) /* uncut: the very bytes */
            assert_memory_equal(got, buf, len);
        free(got);
        free(want);
    }
    l->n_entries = N;

    for (size_t i = 0; i < N; i++) {
        const char *id;
        size_t idlen;
        uint32_t rank;
        assert_int_equal(pub_wire_entry_key(buf, &idx, i, &id, &idlen, &rank), 0);
        assert_int_equal(rank, i + 1);
        assert_int_equal(idlen, strlen(ids[i]));
        assert_memory_equal(id, ids[i], idlen);
    }
    cv_rank_prev_t *prev = cv_rank_prev_new(4);
    assert_int_equal(pub_wire_list_ranks(buf, &idx, prev), 0);
    assert_int_equal(cv_rank_prev_get(prev, "id7", 3), 2);
    assert_int_equal(cv_rank_prev_get(prev, "nope", 4), 0);
    cv_rank_prev_destroy(&prev);
    pub_wire_list_free(&idx);
    pub_wire_list_free(&idx); /* twice: harmless */
    free(buf);

    /* No entries: everything is head, the cut is the list. */
    l->n_entries = 0;
    buf = pack(&l->base, &len);
    assert_int_equal(pub_wire_list_index(buf, len, 1, &idx), 0);
    assert_int_equal(idx.n, 0);
    const uint8_t *part[3];
    size_t size[3];
    pub_wire_list_cut(buf, len, &idx, 10, part, size);
    assert_int_equal(size[0], len);
    assert_int_equal(size[1] + size[2], 0);
    pub_wire_list_free(&idx);
    free(buf);
}

/* The hand packer writes protobuf-c's bytes, for lists of every shape:
 * defaults left out, -0.0 and NaN, empty strings and tags, big values. */
static void test_list_pack_as_protobuf_c(void **state)
{
    (void)state;
    enum { N = 400 };
    static Canvass__V1__RankedEntry e[N], *ep[N];
    static char ids[N][16], tagtext[N][3][8];
    static char *tagp[N][3];
    const double scores[] = {0.0, -0.0, 1.5, -3.25, 1e300, 0.1};
    unsigned x = 7;
    for (size_t n = 0; n <= N; n = n ? n * 3 : 1) {
        Canvass__V1__RankedList l = CANVASS__V1__RANKED_LIST__INIT;
        l.cycle = n % 2 ? 0 : 123456789012ULL;
        l.opened_at_ms = n;
        l.closed_at_ms = n % 3 ? 1795579268336ULL : 0;
        l.scheduled_at_ms = n % 5 ? 0 : UINT64_MAX;
        l.order = n % 2 ? "trending" : "";
        l.total_votes = n * 1000;
        for (size_t i = 0; i < n; i++) {
            x = x * 1103515245u + 12345u;
            canvass__v1__ranked_entry__init(&e[i]);
            snprintf(ids[i], sizeof ids[i], "f%u", x % 100000);
            e[i].rank = (uint32_t)i + (x % 4 == 0 ? 0 : 1);
            e[i].feature_id = x % 11 ? ids[i] : (char *)"";
            e[i].title = x % 3 ? "a title" : (char *)"";
            e[i].score = scores[x % 6];
            e[i].up = x % 7 == 0 ? UINT64_MAX : x % 200;
            e[i].down = x % 5;
            e[i].voters = x % 300;
            e[i].prev_rank = x % 2 ? (uint32_t)(x % 1000) : 0;
            e[i].status = x % 4 ? "open" : (char *)"in_progress";
            e[i].n_tags = x % 4;
            for (size_t t = 0; t < e[i].n_tags; t++) {
                snprintf(tagtext[i][t], sizeof tagtext[i][t], "%s", t == 1 ? "" : "ui");
                tagp[i][t] = tagtext[i][t];
            }
            e[i].tags = tagp[i];
            e[i].trend = x % 9 == 0 ? NAN : scores[(x >> 4) % 6];
            e[i].created_ms = x % 2 ? 1795579268336ULL + x : 0;
            ep[i] = &e[i];
        }
        l.n_entries = n;
        l.entries = ep;
        size_t wlen, len;
        uint8_t *want = pack(&l.base, &wlen), *got = NULL;
        pub_wire_list_t idx, widx;
        assert_int_equal(pub_wire_list_pack(&l, &got, &len, &idx), 0);
        assert_int_equal(len, wlen);
        assert_memory_equal(got, want, len);
        assert_int_equal(pub_wire_list_index(want, wlen, 1, &widx), 0);
        assert_int_equal(idx.n, widx.n);
        assert_int_equal(idx.head_end, widx.head_end);
        assert_int_equal(idx.tail_start, widx.tail_start);
        assert_int_equal(idx.cycle, widx.cycle);
        assert_int_equal(idx.scheduled_at_ms, widx.scheduled_at_ms);
        if (n)
            assert_memory_equal(idx.ends, widx.ends, n * sizeof *idx.ends);
        pub_wire_list_free(&idx);
        pub_wire_list_free(&widx);
        free(got);
        free(want);
    }
}

static void test_list_refusals(void **state)
{
    (void)state;
    uint8_t entry[8] = {1 << 3, 1}; /* rank 1 */
    uint8_t buf[64];
    size_t k = put_len(buf, 5, entry, 2);
    buf[k++] = 1 << 3; /* cycle between two entries */
    buf[k++] = 3;
    k += put_len(buf + k, 5, entry, 2);
    pub_wire_list_t idx;
    assert_int_equal(pub_wire_list_index(buf, k, 1, &idx), CV_EINVAL);
    buf[0] = 5 << 3; /* entries as a varint */
    assert_int_equal(pub_wire_list_index(buf, k, 1, &idx), CV_EDECODE);
    uint8_t truncated[] = {5 << 3 | 2, 9, 1};
    assert_int_equal(pub_wire_list_index(truncated, sizeof truncated, 0, &idx), CV_EDECODE);
    uint8_t group[] = {3 << 3 | 3};
    assert_int_equal(pub_wire_list_index(group, sizeof group, 0, &idx), CV_EDECODE);
    uint8_t field0[] = {0, 1};
    assert_int_equal(pub_wire_list_index(field0, sizeof field0, 0, &idx), CV_EDECODE);
    uint8_t long_varint[12] = {1 << 3};
    memset(long_varint + 1, 0xff, 11);
    assert_int_equal(pub_wire_list_index(long_varint, sizeof long_varint, 0, &idx), CV_EDECODE);
    pub_wire_head_t h;
    assert_int_equal(pub_wire_reply_head(long_varint, sizeof long_varint, &h), CV_EDECODE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_standings_as_protobuf_c),
        cmocka_unit_test(test_error_reply_and_other_results),
        cmocka_unit_test(test_unpacked_merged_and_too_many_tiers),
        cmocka_unit_test(test_prefixes_and_corruptions),
        cmocka_unit_test(test_list_index_and_cut),
        cmocka_unit_test(test_list_pack_as_protobuf_c),
        cmocka_unit_test(test_list_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
