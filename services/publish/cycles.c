/* cycles: closing release cycles and running the schedule (see cycles.h).
 * A close gathers the shards' standings (shards.c), flattens them into
 * cv_standing_t, ranks them with cv_rank against the previous cycle's list,
 * packs the list once, commits it with the new cycle state (history.c) and
 * then broadcasts the very bytes it stored.  The end of the file answers
 * where one feature ranked, for feature show. */
#include "cycles.h"
#include "cv_err.h"
#include "cv_id.h"
#include "cv_log.h"
#include "cv_rank.h"
#include "history.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The longest pub_cycles_tick() asks the caller to wait. */
#define TICK_MAX_MS 60000

struct pub_cycles {
    pub_history_t *history;
    pub_shards_t *shards; /* borrowed */
    cv_sock_t *pub;       /* borrowed */
    pub_cycles_config_t cfg;
    pub_meta_t meta;   /* as committed: open cycle, its opening, due time */
    uint64_t retry_at; /* after a failed scheduled close */
};

/* "2026-11-27T17:00:00.000Z" for logs. */
static const char *fmt_time(uint64_t ms, char out[64])
{
    time_t sec = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&sec, &tm);
    snprintf(out, 64, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
    return out;
}

static long ms_until(uint64_t when, uint64_t now)
{
    if (when <= now)
        return 0;
    return when - now > TICK_MAX_MS ? TICK_MAX_MS : (long)(when - now);
}

/* ---- lifecycle ---------------------------------------------------------------- */

pub_cycles_t *pub_cycles_new(const pub_cycles_config_t *cfg, pub_shards_t *shards, cv_sock_t *pub)
{
    pub_cycles_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->cfg = *cfg;
    c->shards = shards;
    c->pub = pub;
    c->history = pub_history_open(cfg->data_dir);
    if (!c->history)
        goto fail;
    uint64_t now = cv_now_ms();
    int same_schedule = 0;
    pub_meta_t stored = {0};
    int fresh = pub_history_load(c->history, cfg->schedule_text, &stored, &same_schedule);
    if (fresh < 0) {
        cv_log(CV_LOG_ERROR, "msg=\"cannot read meta\" dir=%s err=\"%s\"", cfg->data_dir,
               cv_strerror(fresh));
        goto fail;
    }
    c->meta = fresh ? (pub_meta_t){1, now, 0} : stored;
    if (cfg->sched.kind == CV_SCHED_MANUAL)
        c->meta.due = 0;
    else if (!(same_schedule && stored.due)) /* a due time is only kept for its schedule */
        c->meta.due = cv_sched_next(&cfg->sched, now);
    /* else: the stored due time, possibly past: the first tick closes late */
    if (fresh || !same_schedule || c->meta.due != stored.due) {
        int rc = pub_history_commit(c->history, &c->meta, cfg->schedule_text, NULL, 0);
        if (rc < 0) {
            cv_log(CV_LOG_ERROR, "msg=\"cannot write meta\" dir=%s err=\"%s\"", cfg->data_dir,
                   cv_strerror(rc));
            goto fail;
        }
    }
    char t1[64], t2[64];
    cv_log(CV_LOG_INFO, "msg=\"cycles loaded\" open_cycle=%llu opened_at=%s schedule=%s due=%s",
           (unsigned long long)c->meta.open, fmt_time(c->meta.opened_at, t1), cfg->schedule_text,
           c->meta.due ? fmt_time(c->meta.due, t2) : "never");
    if (c->meta.due && c->meta.due <= now)
        cv_log(CV_LOG_WARN,
               "msg=\"a close was due while publish was down; closing late\" "
               "cycle=%llu due=%s",
               (unsigned long long)c->meta.open, fmt_time(c->meta.due, t2));
    return c;

fail:
    pub_cycles_destroy(&c);
    return NULL;
}

void pub_cycles_destroy(pub_cycles_t **c_p)
{
    if (!c_p || !*c_p)
        return;
    pub_history_close(&(*c_p)->history);
    free(*c_p);
    *c_p = NULL;
}

uint64_t pub_cycles_open_cycle(const pub_cycles_t *c)
{
    return c->meta.open;
}

