/* reply: packing replies and events, and reading a shard's answer about one
 * feature (see reply.h). */
#include "reply.h"
#include "cv_err.h"
#include "cv_log.h"
#include "cv_validate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint8_t *pub_reply_pack(Canvass__V1__AdminReply *r, size_t *len)
{
    /* Error texts may quote what a client or a shard sent: never pass on
     * bytes a strict decoder would refuse the whole reply for. */
    char *clean = cv_utf8_sanitized(r->error);
    char *error = r->error;
    if (clean)
        r->error = clean;
    uint8_t *buf = cv_codec_pack(&r->base, len);
    r->error = error;
    free(clean);
    return buf;
}

uint8_t *pub_reply_error(cv_status_t st, const char *err, size_t *len)
{
    Canvass__V1__AdminReply r = CANVASS__V1__ADMIN_REPLY__INIT;
    r.status = st;
    r.error = (char *)err;
    return pub_reply_pack(&r, len);
}

void pub_reply_event(cv_sock_t *pub, const Canvass__V1__FeatureEvent *ev)
{
    size_t len;
    Canvass__V1__FeatureEvent clean_ev = *ev; /* a shard's title may not be UTF-8 */
    char *title = cv_utf8_sanitized(ev->title);
    if (title)
        clean_ev.title = title;
    uint8_t *buf = cv_codec_pack(&clean_ev.base, &len);
    free(title);
    int rc = CV_ENOMEM;
    if (buf) {
        const void *parts[2] = {"feature", buf};
        size_t sizes[2] = {7, len};
        rc = cv_sock_send(pub, 2, parts, sizes, 1);
        free(buf);
    }
    if (rc < 0)
        cv_log(CV_LOG_WARN, "msg=\"cannot broadcast feature event\" kind=%s feature=%s err=\"%s\"",
               ev->kind, ev->feature_id, cv_strerror(rc));
    else
        cv_log(CV_LOG_INFO,
               "msg=\"feature event\" kind=%s feature=%s status=%s merged_into=%s voters=%llu",
               ev->kind, ev->feature_id, ev->status, ev->merged_into,
               (unsigned long long)ev->voters);
}

cv_status_t pub_reply_check_id(const char *feature_id, char *err, size_t errlen)
{
    if (cv_feature_id_valid(feature_id, strlen(feature_id)))
        return CV_ST_OK;
    snprintf(err, errlen, "bad feature id '%.64s' (1-64 bytes of [A-Za-z0-9_-])", feature_id);
    return CV_ST_INVALID;
}

cv_status_t pub_reply_ask(pub_shards_t *sh, const char *feature_id, Canvass__V1__TallyRequest *req,
                          Canvass__V1__TallyReply__ResultCase want, long timeout_ms,
                          Canvass__V1__TallyReply **reply, char *err, size_t errlen)
{
    int shard = pub_shards_for_feature(sh, feature_id);
    Canvass__V1__TallyReply *r = NULL;
    cv_status_t st = pub_shards_call(sh, shard, req, timeout_ms, &r, err, errlen);
    *reply = NULL;
    if (st != CV_ST_OK)
        return st;
    switch (r->status) {
    case CV_ST_OK:
        if (r->result_case == want) {
            *reply = r;
            return CV_ST_OK;
        }
        snprintf(err, errlen, "shard %d answered OK without the expected result", shard);
        st = CV_ST_INTERNAL;
        break;
    case CV_ST_NOT_FOUND:
    case CV_ST_INVALID:
    case CV_ST_CLOSED:
        /* The release manager's mistake, in the shard's words (or the
         * status's name when a shard gave none: never an empty error). */
        snprintf(err, errlen, "%s", r->error && *r->error ? r->error : cv_status_name(r->status));
        st = r->status;
        break;
    default:
        snprintf(err, errlen, "shard %d answered %s: %s", shard, cv_status_name(r->status),
                 r->error);
        st = r->status == CV_ST_UNAVAILABLE ? CV_ST_UNAVAILABLE : CV_ST_INTERNAL;
        break;
    }
    if (st == CV_ST_INTERNAL)
        cv_log(CV_LOG_ERROR, "msg=\"unexpected shard answer\" feature=%s err=\"%s\"", feature_id,
               err);
    canvass__v1__tally_reply__free_unpacked(r, NULL);
    return st;
}
