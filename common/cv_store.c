/* cv_store: LMDB environments with named tables (see cv_store.h). */
#include "cv_store.h"
#include "cv_err.h"
#include "cv_log.h"

#include <errno.h>
#include <lmdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CV_STORE_TABLES_MAX 16

struct cv_store {
    MDB_env *env;
    MDB_dbi dbi[CV_STORE_TABLES_MAX];
    int ntables;
    size_t map_bytes;
};

struct cv_txn {
    cv_store_t *store;
    MDB_txn *txn;
};

static int translate(int rc, const char *what)
{
    if (rc == 0)
        return 0;
    if (rc == MDB_NOTFOUND)
        return CV_ENOTFOUND;
    if (rc == MDB_MAP_FULL || rc == MDB_TXN_FULL)
        return CV_EFULL;
    cv_log(CV_LOG_ERROR, "msg=\"lmdb error\" op=%s err=\"%s\"", what, mdb_strerror(rc));
    return CV_EIO;
}

int cv_durability_parse(const char *name)
{
    if (!strcmp(name, "fsync"))
        return CV_DURABLE_FSYNC;
    if (!strcmp(name, "os"))
        return CV_DURABLE_OS;
    return -1;
}

cv_store_t *cv_store_open(const char *dir, const char *const *tables, int ntables,
                          cv_durability_t durability, size_t map_bytes)
{
    if (ntables > CV_STORE_TABLES_MAX)
        return NULL;
    cv_store_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->ntables = ntables;
    s->map_bytes = map_bytes ? map_bytes : (size_t)64 << 20;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        cv_log(CV_LOG_ERROR, "msg=\"cannot create data dir\" dir=%s err=\"%s\"", dir,
               strerror(errno));
        free(s);
        return NULL;
    }
    unsigned flags = MDB_NOTLS | (durability == CV_DURABLE_OS ? MDB_NOSYNC : 0);
    int rc = mdb_env_create(&s->env);
    if (!rc)
        rc = mdb_env_set_maxdbs(s->env, CV_STORE_TABLES_MAX);
    if (!rc)
        rc = mdb_env_set_mapsize(s->env, s->map_bytes);
    if (!rc)
        rc = mdb_env_open(s->env, dir, flags, 0600);
    if (rc) {
        cv_log(CV_LOG_ERROR, "msg=\"cannot open store\" dir=%s err=\"%s\"", dir, mdb_strerror(rc));
        if (s->env)
            mdb_env_close(s->env);
        free(s);
        return NULL;
    }
    /* An existing environment may be larger than asked for. */
    MDB_envinfo info;
    if (mdb_env_info(s->env, &info) == 0 && info.me_mapsize > s->map_bytes)
        s->map_bytes = info.me_mapsize;
    int dead = 0;
    mdb_reader_check(s->env, &dead);
    if (dead)
        cv_log(CV_LOG_WARN, "msg=\"cleared stale readers\" count=%d", dead);
    MDB_txn *txn;
    rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    for (int i = 0; !rc && i < ntables; i++)
        rc = mdb_dbi_open(txn, tables[i], MDB_CREATE, &s->dbi[i]);
    if (!rc)
        rc = mdb_txn_commit(txn);
    else
        mdb_txn_abort(txn);
    if (rc) {
        cv_log(CV_LOG_ERROR, "msg=\"cannot open tables\" dir=%s err=\"%s\"", dir,
               mdb_strerror(rc));
        mdb_env_close(s->env);
        free(s);
        return NULL;
    }
    return s;
}

void cv_store_close(cv_store_t **store_p)
{
    if (!store_p || !*store_p)
        return;
    mdb_env_close((*store_p)->env);
    free(*store_p);
    *store_p = NULL;
}

int cv_store_grow(cv_store_t *s)
{
    size_t next = s->map_bytes * 2;
    int rc = mdb_env_set_mapsize(s->env, next);
    if (rc)
        return translate(rc, "grow");
    cv_log(CV_LOG_INFO, "msg=\"store map grown\" bytes=%zu", next);
    s->map_bytes = next;
    return 0;
}

int cv_store_reader_check(cv_store_t *s)
{
    int dead = 0;
    mdb_reader_check(s->env, &dead);
    return dead;
}

size_t cv_store_map_size(cv_store_t *s)
{
    return s->map_bytes;
}

int cv_store_sync(cv_store_t *s)
{
    return translate(mdb_env_sync(s->env, 1), "sync");
}

