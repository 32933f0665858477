/* lifecycle: status changes and the two steps of a merge (see shard.h).
 *
 * Each runs inside the group's write transaction and writes its outcome into
 * a reply; a request that cannot be served (bad fields, unknown feature)
 * only fails its own reply.  Everything here is idempotent, because publish
 * re-runs a change that was interrupted:
 *   - setting the status and release a feature already has adds nothing;
 *   - merge_out on a feature already merged into the same target only
 *     reads its votes again;
 *   - merge_in recognises a vote it already moved by its stamp (stamps are
 *     unique per command), so a re-run moves nothing and counts nothing
 *     twice.
 * Votes moved by merge_in keep their tier and stamp but add nothing to the
 * target's trend: they were not gained in this cycle.
 */
#include "cv_err.h"
#include "cv_log.h"
#include "cv_validate.h"
#include "shard_priv.h"

#include <string.h>

/* The statuses set_status may set; "merged" comes only from merge_out. */
static const char *const settable[] = {"open", "planned", "in_progress", "shipped", "declined"};

static int settable_status(const char *status)
{
    for (size_t i = 0; i < sizeof settable / sizeof *settable; i++)
        if (!strcmp(status, settable[i]))
            return 1;
    return 0;
}


static int is_merged(const Canvass__V1__FeatureRecord *rec)
{
    return !strcmp(rec->status, "merged");
}

/* ---- set_status ------------------------------------------------------------ */

int cv__shard_set_status(cv_shard_t *s, cv_txn_t *t, const Canvass__V1__SetStatus *req,
                         cv_shard_reply_t *r)
{
    if (!cv__id_ok(r, "set_status.feature_id", req->feature_id))
        return 0;
    if (!strcmp(req->status, "merged"))
        return cv__reply_fail(r, CV_ST_INVALID, "status 'merged' is set only by merging");
    if (!settable_status(req->status)) {
        size_t len = strlen(req->status);
        /* Echo the status only when it is short, printable text. */
        if (len <= 32 && cv_utf8_valid(req->status, len))
            return cv__reply_fail(r, CV_ST_INVALID, "unknown status '%s'", req->status);
        return cv__reply_fail(r, CV_ST_INVALID, "unknown status (%zu bytes)", len);
    }
    size_t rlen = strlen(req->release);
    if (rlen > CV_SHARD_RELEASE_MAX || !cv_utf8_valid(req->release, rlen))
        return cv__reply_fail(r, CV_ST_INVALID, "release must be at most %d bytes of UTF-8",
                              CV_SHARD_RELEASE_MAX);

    Canvass__V1__FeatureRecord *rec;
    int rc = cv__reply_feature(t, r, req->feature_id, &rec);
    if (rc < 0 || !rec)
        return rc;
    uint64_t now = cv__shard_now(s);
    if (is_merged(rec)) {
        cv__reply_fail(r, CV_ST_INVALID,
                       "feature '%s' was merged into '%s'; its status cannot "
                       "change",
                       req->feature_id, rec->merged_into);
    } else if (!strcmp(rec->status, req->status) && !strcmp(rec->release, req->release)) {
        /* Already so: a repeated request changes nothing. */
        return cv__reply_standing(s, t, r, &rec, s->cycle, now);
    } else {
        Canvass__V1__FeatureRecord *after = NULL;
        rc = cv__feature_change(t, rec, req->status, req->release, rec->merged_into,
                                req->at_ms ? req->at_ms : now, &after);
        if (rc == 0) {
            cv_log(CV_LOG_INFO, "msg=\"status changed\" feature=%s from=%s to=%s release=\"%s\"",
                   req->feature_id, rec->status, req->status, req->release);
            rc = cv__reply_standing(s, t, r, &after, s->cycle, now);
        }
    }
    canvass__v1__feature_record__free_unpacked(rec, NULL);
    return rc;
}

/* ---- merge_out ------------------------------------------------------------- */

typedef struct {
    cv_shard_reply_t *r;
    const char *id;
    size_t idlen;
} votes_walk_t;

