/* features: show, status, voters and the feature table; merges are handed
 * to merges.c (see features.h).  Replies borrow from the shards' unpacked
 * replies, which are freed only after packing. */
#include "features.h"
#include "cv_err.h"
#include "cv_id.h"
#include "cv_log.h"
#include "merges.h"
#include "reply.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pub_features {
    pub_cycles_t *cycles; /* borrowed */
    pub_shards_t *shards; /* borrowed */
    cv_sock_t *pub;       /* borrowed */
    long timeout_ms;
    uint64_t last_at; /* the last time handed out by next_at() */
    pub_merges_t *merges;
};

pub_features_t *pub_features_new(pub_cycles_t *cycles, pub_shards_t *shards, cv_sock_t *pub,
                                 long timeout_ms)
{
    pub_features_t *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->cycles = cycles;
    f->shards = shards;
    f->pub = pub;
    f->timeout_ms = timeout_ms;
    f->merges = pub_merges_new(pub_cycles_history(cycles), shards, pub, timeout_ms);
    if (!f->merges) {
        free(f);
        return NULL;
    }
    return f;
}

void pub_features_destroy(pub_features_t **f_p)
{
    if (!f_p || !*f_p)
        return;
    pub_merges_destroy(&(*f_p)->merges);
    free(*f_p);
    *f_p = NULL;
}

long pub_features_tick(pub_features_t *f)
{
    return pub_merges_tick(f->merges);
}

/* Wall-clock ms, but always past the previous value (see features.h). */
static uint64_t next_at(pub_features_t *f)
{
    uint64_t now = cv_now_ms();
    f->last_at = now > f->last_at ? now : f->last_at + 1;
    return f->last_at;
}

/* Asks the owning shard for one feature's standing.  On CV_ST_OK *reply
 * holds it, with its record. */
static cv_status_t query_feature(pub_features_t *f, const char *id, Canvass__V1__TallyReply **reply,
                                 char *err, size_t errlen)
{
    Canvass__V1__FeatureQuery q = CANVASS__V1__FEATURE_QUERY__INIT;
    q.feature_id = (char *)id;
    Canvass__V1__TallyRequest req = CANVASS__V1__TALLY_REQUEST__INIT;
    req.op_case = CANVASS__V1__TALLY_REQUEST__OP_FEATURE;
    req.feature = &q;
    return pub_reply_ask(f->shards, id, &req, CANVASS__V1__TALLY_REPLY__RESULT_FEATURE,
                         f->timeout_ms, reply, err, errlen);
}

/* ---- show ------------------------------------------------------------------ */

/* AdminReply{feature: FeatureDetail} for a standing the shard sent: its
 * ranks in the closed cycles and in the live list.  When live_required is
 * 0, a live list that cannot be had (a shard silent) leaves live_rank and
 * live_score 0 and is logged: the caller's change is committed anyway. */
static uint8_t *detail_reply(pub_features_t *f, Canvass__V1__FeatureStanding *standing,
                             int live_required, size_t *len)
{
    char err[512];
    const char *id = standing->feature->feature_id;
    Canvass__V1__CycleRank *ranks = NULL, **ptrs = NULL;
    size_t n = 0;
    cv_status_t st = pub_cycles_feature_ranks(f->cycles, id, &ranks, &n, err, sizeof err);
    if (st != CV_ST_OK)
        return pub_reply_error(st, err, len);
    Canvass__V1__FeatureDetail d = CANVASS__V1__FEATURE_DETAIL__INIT;
    d.standing = standing;
    st = pub_cycles_live_rank(f->cycles, id, &d.live_rank, &d.live_score, err, sizeof err);
    if (st != CV_ST_OK) {
        if (live_required) {
            free(ranks);
            return pub_reply_error(st, err, len);
        }
        cv_log(CV_LOG_WARN, "msg=\"live rank unavailable\" feature=%s err=\"%s\"", id, err);
        d.live_rank = 0;
        d.live_score = 0;
    }
    uint8_t *out = NULL;
    if (n && !(ptrs = malloc(n * sizeof *ptrs)))
        goto done;
    for (size_t i = 0; i < n; i++)
        ptrs[i] = &ranks[i];
    d.ranks = ptrs;
    d.n_ranks = n;
    Canvass__V1__AdminReply r = CANVASS__V1__ADMIN_REPLY__INIT;
    r.result_case = CANVASS__V1__ADMIN_REPLY__RESULT_FEATURE;
    r.feature = &d;
    out = pub_reply_pack(&r, len);
done:
    free(ptrs);
    free(ranks);
    return out;
}