uint64_t pub_cycles_opened_at(const pub_cycles_t *c)
{
    return c->meta.opened_at;
}

uint64_t pub_cycles_due_ms(const pub_cycles_t *c)
{
    return c->meta.due;
}

pub_history_t *pub_cycles_history(pub_cycles_t *c)
{
    return c->history;
}

/* ---- reading lists ---------------------------------------------------------- */

cv_status_t pub_cycles_get(pub_cycles_t *c, uint64_t cycle, uint8_t **buf, size_t *len, char *err,
                           size_t errlen)
{
    if (cycle == 0 || cycle >= c->meta.open) {
        snprintf(err, errlen, "cycle %llu is not closed", (unsigned long long)cycle);
        return CV_ST_NOT_FOUND;
    }
    int rc = pub_history_get(c->history, cycle, buf, len);
    if (rc == CV_ENOTFOUND) {
        /* meta says closed but the list is gone: the store was tampered with */
        cv_log(CV_LOG_ERROR, "msg=\"closed cycle missing from store\" cycle=%llu",
               (unsigned long long)cycle);
        snprintf(err, errlen, "cycle %llu is not closed", (unsigned long long)cycle);
        return CV_ST_NOT_FOUND;
    }
    if (rc < 0) {
        snprintf(err, errlen, "cannot read cycle %llu: %s", (unsigned long long)cycle,
                 cv_strerror(rc));
        return CV_ST_INTERNAL;
    }
    return CV_ST_OK;
}

/* The unpacked list of a closed cycle, or NULL when there is none (cycle 0)
 * or it cannot be read: only used for prev_rank, which is advisory. */
static Canvass__V1__RankedList *load_list(pub_cycles_t *c, uint64_t cycle)
{
    if (cycle == 0)
        return NULL;
    uint8_t *buf;
    size_t len;
    char err[128];
    if (pub_cycles_get(c, cycle, &buf, &len, err, sizeof err) != CV_ST_OK) {
        cv_log(CV_LOG_WARN, "msg=\"previous list unavailable\" cycle=%llu err=\"%s\"",
               (unsigned long long)cycle, err);
        return NULL;
    }
    Canvass__V1__RankedList *l = canvass__v1__ranked_list__unpack(NULL, len, buf);
    free(buf);
    if (!l)
        cv_log(CV_LOG_WARN, "msg=\"previous list undecodable\" cycle=%llu",
               (unsigned long long)cycle);
    return l;
}

/* ---- gathering and ranking --------------------------------------------------------- */

/* Flattens every shard's standings into one array borrowing from replies.
 * A shard that reports more tiers than there are is refused rather than
 * guessed at: its counts would give wrong scores. */
static cv_status_t flatten(Canvass__V1__TallyReply **replies, int nshards, cv_standing_t **out,
                           size_t *count, char *err, size_t errlen)
{
    size_t n = 0;
    for (int i = 0; i < nshards; i++)
        n += replies[i]->standings->n_features;
    cv_standing_t *st = calloc(n ? n : 1, sizeof *st);
    if (!st) {
        snprintf(err, errlen, "out of memory");
        return CV_ST_INTERNAL;
    }
    size_t k = 0;
    for (int i = 0; i < nshards; i++) {
        Canvass__V1__Standings *s = replies[i]->standings;
        for (size_t j = 0; j < s->n_features; j++) {
            Canvass__V1__FeatureStanding *fs = s->features[j];
            Canvass__V1__FeatureRecord *f = fs->feature;
            if (!f || fs->n_up > CV_TIERS || fs->n_down > CV_TIERS || fs->n_trend > CV_TIERS) {
                snprintf(err, errlen,
                         f ? "shard %d sent %zu/%zu/%zu tier counts for feature '%.64s', at most 3"
                           : "shard %d sent a standing without a feature",
                         i, fs->n_up, fs->n_down, fs->n_trend, f ? f->feature_id : "");
                free(st);
                return CV_ST_INTERNAL;
            }
            cv_standing_t *d = &st[k++];
            d->feature_id = f->feature_id;
            d->title = f->title;
            d->status = f->status;
            d->tags = f->tags;
            d->ntags = f->n_tags;
            d->created_ms = f->created_ms;
            d->voters = fs->voters;
            for (size_t t = 0; t < fs->n_up; t++)
                d->up[t] = fs->up[t];
            for (size_t t = 0; t < fs->n_down; t++)
                d->down[t] = fs->down[t];
            for (size_t t = 0; t < fs->n_trend; t++)
                d->trend[t] = fs->trend[t];
        }
    }
    *out = st;
    *count = k;
    return CV_ST_OK;
}

