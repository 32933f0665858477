/* admit: the checks every client request passes first (see admit.h).
 *
 * The per-user table is shared by every connection of this process (one
 * thread: the libuv loop), so a user spreading votes over many connections
 * is still one bucket here; across several ingest processes behind a
 * balancer each keeps its own, so the effective limit is the per-process
 * one times the ingests a user reaches.
 */
#include "admit.h"
#include "cv_validate.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { R_CONN_RATE, R_USER_RATE, R_INVALID, R_UNAUTHENTICATED, R_FORBIDDEN, R_COUNT };
static const char *const refusal_names[R_COUNT] = {"conn_rate", "user_rate", "invalid",
                                                   "unauthenticated", "forbidden"};

struct cv_admit {
    cv_admit_opts_t o;
    cv_ratelimit_t *users; /* NULL when there is no per-user limit */
    cv_metric_t *refused[R_COUNT];
};

cv_admit_t *cv_admit_new(const cv_admit_opts_t *opts)
{
    if (!cv_rate_valid(&opts->conn_rate) || !cv_rate_valid(&opts->user_rate) ||
        opts->user_table == 0)
        return NULL;
    cv_admit_t *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->o = *opts;
    if (opts->user_rate.rate > 0 &&
        !(a->users = cv_ratelimit_new(&opts->user_rate, opts->user_table))) {
        free(a);
        return NULL;
    }
    for (int i = 0; i < R_COUNT; i++)
        a->refused[i] = cv_metrics_counter(
            opts->metrics, "canvass_ingest_refused_total",
            "Requests refused before reaching a shard, by reason (rate limits, validation, "
            "app keys and rights, user tokens)",
            "reason", refusal_names[i], NULL);
    return a;
}

void cv_admit_destroy(cv_admit_t **a_p)
{
    if (!a_p || !*a_p)
        return;
    cv_ratelimit_destroy(&(*a_p)->users);
    free(*a_p);
    *a_p = NULL;
}

void cv_admit_conn_init(const cv_admit_t *a, cv_admit_conn_t *c, uint64_t now_ns)
{
    c->app = NULL;
    cv_bucket_init(&c->bucket, &a->o.conn_rate, now_ns);
}

size_t cv_admit_users(const cv_admit_t *a)
{
    return a->users ? cv_ratelimit_size(a->users) : 0;
}

