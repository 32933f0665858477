/* merges: merging duplicates across shards, crash-safe (see merges.h).
 *
 * The pending record is the FeatureEvent to broadcast once the merge
 * completes (history.h), so a merge finished by the background retry
 * announces itself exactly like one finished by the release manager's
 * command, with the time and title of the original request.
 */
#include "merges.h"
#include "cv_err.h"
#include "cv_id.h"
#include "cv_log.h"
#include "reply.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pub_merges {
    pub_history_t *history; /* borrowed */
    pub_shards_t *shards;   /* borrowed */
    cv_sock_t *pub;         /* borrowed */
    long timeout_ms;
    size_t pending;    /* records in the merges table, as last counted */
    uint64_t retry_at; /* next background run; 0: at the next tick */
    long backoff_ms;   /* wait after a run a shard did not answer */
};

/* Appended to UNAVAILABLE: once the merge is recorded it completes by
 * itself; before, nothing has changed. */
#define UNAVAILABLE_SUFFIX "; the merge will complete when it is run again"
#define UNCHECKED_SUFFIX "; nothing was merged"

/* Recounts the pending records (after a failed read, keeps the old count:
 * the next tick tries again). */
static void recount(pub_merges_t *m)
{
    Canvass__V1__FeatureEvent **evs = NULL;
    size_t n = 0;
    if (pub_history_merges(m->history, &evs, &n) == 0)
        m->pending = n;
    pub_history_merges_free(evs, n);
}

