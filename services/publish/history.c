/* history: the cycle store (see history.h).  Numbers are stored big-endian
 * so that LMDB's bytewise key order is the cycles' numeric order, which is
 * what lets pub_history_list() walk them in order with one cursor. */
#include "history.h"
#include "cv_err.h"
#include "cv_log.h"
#include "cv_store.h"
#include "wire.h"

#include <stdlib.h>
#include <string.h>

enum { T_CYCLES = 0, T_META = 1, T_MERGES = 2, T_COUNT = 3 };
static const char *const table_names[T_COUNT] = {"cycles", "meta", "merges"};

#define META_OPEN "open_cycle"
#define META_OPENED_AT "opened_at_ms"
#define META_DUE "due_ms"
#define META_SCHEDULE "schedule"

/* A full map is grown and the transaction run again; this bounds the loop. */
#define WRITE_ATTEMPTS 8

struct pub_history {
    cv_store_t *store;
};

static void put_be64(uint8_t out[8], uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        out[i] = (uint8_t)v;
}

static uint64_t get_be64(const uint8_t in[8])
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | in[i];
    return v;
}

static int put_u64(cv_txn_t *t, const char *key, uint64_t v)
{
    uint8_t b[8];
    put_be64(b, v);
    return cv_store_put(t, T_META, key, strlen(key), b, sizeof b);
}

/* 0 and *v, CV_ENOTFOUND, CV_EDECODE (not 8 bytes) or CV_EIO. */
static int get_u64(cv_txn_t *t, const char *key, uint64_t *v)
{
    const void *val;
    size_t len;
    int rc = cv_store_get(t, T_META, key, strlen(key), &val, &len);
    if (rc < 0)
        return rc;
    if (len != 8)
        return CV_EDECODE;
    *v = get_be64(val);
    return 0;
}

pub_history_t *pub_history_open(const char *dir)
{
    pub_history_t *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->store = cv_store_open(dir, table_names, T_COUNT, CV_DURABLE_FSYNC, 0);
    if (!h->store) {
        free(h);
        return NULL;
    }
    return h;
}

void pub_history_close(pub_history_t **h_p)
{
    if (!h_p || !*h_p)
        return;
    cv_store_close(&(*h_p)->store);
    free(*h_p);
    *h_p = NULL;
}

int pub_history_reader_check(pub_history_t *h)
{
    return cv_store_reader_check(h->store);
}

int pub_history_load(pub_history_t *h, const char *schedule_text, pub_meta_t *m,
                     int *schedule_matches)
{
    cv_txn_t *t;
    int rc = cv_store_begin(h->store, 1, &t);
    if (rc < 0)
        return rc;
    pub_meta_t got = {0};
    rc = get_u64(t, META_OPEN, &got.open);
    if (rc == CV_ENOTFOUND) {
        cv_store_abort(&t);
        return 1;
    }
    if (!rc)
        rc = get_u64(t, META_OPENED_AT, &got.opened_at);
    if (!rc && get_u64(t, META_DUE, &got.due) < 0)
        got.due = 0; /* recomputed from the schedule */
    const void *sched;
    size_t slen;
    *schedule_matches =
        cv_store_get(t, T_META, META_SCHEDULE, strlen(META_SCHEDULE), &sched, &slen) == 0 &&
        slen == strlen(schedule_text) && memcmp(sched, schedule_text, slen) == 0;
    size_t stored = cv_store_count(t, T_CYCLES);
    cv_store_abort(&t);
    if (rc == CV_ENOTFOUND || (!rc && got.open < 1))
        rc = CV_EDECODE;
    if (rc < 0)
        return rc;
    if (stored != got.open - 1)
        cv_log(CV_LOG_WARN,
               "msg=\"stored cycles do not match the open cycle\" open_cycle=%llu "
               "stored=%zu",
               (unsigned long long)got.open, stored);
    *m = got;
    return 0;
}