/* Adds every record of one feature, retracts included, to the reply. */
static int collect_vote(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    votes_walk_t *w = arg;
    const char *f, *u;
    size_t flen, ulen;
    if (cv_vote_key_split(key, klen, &f, &flen, &u, &ulen) < 0 || flen != w->idlen ||
        memcmp(f, w->id, flen) != 0)
        return 1; /* past the feature's votes */
    cv_vote_rec_t rec;
    if (cv_vote_rec_decode(val, vlen, &rec) < 0) {
        /* Moving it would need its value; --check reports it. */
        cv_log(CV_LOG_ERROR, "msg=\"unreadable vote record not merged\" feature=%s", w->id);
        return 0;
    }
    return cv__reply_add_voter(w->r, u, ulen, &rec);
}

int cv__shard_merge_out(cv_shard_t *s, cv_txn_t *t, const Canvass__V1__MergeOut *req,
                        cv_shard_reply_t *r)
{
    if (!cv__id_ok(r, "merge_out.src", req->src) || !cv__id_ok(r, "merge_out.dst", req->dst))
        return 0;
    if (!strcmp(req->src, req->dst))
        return cv__reply_fail(r, CV_ST_INVALID, "cannot merge feature '%s' into itself", req->src);
    Canvass__V1__FeatureRecord *rec;
    int rc = cv__reply_feature(t, r, req->src, &rec);
    if (rc < 0 || !rec)
        return rc;
    if (is_merged(rec) && strcmp(rec->merged_into, req->dst) != 0) {
        cv__reply_fail(r, CV_ST_INVALID, "feature '%s' was already merged into '%s'", req->src,
                       rec->merged_into);
        canvass__v1__feature_record__free_unpacked(rec, NULL);
        return 0;
    }
    if (!is_merged(rec)) {
        rc = cv__feature_change(t, rec, "merged", rec->release, req->dst,
                                req->at_ms ? req->at_ms : cv__shard_now(s), NULL);
        if (rc == 0)
            cv_log(CV_LOG_INFO, "msg=\"feature merged out\" feature=%s into=%s from=%s", req->src,
                   req->dst, rec->status);
    }
    canvass__v1__feature_record__free_unpacked(rec, NULL);
    if (rc < 0)
        return rc;

    /* The votes as of this transaction: from now on new votes for SRC are
     * redirected, so this list is all DST will ever need from SRC. */
    votes_walk_t w = {r, req->src, strlen(req->src)};
    uint8_t from[CV_FEATURE_ID_MAX + 1];
    memcpy(from, w.id, w.idlen);
    from[w.idlen] = '\0';
    rc = cv_store_iter(t, CV_SHARD_VOTES, from, w.idlen + 1, collect_vote, &w);
    if (rc < 0)
        return rc;
    return cv__reply_merge(r, req->src, req->dst, 0, 0);
}

/* ---- merge_in -------------------------------------------------------------- */

/* Checks every moved vote before anything is applied.  Returns 1, or 0
 * after filling r with INVALID. */
static int moved_votes_ok(const Canvass__V1__MergeIn *req, cv_shard_reply_t *r)
{
    for (size_t i = 0; i < req->n_votes; i++) {
        const Canvass__V1__Voter *v = req->votes[i];
        size_t ulen = strlen(v->user_id);
        if (ulen < 1 || ulen > CV_USER_ID_MAX) {
            cv__reply_fail(r, CV_ST_INVALID, "merge_in vote %zu: user_id must be 1-%d bytes", i,
                           CV_USER_ID_MAX);
            return 0;
        }
        if (v->value < -1 || v->value > 1) {
            cv__reply_fail(r, CV_ST_INVALID, "merge_in vote %zu: value must be -1, 0 or 1, got %d",
                           i, (int)v->value);
            return 0;
        }
        if (cv_tier_parse(v->tier) < 0) {
            cv__reply_fail(r, CV_ST_INVALID,
                           "merge_in vote %zu: tier must be member, core or honorary", i);
            return 0;
        }
    }
    return 1;
}

typedef struct {
    uint64_t moved, kept;
    int counts_changed;
} merge_tally_t;