/* Gathers the shards' standings (closing the open cycle when close is set),
 * ranks them in score order and packs the list.  On CV_ST_OK, *buf is the
 * caller's and *info describes the list.  The close instant is taken before
 * the shards are asked: it is the next cycle's opening, which each shard
 * learns from CloseCycle.opened_at_ms as the start of its trending window. */
static cv_status_t gather_and_rank(pub_cycles_t *c, int close, uint64_t scheduled_at_ms,
                                   uint8_t **buf, size_t *len, Canvass__V1__CycleInfo *info,
                                   char *err, size_t errlen)
{
    int nshards = pub_shards_count(c->shards);
    Canvass__V1__TallyReply *replies[PUB_SHARDS_MAX];
    uint64_t closed_at = close ? cv_now_ms() : 0;
    cv_status_t st = pub_shards_gather(c->shards, close ? c->meta.open : 0, closed_at,
                                       c->cfg.shard_timeout_ms, replies, err, errlen);
    if (st != CV_ST_OK)
        return st;
    for (int i = 0; i < nshards; i++) {
        const Canvass__V1__Standings *s = replies[i]->standings;
        /* Neither mismatch stops the ranking (the union of the shards'
         * features is the same), but each points at a misconfiguration. */
        if (s->shard != (uint32_t)i) /* --tally is not in shard order */
            cv_log(CV_LOG_WARN,
                   "msg=\"shard answers with another shard id\" shard=%d "
                   "its_id=%u",
                   i, s->shard);
        if (close && s->cycle != c->meta.open + 1) /* e.g. publish's data was lost or restored */
            cv_log(CV_LOG_WARN,
                   "msg=\"shard reports another open cycle\" shard=%d "
                   "shard_cycle=%llu expected=%llu",
                   i, (unsigned long long)s->cycle, (unsigned long long)c->meta.open + 1);
    }
    cv_standing_t *standings = NULL;
    size_t n = 0;
    Canvass__V1__RankedList *prev = NULL;
    cv_ranking_t *ranking = NULL;
    st = flatten(replies, nshards, &standings, &n, err, errlen);
    if (st != CV_ST_OK)
        goto out;
    prev = load_list(c, c->meta.open - 1);
    if (cv_rank_build(standings, n, c->cfg.weights, CV_RANK_SCORE, prev, &ranking) < 0) {
        snprintf(err, errlen, "out of memory");
        st = CV_ST_INTERNAL;
        goto out;
    }
    Canvass__V1__RankedList *l = cv_ranking_list(ranking);
    l->cycle = c->meta.open;
    l->opened_at_ms = c->meta.opened_at;
    l->closed_at_ms = closed_at;
    l->scheduled_at_ms = scheduled_at_ms;
    *buf = cv_codec_pack(&l->base, len);
    if (!*buf) {
        snprintf(err, errlen, "out of memory");
        st = CV_ST_INTERNAL;
        goto out;
    }
    canvass__v1__cycle_info__init(info);
    info->cycle = l->cycle;
    info->state = close ? "closed" : "open";
    info->opened_at_ms = l->opened_at_ms;
    info->closed_at_ms = l->closed_at_ms;
    info->scheduled_at_ms = l->scheduled_at_ms;
    info->entries = (uint32_t)l->n_entries;
    info->total_votes = l->total_votes;
out:
    cv_ranking_destroy(&ranking);
    if (prev)
        canvass__v1__ranked_list__free_unpacked(prev, NULL);
    free(standings);
    pub_shards_replies_free(replies, nshards);
    return st;
}

