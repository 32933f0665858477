/* wire: a shard's reply read by hand (see wire.h).  The standings decoder
 * builds one cv_standing_t per FeatureStanding in a growing array and
 * copies the strings ranking needs, NUL-terminated, into an arena of large
 * chunks: a close over 100 000 features makes a few dozen allocations where
 * protobuf-c made millions.  Ranked lists are in wire_list.c. */
#include "wire.h"
#include "cv_err.h"
#include "wire_priv.h"

#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the arena -------------------------------------------------------------------- */

#define ARENA_CHUNK (256 * 1024)

typedef struct chunk {
    struct chunk *next;
    size_t used, cap;
    alignas(max_align_t) uint8_t data[];
} chunk_t;

struct pub_wire_arena {
    chunk_t *head;
};

static void *arena_alloc(pub_wire_arena_t *a, size_t n, size_t align)
{
    chunk_t *c = a->head;
    size_t at = c ? (c->used + align - 1) & ~(align - 1) : 0;
    if (!c || at + n > c->cap) {
        size_t cap = n > ARENA_CHUNK ? n : ARENA_CHUNK;
        if (!(c = malloc(sizeof *c + cap)))
            return NULL;
        c->next = a->head;
        c->cap = cap;
        a->head = c;
        at = 0;
    }
    c->used = at + n;
    return c->data + at;
}

