/* cv_frame: incremental reader for length-prefixed frames (see cv_frame.h). */
#include "cv_frame.h"
#include "cv_err.h"

#include <stdlib.h>
#include <string.h>

void cv_frame_reader_init(cv_frame_reader_t *r, size_t max_frame)
{
    memset(r, 0, sizeof *r);
    r->max_frame = max_frame;
}

void cv_frame_reader_free(cv_frame_reader_t *r)
{
    free(r->buf);
    r->buf = NULL;
    r->start = r->len = r->cap = 0;
}

size_t cv_frame_reader_pending(const cv_frame_reader_t *r)
{
    return r->len - r->start;
}

int cv_frame_reader_feed(cv_frame_reader_t *r, const void *data, size_t n)
{
    if (n == 0) /* libuv may report empty reads; memcpy(NULL, .., 0) is UB */
        return 0;
    if (r->start > 0) { /* compact: frames handed out before are now invalid */
        memmove(r->buf, r->buf + r->start, r->len - r->start);
        r->len -= r->start;
        r->start = 0;
    }
    if (r->len + n > r->cap) {
        size_t cap = r->cap ? r->cap : 4096;
        while (cap < r->len + n)
            cap *= 2;
        uint8_t *b = realloc(r->buf, cap);
        if (!b)
            return CV_ENOMEM;
        r->buf = b;
        r->cap = cap;
    }
    memcpy(r->buf + r->len, data, n);
    r->len += n;
    return 0;
}

int cv_frame_reader_next(cv_frame_reader_t *r, const uint8_t **payload, size_t *len)
{
    size_t avail = r->len - r->start;
    if (avail < CV_FRAME_HEADER)
        return 0;
    const uint8_t *p = r->buf + r->start;
    uint32_t l = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
    if (l == 0 || l > r->max_frame) {
        r->bad_len = l;
        return CV_EFRAME;
    }
    if (avail < CV_FRAME_HEADER + (size_t)l)
        return 0;
    *payload = p + CV_FRAME_HEADER;
    *len = l;
    r->start += CV_FRAME_HEADER + l;
    return 1;
}

void cv_frame_put_header(uint8_t out[CV_FRAME_HEADER], uint32_t len)
{
    out[0] = (uint8_t)(len >> 24);
    out[1] = (uint8_t)(len >> 16);
    out[2] = (uint8_t)(len >> 8);
    out[3] = (uint8_t)len;
}