uint8_t *pub_features_show(pub_features_t *f, const Canvass__V1__FeatureShow *q, size_t *len)
{
    char err[512];
    Canvass__V1__TallyReply *reply = NULL;
    cv_status_t st = pub_reply_check_id(q->feature_id, err, sizeof err);
    if (st == CV_ST_OK)
        st = query_feature(f, q->feature_id, &reply, err, sizeof err);
    if (st == CV_ST_OK && !reply->feature->feature) {
        snprintf(err, sizeof err, "shard %d answered a standing without its feature",
                 pub_shards_for_feature(f->shards, q->feature_id));
        st = CV_ST_INTERNAL;
    }
    uint8_t *out =
        st == CV_ST_OK ? detail_reply(f, reply->feature, 1, len) : pub_reply_error(st, err, len);
    if (reply)
        canvass__v1__tally_reply__free_unpacked(reply, NULL);
    return out;
}

/* ---- status ---------------------------------------------------------------- */

static const char *const settable[] = {"open", "planned", "in_progress", "shipped", "declined"};

static cv_status_t check_status(const Canvass__V1__FeatureStatus *q, char *err, size_t errlen)
{
    cv_status_t st = pub_reply_check_id(q->feature_id, err, errlen);
    if (st != CV_ST_OK)
        return st;
    if (!strcmp(q->status, "merged")) {
        snprintf(err, errlen, "use merge to merge a feature");
        return CV_ST_INVALID;
    }
    int known = 0;
    for (size_t i = 0; i < sizeof settable / sizeof *settable; i++)
        known |= !strcmp(q->status, settable[i]);
    if (!known) {
        snprintf(err, errlen,
                 "unknown status '%.32s' (open, planned, in_progress, shipped, declined)",
                 q->status);
        return CV_ST_INVALID;
    }
    if (*q->release && strcmp(q->status, "shipped")) {
        snprintf(err, errlen, "a release is only given with status shipped");
        return CV_ST_INVALID;
    }
    return CV_ST_OK;
}

uint8_t *pub_features_status(pub_features_t *f, const Canvass__V1__FeatureStatus *q, size_t *len)
{
    char err[512];
    cv_status_t st = check_status(q, err, sizeof err);
    if (st != CV_ST_OK)
        return pub_reply_error(st, err, len);
    Canvass__V1__SetStatus set = CANVASS__V1__SET_STATUS__INIT;
    set.feature_id = q->feature_id;
    set.status = q->status;
    set.release = q->release;
    set.at_ms = next_at(f);
    Canvass__V1__TallyRequest req = CANVASS__V1__TALLY_REQUEST__INIT;
    req.op_case = CANVASS__V1__TALLY_REQUEST__OP_SET_STATUS;
    req.set_status = &set;
    Canvass__V1__TallyReply *reply = NULL;
    st = pub_reply_ask(f->shards, q->feature_id, &req, CANVASS__V1__TALLY_REPLY__RESULT_FEATURE,
                       f->timeout_ms, &reply, err, sizeof err);
    if (st == CV_ST_OK && !reply->feature->feature) {
        snprintf(err, sizeof err, "shard %d answered a standing without its feature",
                 pub_shards_for_feature(f->shards, q->feature_id));
        st = CV_ST_INTERNAL;
    }
    if (st != CV_ST_OK) {
        if (reply)
            canvass__v1__tally_reply__free_unpacked(reply, NULL);
        return pub_reply_error(st, err, len);
    }
    Canvass__V1__FeatureStanding *standing = reply->feature;
    const Canvass__V1__FeatureRecord *rec = standing->feature;
    /* A change appends a history entry with exactly this request's time;
     * setting what the feature already has appends nothing. */
    const Canvass__V1__StatusChange *last =
        rec->n_history ? rec->history[rec->n_history - 1] : NULL;
    int changed = last && last->at_ms == set.at_ms && !strcmp(last->status, q->status);
    cv_log(CV_LOG_INFO, "msg=\"status set\" feature=%s status=%s changed=%d", rec->feature_id,
           rec->status, changed);
    uint8_t *out = detail_reply(f, standing, 0, len);
    if (changed) {
        Canvass__V1__FeatureEvent ev = CANVASS__V1__FEATURE_EVENT__INIT;
        ev.kind = strcmp(rec->status, "shipped") ? "status" : "shipped";
        ev.feature_id = rec->feature_id;
        ev.status = rec->status;
        ev.release = rec->release;
        ev.voters = standing->voters;
        ev.at_ms = set.at_ms;
        ev.title = rec->title;
        pub_reply_event(f->pub, &ev);
    }
    canvass__v1__tally_reply__free_unpacked(reply, NULL);
    return out;
}