/* Offers one moved vote to DST (see shard.h for the rule). */
static int merge_one(cv_txn_t *t, const char *dst, size_t dlen, const Canvass__V1__Voter *v,
                     cv_counts_t *c, merge_tally_t *m)
{
    uint8_t key[CV_VOTE_KEY_MAX];
    size_t klen;
    if (cv_vote_key_make(dst, dlen, v->user_id, strlen(v->user_id), key, &klen) < 0)
        return 0; /* checked by moved_votes_ok: cannot happen */
    cv_vote_rec_t moved = {(int8_t)v->value, (uint8_t)cv_tier_parse(v->tier), v->stamp};
    cv_vote_rec_t old;
    const cv_vote_rec_t *oldp = NULL;
    const void *val;
    size_t vlen;
    int rc = cv_store_get(t, CV_SHARD_VOTES, key, klen, &val, &vlen);
    if (rc == 0) {
        if (cv_vote_rec_decode(val, vlen, &old) < 0) {
            cv_log(CV_LOG_ERROR, "msg=\"unreadable vote record kept in a merge\" feature=%s", dst);
            return 0;
        }
        oldp = &old;
    } else if (rc != CV_ENOTFOUND) {
        return rc;
    }

    if (oldp && oldp->stamp == moved.stamp)
        return 0; /* the same command: moved by an earlier run, or redirected */
    if (oldp && oldp->value != 0) {
        if (moved.value != 0)
            m->kept++; /* voted on both: DST's vote stands */
        return 0;
    }
    if (oldp && oldp->stamp >= moved.stamp)
        return 0; /* a newer retract on DST stands */
    if (moved.value == 0)
        return 0; /* nothing to move */
    if (cv_counts_move(c, oldp, &moved) < 0)
        cv_log(CV_LOG_ERROR,
               "msg=\"counters were out of step with the votes (run --check)\" "
               "feature=%s",
               dst);
    uint8_t rec[CV_VOTE_REC_SIZE];
    cv_vote_rec_encode(&moved, rec);
    if ((rc = cv_store_put(t, CV_SHARD_VOTES, key, klen, rec, sizeof rec)) < 0)
        return rc;
    m->moved++;
    m->counts_changed = 1;
    return 0;
}

int cv__shard_merge_in(cv_shard_t *s, cv_txn_t *t, const Canvass__V1__MergeIn *req,
                       cv_shard_reply_t *r)
{
    if (!cv__id_ok(r, "merge_in.dst", req->dst) || !cv__id_ok(r, "merge_in.src", req->src))
        return 0;
    if (!strcmp(req->src, req->dst))
        return cv__reply_fail(r, CV_ST_INVALID, "cannot merge feature '%s' into itself", req->src);
    if (!moved_votes_ok(req, r))
        return 0;
    Canvass__V1__FeatureRecord *rec;
    int rc = cv__reply_feature(t, r, req->dst, &rec);
    if (rc < 0 || !rec)
        return rc;
    if (is_merged(rec)) {
        /* Votes moved here would be stranded: they belong further down the
         * chain, which publish should have followed before merging. */
        cv__reply_fail(r, CV_ST_INVALID,
                       "feature '%s' was merged into '%s'; merge into '%s' "
                       "instead",
                       req->dst, rec->merged_into, rec->merged_into);
        canvass__v1__feature_record__free_unpacked(rec, NULL);
        return 0;
    }
    canvass__v1__feature_record__free_unpacked(rec, NULL);

    size_t dlen = strlen(req->dst);
    cv_counts_t c;
    if ((rc = cv__counts_get(t, req->dst, dlen, &c)) < 0)
        return rc;
    merge_tally_t m = {0};
    for (size_t i = 0; i < req->n_votes; i++)
        if ((rc = merge_one(t, req->dst, dlen, req->votes[i], &c, &m)) < 0)
            return rc;
    if (m.counts_changed && (rc = cv__counts_put(t, req->dst, dlen, &c)) < 0)
        return rc;
    cv_log(CV_LOG_INFO,
           "msg=\"votes merged in\" feature=%s from=%s offered=%zu moved=%llu "
           "kept=%llu",
           req->dst, req->src, req->n_votes, (unsigned long long)m.moved,
           (unsigned long long)m.kept);
    return cv__reply_merge(r, req->src, req->dst, m.moved, m.kept);
}
