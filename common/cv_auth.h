/* cv_auth: app keys and signed user tokens (DESIGN A9).
 *
 * ---- The key file --------------------------------------------------------
 * One line per client app, fields separated by spaces or tabs:
 *
 *     app_key  secret_hex  rights  [name]
 *
 *   app_key     what the app sends as Hello.app_key (and a release manager
 *               as AdminRequest.app_key or "Authorization: Bearer KEY"):
 *               1-256 characters of [A-Za-z0-9._~+/=-], unique in the file.
 *               It is a password: make it long and random (e.g. 32 random
 *               bytes in hex or base64url); a key under 16 characters is
 *               accepted with a warning.
 *   secret_hex  the app's token secret, 16-64 bytes as 32-128 hex digits,
 *               shared with the app's own back end, which signs user
 *               tokens with it; or "-" for an app that signs none.
 *   rights      a comma-separated list (no spaces) of
 *                 vote           may send Vote
 *                 submit         may send Submit
 *                 assert_tier    may send a Vote.tier other than member
 *                 admin          may use the release-manager API (publish)
 *                 require_token  every Vote from it must carry a valid user
 *                                token (needs a secret)
 *   name        how logs and error texts name the app ("app 'forum' may not
 *               submit"): 1-64 characters of [A-Za-z0-9._-], unique; when
 *               absent, the key's first 6 characters and "..." (the whole
 *               key when it is that short), so a key is never logged whole.
 *
 * '#' starts a comment (keys cannot contain it); blank lines are skipped.
 * A line that breaks any rule refuses the whole file with the reason
 * "KEYFILE:LINE: reason", e.g. "keys.txt:3: unknown right 'vot' (vote,
 * submit, assert_tier, admin, require_token)".  A file with no app at all
 * is refused too: it would lock everyone out.
 *
 * ---- User tokens ---------------------------------------------------------
 * An app whose clients are not trusted with user ids (a web page, a phone)
 * has its back end sign, for each logged-in user, a token that the client
 * sends with every vote as Vote.user_token.  The token is 40 bytes:
 *
 *     token = expiry_be64 || HMAC-SHA256(secret, message)
 *     message = user_id "|" tier "|" expiry_decimal
 *
 *   expiry_be64     the expiry, Unix seconds, unsigned 64-bit big-endian
 *                   (8 bytes); the token is good while now < expiry
 *   HMAC-SHA256     RFC 2104 with SHA-256, key = the secret's bytes (the
 *                   decoded hex), 32 bytes of output
 *   user_id         exactly the bytes of Vote.user_id
 *   tier            "member", "core" or "honorary": the tier of the vote,
 *                   "member" when Vote.tier is empty
 *   expiry_decimal  the same expiry in ASCII decimal, no sign or leading
 *                   zeros
 *
 * The message parses unambiguously from the right (the expiry is digits,
 * the tier has no '|'), so a '|' inside a user id is harmless.  In Python:
 *
 *     msg = user.encode() + b"|" + tier.encode() + b"|" + str(exp).encode()
 *     token = struct.pack(">Q", exp) + hmac.new(secret, msg, "sha256").digest()
 *
 * The check compares in constant time (libsodium), so the answer's timing
 * says nothing about how much of a forged token was right.
 */
#ifndef CV_AUTH_H
#define CV_AUTH_H

#include "cv_codec.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CV_AUTH_TOKEN_LEN 40  /* 8-byte expiry + 32-byte HMAC-SHA256 */
#define CV_AUTH_KEY_MAX 256   /* app key characters */
#define CV_AUTH_SECRET_MIN 16 /* secret bytes */
#define CV_AUTH_SECRET_MAX 64
#define CV_AUTH_NAME_MAX 64 /* app name characters */

/* Rights, as bits of cv_auth_app_rights(). */
enum {
    CV_AUTH_VOTE = 1u << 0,
    CV_AUTH_SUBMIT = 1u << 1,
    CV_AUTH_ASSERT_TIER = 1u << 2,
    CV_AUTH_ADMIN = 1u << 3,
    CV_AUTH_REQUIRE_TOKEN = 1u << 4,
};

