/* fuzz_frame: the ingest request path of DESIGN A4, from bytes on the socket
 * to a validated Request.
 *
 * Input: two control bytes, then the byte stream a client sends.
 *   ctl[0] bits 0-2  how the stream is cut into reads: 0 one byte at a time
 *                    (a frame split at every byte), 1..3 pseudo-random reads
 *                    of up to 8 / 64 / 1024 bytes, 4..7 the whole stream at
 *                    once
 *   ctl[0] bit 3     max frame from ctl[1] (1..256 bytes) instead of 65536,
 *                    so lengths at and just past the limit are cheap to reach
 *   ctl[1]           seeds the read sizes; the error buffer handed to the
 *                    validator is 1 + ctl[1] % 64 bytes on one of two calls
 *
 * The stream is fed to a cv_frame_reader_t and every frame taken out is
 * compared with an independent parse of the stream: same frames, same
 * bytes, none over the limit, CV_EFRAME exactly when a complete header holds
 * length 0 or more than the limit (then nothing more is read, as ingest
 * closes the connection), and the reader's pending count right at the end.
 *
 * Every frame then goes the way ingest's handle_frame() takes it: unpacked
 * as a Request (re-packed and unpacked again, which must give the same
 * bytes), validated with cv_validate_request(), and answered: the status
 * must be OK or INVALID, INVALID carries a non-empty, NUL-terminated, valid
 * UTF-8 text, and a request found OK is re-checked here against the A4
 * limits written out again independently.  The Reply ingest would send is
 * packed and round-tripped too.
 */
#include "cv_codec.h"
#include "cv_err.h"
#include "cv_frame.h"
#include "cv_validate.h"
#include "fz_util.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fz_init_log("fuzz_frame");
    return 0;
}

/* ---- the A4 limits, again ----------------------------------------------------- */

static void check_text_field(const char *name, const char *s, size_t min, size_t max)
{
    FZ_CHECK(s != NULL, "%s is NULL in a request found OK", name);
    size_t len = strlen(s);
    FZ_CHECK(len >= min && len <= max, "%s has %zu bytes (%zu-%zu) in a request found OK", name,
             len, min, max);
    FZ_CHECK(fz_utf8_ok(s, len), "%s is not UTF-8 in a request found OK: %s", name,
             fz_hex(s, len, 64));
}

static void check_ok_request(const Canvass__V1__Request *r)
{
    switch (r->op_case) {
    case CANVASS__V1__REQUEST__OP_HELLO:
        FZ_CHECK(r->hello, "hello op without a Hello found OK");
        FZ_CHECK(r->hello->protocol_version <= 1, "hello.protocol_version %u found OK",
                 r->hello->protocol_version);
        return;
    case CANVASS__V1__REQUEST__OP_VOTE: {
        const Canvass__V1__Vote *v = r->vote;
        FZ_CHECK(v, "vote op without a Vote found OK");
        check_text_field("vote.user_id", v->user_id, 1, 128);
        size_t flen = strlen(v->feature_id);
        FZ_CHECK(flen >= 1 && flen <= 64, "vote.feature_id of %zu bytes found OK", flen);
        for (size_t i = 0; i < flen; i++) {
            char c = v->feature_id[i];
            FZ_CHECK(strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-",
                            c),
                     "vote.feature_id with byte 0x%02x found OK", (unsigned char)c);
        }
        FZ_CHECK(v->value >= -1 && v->value <= 1, "vote.value %d found OK", (int)v->value);
        FZ_CHECK(!strcmp(v->tier, "") || !strcmp(v->tier, "member") ||
                     !strcmp(v->tier, "core") || !strcmp(v->tier, "honorary"),
                 "vote.tier '%s' found OK", fz_hex(v->tier, strlen(v->tier), 40));
        return;
    }
    case CANVASS__V1__REQUEST__OP_SUBMIT: {
        const Canvass__V1__Submit *s = r->submit;
        FZ_CHECK(s, "submit op without a Submit found OK");
        check_text_field("submit.user_id", s->user_id, 1, 128);
        check_text_field("submit.title", s->title, 1, 200);
        check_text_field("submit.body", s->body, 0, 8192);
        FZ_CHECK(s->n_tags <= 8, "submit with %zu tags found OK", s->n_tags);
        for (size_t i = 0; i < s->n_tags; i++)
            check_text_field("submit.tags[i]", s->tags[i], 1, 32);
        return;
    }
    case CANVASS__V1__REQUEST__OP_PING:
        FZ_CHECK(r->ping, "ping op without a Ping found OK");
        return;
    default:
        fz_fail("a request without an operation (op_case %d) found OK", (int)r->op_case);
    }
}

/* ---- one frame, as ingest handles it ----------------------------------------- */

