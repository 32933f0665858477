/* cv_validate: the field limits of DESIGN A4.
 *
 * protobuf-c unpacks proto3 strings as NUL-terminated char * (an absent
 * field is the shared empty string), so a field's length is its strlen().
 * A string with an embedded NUL is thus checked up to that NUL, which is
 * also all that any later code reading the char * will ever see.
 *
 * Error texts name the message and field ("vote.user_id"), the limit and
 * what was received, so a client author can fix the request from the text
 * alone.  Client bytes are never echoed raw: the one place a received value
 * appears (an unknown tier) it is truncated and escaped.
 */
#include "cv_validate.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- UTF-8 ---------------------------------------------------------------- */

/* Follows the well-formed byte sequences of Unicode 15, table 3-7: the
 * second byte's range depends on the lead byte, which is what excludes
 * overlong forms (E0 80..9F, F0 80..8F), surrogates (ED A0..BF) and code
 * points past U+10FFFF (F4 90..BF, F5..FF). */
bool cv_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;

    while (i < len) {
        unsigned char c = p[i];
        size_t need;
        unsigned char lo = 0x80, hi = 0xBF; /* bounds of the second byte */

        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) {
            need = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            if (c == 0xE0)
                lo = 0xA0;
            else if (c == 0xED)
                hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            if (c == 0xF0)
                lo = 0x90;
            else if (c == 0xF4)
                hi = 0x8F;
        } else {
            return false; /* stray continuation, C0/C1 overlong lead, F5..FF */
        }
        if (len - i - 1 < need)
            return false; /* truncated */
        if (p[i + 1] < lo || p[i + 1] > hi)
            return false;
        for (size_t k = 2; k <= need; k++)
            if ((p[i + k] & 0xC0) != 0x80)
                return false;
        i += need + 1;
    }
    return true;
}

char *cv_utf8_sanitized(const char *s)
{
    size_t len = s ? strlen(s) : 0;
    if (cv_utf8_valid(s, len))
        return NULL;
    char *out = malloc(len + 1);
    if (!out)
        return NULL;
    size_t i = 0;
    while (i < len) {
        /* The longest well-formed sequence starting here, if any. */
        size_t n = 1;
        while (n <= 4 && i + n <= len && !cv_utf8_valid(s + i, n))
            n++;
        if (n <= 4 && i + n <= len) {
            memcpy(out + i, s + i, n);
            i += n;
        } else {
            out[i++] = '?';
        }
    }
    out[len] = '\0';
    return out;
}

