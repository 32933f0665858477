/* cv_frame: the client protocol's framing (DESIGN A4).
 *
 * A frame is a 4-byte unsigned big-endian length L, then L bytes of payload,
 * with 1 <= L <= max_frame.  The reader is incremental: bytes are fed as they
 * arrive from the socket, split anywhere, and whole frames are taken out one
 * at a time.  A bad length is reported as soon as the 4 header bytes are in,
 * so a hostile length never makes the reader buffer it.
 */
#ifndef CV_FRAME_H
#define CV_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define CV_FRAME_HEADER 4
#define CV_FRAME_DEFAULT_MAX 65536

typedef struct {
    uint8_t *buf;     /* owned */
    size_t start;     /* first unread byte */
    size_t len;       /* bytes held, from buf[0] */
    size_t cap;
    size_t max_frame;
    uint32_t bad_len; /* the offending length after CV_EFRAME */
} cv_frame_reader_t;

/* Prepares an empty reader for frames of at most max_frame payload bytes. */
void cv_frame_reader_init(cv_frame_reader_t *r, size_t max_frame);

/* Frees the reader's buffer; the reader may be initialised again. */
void cv_frame_reader_free(cv_frame_reader_t *r);

/* Appends n bytes.  Returns 0 or CV_ENOMEM.  Invalidates frames returned by
 * an earlier cv_frame_reader_next(). */
int cv_frame_reader_feed(cv_frame_reader_t *r, const void *data, size_t n);

/* Takes the next whole frame.  Returns 1 and sets *payload / *len (borrowed,
 * valid until the next feed), 0 when more bytes are needed, or CV_EFRAME when
 * the length is 0 or over max_frame (r->bad_len holds it; the stream cannot
 * be resynchronised and the connection must be closed). */
int cv_frame_reader_next(cv_frame_reader_t *r, const uint8_t **payload, size_t *len);

/* Bytes buffered but not yet returned as frames. */
size_t cv_frame_reader_pending(const cv_frame_reader_t *r);

/* Writes the 4-byte header for a payload of len bytes. */
void cv_frame_put_header(uint8_t out[CV_FRAME_HEADER], uint32_t len);

#endif