static void arena_free(pub_wire_arena_t **a_p)
{
    if (!*a_p)
        return;
    for (chunk_t *c = (*a_p)->head, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    free(*a_p);
    *a_p = NULL;
}

/* A NUL-terminated copy of data[0..len) in the arena; "" for an empty one. */
static const char *arena_str(pub_wire_arena_t *a, const uint8_t *data, size_t len)
{
    if (len == 0)
        return "";
    char *s = arena_alloc(a, len + 1, 1);
    if (s) {
        memcpy(s, data, len);
        s[len] = '\0';
    }
    return s;
}

/* ---- the envelope ------------------------------------------------------------------- */

/* TallyReply fields. */
enum { TR_CORR = 1, TR_STATUS = 2, TR_ERROR = 3, TR_RESULT_FIRST = 10, TR_RESULT_LAST = 15 };

int pub_wire_reply_head(const uint8_t *buf, size_t len, pub_wire_head_t *head)
{
    rd_t r = {buf, buf + len};
    pub_wire_head_t h = {0};
    while (r.p < r.end) {
        uint32_t f;
        int wt, rc;
        uint64_t v;
        if (rd_tag(&r, &f, &wt) < 0)
            return CV_EDECODE;
        if (f == TR_CORR || f == TR_STATUS) {
            if ((rc = rd_expect(&r, wt, WT_VARINT, 0)) < 0 || (rc = rd_varint(&r, &v)) < 0)
                return CV_EDECODE;
            if (f == TR_CORR)
                h.corr = v;
            else
                h.status = (int)(int32_t)v; /* an enum is an int32 */
            continue;
        }
        if (f == TR_ERROR || (f >= TR_RESULT_FIRST && f <= TR_RESULT_LAST))
            rc = rd_expect(&r, wt, WT_LEN, 1);
        else
            rc = rd_skip(&r, wt);
        if (rc < 0)
            return CV_EDECODE;
        if (f >= TR_RESULT_FIRST && f <= TR_RESULT_LAST)
            h.result = (int)f;
    }
    *head = h;
    return 0;
}

/* ---- standings ------------------------------------------------------------------------ */

typedef struct {
    pub_wire_standings_t *st;
    size_t cap;
    /* the standing being decoded */
    size_t counts[3]; /* up, down, trend values met */
    int has_feature;
    const uint8_t **tag_data; /* its tags: borrowed from the buffer until copied */
    size_t *tag_len;
    size_t ntags, tagcap;
} dec_t;

enum {
    FR_ID = 1,
    FR_TITLE = 2,
    FR_BODY = 3,
    FR_TAGS = 4,
    FR_AUTHOR = 5,
    FR_CREATED = 6,
    FR_STATUS = 7,
    FR_RELEASE = 8,
    FR_MERGED_INTO = 9,
    FR_HISTORY = 10
};

static int dec_tag_push(dec_t *d, const uint8_t *data, size_t len)
{
    if (d->ntags == d->tagcap) {
        size_t cap = d->tagcap ? d->tagcap * 2 : 8;
        const uint8_t **pd = realloc(d->tag_data, cap * sizeof *pd);
        if (!pd)
            return CV_ENOMEM;
        d->tag_data = pd;
        size_t *pl = realloc(d->tag_len, cap * sizeof *pl);
        if (!pl)
            return CV_ENOMEM;
        d->tag_len = pl;
        d->tagcap = cap;
    }
    d->tag_data[d->ntags] = data;
    d->tag_len[d->ntags++] = len;
    return 0;
}

/* A FeatureRecord, merged into s: what ranking uses, the rest skipped. */
static int dec_record(dec_t *d, cv_standing_t *s, const uint8_t *buf, size_t len)
{
    pub_wire_arena_t *a = d->st->arena;
    rd_t r = {buf, buf + len};
    while (r.p < r.end) {
        uint32_t f;
        int wt, rc;
        const uint8_t *data;
        size_t n;
        if ((rc = rd_tag(&r, &f, &wt)) < 0)
            return rc;
        switch (f) {
        case FR_ID:
        case FR_TITLE:
        case FR_STATUS:
        case FR_TAGS:
            if ((rc = rd_expect(&r, wt, WT_LEN, 0)) < 0 || (rc = rd_bytes(&r, &data, &n)) < 0)
                return rc;
            if (f == FR_TAGS) {
                if ((rc = dec_tag_push(d, data, n)) < 0)
                    return rc;
                break;
            }
            const char *str = arena_str(a, data, n);
            if (!str)
                return CV_ENOMEM;
            if (f == FR_ID)
                s->feature_id = str;
            else if (f == FR_TITLE)
                s->title = str;
            else
                s->status = str;
            break;
        case FR_CREATED:
            if ((rc = rd_expect(&r, wt, WT_VARINT, 0)) < 0 ||
                (rc = rd_varint(&r, &s->created_ms)) < 0)
                return rc;
            break;
        case FR_BODY:
        case FR_AUTHOR:
        case FR_RELEASE:
        case FR_MERGED_INTO:
        case FR_HISTORY:
            if ((rc = rd_expect(&r, wt, WT_LEN, 1)) < 0)
                return rc;
            break;
        default:
            if ((rc = rd_skip(&r, wt)) < 0)
                return rc;
        }
    }
    return 0;
}

/* One value of a repeated per-tier field: kept when there is room. */
static void tier_put(dec_t *d, int which, cv_standing_t *s, uint64_t v)
{
    size_t i = d->counts[which]++;
    if (i >= CV_TIERS)
        return;
    if (which == 0)
        s->up[i] = v;
    else if (which == 1)
        s->down[i] = v;
    else
        s->trend[i] = bits_to_double(v);
}

/* A repeated uint64 (up, down: varints) or double (trend: 8 bytes) field,
 * packed or not. */
static int dec_tiers(dec_t *d, rd_t *r, int wt, int which, cv_standing_t *s)
{
    int want = which == 2 ? WT_I64 : WT_VARINT;
    uint64_t v;
    int rc;
    if (wt == want) {
        if ((rc = want == WT_I64 ? rd_fixed64(r, &v) : rd_varint(r, &v)) < 0)
            return rc;
        tier_put(d, which, s, v);
        return 0;
    }
    const uint8_t *data;
    size_t n;
    if ((rc = rd_expect(r, wt, WT_LEN, 0)) < 0 || (rc = rd_bytes(r, &data, &n)) < 0)
        return rc;
    if (want == WT_I64 && n % 8)
        return CV_EDECODE;
    rd_t p = {data, data + n};
    while (p.p < p.end) {
        if ((rc = want == WT_I64 ? rd_fixed64(&p, &v) : rd_varint(&p, &v)) < 0)
            return rc;
        tier_put(d, which, s, v);
    }
    return 0;
}

enum { FS_FEATURE = 1, FS_UP = 2, FS_DOWN = 3, FS_VOTERS = 4, FS_TREND = 5 };

/* Why the standing just decoded cannot be ranked, into the arena; NULL (and
 * *nomem set) when the arena is full. */
static const char *standing_problem(dec_t *d, const cv_standing_t *s, int *nomem)
{
    char text[160];
    if (!d->has_feature)
        snprintf(text, sizeof text, "a standing without a feature");
    else if (d->counts[0] > CV_TIERS || d->counts[1] > CV_TIERS || d->counts[2] > CV_TIERS)
        snprintf(text, sizeof text, "%zu/%zu/%zu tier counts for feature '%.64s', at most %d",
                 d->counts[0], d->counts[1], d->counts[2], s->feature_id, CV_TIERS);
    else
        return NULL;
    const char *p = arena_str(d->st->arena, (const uint8_t *)text, strlen(text));
    *nomem = p == NULL;
    return p;
}

static int dec_standing(dec_t *d, const uint8_t *buf, size_t len)
{
    pub_wire_standings_t *st = d->st;
    if (st->n_features == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 1024;
        cv_standing_t *p = realloc(st->features, cap * sizeof *p);
        if (!p)
            return CV_ENOMEM;
        st->features = p;
        d->cap = cap;
    }
    cv_standing_t *s = &st->features[st->n_features++];
    memset(s, 0, sizeof *s);
    s->feature_id = s->title = s->status = "";
    memset(d->counts, 0, sizeof d->counts);
    d->has_feature = 0;
    d->ntags = 0;

    rd_t r = {buf, buf + len};
    while (r.p < r.end) {
        uint32_t f;
        int wt, rc;
        const uint8_t *data;
        size_t n;
        if ((rc = rd_tag(&r, &f, &wt)) < 0)
            return rc;
        switch (f) {
        case FS_FEATURE:
            if ((rc = rd_expect(&r, wt, WT_LEN, 0)) < 0 || (rc = rd_bytes(&r, &data, &n)) < 0 ||
                (rc = dec_record(d, s, data, n)) < 0)
                return rc;
            d->has_feature = 1;
            break;
        case FS_UP:
        case FS_DOWN:
        case FS_TREND:
            if ((rc = dec_tiers(d, &r, wt, f == FS_UP ? 0 : f == FS_DOWN ? 1 : 2, s)) < 0)
                return rc;
            break;
        case FS_VOTERS:
            if ((rc = rd_expect(&r, wt, WT_VARINT, 0)) < 0 || (rc = rd_varint(&r, &s->voters)) < 0)
                return rc;
            break;
        default:
            if ((rc = rd_skip(&r, wt)) < 0)
                return rc;
        }
    }
    if (d->ntags) {
        char **tags = arena_alloc(st->arena, d->ntags * sizeof *tags, alignof(char *));
        if (!tags)
            return CV_ENOMEM;
        for (size_t i = 0; i < d->ntags; i++)
            if (!(tags[i] = (char *)arena_str(st->arena, d->tag_data[i], d->tag_len[i])))
                return CV_ENOMEM;
        s->tags = tags;
        s->ntags = d->ntags;
    }
    if (!st->problem) {
        int nomem = 0;
        st->problem = standing_problem(d, s, &nomem);
        if (nomem)
            return CV_ENOMEM;
    }
    return 0;
}

enum { ST_SHARD = 1, ST_CYCLE = 2, ST_FEATURES = 3, ST_AT = 4 };

static int dec_standings(dec_t *d, const uint8_t *buf, size_t len)
{
    pub_wire_standings_t *st = d->st;
    rd_t r = {buf, buf + len};
    while (r.p < r.end) {
        uint32_t f;
        int wt, rc;
        uint64_t v;
        const uint8_t *data;
        size_t n;
        if ((rc = rd_tag(&r, &f, &wt)) < 0)
            return rc;
        if (f == ST_SHARD || f == ST_CYCLE || f == ST_AT) {
            if ((rc = rd_expect(&r, wt, WT_VARINT, 0)) < 0 || (rc = rd_varint(&r, &v)) < 0)
                return rc;
            if (f == ST_SHARD)
                st->shard = (uint32_t)v;
            else if (f == ST_CYCLE)
                st->cycle = v;
            else
                st->at_ms = v;
        } else if (f == ST_FEATURES) {
            if ((rc = rd_expect(&r, wt, WT_LEN, 0)) < 0 || (rc = rd_bytes(&r, &data, &n)) < 0 ||
                (rc = dec_standing(d, data, n)) < 0)
                return rc;
        } else if ((rc = rd_skip(&r, wt)) < 0) {
            return rc;
        }
    }
    return 0;
}

/* Forgets the standings decoded so far: another result replaced them (the
 * arena keeps their strings until the end). */
static void standings_reset(pub_wire_standings_t *st)
{
    st->n_features = 0;
    st->shard = 0;
    st->cycle = st->at_ms = 0;
    st->problem = NULL;
}

static int dec_reply(dec_t *d, const uint8_t *buf, size_t len)
{
    pub_wire_standings_t *st = d->st;
    rd_t r = {buf, buf + len};
    while (r.p < r.end) {
        uint32_t f;
        int wt, rc;
        uint64_t v;
        const uint8_t *data;
        size_t n;
        if ((rc = rd_tag(&r, &f, &wt)) < 0)
            return rc;
        if (f == TR_CORR || f == TR_STATUS) {
            if ((rc = rd_expect(&r, wt, WT_VARINT, 0)) < 0 || (rc = rd_varint(&r, &v)) < 0)
                return rc;
            if (f == TR_CORR)
                st->head.corr = v;
            else
                st->head.status = (int)(int32_t)v;
        } else if (f == TR_ERROR) {
            if ((rc = rd_expect(&r, wt, WT_LEN, 0)) < 0 || (rc = rd_bytes(&r, &data, &n)) < 0)
                return rc;
            if (!(st->error = arena_str(st->arena, data, n)))
                return CV_ENOMEM;
        } else if (f >= TR_RESULT_FIRST && f <= TR_RESULT_LAST) {
            if ((rc = rd_expect(&r, wt, WT_LEN, 0)) < 0 || (rc = rd_bytes(&r, &data, &n)) < 0)
                return rc;
            /* One oneof: a different member replaces what came before; the
             * same one again is merged into it. */
            if (st->head.result != (int)f)
                standings_reset(st);
            st->head.result = (int)f;
            if (f == PUB_WIRE_RESULT_STANDINGS && (rc = dec_standings(d, data, n)) < 0)
                return rc;
        } else if ((rc = rd_skip(&r, wt)) < 0) {
            return rc;
        }
    }
    return 0;
}

int pub_wire_standings_decode(const uint8_t *buf, size_t len, pub_wire_standings_t **out)
{
    pub_wire_standings_t *st = calloc(1, sizeof *st);
    if (!st || !(st->arena = calloc(1, sizeof *st->arena))) {
        free(st);
        return CV_ENOMEM;
    }
    st->error = "";
    dec_t d = {.st = st};
    int rc = dec_reply(&d, buf, len);
    free(d.tag_data);
    free(d.tag_len);
    if (rc < 0) {
        pub_wire_standings_destroy(&st);
        return rc;
    }
    *out = st;
    return 0;
}

void pub_wire_standings_destroy(pub_wire_standings_t **st_p)
{
    if (!st_p || !*st_p)
        return;
    arena_free(&(*st_p)->arena);
    free((*st_p)->features);
    free(*st_p);
    *st_p = NULL;
}
