/* wire_list: packed RankedLists indexed, cut and written by hand (see
 * wire.h).  An index is one walk over the list's top level, which skips each
 * entry by its length: a summary or the offsets of 100 000 entries cost a
 * millisecond or two.  The packer sizes each entry once, then writes it;
 * protobuf-c sizes every entry again while packing it. */
#include "cv_err.h"
#include "wire.h"
#include "wire_priv.h"

#include <stdlib.h>
#include <string.h>

/* ---- ranked lists ------------------------------------------------------------------------ */

/* RankedList and RankedEntry fields. */
enum {
    RL_CYCLE = 1,
    RL_OPENED = 2,
    RL_CLOSED = 3,
    RL_ORDER = 4,
    RL_ENTRIES = 5,
    RL_TOTAL = 6,
    RL_SCHEDULED = 7
};
enum { RE_RANK = 1, RE_ID = 2 };

/* One walk over the top level.  Fills the scalars, n and the layout; writes
 * the end offsets when ends is not NULL (room for n, known from a first
 * walk). */
static int list_walk(const uint8_t *buf, size_t len, pub_wire_list_t *idx, uint32_t *ends)
{
    rd_t r = {buf, buf + len};
    enum { BEFORE, IN, AFTER } at = BEFORE;
    pub_wire_list_t x = {.head_end = len, .tail_start = len};
    while (r.p < r.end) {
        size_t start = (size_t)(r.p - buf);
        uint32_t f;
        int wt;
        uint64_t v;
        if (rd_tag(&r, &f, &wt) < 0)
            return CV_EDECODE;
        if (f == RL_ORDER || f == RL_ENTRIES) {
            if (rd_expect(&r, wt, WT_LEN, 1) < 0)
                return CV_EDECODE;
        } else if (f >= RL_CYCLE && f <= RL_SCHEDULED) {
            if (rd_expect(&r, wt, WT_VARINT, 0) < 0 || rd_varint(&r, &v) < 0)
                return CV_EDECODE;
            if (f == RL_CYCLE)
                x.cycle = v;
            else if (f == RL_OPENED)
                x.opened_at_ms = v;
            else if (f == RL_CLOSED)
                x.closed_at_ms = v;
            else if (f == RL_TOTAL)
                x.total_votes = v;
            else
                x.scheduled_at_ms = v;
        } else if (rd_skip(&r, wt) < 0) {
            return CV_EDECODE;
        }
        if (f == RL_ENTRIES) {
            if (at == AFTER)
                return CV_EINVAL; /* another field between entries */
            if (at == BEFORE)
                x.head_end = start;
            at = IN;
            if (ends)
                ends[x.n] = (uint32_t)(r.p - buf);
            x.n++;
        } else if (at == IN) {
            x.tail_start = start;
            at = AFTER;
        }
    }
    x.ends = ends;
    *idx = x;
    return 0;
}

int pub_wire_list_index(const uint8_t *buf, size_t len, int want_ends, pub_wire_list_t *idx)
{
    if (len > UINT32_MAX)
        return CV_EINVAL;
    pub_wire_list_t x;
    int rc = list_walk(buf, len, &x, NULL);
    if (rc < 0 || !want_ends || x.n == 0) {
        if (rc == 0)
            *idx = x;
        return rc;
    }
    uint32_t *ends = malloc(x.n * sizeof *ends);
    if (!ends)
        return CV_ENOMEM;
    if ((rc = list_walk(buf, len, &x, ends)) < 0) { /* cannot differ from the first walk */
        free(ends);
        return rc;
    }
    *idx = x;
    return 0;
}

void pub_wire_list_free(pub_wire_list_t *idx)
{
    free(idx->ends);
    idx->ends = NULL;
}

void pub_wire_list_cut(const uint8_t *buf, size_t len, const pub_wire_list_t *idx, size_t k,
                       const uint8_t *part[3], size_t size[3])
{
    if (k > idx->n)
        k = idx->n;
    size_t entries_end = k ? idx->ends[k - 1] : idx->head_end;
    part[0] = buf;
    size[0] = idx->head_end;
    part[1] = buf + idx->head_end;
    size[1] = entries_end - idx->head_end;
    part[2] = buf + idx->tail_start;
    size[2] = len - idx->tail_start;
}