/* ---- closing ---------------------------------------------------------------- */

cv_status_t pub_cycles_close(pub_cycles_t *c, uint64_t scheduled_at_ms,
                             Canvass__V1__CycleInfo *info, char *err, size_t errlen)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    uint64_t cycle = c->meta.open;
    cv_status_t st = gather_and_rank(c, 1, scheduled_at_ms, &buf, &len, info, err, errlen);
    if (st != CV_ST_OK) {
        cv_log(CV_LOG_WARN, "msg=\"close failed\" cycle=%llu status=%s err=\"%s\"",
               (unsigned long long)cycle, cv_status_name(st), err);
        return st;
    }
    /* A scheduled close (even a late one) moves the schedule to the first due
     * time after this close.  A manual close leaves a future due time alone,
     * but stands in for an overdue one (say, one being retried while a shard
     * was away): closing again straight after it would only cut an empty
     * cycle. */
    uint64_t due = c->meta.due;
    if (due && (scheduled_at_ms || due <= info->closed_at_ms))
        due = cv_sched_next(&c->cfg.sched, info->closed_at_ms);
    pub_meta_t next = {cycle + 1, info->closed_at_ms, due};
    int rc = pub_history_commit(c->history, &next, c->cfg.schedule_text, buf, len);
    if (rc < 0) {
        snprintf(err, errlen, "cannot store cycle %llu: %s", (unsigned long long)cycle,
                 rc == CV_EEXISTS ? "a list for it is already stored" : cv_strerror(rc));
        cv_log(CV_LOG_ERROR, "msg=\"close failed\" cycle=%llu err=\"%s\"",
               (unsigned long long)cycle, err);
        free(buf);
        return CV_ST_INTERNAL;
    }
    c->meta = next;
    c->retry_at = 0;

    const void *parts[2] = {"ranked", buf};
    size_t sizes[2] = {6, len};
    rc = cv_sock_send(c->pub, 2, parts, sizes, 1);
    if (rc < 0) /* subscribers can still pull the stored list */
        cv_log(CV_LOG_WARN, "msg=\"cannot broadcast ranked list\" cycle=%llu err=\"%s\"",
               (unsigned long long)cycle, cv_strerror(rc));
    free(buf);

    char t1[64], t2[64], t3[64];
    cv_log(CV_LOG_INFO,
           "msg=\"cycle closed\" cycle=%llu entries=%u total_votes=%llu "
           "scheduled_at=%s closed_at=%s next_due=%s",
           (unsigned long long)cycle, info->entries, (unsigned long long)info->total_votes,
           scheduled_at_ms ? fmt_time(scheduled_at_ms, t1) : "manual",
           fmt_time(info->closed_at_ms, t2), due ? fmt_time(due, t3) : "never");
    return CV_ST_OK;
}

long pub_cycles_tick(pub_cycles_t *c)
{
    if (!c->meta.due)
        return -1;
    uint64_t wake = c->meta.due > c->retry_at ? c->meta.due : c->retry_at;
    if (cv_now_ms() < wake)
        return ms_until(wake, cv_now_ms());
    Canvass__V1__CycleInfo info;
    char err[256];
    if (pub_cycles_close(c, c->meta.due, &info, err, sizeof err) != CV_ST_OK) {
        c->retry_at = cv_now_ms() + PUB_CLOSE_RETRY_MS;
        cv_log(CV_LOG_WARN, "msg=\"scheduled close will be retried\" cycle=%llu retry_ms=%d",
               (unsigned long long)c->meta.open, PUB_CLOSE_RETRY_MS);
        return PUB_CLOSE_RETRY_MS;
    }
    c->retry_at = 0;
    /* Normally the next due time is ahead; if the close took longer than a
     * whole period, 0 asks to be called again at once. */
    return ms_until(c->meta.due, cv_now_ms());
}

cv_status_t pub_cycles_live(pub_cycles_t *c, uint8_t **buf, size_t *len, char *err, size_t errlen)
{
    Canvass__V1__CycleInfo info;
    return gather_and_rank(c, 0, c->meta.due, buf, len, &info, err, errlen);
}