pub_merges_t *pub_merges_new(pub_history_t *history, pub_shards_t *shards, cv_sock_t *pub,
                             long timeout_ms)
{
    pub_merges_t *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->history = history;
    m->shards = shards;
    m->pub = pub;
    m->timeout_ms = timeout_ms;
    m->backoff_ms = PUB_MERGE_RETRY_MS;
    Canvass__V1__FeatureEvent **evs = NULL;
    size_t n = 0;
    int rc = pub_history_merges(history, &evs, &n);
    if (rc < 0) {
        cv_log(CV_LOG_ERROR, "msg=\"cannot read pending merges\" err=\"%s\"", cv_strerror(rc));
        free(m);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        cv_log(CV_LOG_WARN,
               "msg=\"merge pending since before the start; running it again\" "
               "src=%s dst=%s",
               evs[i]->feature_id, evs[i]->merged_into);
    pub_history_merges_free(evs, n);
    m->pending = n;
    /* Not at once: subscribers reconnecting to the new PUB socket would miss
     * the events of merges completed in the first moments. */
    m->retry_at = cv_now_ms() + PUB_MERGE_START_DELAY_MS;
    return m;
}

void pub_merges_destroy(pub_merges_t **m_p)
{
    if (!m_p || !*m_p)
        return;
    free(*m_p);
    *m_p = NULL;
}

size_t pub_merges_pending(const pub_merges_t *m)
{
    return m->pending;
}

/* ---- the two steps ---------------------------------------------------------- */

typedef struct {
    uint64_t moved, kept;
    uint64_t voters; /* SRC's users with a non-zero vote */
} step_result_t;

/* Runs the merge recorded in rec from the start: MergeOut, MergeIn, then
 * deletes the record.  On CV_ST_OK fills *res.  Otherwise err says why and
 * the record stays, except when SRC's shard refused the first step for good
 * (SRC gone, or merged elsewhere): nothing was moved and nothing will be. */
static cv_status_t run_steps(pub_merges_t *m, const Canvass__V1__FeatureEvent *rec,
                             step_result_t *res, char *err, size_t errlen)
{
    const char *src = rec->feature_id, *dst = rec->merged_into;
    Canvass__V1__MergeOut out = CANVASS__V1__MERGE_OUT__INIT;
    out.src = (char *)src;
    out.dst = (char *)dst;
    out.at_ms = rec->at_ms;
    Canvass__V1__TallyRequest req = CANVASS__V1__TALLY_REQUEST__INIT;
    req.op_case = CANVASS__V1__TALLY_REQUEST__OP_MERGE_OUT;
    req.merge_out = &out;
    Canvass__V1__TallyReply *out_reply = NULL, *in_reply = NULL;
    cv_status_t st = pub_reply_ask(m->shards, src, &req, CANVASS__V1__TALLY_REPLY__RESULT_MERGE,
                                   m->timeout_ms, &out_reply, err, errlen);
    if (st == CV_ST_NOT_FOUND || st == CV_ST_INVALID || st == CV_ST_CLOSED) {
        cv_log(CV_LOG_WARN, "msg=\"merge refused; dropped\" src=%s dst=%s err=\"%s\"", src, dst,
               err);
        int rc = pub_history_merge_del(m->history, src);
        if (rc < 0)
            cv_log(CV_LOG_ERROR, "msg=\"cannot delete pending merge\" src=%s err=\"%s\"", src,
                   cv_strerror(rc));
        return st;
    }
    if (st != CV_ST_OK)
        return st;

    Canvass__V1__MergeResult *votes = out_reply->merge;
    res->voters = 0;
    for (size_t i = 0; i < votes->n_votes; i++)
        res->voters += votes->votes[i]->value != 0;
    Canvass__V1__MergeIn in = CANVASS__V1__MERGE_IN__INIT;
    in.dst = (char *)dst;
    in.src = (char *)src;
    in.votes = votes->votes;
    in.n_votes = votes->n_votes;
    req.op_case = CANVASS__V1__TALLY_REQUEST__OP_MERGE_IN;
    req.merge_in = &in;
    st = pub_reply_ask(m->shards, dst, &req, CANVASS__V1__TALLY_REPLY__RESULT_MERGE, m->timeout_ms,
                       &in_reply, err, errlen);
    canvass__v1__tally_reply__free_unpacked(out_reply, NULL);
    if (st != CV_ST_OK) {
        if (st != CV_ST_UNAVAILABLE) {
            /* SRC is already merged: its votes must reach DST, so the record
             * stays and keeps being retried until someone looks. */
            char why[256];
            snprintf(why, sizeof why, "%s", err);
            snprintf(err, errlen,
                     "shard %d refused the votes of '%s' for '%s': %s; the merge stays pending",
                     pub_shards_for_feature(m->shards, dst), src, dst, why);
            cv_log(CV_LOG_ERROR, "msg=\"merge step refused\" src=%s dst=%s err=\"%s\"", src, dst,
                   err);
            st = CV_ST_INTERNAL;
        }
        return st;
    }
    res->moved = in_reply->merge->moved;
    res->kept = in_reply->merge->kept;
    canvass__v1__tally_reply__free_unpacked(in_reply, NULL);

    /* A record that cannot be deleted only means the merge runs again:
     * both steps are idempotent, so that moves nothing twice. */
    int rc = pub_history_merge_del(m->history, src);
    if (rc < 0)
        cv_log(CV_LOG_ERROR, "msg=\"cannot delete completed merge\" src=%s err=\"%s\"", src,
               cv_strerror(rc));
    cv_log(CV_LOG_INFO, "msg=\"merge complete\" src=%s dst=%s moved=%llu kept=%llu voters=%llu",
           src, dst, (unsigned long long)res->moved, (unsigned long long)res->kept,
           (unsigned long long)res->voters);
    return CV_ST_OK;
}

/* Broadcasts the completed merge's event. */
static void announce(pub_merges_t *m, Canvass__V1__FeatureEvent *rec, uint64_t voters)
{
    rec->voters = voters;
    pub_reply_event(m->pub, rec);
}

/* ---- the REP action ---------------------------------------------------------- */

/* FeatureQuery for id.  On CV_ST_OK *reply holds the standing (with its
 * record). */
static cv_status_t query(pub_merges_t *m, const char *id, Canvass__V1__TallyReply **reply,
                         char *err, size_t errlen)
{
    Canvass__V1__FeatureQuery q = CANVASS__V1__FEATURE_QUERY__INIT;
    q.feature_id = (char *)id;
    Canvass__V1__TallyRequest req = CANVASS__V1__TALLY_REQUEST__INIT;
    req.op_case = CANVASS__V1__TALLY_REQUEST__OP_FEATURE;
    req.feature = &q;
    cv_status_t st = pub_reply_ask(m->shards, id, &req, CANVASS__V1__TALLY_REPLY__RESULT_FEATURE,
                                   m->timeout_ms, reply, err, errlen);
    if (st == CV_ST_OK && !(*reply)->feature->feature) {
        snprintf(err, errlen, "shard %d answered a standing without its feature",
                 pub_shards_for_feature(m->shards, id));
        canvass__v1__tally_reply__free_unpacked(*reply, NULL);
        *reply = NULL;
        st = CV_ST_INTERNAL;
    }
    return st;
}

/* Checks the merge against the pending ones; *mine is set to the pending
 * record of this very merge (borrowed from evs), if any. */
static cv_status_t check_pending(Canvass__V1__FeatureEvent **evs, size_t n, const char *src,
                                 const char *dst, Canvass__V1__FeatureEvent **mine, char *err,
                                 size_t errlen)
{
    *mine = NULL;
    for (size_t i = 0; i < n; i++) {
        const char *psrc = evs[i]->feature_id, *pdst = evs[i]->merged_into;
        if (!strcmp(psrc, src) && !strcmp(pdst, dst)) {
            *mine = evs[i];
            continue;
        }
        /* Another merge into the same DST is fine; touching SRC, or taking
         * DST away, is not. */
        if (!strcmp(psrc, src) || !strcmp(pdst, src) || !strcmp(psrc, dst)) {
            snprintf(err, errlen, "a merge of '%s' into '%s' is pending; it completes first", psrc,
                     pdst);
            return CV_ST_INVALID;
        }
    }
    return CV_ST_OK;
}

static uint8_t *merge_reply(const char *src, const char *dst, const step_result_t *res, size_t *len)
{
    Canvass__V1__MergeResult mr = CANVASS__V1__MERGE_RESULT__INIT;
    mr.src = (char *)src;
    mr.dst = (char *)dst;
    mr.moved = res->moved;
    mr.kept = res->kept;
    Canvass__V1__AdminReply r = CANVASS__V1__ADMIN_REPLY__INIT;
    r.result_case = CANVASS__V1__ADMIN_REPLY__RESULT_MERGE;
    r.merge = &mr;
    return pub_reply_pack(&r, len);
}

/* Checks both features on their shards before anything is recorded.
 * Returns CV_ST_OK with *done set when SRC is already merged into DST, or
 * with *title_out (a new string) set to SRC's title to record. */
static cv_status_t check_features(pub_merges_t *m, const char *src, const char *dst, int *done,
                                  char **title_out, char *err, size_t errlen)
{
    Canvass__V1__TallyReply *rs = NULL, *rd = NULL;
    *done = 0;
    *title_out = NULL;
    cv_status_t st = query(m, src, &rs, err, errlen);
    if (st == CV_ST_OK)
        st = query(m, dst, &rd, err, errlen);
    if (st != CV_ST_OK)
        goto out;
    const Canvass__V1__FeatureRecord *fs = rs->feature->feature, *fd = rd->feature->feature;
    if (!strcmp(fs->status, "merged")) {
        if (!strcmp(fs->merged_into, dst)) {
            *done = 1;
        } else {
            snprintf(err, errlen, "feature '%s' was already merged into '%.64s'", src,
                     fs->merged_into);
            st = CV_ST_INVALID;
        }
        goto out;
    }
    if (!strcmp(fd->status, "merged") || !strcmp(fd->status, "shipped") ||
        !strcmp(fd->status, "declined")) {
        snprintf(err, errlen, "feature '%s' is %s and cannot take votes", dst, fd->status);
        st = CV_ST_INVALID;
        goto out;
    }
    if (!(*title_out = strdup(fs->title))) {
        snprintf(err, errlen, "out of memory");
        st = CV_ST_INTERNAL;
    }
out:
    if (rs)
        canvass__v1__tally_reply__free_unpacked(rs, NULL);
    if (rd)
        canvass__v1__tally_reply__free_unpacked(rd, NULL);
    return st;
}

uint8_t *pub_merges_run(pub_merges_t *m, const char *src, const char *dst, uint64_t at_ms,
                        size_t *len)
{
    char err[512];
    cv_status_t st;
    if ((st = pub_reply_check_id(src, err, sizeof err)) != CV_ST_OK ||
        (st = pub_reply_check_id(dst, err, sizeof err)) != CV_ST_OK)
        return pub_reply_error(st, err, len);
    if (!strcmp(src, dst)) {
        snprintf(err, sizeof err, "cannot merge feature '%s' into itself", src);
        return pub_reply_error(CV_ST_INVALID, err, len);
    }
    Canvass__V1__FeatureEvent **evs = NULL, *mine = NULL;
    size_t n = 0;
    int rc = pub_history_merges(m->history, &evs, &n);
    if (rc < 0) {
        snprintf(err, sizeof err, "cannot read pending merges: %s", cv_strerror(rc));
        return pub_reply_error(CV_ST_INTERNAL, err, len);
    }
    m->pending = n;
    uint8_t *out = NULL;
    char *title = NULL;
    step_result_t res = {0};
    Canvass__V1__FeatureEvent fresh = CANVASS__V1__FEATURE_EVENT__INIT;
    Canvass__V1__FeatureEvent *rec;
    int recorded = 0; /* a pending record exists for this merge */
    if ((st = check_pending(evs, n, src, dst, &mine, err, sizeof err)) != CV_ST_OK)
        goto fail;
    if (mine) {
        rec = mine; /* run again with its original time */
        recorded = 1;
    } else {
        int done;
        if ((st = check_features(m, src, dst, &done, &title, err, sizeof err)) != CV_ST_OK)
            goto fail;
        if (done) { /* complete before: nothing moves, nothing to announce */
            out = merge_reply(src, dst, &res, len);
            goto done;
        }
        fresh.kind = "merged";
        fresh.feature_id = (char *)src;
        fresh.status = "merged";
        fresh.merged_into = (char *)dst;
        fresh.at_ms = at_ms;
        fresh.title = title;
        if ((rc = pub_history_merge_put(m->history, &fresh)) < 0) {
            snprintf(err, sizeof err, "cannot record the merge: %s", cv_strerror(rc));
            st = CV_ST_INTERNAL;
            goto fail;
        }
        m->pending++;
        rec = &fresh;
        recorded = 1;
    }
    cv_log(CV_LOG_INFO, "msg=\"merge started\" src=%s dst=%s again=%d", src, dst, mine != NULL);
    st = run_steps(m, rec, &res, err, sizeof err);
    recount(m);
    if (st != CV_ST_OK)
        goto fail;
    announce(m, rec, res.voters);
    out = merge_reply(src, dst, &res, len);
    goto done;

fail:
    if (st == CV_ST_UNAVAILABLE) {
        const char *suffix = recorded ? UNAVAILABLE_SUFFIX : UNCHECKED_SUFFIX;
        if (strlen(err) + strlen(suffix) < sizeof err)
            strcat(err, suffix);
        /* The shard was just waited for: the background retry comes later. */
        if (recorded)
            m->retry_at = cv_now_ms() + (uint64_t)m->backoff_ms;
    }
    out = pub_reply_error(st, err, len);
done:
    free(title);
    pub_history_merges_free(evs, n);
    return out;
}

/* ---- the background retry ------------------------------------------------------ */

long pub_merges_tick(pub_merges_t *m)
{
    if (m->pending == 0)
        return -1;
    uint64_t now = cv_now_ms();
    if (now < m->retry_at)
        return (long)(m->retry_at - now);
    Canvass__V1__FeatureEvent **evs = NULL;
    size_t n = 0;
    int rc = pub_history_merges(m->history, &evs, &n);
    int silent = 0;
    if (rc < 0) {
        cv_log(CV_LOG_ERROR, "msg=\"cannot read pending merges\" err=\"%s\"", cv_strerror(rc));
        n = 0;
    }
    for (size_t i = 0; i < n && !silent; i++) {
        char err[512];
        step_result_t res = {0};
        cv_status_t st = run_steps(m, evs[i], &res, err, sizeof err);
        if (st == CV_ST_OK) {
            announce(m, evs[i], res.voters);
        } else {
            cv_log(CV_LOG_WARN,
                   "msg=\"pending merge not complete yet\" src=%s dst=%s "
                   "status=%s err=\"%s\"",
                   evs[i]->feature_id, evs[i]->merged_into, cv_status_name(st), err);
            /* A silent shard would make every other merge wait as long:
             * they are tried on the next round. */
            silent = st == CV_ST_UNAVAILABLE;
        }
    }
    pub_history_merges_free(evs, n);
    recount(m);
    if (m->pending == 0) {
        m->backoff_ms = PUB_MERGE_RETRY_MS;
        return -1;
    }
    long wait = m->backoff_ms;
    if (silent && m->backoff_ms < PUB_MERGE_RETRY_MAX_MS)
        m->backoff_ms =
            m->backoff_ms * 2 > PUB_MERGE_RETRY_MAX_MS ? PUB_MERGE_RETRY_MAX_MS : m->backoff_ms * 2;
    else if (!silent)
        m->backoff_ms = PUB_MERGE_RETRY_MS;
    m->retry_at = cv_now_ms() + (uint64_t)wait;
    return wait;
}