int cv_store_begin(cv_store_t *s, int readonly, cv_txn_t **txn)
{
    cv_txn_t *t = malloc(sizeof *t);
    if (!t)
        return CV_ENOMEM;
    t->store = s;
    int rc = mdb_txn_begin(s->env, NULL, readonly ? MDB_RDONLY : 0, &t->txn);
    if (rc == MDB_MAP_RESIZED) { /* another process grew the map */
        mdb_env_set_mapsize(s->env, 0);
        rc = mdb_txn_begin(s->env, NULL, readonly ? MDB_RDONLY : 0, &t->txn);
    }
    if (rc) {
        free(t);
        return translate(rc, "begin");
    }
    *txn = t;
    return 0;
}

int cv_store_commit(cv_txn_t **txn)
{
    int rc = mdb_txn_commit((*txn)->txn);
    free(*txn);
    *txn = NULL;
    return translate(rc, "commit");
}

void cv_store_abort(cv_txn_t **txn)
{
    if (!txn || !*txn)
        return;
    if ((*txn)->txn)
        mdb_txn_abort((*txn)->txn);
    free(*txn);
    *txn = NULL;
}

int cv_store_get(cv_txn_t *t, int table, const void *key, size_t klen, const void **val,
                 size_t *vlen)
{
    MDB_val k = {klen, (void *)key}, v;
    int rc = mdb_get(t->txn, t->store->dbi[table], &k, &v);
    if (rc)
        return translate(rc, "get");
    *val = v.mv_data;
    *vlen = v.mv_size;
    return 0;
}

int cv_store_put(cv_txn_t *t, int table, const void *key, size_t klen, const void *val,
                 size_t vlen)
{
    MDB_val k = {klen, (void *)key}, v = {vlen, (void *)val};
    int rc = mdb_put(t->txn, t->store->dbi[table], &k, &v, 0);
    if (rc == MDB_MAP_FULL || rc == MDB_TXN_FULL) {
        /* LMDB leaves the transaction unusable: abort it now so that the
         * caller only has to free the handle, grow and retry. */
        mdb_txn_abort(t->txn);
        t->txn = NULL;
    }
    return translate(rc, "put");
}

int cv_store_append(cv_txn_t *t, int table, const void *key, size_t klen, const void *val,
                    size_t vlen)
{
    MDB_val k = {klen, (void *)key}, v = {vlen, (void *)val};
    int rc = mdb_put(t->txn, t->store->dbi[table], &k, &v, MDB_APPEND);
    if (rc == MDB_MAP_FULL || rc == MDB_TXN_FULL) {
        mdb_txn_abort(t->txn); /* as in cv_store_put */
        t->txn = NULL;
    }
    return translate(rc, "append");
}

int cv_store_del(cv_txn_t *t, int table, const void *key, size_t klen)
{
    MDB_val k = {klen, (void *)key};
    return translate(mdb_del(t->txn, t->store->dbi[table], &k, NULL), "del");
}

int cv_store_iter(cv_txn_t *t, int table, const void *from, size_t flen, cv_store_iter_fn fn,
                  void *arg)
{
    MDB_cursor *c;
    int rc = mdb_cursor_open(t->txn, t->store->dbi[table], &c);
    if (rc)
        return translate(rc, "cursor");
    MDB_val k = {flen, (void *)from}, v;
    rc = mdb_cursor_get(c, &k, &v, from ? MDB_SET_RANGE : MDB_FIRST);
    int ret = 0;
    while (rc == 0) {
        ret = fn(arg, k.mv_data, k.mv_size, v.mv_data, v.mv_size);
        if (ret)
            break;
        rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(c);
    if (ret)
        return ret;
    return rc == MDB_NOTFOUND ? 0 : translate(rc, "cursor_get");
}

size_t cv_store_count(cv_txn_t *t, int table)
{
    MDB_stat st;
    if (mdb_stat(t->txn, t->store->dbi[table], &st))
        return 0;
    return st.ms_entries;
}

int cv_store_clear(cv_txn_t *t, int table)
{
    int rc = mdb_drop(t->txn, t->store->dbi[table], 0);
    if (rc == MDB_MAP_FULL || rc == MDB_TXN_FULL) {
        mdb_txn_abort(t->txn); /* as in cv_store_put */
        t->txn = NULL;
    }
    return translate(rc, "clear");
}