/* ---- merge, voters, list ------------------------------------------------------- */

uint8_t *pub_features_merge(pub_features_t *f, const Canvass__V1__FeatureMerge *q, size_t *len)
{
    return pub_merges_run(f->merges, q->src, q->dst, next_at(f), len);
}

uint8_t *pub_features_voters(pub_features_t *f, const Canvass__V1__VotersQuery *q, size_t *len)
{
    char err[512];
    cv_status_t st = pub_reply_check_id(q->feature_id, err, sizeof err);
    if (st != CV_ST_OK)
        return pub_reply_error(st, err, len);
    /* The query goes as it came: the shard pages (limit 0 = 100, at most
     * 1000) and checks `after`. */
    Canvass__V1__TallyRequest req = CANVASS__V1__TALLY_REQUEST__INIT;
    req.op_case = CANVASS__V1__TALLY_REQUEST__OP_VOTERS;
    req.voters = (Canvass__V1__VotersQuery *)q;
    Canvass__V1__TallyReply *reply = NULL;
    st = pub_reply_ask(f->shards, q->feature_id, &req, CANVASS__V1__TALLY_REPLY__RESULT_VOTERS,
                       f->timeout_ms, &reply, err, sizeof err);
    if (st != CV_ST_OK)
        return pub_reply_error(st, err, len);
    Canvass__V1__AdminReply r = CANVASS__V1__ADMIN_REPLY__INIT;
    r.result_case = CANVASS__V1__ADMIN_REPLY__RESULT_VOTERS;
    r.voters = reply->voters;
    uint8_t *out = pub_reply_pack(&r, len);
    canvass__v1__tally_reply__free_unpacked(reply, NULL);
    return out;
}

static int cmp_standing_id(const void *pa, const void *pb)
{
    const Canvass__V1__FeatureStanding *a = *(Canvass__V1__FeatureStanding *const *)pa;
    const Canvass__V1__FeatureStanding *b = *(Canvass__V1__FeatureStanding *const *)pb;
    return strcmp(a->feature->feature_id, b->feature->feature_id);
}

uint8_t *pub_features_list(pub_features_t *f, size_t *len)
{
    char err[512];
    int nshards = pub_shards_count(f->shards);
    Canvass__V1__TallyReply *replies[PUB_SHARDS_MAX];
    cv_status_t st = pub_shards_gather(f->shards, f->timeout_ms, replies, err, sizeof err);
    if (st != CV_ST_OK)
        return pub_reply_error(st, err, len);
    size_t n = 0;
    for (int i = 0; i < nshards; i++)
        n += replies[i]->standings->n_features;
    Canvass__V1__FeatureStanding **all = malloc((n ? n : 1) * sizeof *all);
    uint8_t *out = NULL;
    if (!all)
        goto done;
    size_t k = 0;
    for (int i = 0; i < nshards; i++) {
        const Canvass__V1__Standings *s = replies[i]->standings;
        for (size_t j = 0; j < s->n_features; j++) {
            if (s->features[j]->feature)
                all[k++] = s->features[j];
            else
                cv_log(CV_LOG_WARN, "msg=\"shard sent a standing without a feature\" shard=%d", i);
        }
    }
    qsort(all, k, sizeof *all, cmp_standing_id);
    Canvass__V1__FeatureTable table = CANVASS__V1__FEATURE_TABLE__INIT;
    table.features = all;
    table.n_features = k;
    Canvass__V1__AdminReply r = CANVASS__V1__ADMIN_REPLY__INIT;
    r.result_case = CANVASS__V1__ADMIN_REPLY__RESULT_FEATURES;
    r.features = &table;
    out = pub_reply_pack(&r, len);
done:
    free(all);
    pub_shards_replies_free(replies, nshards);
    return out;
}
