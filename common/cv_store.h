/* cv_store: an LMDB environment with named tables.
 *
 * One store is one LMDB environment in its own directory (data files 0600),
 * opened with a fixed list of named tables.  Writes happen in a transaction
 * that the caller commits; when the map fills, a put or the commit returns
 * CV_EFULL, the transaction is already aborted, and the caller calls
 * cv_store_grow() and runs the whole transaction again: a full map is never a
 * failed vote.  Stale reader slots left by crashed processes are cleared at
 * open and by cv_store_reader_check().
 *
 * Durability: CV_DURABLE_FSYNC syncs every commit (survives power loss);
 * CV_DURABLE_OS leaves flushing to the OS (survives any process crash).
 *
 * Not thread-safe: one thread uses a store.  Values returned by get and the
 * iterator are borrowed from LMDB and valid until the transaction ends or,
 * in a write transaction, until the next put or delete.
 */
#ifndef CV_STORE_H
#define CV_STORE_H

#include <stddef.h>
#include <stdint.h>

typedef struct cv_store cv_store_t;
typedef struct cv_txn cv_txn_t;

typedef enum { CV_DURABLE_FSYNC = 0, CV_DURABLE_OS = 1 } cv_durability_t;

/* Parses "fsync" or "os"; -1 otherwise. */
int cv_durability_parse(const char *name);

/* Opens (creating when missing) the environment in directory dir with the
 * named tables (at most 16), initial map size map_bytes (0: 64 MiB).
 * Returns NULL on failure after logging why. */
cv_store_t *cv_store_open(const char *dir, const char *const *tables, int ntables,
                          cv_durability_t durability, size_t map_bytes);

/* Closes the environment; safe on NULL and twice; nulls *store_p.  No
 * transaction may be open. */
void cv_store_close(cv_store_t **store_p);

/* Doubles the map size.  No transaction may be open.  Returns 0 or CV_EIO. */
int cv_store_grow(cv_store_t *s);

/* Clears stale reader slots; returns how many were cleared (>= 0). */
int cv_store_reader_check(cv_store_t *s);

/* Current map size in bytes. */
size_t cv_store_map_size(cv_store_t *s);

/* Flushes to disk (after CV_DURABLE_OS writes, e.g. at shutdown). */
int cv_store_sync(cv_store_t *s);

/* Begins a transaction.  Returns 0 or CV_EIO. */
int cv_store_begin(cv_store_t *s, int readonly, cv_txn_t **txn);

/* Commits and frees the transaction.  Returns 0, CV_EFULL (grow and retry)
 * or CV_EIO; on failure the transaction is aborted and freed. */
int cv_store_commit(cv_txn_t **txn);

/* Aborts and frees the transaction; safe on NULL and twice. */
void cv_store_abort(cv_txn_t **txn);

/* Looks a key up in table `table` (index into the open list).  Returns 0 and
 * sets *val / *vlen (borrowed), CV_ENOTFOUND, or CV_EIO. */
int cv_store_get(cv_txn_t *t, int table, const void *key, size_t klen, const void **val,
                 size_t *vlen);

/* Stores key -> val.  Returns 0, CV_EFULL (the transaction is then aborted
 * and must only be passed to cv_store_abort) or CV_EIO. */
int cv_store_put(cv_txn_t *t, int table, const void *key, size_t klen, const void *val,
                 size_t vlen);

/* Stores key -> val where key sorts after every key of the table (LMDB's
 * MDB_APPEND: pages fill up instead of splitting in half).  Returns 0,
 * CV_EFULL (as cv_store_put) or CV_EIO (also when the key is not the
 * largest). */
int cv_store_append(cv_txn_t *t, int table, const void *key, size_t klen, const void *val,
                    size_t vlen);

/* Deletes a key.  Returns 0, CV_ENOTFOUND or CV_EIO. */
int cv_store_del(cv_txn_t *t, int table, const void *key, size_t klen);

/* Calls fn for every key >= from (all keys when from is NULL) in key order
 * until fn returns non-zero, which is then returned.  Returns 0 after the
 * last key, or CV_EIO. */
typedef int (*cv_store_iter_fn)(void *arg, const void *key, size_t klen, const void *val,
                                size_t vlen);
int cv_store_iter(cv_txn_t *t, int table, const void *from, size_t flen, cv_store_iter_fn fn,
                  void *arg);

/* Number of entries in a table. */
size_t cv_store_count(cv_txn_t *t, int table);

/* Deletes every entry of a table (write transaction).  Returns 0, CV_EFULL
 * (abort, grow, retry) or CV_EIO. */
int cv_store_clear(cv_txn_t *t, int table);

#endif