/* ---- listing ------------------------------------------------------------------------ */

cv_status_t pub_cycles_list(pub_cycles_t *c, Canvass__V1__CycleInfo **infos, size_t *n, char *err,
                            size_t errlen)
{
    int rc = pub_history_list(c->history, 1, infos, n);
    if (rc < 0) {
        snprintf(err, errlen, "cannot list cycles: %s", cv_strerror(rc));
        return CV_ST_INTERNAL;
    }
    Canvass__V1__CycleInfo *open = &(*infos)[*n - 1];
    open->cycle = c->meta.open;
    open->state = "open";
    open->opened_at_ms = c->meta.opened_at;
    open->scheduled_at_ms = c->meta.due;
    return CV_ST_OK;
}

/* ---- one feature's ranks -------------------------------------------------------------- */

/* The entry of feature id in l, or NULL. */
static const Canvass__V1__RankedEntry *find_entry(const Canvass__V1__RankedList *l, const char *id)
{
    for (size_t i = 0; i < l->n_entries; i++)
        if (!strcmp(l->entries[i]->feature_id, id))
            return l->entries[i];
    return NULL;
}

cv_status_t pub_cycles_feature_ranks(pub_cycles_t *c, const char *id,
                                     Canvass__V1__CycleRank **ranks, size_t *n, char *err,
                                     size_t errlen)
{
    /* Every stored list is read and searched: a release manager's query,
     * fine for a few hundred cycles.  The next step is an index (feature id,
     * cycle) -> rank written with each close, so a lookup costs one range
     * read. */
    size_t cap = 0, k = 0;
    Canvass__V1__CycleRank *out = NULL;
    for (uint64_t cycle = 1; cycle < c->meta.open; cycle++) {
        uint8_t *buf;
        size_t len;
        cv_status_t st = pub_cycles_get(c, cycle, &buf, &len, err, errlen);
        if (st == CV_ST_NOT_FOUND) /* logged by pub_cycles_get */
            continue;
        if (st != CV_ST_OK) {
            free(out);
            return st;
        }
        Canvass__V1__RankedList *l = canvass__v1__ranked_list__unpack(NULL, len, buf);
        free(buf);
        if (!l) {
            cv_log(CV_LOG_ERROR, "msg=\"stored list undecodable\" cycle=%llu",
                   (unsigned long long)cycle);
            continue;
        }
        const Canvass__V1__RankedEntry *e = find_entry(l, id);
        if (e && k == cap) {
            cap = cap ? cap * 2 : 8;
            Canvass__V1__CycleRank *p = realloc(out, cap * sizeof *p);
            if (!p) {
                canvass__v1__ranked_list__free_unpacked(l, NULL);
                free(out);
                snprintf(err, errlen, "out of memory");
                return CV_ST_INTERNAL;
            }
            out = p;
        }
        if (e) {
            Canvass__V1__CycleRank *r = &out[k++];
            canvass__v1__cycle_rank__init(r);
            r->cycle = cycle;
            r->rank = e->rank;
            r->score = e->score;
            r->up = e->up;
            r->down = e->down;
        }
        canvass__v1__ranked_list__free_unpacked(l, NULL);
    }
    *ranks = out;
    *n = k;
    return CV_ST_OK;
}

cv_status_t pub_cycles_live_rank(pub_cycles_t *c, const char *id, uint32_t *rank, double *score,
                                 char *err, size_t errlen)
{
    uint8_t *buf;
    size_t len;
    cv_status_t st = pub_cycles_live(c, &buf, &len, err, errlen);
    if (st != CV_ST_OK)
        return st;
    Canvass__V1__RankedList *l = canvass__v1__ranked_list__unpack(NULL, len, buf);
    free(buf);
    if (!l) {
        snprintf(err, errlen, "out of memory");
        return CV_ST_INTERNAL;
    }
    const Canvass__V1__RankedEntry *e = find_entry(l, id);
    *rank = e ? e->rank : 0;
    *score = e ? e->score : 0;
    canvass__v1__ranked_list__free_unpacked(l, NULL);
    return CV_ST_OK;
}
