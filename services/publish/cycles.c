/* cycles: closing release cycles and running the schedule (see cycles.h).
 * A close gathers the shards' standings (shards.c, decoded by wire.c),
 * ranks them with cv_rank against the previous cycle's ranks (a hash table
 * from lists.c), packs the list once, commits it with the new cycle state
 * (history.c), broadcasts the very bytes it stored and hands them to
 * lists.c, which serves the pulls.  The end of the file answers where one
 * feature ranked, for feature show. */
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
    pub_lists_t *lists;
    pub_shards_t *shards; /* borrowed */
    cv_sock_t *pub;       /* borrowed */
    pub_cycles_config_t cfg;
    pub_meta_t meta;   /* as committed: open cycle, its opening, due time */
    uint64_t retry_at; /* after a failed scheduled close */
    /* The closed cycles' summaries, cycle order, once read (summaries_read). */
    Canvass__V1__CycleInfo *summaries;
    size_t nsummaries, capsummaries;
    int summaries_read;
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

/* A monotonic clock in ms, for the durations a close logs. */
static double mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
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
    if (!(c->lists = pub_lists_new(c->history, c->meta.open - 1)))
        goto fail;
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
    pub_lists_destroy(&(*c_p)->lists);
    pub_history_close(&(*c_p)->history);
    free((*c_p)->summaries);
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

/* ---- gathering and ranking --------------------------------------------------------- */

/* The open cycle ranked now: the shards' answers and the ranking, which
 * borrows their strings. */
typedef struct {
    int nshards;
    pub_wire_standings_t *replies[PUB_SHARDS_MAX];
    cv_ranking_t *ranking;
    double gather_ms; /* how long the shards took to answer, decoding included */
} ranked_now_t;

static void ranked_now_free(ranked_now_t *rn)
{
    cv_ranking_destroy(&rn->ranking);
    pub_shards_standings_free(rn->replies, rn->nshards);
}

/* Gathers the shards' standings (closing the open cycle when close_at is
 * not 0: the close instant, which is the next cycle's opening and each
 * shard's start of its trending window) and ranks them in `order`, prev_rank
 * from the latest closed list in that order.  On CV_ST_OK the caller frees
 * *rn with ranked_now_free. */