int pub_wire_entry_bytes(const uint8_t *buf, const pub_wire_list_t *idx, size_t i,
                         const uint8_t **data, size_t *len)
{
    size_t start = i ? idx->ends[i - 1] : idx->head_end;
    rd_t r = {buf + start, buf + idx->ends[i]};
    uint32_t f;
    int wt;
    /* The entries field's own tag and length, then the entry. */
    if (rd_tag(&r, &f, &wt) < 0 || rd_bytes(&r, data, len) < 0)
        return CV_EDECODE;
    return 0;
}

int pub_wire_entry_key(const uint8_t *buf, const pub_wire_list_t *idx, size_t i, const char **id,
                       size_t *idlen, uint32_t *rank)
{
    uint32_t f;
    int wt;
    const uint8_t *data;
    size_t n;
    if (pub_wire_entry_bytes(buf, idx, i, &data, &n) < 0)
        return CV_EDECODE;
    rd_t e = {data, data + n};
    *id = "";
    *idlen = 0;
    *rank = 0;
    while (e.p < e.end) {
        uint64_t v;
        if (rd_tag(&e, &f, &wt) < 0)
            return CV_EDECODE;
        if (f == RE_RANK) {
            if (wt != WT_VARINT || rd_varint(&e, &v) < 0)
                return CV_EDECODE;
            *rank = (uint32_t)v;
        } else if (f == RE_ID) {
            if (wt != WT_LEN || rd_bytes(&e, &data, &n) < 0)
                return CV_EDECODE;
            *id = (const char *)data;
            *idlen = strnlen(*id, n); /* as a C string: what the entry's id compares as */
        } else if (rd_skip(&e, wt) < 0) {
            return CV_EDECODE;
        }
    }
    return 0;
}

