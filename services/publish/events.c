/* events: polls the tally shards for created features and announces them
 * on the PUB socket (see events.h).  A shard's answer is outside input: a
 * page that is not a CreatedPage, or a record without a valid feature id,
 * is logged and not announced, and a `last` that goes backwards is ignored.
 */
#include "events.h"
#include "cv_err.h"
#include "cv_id.h"
#include "cv_log.h"
#include "cv_store.h"
#include "cv_validate.h"
#include "reply.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CURSORS 0 /* the store's one table */
#define CURSOR_KEY_CAP 32
#define STORE_MAP_BYTES (1u << 20)

struct pub_events {
    pub_shards_t *shards;
    cv_sock_t *pub;
    cv_store_t *store;
    long timeout_ms;
    int n;
    uint64_t cursor[PUB_SHARDS_MAX];     /* index stamp of the last feature announced */
    uint64_t skip_until[PUB_SHARDS_MAX]; /* monotonic ms; a silent shard is left alone */
    int silent[PUB_SHARDS_MAX];          /* logged as silent, not yet back */
    uint64_t next_poll;                  /* monotonic ms */
};

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- cursors ------------------------------------------------------------------ */

static size_t cursor_key(int shard, char key[CURSOR_KEY_CAP])
{
    return (size_t)snprintf(key, CURSOR_KEY_CAP, "shard:%d", shard);
}

/* Reads shard i's cursor.  Returns 0, CV_ENOTFOUND, CV_EDECODE (logged) or
 * CV_EIO. */
static int cursor_load(pub_events_t *e, int i, uint64_t *v)
{
    cv_txn_t *t = NULL;
    int rc = cv_store_begin(e->store, 1, &t);
    if (rc < 0)
        return rc;
    char key[CURSOR_KEY_CAP];
    const void *val;
    size_t vlen;
    rc = cv_store_get(t, CURSORS, key, cursor_key(i, key), &val, &vlen);
    if (rc == 0 && vlen != 8) {
        cv_log(CV_LOG_ERROR, "msg=\"unreadable created-events cursor\" shard=%d len=%zu", i, vlen);
        rc = CV_EDECODE;
    } else if (rc == 0) {
        const uint8_t *p = val;
        *v = 0;
        for (int k = 0; k < 8; k++)
            *v = (*v << 8) | p[k];
    }
    cv_store_abort(&t);
    return rc;
}

/* Stores shard i's cursor (synced before it returns).  Returns 0 or a
 * CV_E* storage error (logged). */
static int cursor_save(pub_events_t *e, int i, uint64_t v)
{
    char key[CURSOR_KEY_CAP];
    size_t klen = cursor_key(i, key);
    uint8_t val[8];
    for (int k = 0; k < 8; k++)
        val[k] = (uint8_t)(v >> (8 * (7 - k)));
    int rc = 0;
    /* A map full of a handful of cursors cannot happen; grow once anyway. */
    for (int attempt = 0; attempt < 2; attempt++) {
        cv_txn_t *t = NULL;
        if ((rc = cv_store_begin(e->store, 0, &t)) < 0)
            break;
        rc = cv_store_put(t, CURSORS, key, klen, val, sizeof val);
        if (rc == 0)
            rc = cv_store_commit(&t);
        else
            cv_store_abort(&t);
        if (rc != CV_EFULL || cv_store_grow(e->store) < 0)
            break;
    }
    if (rc < 0)
        cv_log(CV_LOG_ERROR, "msg=\"cannot store created-events cursor\" shard=%d err=\"%s\"", i,
               cv_strerror(rc));
    return rc;
}

pub_events_t *pub_events_new(const char *data_dir, pub_shards_t *shards, cv_sock_t *pub,
                             long shard_timeout_ms)
{
    static const char *const tables[] = {"cursors"};
    pub_events_t *e = calloc(1, sizeof *e);
    char dir[4096];
    if (!e)
        return NULL;
    if (snprintf(dir, sizeof dir, "%s/events", data_dir) >= (int)sizeof dir) {
        cv_log(CV_LOG_ERROR, "msg=\"data directory path too long\" dir=%s", data_dir);
        free(e);
        return NULL;
    }
    e->shards = shards;
    e->pub = pub;
    e->n = pub_shards_count(shards);
    e->timeout_ms =
        shard_timeout_ms < PUB_EVENTS_TIMEOUT_MS ? shard_timeout_ms : PUB_EVENTS_TIMEOUT_MS;
    if (!(e->store = cv_store_open(dir, tables, 1, CV_DURABLE_FSYNC, STORE_MAP_BYTES))) {
        free(e);
        return NULL;
    }
    uint64_t now_stamp = cv_now_ms() << 22; /* the stamp layout of cv_id.h */
    for (int i = 0; i < e->n; i++) {
        int rc = cursor_load(e, i, &e->cursor[i]);
        if (rc == 0)
            continue;
        if (rc != CV_ENOTFOUND && rc != CV_EDECODE) {
            pub_events_destroy(&e);
            return NULL;
        }
        /* Nothing announced from this shard yet: from now on. */
        e->cursor[i] = now_stamp;
        if (cursor_save(e, i, now_stamp) < 0) {
            pub_events_destroy(&e);
            return NULL;
        }
        cv_log(CV_LOG_INFO, "msg=\"created events start now\" shard=%d", i);
    }
    /* Not at once: subscribers of a restarted publish reconnect first. */
    e->next_poll = mono_ms() + PUB_EVENTS_POLL_MS;
    return e;
}