static void check_reply(uint64_t request_id, cv_status_t st, const char *error)
{
    Canvass__V1__Reply rep = CANVASS__V1__REPLY__INIT;
    rep.request_id = request_id;
    rep.status = st;
    rep.error = (char *)error;
    fz_check_packs(&rep.base);
}

/* What ingest's router makes of a valid Vote or Submit: a ShardCmd in a
 * TallyRequest to the owning shard, the Vote borrowed as it was decoded
 * (with any unknown fields it carried) and a Submit copied into a
 * FeatureRecord.  The shard must be able to decode it and find the same
 * vote or feature in it; one command the shard cannot decode would cost
 * every command batched with it. */
static void check_forward(const Canvass__V1__Request *req)
{
    Canvass__V1__FeatureRecord rec = CANVASS__V1__FEATURE_RECORD__INIT;
    Canvass__V1__ShardCmd cmd = CANVASS__V1__SHARD_CMD__INIT;
    Canvass__V1__ShardCmd *cmds[1] = {&cmd};
    Canvass__V1__CmdBatch batch = CANVASS__V1__CMD_BATCH__INIT;
    Canvass__V1__TallyRequest treq = CANVASS__V1__TALLY_REQUEST__INIT;
    cmd.seq = 7;
    cmd.stamp = (uint64_t)1 << 62;
    if (req->op_case == CANVASS__V1__REQUEST__OP_VOTE) {
        cmd.op_case = CANVASS__V1__SHARD_CMD__OP_VOTE;
        cmd.vote = req->vote;
    } else if (req->op_case == CANVASS__V1__REQUEST__OP_SUBMIT) {
        rec.feature_id = (char *)"Fabc";
        rec.title = req->submit->title;
        rec.body = req->submit->body;
        rec.n_tags = req->submit->n_tags;
        rec.tags = req->submit->tags;
        rec.author = req->submit->user_id;
        rec.status = (char *)"open";
        cmd.op_case = CANVASS__V1__SHARD_CMD__OP_CREATE;
        cmd.create = &rec;
    } else {
        return;
    }
    batch.n_cmds = 1;
    batch.cmds = cmds;
    treq.corr = 1;
    treq.op_case = CANVASS__V1__TALLY_REQUEST__OP_BATCH;
    treq.batch = &batch;
    size_t len;
    uint8_t *buf = cv_codec_pack(&treq.base, &len);
    FZ_CHECK(buf != NULL, "out of memory");
    Canvass__V1__TallyRequest *got = canvass__v1__tally_request__unpack(NULL, len, buf);
    FZ_CHECK(got != NULL, "a valid request forwarded to its shard does not decode there: "
             "TallyRequest %s", fz_hex(buf, len, 256));
    FZ_CHECK(got->op_case == CANVASS__V1__TALLY_REQUEST__OP_BATCH && got->batch->n_cmds == 1,
             "the forwarded TallyRequest lost its command");
    const Canvass__V1__ShardCmd *c = got->batch->cmds[0];
    FZ_CHECK(c->seq == 7 && c->stamp == cmd.stamp && c->op_case == cmd.op_case,
             "the forwarded command changed its seq, stamp or operation");
    if (c->op_case == CANVASS__V1__SHARD_CMD__OP_VOTE) {
        const Canvass__V1__Vote *a = req->vote, *b = c->vote;
        FZ_CHECK(!strcmp(a->user_id, b->user_id) && !strcmp(a->feature_id, b->feature_id) &&
                     a->value == b->value && !strcmp(a->tier, b->tier),
                 "the forwarded vote differs from the one received");
    } else {
        const Canvass__V1__FeatureRecord *f = c->create;
        FZ_CHECK(!strcmp(f->title, rec.title) && !strcmp(f->body, rec.body) &&
                     !strcmp(f->author, rec.author) && f->n_tags == rec.n_tags,
                 "the forwarded feature differs from the one submitted");
    }
    canvass__v1__tally_request__free_unpacked(got, NULL);
    free(buf);
}

