/* kvmap: a hash map from byte strings to fixed-size values, for the shard's
 * in-memory overlay of logged votes (overlay.c).
 *
 * Keys are copied into one growing arena, each followed by its value, so
 * that a map of a hundred thousand votes costs a few allocations, not one
 * per vote.  Lookups use open addressing with linear probing over a table
 * of entry indices.  Entries can only be added; cv_kvmap_clear() empties
 * the map and keeps its memory for the next round.  Entries are numbered in
 * the order they were added (0 .. count-1), for iteration.
 *
 * A value pointer returned by find, put or at stays valid until the next
 * put that adds an entry, or the next clear.  Values start zeroed.
 */
#ifndef TALLY_KVMAP_H
#define TALLY_KVMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct cv_kvmap cv_kvmap_t;

/* A map whose values are vsize bytes (1..4096); NULL when out of memory. */
cv_kvmap_t *cv_kvmap_new(size_t vsize);

/* Frees the map; safe on NULL and twice; nulls *map_p. */
void cv_kvmap_destroy(cv_kvmap_t **map_p);

/* The value stored under key, or NULL. */
void *cv_kvmap_find(const cv_kvmap_t *m, const void *key, size_t klen);

/* Finds key or adds it with a zeroed value; sets *val to the value.  Returns
 * 1 when the entry was added, 0 when it was there, CV_ENOMEM (nothing
 * added) or CV_EINVAL (klen is 0 or over 65535). */
int cv_kvmap_put(cv_kvmap_t *m, const void *key, size_t klen, void **val);

/* Entry i (0 <= i < count) in the order of adding. */
void cv_kvmap_at(const cv_kvmap_t *m, size_t i, const void **key, size_t *klen, void **val);

/* Number of entries. */
size_t cv_kvmap_count(const cv_kvmap_t *m);

/* Bytes of memory the map holds (arena, entries and table). */
size_t cv_kvmap_bytes(const cv_kvmap_t *m);

/* Removes every entry; keeps the memory. */
void cv_kvmap_clear(cv_kvmap_t *m);

#endif
