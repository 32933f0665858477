/* admit: who may do what on an ingest connection (DESIGN A4, A9).
 *
 * Every decoded request passes cv_admit_request() before the server answers
 * or routes it.  The checks, in order, and their answers (status, error):
 *
 *  1. the connection's rate: every request counts (Hello, Ping, invalid
 *     ones too), --conn-rate a second after a burst of --conn-burst;
 *       RATE_LIMITED "connection is over R requests/s"
 *  2. the request's fields (cv_validate): INVALID with the validator's text
 *  3. with app keys (a key file):
 *     Hello   sets the connection's app; an unknown or empty key clears it
 *             (the connection stays open for a correct Hello):
 *       UNAUTHENTICATED "unknown app key" / "no app key: ..." (cv_auth)
 *     any other request before a good Hello:
 *       UNAUTHENTICATED "send Hello with an app key first"
 *     Vote    needs the vote right, a tier other than member needs
 *             assert_tier, and a user token is checked whenever the vote
 *             carries one, and required when the app has require_token:
 *       FORBIDDEN "app 'NAME' may not vote" / "app 'NAME' may not assert
 *                 a tier"
 *       UNAUTHENTICATED "app 'NAME' requires a user token with every vote"
 *       UNAUTHENTICATED "user token expired" / "user token does not match
 *                 user or tier" / "user token must be 40 bytes, got N"
 *     Submit  needs the submit right: FORBIDDEN "app 'NAME' may not submit"
 *     Without app keys every request is allowed, tiers are honoured and
 *     user tokens are ignored.
 *  4. for a vote, its user's rate (over every connection of this ingest):
 *     --user-rate a second after a burst of --user-burst;
 *       RATE_LIMITED "user 'U' is over R votes/s"
 * A refused request changes nothing; only requests that pass 1-3 take a
 * token from the user's bucket, so nobody can spend another user's votes
 * without being allowed to vote as them.
 */
#ifndef CV_INGEST_ADMIT_H
#define CV_INGEST_ADMIT_H

#include "cv_auth.h"
#include "cv_codec.h"
#include "cv_metrics.h"
#include "cv_ratelimit.h"

#include <stddef.h>
#include <stdint.h>

typedef struct cv_admit cv_admit_t;

/* Per connection; embedded in it, set up by cv_admit_conn_init. */
typedef struct {
    const cv_auth_app_t *app; /* the app of the last good Hello; NULL before */
    cv_bucket_t bucket;
} cv_admit_conn_t;

typedef struct {
    const cv_auth_t *keys; /* borrowed; NULL: an open cluster */
    cv_rate_t conn_rate;   /* rate 0: no per-connection limit */
    cv_rate_t user_rate;   /* rate 0: no per-user limit */
    size_t user_table;     /* users tracked at once (cv_ratelimit) */
    cv_metrics_t *metrics; /* borrowed, may be NULL: refusal counters */
} cv_admit_opts_t;

/* Returns NULL when out of memory or a rate is not valid (cv_rate_valid). */
cv_admit_t *cv_admit_new(const cv_admit_opts_t *opts);

/* Frees it.  Safe on NULL and twice; nulls *a_p. */
void cv_admit_destroy(cv_admit_t **a_p);

/* Starts a new connection: no app, a full bucket. */
void cv_admit_conn_init(const cv_admit_t *a, cv_admit_conn_t *c, uint64_t now_ns);

/* Runs the checks above on a decoded request.  now_ns: a monotonic clock
 * (uv_hrtime); unix_s: the wall clock, for token expiry.  Returns CV_ST_OK
 * (the server then answers or routes it) or the refusal's status, with its
 * text in err. */
cv_status_t cv_admit_request(cv_admit_t *a, cv_admit_conn_t *c, const Canvass__V1__Request *req,
                             uint64_t now_ns, uint64_t unix_s, char *err, size_t errlen);

/* Users whose rate is tracked now. */
size_t cv_admit_users(const cv_admit_t *a);

#endif