bool cv_feature_id_valid(const char *id, size_t len)
{
    if (!id || len < 1 || len > CV_FEATURE_ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* ---- helpers ------------------------------------------------------------- */

__attribute__((format(printf, 3, 4))) static cv_status_t invalid(char *err, size_t errlen,
                                                                 const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return CV_ST_INVALID;
}

static cv_status_t ok(char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    return CV_ST_OK;
}

/* A field that must hold min..max bytes of valid UTF-8.  `name` is the full
 * field name as the client sees it ("submit.title", "submit.tags[3]"). */
static cv_status_t check_text(const char *name, const char *s, size_t min, size_t max, char *err,
                              size_t errlen)
{
    size_t len = s ? strlen(s) : 0;

    if (len < min || len > max) {
        if (min == 0)
            return invalid(err, errlen, "%s must be at most %zu bytes, got %zu", name, max, len);
        return invalid(err, errlen, "%s must be %zu-%zu bytes, got %zu", name, min, max, len);
    }
    if (!cv_utf8_valid(s, len))
        return invalid(err, errlen, "%s is not valid UTF-8", name);
    return CV_ST_OK;
}

/* Copies at most 32 bytes of a client string into out, printable ASCII as
 * is and everything else as \xNN, so an error text stays short, readable and
 * valid UTF-8 whatever the client sent. */
static const char *quoted(const char *s, char *out, size_t outlen)
{
    enum { SHOWN = 32 };
    size_t o = 0, i;

    for (i = 0; s[i] && i < SHOWN && o + 5 < outlen; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7F && c != '\\' && c != '\'')
            out[o++] = (char)c;
        else
            o += (size_t)snprintf(out + o, outlen - o, "\\x%02x", c);
    }
    if (s[i] && o + 4 < outlen) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
    return out;
}

/* ---- messages ------------------------------------------------------------- */

cv_status_t cv_validate_vote(const Canvass__V1__Vote *v, char *err, size_t errlen)
{
    cv_status_t st;

    if (!v)
        return invalid(err, errlen, "vote is missing");
    st = check_text("vote.user_id", v->user_id, 1, CV_USER_ID_MAX, err, errlen);
    if (st != CV_ST_OK)
        return st;

    size_t flen = v->feature_id ? strlen(v->feature_id) : 0;
    if (flen < 1 || flen > CV_FEATURE_ID_MAX)
        return invalid(err, errlen, "vote.feature_id must be 1-%d bytes, got %zu",
                       CV_FEATURE_ID_MAX, flen);
    if (!cv_feature_id_valid(v->feature_id, flen))
        return invalid(err, errlen, "vote.feature_id may only contain [A-Za-z0-9_-]");

    if (v->value < -1 || v->value > 1)
        return invalid(err, errlen, "vote.value must be -1, 0 or 1, got %ld", (long)v->value);

    if (cv_tier_parse(v->tier) < 0) {
        char shown[32 * 4 + 8];
        return invalid(err, errlen, "vote.tier must be member, core or honorary, got '%s'",
                       quoted(v->tier, shown, sizeof shown));
    }
    return ok(err, errlen);
}

cv_status_t cv_validate_submit(const Canvass__V1__Submit *s, char *err, size_t errlen)
{
    cv_status_t st;

    if (!s)
        return invalid(err, errlen, "submit is missing");
    st = check_text("submit.user_id", s->user_id, 1, CV_USER_ID_MAX, err, errlen);
    if (st != CV_ST_OK)
        return st;
    st = check_text("submit.title", s->title, 1, CV_TITLE_MAX, err, errlen);
    if (st != CV_ST_OK)
        return st;
    st = check_text("submit.body", s->body, 0, CV_BODY_MAX, err, errlen);
    if (st != CV_ST_OK)
        return st;

    if (s->n_tags > CV_TAGS_MAX)
        return invalid(err, errlen, "submit.tags has %zu entries, at most %d allowed", s->n_tags,
                       CV_TAGS_MAX);
    for (size_t i = 0; i < s->n_tags; i++) {
        char name[48];
        snprintf(name, sizeof name, "submit.tags[%zu]", i);
        st = check_text(name, s->tags[i], 1, CV_TAG_MAX, err, errlen);
        if (st != CV_ST_OK)
            return st;
    }
    return ok(err, errlen);
}

cv_status_t cv_validate_hello(const Canvass__V1__Hello *h, char *err, size_t errlen)
{
    if (!h)
        return invalid(err, errlen, "hello is missing");
    /* 0 is what an old or careless client sends by leaving the field out;
     * it means version 1, the only one there is. */
    if (h->protocol_version != 0 && h->protocol_version != 1)
        return invalid(err, errlen, "hello.protocol_version must be 1, got %lu",
                       (unsigned long)h->protocol_version);
    return ok(err, errlen);
}

cv_status_t cv_validate_request(const Canvass__V1__Request *r, char *err, size_t errlen)
{
    if (!r)
        return invalid(err, errlen, "request has no operation");
    switch (r->op_case) {
    case CANVASS__V1__REQUEST__OP_HELLO:
        return cv_validate_hello(r->hello, err, errlen);
    case CANVASS__V1__REQUEST__OP_VOTE:
        return cv_validate_vote(r->vote, err, errlen);
    case CANVASS__V1__REQUEST__OP_SUBMIT:
        return cv_validate_submit(r->submit, err, errlen);
    case CANVASS__V1__REQUEST__OP_PING:
        if (!r->ping)
            return invalid(err, errlen, "ping is missing");
        return ok(err, errlen);
    default:
        return invalid(err, errlen, "request has no operation");
    }
}