/* The body of one commit transaction. */
static int write_commit(cv_txn_t *t, const pub_meta_t *m, const char *schedule_text,
                        const uint8_t *list, size_t len)
{
    int rc = 0;
    if (list) {
        uint8_t key[8];
        const void *old;
        size_t oldlen;
        put_be64(key, m->open - 1);
        rc = cv_store_get(t, T_CYCLES, key, sizeof key, &old, &oldlen);
        if (rc == 0)
            return CV_EEXISTS;
        if (rc != CV_ENOTFOUND)
            return rc;
        rc = cv_store_put(t, T_CYCLES, key, sizeof key, list, len);
    }
    if (!rc)
        rc = put_u64(t, META_OPEN, m->open);
    if (!rc)
        rc = put_u64(t, META_OPENED_AT, m->opened_at);
    if (!rc)
        rc = put_u64(t, META_DUE, m->due);
    if (!rc)
        rc = cv_store_put(t, T_META, META_SCHEDULE, strlen(META_SCHEDULE), schedule_text,
                          strlen(schedule_text));
    return rc;
}

/* Runs body(t, arg) in a write transaction and commits it, growing the map
 * and running the whole body again when it fills. */
static int run_write(pub_history_t *h, int (*body)(cv_txn_t *t, void *arg), void *arg)
{
    for (int attempt = 1;; attempt++) {
        cv_txn_t *t;
        int rc = cv_store_begin(h->store, 0, &t);
        if (rc < 0)
            return rc;
        rc = body(t, arg);
        if (rc == 0)
            rc = cv_store_commit(&t);
        else
            cv_store_abort(&t);
        if (rc != CV_EFULL || attempt == WRITE_ATTEMPTS)
            return rc;
        if ((rc = cv_store_grow(h->store)) < 0)
            return rc;
    }
}

typedef struct {
    const pub_meta_t *m;
    const char *schedule_text;
    const uint8_t *list;
    size_t len;
} commit_args_t;

static int commit_body(cv_txn_t *t, void *arg)
{
    const commit_args_t *a = arg;
    return write_commit(t, a->m, a->schedule_text, a->list, a->len);
}

int pub_history_commit(pub_history_t *h, const pub_meta_t *m, const char *schedule_text,
                       const uint8_t *list, size_t len)
{
    commit_args_t a = {m, schedule_text, list, len};
    return run_write(h, commit_body, &a);
}

int pub_history_get(pub_history_t *h, uint64_t cycle, uint8_t **buf, size_t *len)
{
    cv_txn_t *t;
    int rc = cv_store_begin(h->store, 1, &t);
    if (rc < 0)
        return rc;
    uint8_t key[8];
    const void *val;
    size_t vlen;
    put_be64(key, cycle);
    rc = cv_store_get(t, T_CYCLES, key, sizeof key, &val, &vlen);
    if (rc == 0) {
        *buf = malloc(vlen ? vlen : 1);
        if (*buf) {
            memcpy(*buf, val, vlen);
            *len = vlen;
        } else {
            rc = CV_ENOMEM;
        }
    }
    cv_store_abort(&t);
    return rc;
}

typedef struct {
    Canvass__V1__CycleInfo *infos;
    size_t n, cap;
    int bad; /* undecodable lists met */
} list_acc_t;

/* A new, initialised slot at the end of the list; NULL when out of memory. */
static Canvass__V1__CycleInfo *list_slot(list_acc_t *a)
{
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 16;
        Canvass__V1__CycleInfo *p = realloc(a->infos, cap * sizeof *p);
        if (!p)
            return NULL;
        a->infos = p;
        a->cap = cap;
    }
    Canvass__V1__CycleInfo *info = &a->infos[a->n++];
    canvass__v1__cycle_info__init(info);
    return info;
}

static int list_one(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    list_acc_t *a = arg;
    Canvass__V1__CycleInfo *info = list_slot(a);
    if (!info)
        return CV_ENOMEM;
    info->state = "closed";
    info->cycle = klen == 8 ? get_be64(key) : 0;
    /* The list's top level only: its entries are counted, not decoded. */
    pub_wire_list_t sum;
    if (pub_wire_list_index(val, vlen, 0, &sum) < 0) {
        a->bad++;
        return 0;
    }
    info->opened_at_ms = sum.opened_at_ms;
    info->closed_at_ms = sum.closed_at_ms;
    info->scheduled_at_ms = sum.scheduled_at_ms;
    info->entries = (uint32_t)sum.n;
    info->total_votes = sum.total_votes;
    return 0;
}

