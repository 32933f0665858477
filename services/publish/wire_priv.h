/* wire_priv: what wire.c and wire_list.c share -- a cursor over protobuf
 * wire format that checks every length against what is left, so a hostile
 * length or varint ends a decode with CV_EDECODE and nothing else.  Not part
 * of wire.h's interface. */
#ifndef PUB_WIRE_PRIV_H
#define PUB_WIRE_PRIV_H

#include "cv_err.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

/* The largest field number protobuf allows. */
#define FIELD_MAX ((1u << 29) - 1)

typedef struct {
    const uint8_t *p, *end;
} rd_t;

/* A varint of at most 10 bytes, as protobuf-c reads it. */
static inline int rd_varint(rd_t *r, uint64_t *out)
{
    uint64_t v = 0;
    for (int i = 0; i < 10 && r->p < r->end; i++) {
        uint8_t b = *r->p++;
        v |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return CV_EDECODE;
}

/* The next field's number and wire type; CV_EDECODE for field 0, a number
 * past FIELD_MAX or a group (protobuf-c supports neither). */
static inline int rd_tag(rd_t *r, uint32_t *field, int *wt)
{
    uint64_t tag;
    if (rd_varint(r, &tag) < 0 || tag >> 3 == 0 || tag >> 3 > FIELD_MAX)
        return CV_EDECODE;
    *field = (uint32_t)(tag >> 3);
    *wt = (int)(tag & 7);
    return *wt == WT_VARINT || *wt == WT_I64 || *wt == WT_LEN || *wt == WT_I32 ? 0 : CV_EDECODE;
}

/* A length-delimited field's contents. */
static inline int rd_bytes(rd_t *r, const uint8_t **data, size_t *len)
{
    uint64_t n;
    if (rd_varint(r, &n) < 0 || n > (uint64_t)(r->end - r->p))
        return CV_EDECODE;
    *data = r->p;
    *len = (size_t)n;
    r->p += n;
    return 0;
}

static inline int rd_fixed64(rd_t *r, uint64_t *out)
{
    if (r->end - r->p < 8)
        return CV_EDECODE;
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | r->p[i]; /* little-endian on the wire */
    r->p += 8;
    *out = v;
    return 0;
}

static inline int rd_skip(rd_t *r, int wt)
{
    uint64_t v;
    const uint8_t *d;
    size_t n;
    switch (wt) {
    case WT_VARINT:
        return rd_varint(r, &v);
    case WT_I64:
        return rd_fixed64(r, &v);
    case WT_LEN:
        return rd_bytes(r, &d, &n);
    case WT_I32:
        if (r->end - r->p < 4)
            return CV_EDECODE;
        r->p += 4;
        return 0;
    }
    return CV_EDECODE;
}

/* Checks a known field's wire type, then skips it when `skip`. */
static inline int rd_expect(rd_t *r, int wt, int want, int skip)
{
    if (wt != want)
        return CV_EDECODE;
    return skip ? rd_skip(r, wt) : 0;
}

static inline double bits_to_double(uint64_t bits)
{
    double d;
    memcpy(&d, &bits, sizeof d);
    return d;
}

#endif