static cv_status_t refuse(cv_admit_t *a, int reason, cv_status_t st, char *err, size_t errlen,
                          const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static cv_status_t refuse(cv_admit_t *a, int reason, cv_status_t st, char *err, size_t errlen,
                          const char *fmt, ...)
{
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    cv_metric_inc(a->refused[reason]);
    return st;
}

/* A user id (valid UTF-8, checked) for an error text: ASCII controls, the
 * quote and the backslash escaped, at most 64 bytes of it, never cutting a
 * character in two. */
static const char *shown_user(const char *u, char *out, size_t cap)
{
    size_t k = 0, used = 0;
    const size_t limit = 64;
    while (u[k] && used < limit && used + 5 < cap) {
        unsigned char ch = (unsigned char)u[k];
        if (ch < 0x80) {
            if (ch < 0x20 || ch == 0x7f || ch == '\'' || ch == '\\')
                used += (size_t)snprintf(out + used, cap - used, "\\x%02x", ch);
            else
                out[used++] = (char)ch;
            k++;
            continue;
        }
        size_t n = ch >= 0xF0 ? 4 : ch >= 0xE0 ? 3 : 2;
        if (used + n >= limit || used + n + 4 >= cap)
            break;
        memcpy(out + used, u + k, n);
        used += n;
        k += n;
    }
    if (u[k] && used + 4 < cap) {
        memcpy(out + used, "...", 3);
        used += 3;
    }
    out[used] = '\0';
    return out;
}

/* Check 3 for a vote (keys in use, c->app set). */
static cv_status_t admit_vote(cv_admit_t *a, cv_admit_conn_t *c, const Canvass__V1__Vote *v,
                              uint64_t unix_s, char *err, size_t errlen)
{
    const char *name = cv_auth_app_name(c->app);
    unsigned rights = cv_auth_app_rights(c->app);
    if (!(rights & CV_AUTH_VOTE))
        return refuse(a, R_FORBIDDEN, CV_ST_FORBIDDEN, err, errlen, "app '%s' may not vote", name);
    int tier = cv_tier_parse(v->tier); /* valid: cv_validate checked it */
    if (tier != CV_TIER_MEMBER && !(rights & CV_AUTH_ASSERT_TIER))
        return refuse(a, R_FORBIDDEN, CV_ST_FORBIDDEN, err, errlen,
                      "app '%s' may not assert a tier", name);
    if (v->user_token.len == 0 && !(rights & CV_AUTH_REQUIRE_TOKEN))
        return CV_ST_OK;
    if (v->user_token.len == 0)
        return refuse(a, R_UNAUTHENTICATED, CV_ST_UNAUTHENTICATED, err, errlen,
                      "app '%s' requires a user token with every vote", name);
    cv_status_t st = cv_auth_token_check(c->app, v->user_id, cv_tier_name(tier), v->user_token.data,
                                         v->user_token.len, unix_s, err, errlen);
    return st == CV_ST_OK ? st : refuse(a, R_UNAUTHENTICATED, st, err, errlen, NULL);
}

/* Check 3 for a submit: the right, and the author's token.  A token names a
 * tier, which a submit does not: one signed for the user with any tier
 * will do. */
static cv_status_t admit_submit(cv_admit_t *a, cv_admit_conn_t *c, const Canvass__V1__Submit *s,
                                uint64_t unix_s, char *err, size_t errlen)
{
    const char *name = cv_auth_app_name(c->app);
    unsigned rights = cv_auth_app_rights(c->app);
    if (!(rights & CV_AUTH_SUBMIT))
        return refuse(a, R_FORBIDDEN, CV_ST_FORBIDDEN, err, errlen, "app '%s' may not submit", name);
    if (s->user_token.len == 0 && !(rights & CV_AUTH_REQUIRE_TOKEN))
        return CV_ST_OK;
    if (s->user_token.len == 0)
        return refuse(a, R_UNAUTHENTICATED, CV_ST_UNAUTHENTICATED, err, errlen,
                      "app '%s' requires a user token with every submit", name);
    cv_status_t st = CV_ST_UNAUTHENTICATED;
    char first[256] = "";
    for (int tier = 0; tier < CV_TIERS && st != CV_ST_OK; tier++) {
        st = cv_auth_token_check(c->app, s->user_id, cv_tier_name(tier), s->user_token.data,
                                 s->user_token.len, unix_s, err, errlen);
        if (st != CV_ST_OK && (tier == 0 || strstr(err, "expired")))
            snprintf(first, sizeof first, "%s", err); /* "expired" says the signature was good */
    }
    if (st == CV_ST_OK)
        return st;
    snprintf(err, errlen, "%s", first);
    return refuse(a, R_UNAUTHENTICATED, st, err, errlen, NULL);
}

cv_status_t cv_admit_request(cv_admit_t *a, cv_admit_conn_t *c, const Canvass__V1__Request *req,
                             uint64_t now_ns, uint64_t unix_s, char *err, size_t errlen)
{
    if (!cv_bucket_take(&c->bucket, &a->o.conn_rate, now_ns))
        return refuse(a, R_CONN_RATE, CV_ST_RATE_LIMITED, err, errlen,
                      "connection is over %g requests/s", a->o.conn_rate.rate);
    cv_status_t st = cv_validate_request(req, err, errlen);
    if (st != CV_ST_OK)
        return refuse(a, R_INVALID, st, err, errlen, NULL);

    /* The per-user limit is on votes (A9 "a per-user vote rate"): a submit
     * is bounded by its connection's limit, so an import of many features
     * by one author is not refused. */
    const char *user = req->op_case == CANVASS__V1__REQUEST__OP_VOTE ? req->vote->user_id : NULL;

    if (a->o.keys) {
        if (req->op_case == CANVASS__V1__REQUEST__OP_HELLO) {
            st = cv_auth_check_key(a->o.keys, req->hello->app_key, 0, &c->app, err, errlen);
            return st == CV_ST_OK ? st : refuse(a, R_UNAUTHENTICATED, st, err, errlen, NULL);
        }
        if (!c->app)
            return refuse(a, R_UNAUTHENTICATED, CV_ST_UNAUTHENTICATED, err, errlen,
                          "send Hello with an app key first");
        if (req->op_case == CANVASS__V1__REQUEST__OP_VOTE) {
            st = admit_vote(a, c, req->vote, unix_s, err, errlen);
            if (st != CV_ST_OK)
                return st;
        } else if (req->op_case == CANVASS__V1__REQUEST__OP_SUBMIT) {
            st = admit_submit(a, c, req->submit, unix_s, err, errlen);
            if (st != CV_ST_OK)
                return st;
        }
    }

    /* Out of memory for a new user's bucket lets the request through: the
     * connection limit still holds, and refusing would punish the user for
     * the server's trouble. */
    if (user && a->users && cv_ratelimit_take(a->users, user, strlen(user), now_ns) == 0) {
        char shown[96];
        return refuse(a, R_USER_RATE, CV_ST_RATE_LIMITED, err, errlen,
                      "user '%s' is over %g votes/s", shown_user(user, shown, sizeof shown),
                      a->o.user_rate.rate);
    }
    return CV_ST_OK;
}