typedef struct cv_auth cv_auth_t;         /* the apps of one key file */
typedef struct cv_auth_app cv_auth_app_t; /* one app; lives as long as its table */

/* Reads and parses the key file at path (at most 1 MiB).  On success
 * returns 0 and sets *out (the caller's; cv_auth_destroy).  Otherwise
 * returns CV_EIO (cannot read: "PATH: cannot read: No such file or
 * directory"), CV_EINVAL ("PATH:LINE: reason", or "PATH: no apps ...") or
 * CV_ENOMEM, with the reason in err.  Logs a warning (cv_log) when the file
 * can be read by others than its owner, or a key is short. */
int cv_auth_load(const char *path, cv_auth_t **out, char *err, size_t errlen);

/* Parses key-file text (len bytes, NUL bytes refused); `name` stands for
 * the file in error texts.  Returns as cv_auth_load, never CV_EIO. */
int cv_auth_parse(const char *name, const char *text, size_t len, cv_auth_t **out, char *err,
                  size_t errlen);

/* Frees the table and wipes its secrets.  Safe on NULL and twice; nulls
 * *a_p. */
void cv_auth_destroy(cv_auth_t **a_p);

/* Apps in the table. */
size_t cv_auth_count(const cv_auth_t *a);

/* The app whose key is `key` (NUL-terminated), or NULL.  The time taken
 * does not depend on how much of the key matches any app's key: every key
 * is compared, as a BLAKE2b hash, with sodium_memcmp. */
const cv_auth_app_t *cv_auth_find(const cv_auth_t *a, const char *key);

/* The app's name (see above); borrowed, lives as long as the table. */
const char *cv_auth_app_name(const cv_auth_app_t *app);

/* The app's CV_AUTH_* bits. */
unsigned cv_auth_app_rights(const cv_auth_app_t *app);

/* The right's word in the key file ("vote", ...); "?" for anything else. */
const char *cv_auth_right_name(unsigned right);

/* Checks that `key` belongs to an app with `right` (one CV_AUTH_* bit, or
 * 0 for any app: a Hello).
 * Returns CV_ST_OK (and sets *app when app is not NULL), or
 *   UNAUTHENTICATED "no app key: this cluster needs one (app keys are in use)"
 *   UNAUTHENTICATED "unknown app key"
 *   FORBIDDEN       "app 'NAME' may not vote" / "... may not submit" /
 *                   "... may not assert a tier" /
 *                   "... may not use the release-manager API (needs the
 *                   admin right)"
 * with the text in err.  With a NULL table (no key file: an open cluster)
 * always CV_ST_OK, *app = NULL. */
cv_status_t cv_auth_check_key(const cv_auth_t *a, const char *key, unsigned right,
                              const cv_auth_app_t **app, char *err, size_t errlen);

/* Writes the 40-byte token for (user_id, tier, expiry) signed with
 * secret[0..secretlen) into out.  tier must be "member", "core" or
 * "honorary" (the caller's). */
void cv_auth_token_sign(const uint8_t *secret, size_t secretlen, const char *user_id,
                        const char *tier, uint64_t expiry, uint8_t out[CV_AUTH_TOKEN_LEN]);

/* Checks token[0..len) for a vote of user_id with tier (a canonical name:
 * "member" when the vote gave none) from app, at Unix time now.  Returns
 * CV_ST_OK or CV_ST_UNAUTHENTICATED with one of
 *   "app 'NAME' has no secret to check user tokens with"
 *   "user token must be 40 bytes, got N"
 *   "user token does not match user or tier"  (a wrong signature: forged,
 *                                              another user, another tier,
 *                                              another app's secret, or an
 *                                              altered expiry)
 *   "user token expired"                      (signature good, now >= expiry)
 * in err. */
cv_status_t cv_auth_token_check(const cv_auth_app_t *app, const char *user_id, const char *tier,
                                const uint8_t *token, size_t len, uint64_t now, char *err,
                                size_t errlen);

#endif