int pub_wire_list_ranks(const uint8_t *buf, const pub_wire_list_t *idx, cv_rank_prev_t *prev)
{
    for (size_t i = 0; i < idx->n; i++) {
        const char *id;
        size_t idlen;
        uint32_t rank;
        int rc = pub_wire_entry_key(buf, idx, i, &id, &idlen, &rank);
        if (rc == 0)
            rc = cv_rank_prev_put(prev, id, idlen, rank);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* ---- packing a list ------------------------------------------------------------------ */

static size_t varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static uint8_t *put_varint(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

/* Every field number used here is below 16: its tag is one byte. */
static uint8_t tag_byte(unsigned field, int wt)
{
    return (uint8_t)(field << 3 | (unsigned)wt);
}

/* Sizes of a proto3 field left out at its default. */
static size_t u64_size(uint64_t v)
{
    return v ? 1 + varint_size(v) : 0;
}

static size_t str_size(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    return n ? 1 + varint_size(n) + n : 0;
}

static size_t dbl_size(double v)
{
    return v != 0 ? 9 : 0; /* -0.0 is left out, NaN written: as protobuf-c */
}

static uint8_t *put_u64(uint8_t *p, unsigned field, uint64_t v)
{
    if (!v)
        return p;
    *p++ = tag_byte(field, WT_VARINT);
    return put_varint(p, v);
}

static uint8_t *put_str(uint8_t *p, unsigned field, const char *s, int always)
{
    size_t n = s ? strlen(s) : 0;
    if (!n && !always)
        return p;
    *p++ = tag_byte(field, WT_LEN);
    p = put_varint(p, n);
    memcpy(p, s, n);
    return p + n;
}

static uint8_t *put_dbl(uint8_t *p, unsigned field, double v)
{
    if (v == 0)
        return p;
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    *p++ = tag_byte(field, WT_I64);
    for (int i = 0; i < 8; i++, bits >>= 8)
        *p++ = (uint8_t)bits;
    return p;
}

static size_t entry_size(const Canvass__V1__RankedEntry *e)
{
    size_t n = u64_size(e->rank) + str_size(e->feature_id) + str_size(e->title) +
               dbl_size(e->score) + u64_size(e->up) + u64_size(e->down) + u64_size(e->voters) +
               u64_size(e->prev_rank) + str_size(e->status) + dbl_size(e->trend) +
               u64_size(e->created_ms);
    for (size_t t = 0; t < e->n_tags; t++) { /* every element, empty ones too */
        size_t k = e->tags[t] ? strlen(e->tags[t]) : 0;
        n += 1 + varint_size(k) + k;
    }
    return n;
}

static uint8_t *put_entry(uint8_t *p, const Canvass__V1__RankedEntry *e)
{
    p = put_u64(p, RE_RANK, e->rank);
    p = put_str(p, RE_ID, e->feature_id, 0);
    p = put_str(p, 3, e->title, 0);
    p = put_dbl(p, 4, e->score);
    p = put_u64(p, 5, e->up);
    p = put_u64(p, 6, e->down);
    p = put_u64(p, 7, e->voters);
    p = put_u64(p, 8, e->prev_rank);
    p = put_str(p, 9, e->status, 0);
    for (size_t t = 0; t < e->n_tags; t++)
        p = put_str(p, 10, e->tags[t], 1);
    p = put_dbl(p, 11, e->trend);
    return put_u64(p, 12, e->created_ms);
}

/* protobuf-c's pack and an index: for what this packer does not write. */
static int pack_generic(const Canvass__V1__RankedList *l, uint8_t **buf, size_t *len,
                        pub_wire_list_t *idx)
{
    if (!(*buf = cv_codec_pack(&l->base, len)))
        return CV_ENOMEM;
    int rc = pub_wire_list_index(*buf, *len, 1, idx);
    if (rc < 0) { /* protobuf-c's own output indexes: only out of memory */
        free(*buf);
        *buf = NULL;
    }
    return rc;
}

int pub_wire_list_pack(const Canvass__V1__RankedList *l, uint8_t **buf, size_t *len,
                       pub_wire_list_t *idx)
{
    int unknown = l->base.n_unknown_fields != 0;
    for (size_t i = 0; i < l->n_entries && !unknown; i++)
        unknown = l->entries[i]->base.n_unknown_fields != 0;
    if (unknown)
        return pack_generic(l, buf, len, idx);

    pub_wire_list_t x = {.cycle = l->cycle,
                         .opened_at_ms = l->opened_at_ms,
                         .closed_at_ms = l->closed_at_ms,
                         .scheduled_at_ms = l->scheduled_at_ms,
                         .total_votes = l->total_votes,
                         .n = l->n_entries};
    uint32_t *sizes = NULL;
    if (x.n &&
        (!(sizes = malloc(x.n * sizeof *sizes)) || !(x.ends = malloc(x.n * sizeof *x.ends)))) {
        free(sizes);
        return CV_ENOMEM;
    }
    size_t head = u64_size(l->cycle) + u64_size(l->opened_at_ms) + u64_size(l->closed_at_ms) +
                  str_size(l->order);
    size_t total = head;
    for (size_t i = 0; i < x.n; i++) {
        size_t n = entry_size(l->entries[i]);
        if (n > UINT32_MAX) { /* 4 GiB in one entry: not a list cv_rank makes */
            free(sizes);
            free(x.ends);
            return pack_generic(l, buf, len, idx);
        }
        sizes[i] = (uint32_t)n;
        total += 1 + varint_size(n) + n;
    }
    total += u64_size(l->total_votes) + u64_size(l->scheduled_at_ms);
    uint8_t *out = malloc(total ? total : 1);
    if (!out || total > UINT32_MAX) { /* offsets are 32-bit: let protobuf-c pack it */
        free(out);
        free(sizes);
        free(x.ends);
        return out ? pack_generic(l, buf, len, idx) : CV_ENOMEM;
    }
    uint8_t *p = out;
    p = put_u64(p, RL_CYCLE, l->cycle);
    p = put_u64(p, RL_OPENED, l->opened_at_ms);
    p = put_u64(p, RL_CLOSED, l->closed_at_ms);
    p = put_str(p, RL_ORDER, l->order, 0);
    x.head_end = (size_t)(p - out);
    for (size_t i = 0; i < x.n; i++) {
        *p++ = tag_byte(RL_ENTRIES, WT_LEN);
        p = put_varint(p, sizes[i]);
        p = put_entry(p, l->entries[i]);
        x.ends[i] = (uint32_t)(p - out);
    }
    x.tail_start = (size_t)(p - out);
    p = put_u64(p, RL_TOTAL, l->total_votes);
    p = put_u64(p, RL_SCHEDULED, l->scheduled_at_ms);
    free(sizes);
    if (x.n == 0) /* as pub_wire_list_index has it: everything is head */
        x.head_end = x.tail_start = total;
    *buf = out;
    *len = total;
    *idx = x;
    return 0;
}