int pub_history_list(pub_history_t *h, size_t spare, Canvass__V1__CycleInfo **infos, size_t *n)
{
    list_acc_t a = {0};
    cv_txn_t *t;
    int rc = cv_store_begin(h->store, 1, &t);
    if (rc == 0) {
        rc = cv_store_iter(t, T_CYCLES, NULL, 0, list_one, &a);
        cv_store_abort(&t);
    }
    for (size_t i = 0; rc == 0 && i < spare; i++)
        if (!list_slot(&a))
            rc = CV_ENOMEM;
    if (rc < 0) {
        free(a.infos);
        return rc;
    }
    if (a.bad)
        cv_log(CV_LOG_ERROR, "msg=\"undecodable stored lists\" count=%d", a.bad);
    *infos = a.infos;
    *n = a.n;
    return 0;
}

/* ---- pending merges ------------------------------------------------------------ */

typedef struct {
    const char *src;
    const uint8_t *val; /* NULL: delete */
    size_t len;
} merge_args_t;

static int merge_body(cv_txn_t *t, void *arg)
{
    const merge_args_t *a = arg;
    if (a->val)
        return cv_store_put(t, T_MERGES, a->src, strlen(a->src), a->val, a->len);
    int rc = cv_store_del(t, T_MERGES, a->src, strlen(a->src));
    return rc == CV_ENOTFOUND ? 0 : rc;
}

int pub_history_merge_put(pub_history_t *h, const Canvass__V1__FeatureEvent *ev)
{
    size_t len;
    uint8_t *val = cv_codec_pack(&ev->base, &len);
    if (!val)
        return CV_ENOMEM;
    merge_args_t a = {ev->feature_id, val, len};
    int rc = run_write(h, merge_body, &a);
    free(val);
    return rc;
}

int pub_history_merge_del(pub_history_t *h, const char *src)
{
    merge_args_t a = {src, NULL, 0};
    return run_write(h, merge_body, &a);
}

typedef struct {
    Canvass__V1__FeatureEvent **evs;
    size_t n, cap;
} merges_acc_t;

static int merges_one(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    merges_acc_t *a = arg;
    Canvass__V1__FeatureEvent *ev = canvass__v1__feature_event__unpack(NULL, vlen, val);
    if (!ev || !*ev->feature_id || !*ev->merged_into || strlen(ev->feature_id) != klen ||
        memcmp(ev->feature_id, key, klen) != 0) {
        cv_log(CV_LOG_ERROR, "msg=\"undecodable pending merge skipped\" key_bytes=%zu", klen);
        if (ev)
            canvass__v1__feature_event__free_unpacked(ev, NULL);
        return 0;
    }
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 8;
        Canvass__V1__FeatureEvent **p = realloc(a->evs, cap * sizeof *p);
        if (!p) {
            canvass__v1__feature_event__free_unpacked(ev, NULL);
            return CV_ENOMEM;
        }
        a->evs = p;
        a->cap = cap;
    }
    a->evs[a->n++] = ev;
    return 0;
}

int pub_history_merges(pub_history_t *h, Canvass__V1__FeatureEvent ***evs, size_t *n)
{
    merges_acc_t a = {0};
    cv_txn_t *t;
    int rc = cv_store_begin(h->store, 1, &t);
    if (rc < 0)
        return rc;
    rc = cv_store_iter(t, T_MERGES, NULL, 0, merges_one, &a);
    cv_store_abort(&t);
    if (rc < 0) {
        pub_history_merges_free(a.evs, a.n);
        return rc;
    }
    *evs = a.evs;
    *n = a.n;
    return 0;
}

void pub_history_merges_free(Canvass__V1__FeatureEvent **evs, size_t n)
{
    for (size_t i = 0; evs && i < n; i++)
        canvass__v1__feature_event__free_unpacked(evs[i], NULL);
    free(evs);
}
