/* cv_validate: the field limits of DESIGN A4, checked on decoded requests.
 *
 * Each check returns CV_ST_OK, or CV_ST_INVALID after writing a precise,
 * human-readable reason into err (NUL-terminated, truncated to errlen), e.g.
 *   "vote.user_id must be 1-128 bytes, got 0"
 *   "vote.feature_id may only contain [A-Za-z0-9_-]"
 *   "submit.tags has 9 entries, at most 8 allowed"
 *
 * Limits (A4):
 *   Vote.user_id      1-128 bytes, valid UTF-8
 *   Vote.feature_id   1-64 bytes of [A-Za-z0-9_-]
 *   Vote.value        -1, 0 or +1
 *   Vote.tier         "", member, core, honorary
 *   Submit.user_id    1-128 bytes, valid UTF-8
 *   Submit.title      1-200 bytes, valid UTF-8
 *   Submit.body       <= 8192 bytes, valid UTF-8
 *   Submit.tags       <= 8 entries, each 1-32 bytes valid UTF-8
 *   Hello.protocol_version  0 (unset) or 1
 *   Request           exactly one op set
 */
#ifndef CV_VALIDATE_H
#define CV_VALIDATE_H

#include "cv_codec.h"

#include <stdbool.h>
#include <stddef.h>

#define CV_USER_ID_MAX 128
#define CV_FEATURE_ID_MAX 64
#define CV_TITLE_MAX 200
#define CV_BODY_MAX 8192
#define CV_TAGS_MAX 8
#define CV_TAG_MAX 32

/* True when s[0..len) is well-formed UTF-8 (no overlongs, no surrogates, no
 * code points past U+10FFFF). */
bool cv_utf8_valid(const char *s, size_t len);

/* For text received from a peer and passed on (an error text, an id):
 * returns NULL when s is valid UTF-8 (use it as it is), or a new malloc'd
 * copy (the caller's) with every byte that is not part of a well-formed
 * sequence replaced by '?'.  Strict peers (Google's protobuf among them)
 * refuse a whole message whose string field is not UTF-8. */
char *cv_utf8_sanitized(const char *s);

/* True when id[0..len) is 1-64 bytes of [A-Za-z0-9_-]. */
bool cv_feature_id_valid(const char *id, size_t len);

cv_status_t cv_validate_vote(const Canvass__V1__Vote *v, char *err, size_t errlen);
cv_status_t cv_validate_submit(const Canvass__V1__Submit *s, char *err, size_t errlen);
cv_status_t cv_validate_hello(const Canvass__V1__Hello *h, char *err, size_t errlen);

/* Checks that an op is set, then the op's own fields. */
cv_status_t cv_validate_request(const Canvass__V1__Request *r, char *err, size_t errlen);

#endif