static void handle_frame(const uint8_t *payload, size_t len, size_t small_errlen)
{
    Canvass__V1__Request *req = (Canvass__V1__Request *)fz_roundtrip(
        &canvass__v1__request__descriptor, payload, len);
    if (!req) {
        check_reply(0, CV_ST_BAD_FRAME, "undecodable request");
        return;
    }

    char err[256];
    memset(err, 0xA5, sizeof err); /* no NUL anywhere until the validator writes one */
    cv_status_t st = cv_validate_request(req, err, sizeof err);
    FZ_CHECK(st == CV_ST_OK || st == CV_ST_INVALID, "cv_validate_request returned status %d",
             (int)st);
    if (st == CV_ST_INVALID) {
        fz_check_text("the validation error", err, sizeof err, true);
    } else {
        FZ_CHECK(err[0] == '\0', "cv_validate_request said OK but left the error text '%.40s'",
                 err);
        check_ok_request(req);
        check_forward(req);
    }
    check_reply(req->request_id, st, err);

    /* A short error buffer (and none at all) must truncate, never overrun,
     * and give the same verdict. */
    char *small = malloc(small_errlen);
    FZ_CHECK(small != NULL, "out of memory");
    cv_status_t st2 = cv_validate_request(req, small, small_errlen);
    FZ_CHECK(st2 == st, "the verdict changed with a %zu-byte error buffer", small_errlen);
    FZ_CHECK(memchr(small, '\0', small_errlen) != NULL,
             "a %zu-byte error buffer was left without a NUL", small_errlen);
    free(small);
    FZ_CHECK(cv_validate_request(req, NULL, 0) == st, "the verdict changed without a buffer");

    canvass__v1__request__free_unpacked(req, NULL);
}

/* ---- the stream ------------------------------------------------------------------- */

/* The independent parse: where the frame starting at `off` stands once
 * `fed` bytes have arrived.  Returns 1 (whole frame: *len set), 0 (needs
 * more), -1 (bad length: *len set to it). */
static int model_next(const uint8_t *s, size_t fed, size_t off, size_t max, uint32_t *len)
{
    if (fed - off < 4)
        return 0;
    uint32_t l = (uint32_t)s[off] << 24 | (uint32_t)s[off + 1] << 16 |
                 (uint32_t)s[off + 2] << 8 | s[off + 3];
    *len = l;
    if (l == 0 || l > max)
        return -1;
    return fed - off - 4 >= l ? 1 : 0;
}

static size_t read_size(unsigned mode, uint32_t *rng, size_t left)
{
    static const size_t caps[] = {1, 8, 64, 1024};
    if (mode >= 4)
        return left;
    *rng ^= *rng << 13;
    *rng ^= *rng >> 17;
    *rng ^= *rng << 5;
    size_t n = 1 + *rng % caps[mode];
    return n < left ? n : left;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    unsigned mode = data[0] & 7;
    size_t max = (data[0] & 8) ? 1 + (size_t)data[1] : CV_FRAME_DEFAULT_MAX;
    size_t small_errlen = 1 + data[1] % 64;
    uint32_t rng = 0x9E3779B9u ^ ((uint32_t)data[0] << 8 | data[1]);
    const uint8_t *s = data + 2;
    size_t n = size - 2;

    cv_frame_reader_t r;
    cv_frame_reader_init(&r, max);
    size_t fed = 0, off = 0; /* off: start of the next frame the model expects */
    int closed = 0;
    while (fed < n && !closed) {
        size_t k = read_size(mode, &rng, n - fed);
        FZ_CHECK(cv_frame_reader_feed(&r, s + fed, k) == 0, "feed of %zu bytes failed", k);
        fed += k;
        for (;;) {
            const uint8_t *payload = NULL;
            size_t len = 0;
            uint32_t mlen = 0;
            int rc = cv_frame_reader_next(&r, &payload, &len);
            int expect = model_next(s, fed, off, max, &mlen);
            if (rc == 1) {
                FZ_CHECK(expect == 1, "reader returned a frame of %zu bytes at offset %zu where "
                         "the stream has none (model %d, length %u)", len, off, expect, mlen);
                FZ_CHECK(len == mlen && len >= 1 && len <= max,
                         "frame at offset %zu: %zu bytes, expected %u (max %zu)", off, len, mlen,
                         max);
                FZ_CHECK(!memcmp(payload, s + off + 4, len),
                         "frame at offset %zu differs from the stream", off);
                off += 4 + len;
                handle_frame(payload, len, small_errlen);
                continue;
            }
            if (rc == 0) {
                FZ_CHECK(expect == 0, "reader wants more bytes at offset %zu after %zu fed, but "
                         "the stream holds %s there", off, fed,
                         expect == 1 ? "a whole frame" : "a bad length");
                break;
            }
            FZ_CHECK(rc == CV_EFRAME, "cv_frame_reader_next returned %d", rc);
            FZ_CHECK(expect == -1, "CV_EFRAME at offset %zu for length %u (max %zu)", off, mlen,
                     max);
            FZ_CHECK(r.bad_len == mlen, "bad_len %u, the header says %u", r.bad_len, mlen);
            closed = 1;
            break;
        }
    }
    if (!closed)
        FZ_CHECK(cv_frame_reader_pending(&r) == fed - off,
                 "pending %zu bytes, the stream leaves %zu", cv_frame_reader_pending(&r),
                 fed - off);
    cv_frame_reader_free(&r);
    return 0;
}