static cv_status_t rank_now(pub_cycles_t *c, uint64_t close_at, cv_rank_order_t order,
                            ranked_now_t *rn, char *err, size_t errlen)
{
    memset(rn, 0, sizeof *rn);
    rn->nshards = pub_shards_count(c->shards);
    double t0 = mono_ms();
    int close = close_at != 0;
    cv_status_t st = pub_shards_gather_standings(c->shards, close ? c->meta.open : 0, close_at,
                                                 c->cfg.shard_timeout_ms, rn->replies, err, errlen);
    if (st != CV_ST_OK)
        return st;
    rn->gather_ms = mono_ms() - t0;
    for (int i = 0; i < rn->nshards; i++) {
        const pub_wire_standings_t *s = rn->replies[i];
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
    /* Standings that cannot be ranked (a standing without its feature,
     * more tier counts than there are tiers) are refused rather than
     * guessed at: their counts would give wrong scores. */
    const cv_standing_t *parts[PUB_SHARDS_MAX];
    size_t counts[PUB_SHARDS_MAX];
    for (int i = 0; i < rn->nshards; i++) {
        if (rn->replies[i]->problem) {
            snprintf(err, errlen, "shard %d sent %s", i, rn->replies[i]->problem);
            ranked_now_free(rn);
            return CV_ST_INTERNAL;
        }
        parts[i] = rn->replies[i]->features;
        counts[i] = rn->replies[i]->n_features;
    }
    const cv_rank_prev_t *prev = NULL;
    uint64_t latest = c->meta.open - 1;
    if (latest) { /* prev_rank is advisory: without the previous list, every entry is new */
        int rc = pub_lists_ranks(c->lists, latest, order, &prev);
        if (rc < 0)
            cv_log(CV_LOG_WARN, "msg=\"previous list unavailable\" cycle=%llu err=\"%s\"",
                   (unsigned long long)latest, cv_strerror(rc));
    }
    int rc = cv_rank_build_parts(parts, counts, (size_t)rn->nshards, c->cfg.weights, order, prev,
                                 &rn->ranking);
    if (rc < 0) {
        ranked_now_free(rn);
        snprintf(err, errlen, "out of memory");
        return CV_ST_INTERNAL;
    }
    return CV_ST_OK;
}

/* Sets the list's cycle fields and packs it into *out (indexed). */
static cv_status_t pack_list(pub_cycles_t *c, ranked_now_t *rn, uint64_t closed_at,
                             uint64_t scheduled_at_ms, cv_rank_order_t order, pub_list_t *out,
                             char *err, size_t errlen)
{
    Canvass__V1__RankedList *l = cv_ranking_list(rn->ranking);
    l->cycle = c->meta.open;
    l->opened_at_ms = c->meta.opened_at;
    l->closed_at_ms = closed_at;
    l->scheduled_at_ms = scheduled_at_ms;
    memset(out, 0, sizeof *out);
    if (pub_wire_list_pack(l, &out->buf, &out->len, &out->idx) < 0) {
        snprintf(err, errlen, "out of memory");
        return CV_ST_INTERNAL;
    }
    out->cycle = l->cycle;
    out->order = order;
    return CV_ST_OK;
}

/* ---- closing ---------------------------------------------------------------- */

/* Adds a just-closed cycle to the kept summaries (when they were read). */
static void summary_add(pub_cycles_t *c, const Canvass__V1__CycleInfo *info)
{
    if (!c->summaries_read)
        return;
    if (c->nsummaries == c->capsummaries) {
        size_t cap = c->capsummaries ? c->capsummaries * 2 : 16;
        Canvass__V1__CycleInfo *p = realloc(c->summaries, cap * sizeof *p);
        if (!p) { /* read again from the store next time */
            free(c->summaries);
            c->summaries = NULL;
            c->nsummaries = c->capsummaries = 0;
            c->summaries_read = 0;
            return;
        }
        c->summaries = p;
        c->capsummaries = cap;
    }
    c->summaries[c->nsummaries++] = *info;
}

cv_status_t pub_cycles_close(pub_cycles_t *c, uint64_t scheduled_at_ms,
                             Canvass__V1__CycleInfo *info, char *err, size_t errlen)
{
    uint64_t cycle = c->meta.open;
    uint64_t closed_at = cv_now_ms();
    double t0 = mono_ms();
    ranked_now_t rn;
    pub_list_t list;
    cv_status_t st = rank_now(c, closed_at, CV_RANK_SCORE, &rn, err, errlen);
    double t_ranked = mono_ms(), gather_ms = rn.gather_ms;
    if (st == CV_ST_OK) {
        st = pack_list(c, &rn, closed_at, scheduled_at_ms, CV_RANK_SCORE, &list, err, errlen);
        const Canvass__V1__RankedList *l = cv_ranking_list(rn.ranking);
        canvass__v1__cycle_info__init(info);
        info->cycle = cycle;
        info->state = "closed";
        info->opened_at_ms = l->opened_at_ms;
        info->closed_at_ms = closed_at;
        info->scheduled_at_ms = scheduled_at_ms;
        info->entries = (uint32_t)l->n_entries;
        info->total_votes = l->total_votes;
        ranked_now_free(&rn);
    }
    if (st != CV_ST_OK) {
        cv_log(CV_LOG_WARN, "msg=\"close failed\" cycle=%llu status=%s err=\"%s\"",
               (unsigned long long)cycle, cv_status_name(st), err);
        return st;
    }
    double t_packed = mono_ms();
    /* A scheduled close (even a late one) moves the schedule to the first due
     * time after this close.  A manual close leaves a future due time alone,
     * but stands in for an overdue one (say, one being retried while a shard
     * was away): closing again straight after it would only cut an empty
     * cycle. */
    uint64_t due = c->meta.due;
    if (due && (scheduled_at_ms || due <= closed_at))
        due = cv_sched_next(&c->cfg.sched, closed_at);
    pub_meta_t next = {cycle + 1, closed_at, due};
    int rc = pub_history_commit(c->history, &next, c->cfg.schedule_text, list.buf, list.len);
    if (rc < 0) {
        snprintf(err, errlen, "cannot store cycle %llu: %s", (unsigned long long)cycle,
                 rc == CV_EEXISTS ? "a list for it is already stored" : cv_strerror(rc));
        cv_log(CV_LOG_ERROR, "msg=\"close failed\" cycle=%llu err=\"%s\"",
               (unsigned long long)cycle, err);
        pub_list_clear(&list);
        return CV_ST_INTERNAL;
    }
    c->meta = next;
    c->retry_at = 0;
    double t_stored = mono_ms();

    const void *parts[2] = {"ranked", list.buf};
    size_t sizes[2] = {6, list.len};
    rc = cv_sock_send(c->pub, 2, parts, sizes, 1);
    if (rc < 0) /* subscribers can still pull the stored list */
        cv_log(CV_LOG_WARN, "msg=\"cannot broadcast ranked list\" cycle=%llu err=\"%s\"",
               (unsigned long long)cycle, cv_strerror(rc));
    double t_sent = mono_ms();
    size_t len = list.len;
    pub_lists_add(c->lists, &list); /* the pulls' copy from now on */
    summary_add(c, info);

    char t1[64], t2[64], t3[64];
    cv_log(CV_LOG_INFO,
           "msg=\"cycle closed\" cycle=%llu entries=%u total_votes=%llu bytes=%zu "
           "scheduled_at=%s closed_at=%s next_due=%s took_ms=%.1f gather_ms=%.1f rank_ms=%.1f "
           "pack_ms=%.1f store_ms=%.1f broadcast_ms=%.1f",
           (unsigned long long)cycle, info->entries, (unsigned long long)info->total_votes, len,
           scheduled_at_ms ? fmt_time(scheduled_at_ms, t1) : "manual",
           fmt_time(info->closed_at_ms, t2), due ? fmt_time(due, t3) : "never", t_sent - t0,
           gather_ms, t_ranked - t0 - gather_ms, t_packed - t_ranked, t_stored - t_packed,
           t_sent - t_stored);
    return CV_ST_OK;
}

long pub_cycles_tick(pub_cycles_t *c)
{
    /* The previous close's ranks for the next one, built after its answer
     * went out rather than on the next close's critical path. */
    pub_lists_prepare(c->lists);
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

/* ---- pulling ------------------------------------------------------------------------ */

cv_status_t pub_cycles_ranked(pub_cycles_t *c, uint64_t cycle, cv_rank_order_t order,
                              uint32_t limit, pub_ranked_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    const pub_list_t *l;
    if (cycle == 0) {
        ranked_now_t rn;
        cv_status_t st = rank_now(c, 0, order, &rn, err, errlen);
        if (st != CV_ST_OK)
            return st;
        st = pack_list(c, &rn, 0, c->meta.due, order, &out->own, err, errlen);
        ranked_now_free(&rn);
        if (st != CV_ST_OK)
            return st;
        l = &out->own;
    } else {
        if (cycle >= c->meta.open) {
            snprintf(err, errlen, "cycle %llu is not closed", (unsigned long long)cycle);
            return CV_ST_NOT_FOUND;
        }
        int rc = pub_lists_get(c->lists, cycle, order, &l);
        if (rc == CV_ENOTFOUND) {
            /* meta says closed but the list is gone: the store was tampered with */
            cv_log(CV_LOG_ERROR, "msg=\"closed cycle missing from store\" cycle=%llu",
                   (unsigned long long)cycle);
            snprintf(err, errlen, "cycle %llu is not closed", (unsigned long long)cycle);
            return CV_ST_NOT_FOUND;
        }
        if (rc == CV_EDECODE) {
            snprintf(err, errlen, "the list of cycle %llu is undecodable",
                     (unsigned long long)cycle);
            return CV_ST_INTERNAL;
        }
        if (rc < 0) {
            snprintf(err, errlen, "cannot read cycle %llu: %s", (unsigned long long)cycle,
                     cv_strerror(rc));
            return CV_ST_INTERNAL;
        }
    }
    pub_wire_list_cut(l->buf, l->len, &l->idx, limit ? limit : l->idx.n, out->part, out->size);
    return CV_ST_OK;
}

void pub_cycles_ranked_release(pub_ranked_t *r)
{
    pub_list_clear(&r->own);
    memset(r->part, 0, sizeof r->part);
    memset(r->size, 0, sizeof r->size);
}

/* ---- listing ------------------------------------------------------------------------ */

cv_status_t pub_cycles_list(pub_cycles_t *c, Canvass__V1__CycleInfo **infos, size_t *n, char *err,
                            size_t errlen)
{
    if (!c->summaries_read) {
        Canvass__V1__CycleInfo *read;
        size_t nread;
        int rc = pub_history_list(c->history, 0, &read, &nread);
        if (rc < 0) {
            snprintf(err, errlen, "cannot list cycles: %s", cv_strerror(rc));
            return CV_ST_INTERNAL;
        }
        free(c->summaries);
        c->summaries = read;
        c->nsummaries = c->capsummaries = nread;
        c->summaries_read = 1;
    }
    Canvass__V1__CycleInfo *out = malloc((c->nsummaries + 1) * sizeof *out);
    if (!out) {
        snprintf(err, errlen, "out of memory");
        return CV_ST_INTERNAL;
    }
    if (c->nsummaries)
        memcpy(out, c->summaries, c->nsummaries * sizeof *out);
    Canvass__V1__CycleInfo *open = &out[c->nsummaries];
    canvass__v1__cycle_info__init(open);
    open->cycle = c->meta.open;
    open->state = "open";
    open->opened_at_ms = c->meta.opened_at;
    open->scheduled_at_ms = c->meta.due;
    *infos = out;
    *n = c->nsummaries + 1;
    return CV_ST_OK;
}

/* ---- one feature's ranks -------------------------------------------------------------- */

cv_status_t pub_cycles_feature_ranks(pub_cycles_t *c, const char *id,
                                     Canvass__V1__CycleRank **ranks, size_t *n, char *err,
                                     size_t errlen)
{
    /* Every closed list is searched, by its entries' ids alone (wire.h):
     * only the entry found is decoded.  A release manager's query; the
     * next step is an index (feature id, cycle) -> rank written with each
     * close, so a lookup costs one range read. */
    size_t cap = 0, k = 0, idlen = strlen(id);
    Canvass__V1__CycleRank *out = NULL;
    for (uint64_t cycle = 1; cycle < c->meta.open; cycle++) {
        const pub_list_t *l;
        int rc = pub_lists_get(c->lists, cycle, CV_RANK_SCORE, &l);
        if (rc == CV_ENOTFOUND || rc == CV_EDECODE) { /* logged */
            if (rc == CV_ENOTFOUND)
                cv_log(CV_LOG_ERROR, "msg=\"closed cycle missing from store\" cycle=%llu",
                       (unsigned long long)cycle);
            continue;
        }
        if (rc < 0) {
            free(out);
            snprintf(err, errlen, "cannot read cycle %llu: %s", (unsigned long long)cycle,
                     cv_strerror(rc));
            return CV_ST_INTERNAL;
        }
        Canvass__V1__RankedEntry *e = NULL;
        for (size_t i = 0; i < l->idx.n && !e; i++) {
            const char *eid;
            size_t elen;
            uint32_t rank;
            const uint8_t *data;
            size_t dlen;
            if (pub_wire_entry_key(l->buf, &l->idx, i, &eid, &elen, &rank) < 0)
                break; /* indexed, so cannot happen */
            if (elen == idlen && !memcmp(eid, id, idlen) &&
                pub_wire_entry_bytes(l->buf, &l->idx, i, &data, &dlen) == 0)
                e = canvass__v1__ranked_entry__unpack(NULL, dlen, data);
        }
        if (!e)
            continue;
        if (k == cap) {
            cap = cap ? cap * 2 : 8;
            Canvass__V1__CycleRank *p = realloc(out, cap * sizeof *p);
            if (!p) {
                canvass__v1__ranked_entry__free_unpacked(e, NULL);
                free(out);
                snprintf(err, errlen, "out of memory");
                return CV_ST_INTERNAL;
            }
            out = p;
        }
        Canvass__V1__CycleRank *r = &out[k++];
        canvass__v1__cycle_rank__init(r);
        r->cycle = cycle;
        r->rank = e->rank;
        r->score = e->score;
        r->up = e->up;
        r->down = e->down;
        canvass__v1__ranked_entry__free_unpacked(e, NULL);
    }
    *ranks = out;
    *n = k;
    return CV_ST_OK;
}

cv_status_t pub_cycles_live_rank(pub_cycles_t *c, const char *id, uint32_t *rank, double *score,
                                 char *err, size_t errlen)
{
    ranked_now_t rn;
    cv_status_t st = rank_now(c, 0, CV_RANK_SCORE, &rn, err, errlen);
    if (st != CV_ST_OK)
        return st;
    const Canvass__V1__RankedList *l = cv_ranking_list(rn.ranking);
    *rank = 0;
    *score = 0;
    for (size_t i = 0; i < l->n_entries; i++) {
        if (!strcmp(l->entries[i]->feature_id, id)) {
            *rank = l->entries[i]->rank;
            *score = l->entries[i]->score;
            break;
        }
    }
    ranked_now_free(&rn);
    return CV_ST_OK;
}
