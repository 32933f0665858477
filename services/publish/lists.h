/* lists: the closed cycles' ranked lists as publish serves them (DESIGN A5,
 * A7; docs/ORDERS.md; docs/PERFORMANCE.md).
 *
 * Every closed list is stored once, packed, in score order (history.h).  A
 * pull asks for one in an order, often cut to its first K entries; doing
 * that by unpacking the stored list cost ~80 ms a pull at 100 000 entries.
 * Here a list is kept packed together with where each of its entries lies
 * (wire.h), so cutting it is three byte ranges, whatever its size.
 *
 * Kept in memory: the lists of the last two closed cycles, in every order
 * pulled so far -- the latest, which most pulls want, and the one before,
 * whose ranks are the latest's prev_rank in each order.  An older cycle is
 * read from the store again at each use.  A list in another order than
 * score is computed the first time it is asked for: the stored entries
 * re-sorted (cv_rank_reorder), prev_rank taken from the previous cycle's
 * list re-sorted the same way; for the two kept cycles it is kept, since a
 * closed list never changes and neither does anything computed from it.
 *
 * Not thread-safe; publish's one thread uses it.
 */
#ifndef PUB_LISTS_H
#define PUB_LISTS_H

#include "cv_rank.h"
#include "history.h"
#include "wire.h"

#include <stddef.h>
#include <stdint.h>

/* One packed RankedList and its index (entry offsets included). */
typedef struct {
    uint64_t cycle; /* 0: none */
    cv_rank_order_t order;
    uint8_t *buf;
    size_t len;
    pub_wire_list_t idx;
    cv_rank_prev_t *ranks; /* its ranks by feature id, once asked for (ids in buf) */
} pub_list_t;

typedef struct pub_lists pub_lists_t;

/* A new, empty set over the store of history (borrowed, must outlive it);
 * latest is the last closed cycle (0: none).  NULL when out of memory. */
pub_lists_t *pub_lists_new(pub_history_t *history, uint64_t latest);

/* Frees every list; safe on NULL and twice; nulls *ls_p. */
void pub_lists_destroy(pub_lists_t **ls_p);

/* Records l, the score list of the cycle just closed and stored, packed and
 * indexed: takes what l holds (and empties it), makes l->cycle the latest
 * and drops the lists of cycles before l->cycle - 1. */
void pub_lists_add(pub_lists_t *ls, pub_list_t *l);

/* Closed cycle `cycle` (1..latest) in `order`.  *out is borrowed, valid
 * until the next call on ls.  Returns 0, CV_ENOTFOUND (not stored), CV_EDECODE
 * (the stored list, or a list built from it, cannot be read), CV_ENOMEM or
 * CV_EIO. */
int pub_lists_get(pub_lists_t *ls, uint64_t cycle, cv_rank_order_t order, const pub_list_t **out);

/* The ranks of closed cycle `cycle` in `order`, for prev_rank: *out is
 * borrowed, valid until the next call on ls.  A kept list's table is built
 * once and kept with it.  Errors as for pub_lists_get. */
int pub_lists_ranks(pub_lists_t *ls, uint64_t cycle, cv_rank_order_t order,
                    const cv_rank_prev_t **out);

/* Work that can wait until publish is idle, done now: reads the latest
 * closed list when it is not in memory (after a start) and builds its
 * ranks, which the next close and every live list look up 100 000 times.
 * Returns 1 when there was something to do, 0 when not, or a CV_E* error
 * (logged; tried again at the next call). */
int pub_lists_prepare(pub_lists_t *ls);

/* Indexes buf[0..len) into l (taking buf: it is freed with l, or at once
 * when indexing fails).  Returns 0, CV_EDECODE or CV_ENOMEM. */
int pub_list_set(pub_list_t *l, uint64_t cycle, cv_rank_order_t order, uint8_t *buf, size_t len);

/* Frees l's bytes and index and empties it; safe on an empty list. */
void pub_list_clear(pub_list_t *l);

#endif