void pub_events_destroy(pub_events_t **e_p)
{
    if (!e_p || !*e_p)
        return;
    cv_store_close(&(*e_p)->store);
    free(*e_p);
    *e_p = NULL;
}

/* ---- polling ------------------------------------------------------------------ */

/* Leaves shard i alone for a while, saying so once. */
static void back_off(pub_events_t *e, int i, const char *why)
{
    e->skip_until[i] = mono_ms() + PUB_EVENTS_BACKOFF_MS;
    if (!e->silent[i])
        cv_log(CV_LOG_WARN, "msg=\"created events paused for a shard\" shard=%d reason=\"%s\"", i,
               why);
    e->silent[i] = 1;
}

static void announce(pub_events_t *e, int i, const Canvass__V1__FeatureRecord *rec)
{
    if (!rec->feature_id || !cv_feature_id_valid(rec->feature_id, strlen(rec->feature_id))) {
        cv_log(CV_LOG_WARN, "msg=\"created feature with a bad id not announced\" shard=%d", i);
        return;
    }
    Canvass__V1__FeatureEvent ev = CANVASS__V1__FEATURE_EVENT__INIT;
    ev.kind = "created";
    ev.feature_id = rec->feature_id;
    ev.status = "open";
    ev.at_ms = rec->created_ms;
    ev.title = rec->title;
    ev.voters = 0;
    pub_reply_event(e->pub, &ev);
}

/* Asks shard i for one page after its cursor, announces it and moves the
 * cursor.  Returns 1 when the shard has more, else 0. */
static int poll_shard(pub_events_t *e, int i)
{
    Canvass__V1__CreatedQuery q = CANVASS__V1__CREATED_QUERY__INIT;
    q.after = e->cursor[i];
    q.limit = PUB_EVENTS_PAGE;
    Canvass__V1__TallyRequest req = CANVASS__V1__TALLY_REQUEST__INIT;
    req.op_case = CANVASS__V1__TALLY_REQUEST__OP_CREATED;
    req.created = &q;
    Canvass__V1__TallyReply *reply = NULL;
    char err[256];
    if (pub_shards_call(e->shards, i, &req, e->timeout_ms, &reply, err, sizeof err) != CV_ST_OK) {
        back_off(e, i, err);
        return 0;
    }
    if (reply->status != CV_ST_OK ||
        reply->result_case != CANVASS__V1__TALLY_REPLY__RESULT_CREATED) {
        snprintf(err, sizeof err, "answered %s without a created page: %s",
                 cv_status_name(reply->status), reply->error);
        back_off(e, i, err);
        canvass__v1__tally_reply__free_unpacked(reply, NULL);
        return 0;
    }
    if (e->silent[i])
        cv_log(CV_LOG_INFO, "msg=\"created events resumed for a shard\" shard=%d", i);
    e->silent[i] = 0;

    const Canvass__V1__CreatedPage *page = reply->created;
    for (size_t k = 0; k < page->n_features; k++)
        announce(e, i, page->features[k]);
    int more = 0;
    if (page->last > e->cursor[i]) {
        /* Stored after the broadcast: a crash in between repeats the page. */
        e->cursor[i] = page->last;
        cursor_save(e, i, page->last);
        more = page->more;
    } else if (page->n_features) {
        cv_log(CV_LOG_WARN,
               "msg=\"created page does not move the cursor\" shard=%d after=%llu "
               "last=%llu",
               i, (unsigned long long)q.after, (unsigned long long)page->last);
    }
    canvass__v1__tally_reply__free_unpacked(reply, NULL);
    return more;
}

long pub_events_tick(pub_events_t *e)
{
    uint64_t now = mono_ms();
    if (now < e->next_poll)
        return (long)(e->next_poll - now);
    int more = 0;
    for (int i = 0; i < e->n; i++)
        if (now >= e->skip_until[i])
            more |= poll_shard(e, i);
    e->next_poll = more ? mono_ms() : mono_ms() + PUB_EVENTS_POLL_MS;
    return more ? 0 : PUB_EVENTS_POLL_MS;
}
