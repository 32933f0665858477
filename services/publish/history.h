/* history: publish's LMDB store of closed cycles, of the cycle state and of
 * the merges in progress.
 *
 * One environment with three tables:
 *   cycles  8-byte big-endian cycle number -> packed RankedList, written once
 *           at the cycle's close and never overwritten
 *   meta    "open_cycle"   -> 8-byte big-endian number of the open cycle
 *           "opened_at_ms" -> 8-byte big-endian time it opened
 *           "due_ms"       -> 8-byte big-endian time the schedule next closes
 *                             it (0: nothing scheduled)
 *           "schedule"     -> the schedule text due_ms was computed for
 *   merges  source feature id -> packed FeatureEvent (kind "merged",
 *           feature_id = the source, merged_into = the target, status
 *           "merged", at_ms, title): a merge recorded before its first step
 *           and deleted after its last, so that one interrupted anywhere is
 *           found and run again; the value is the event to broadcast when
 *           it completes
 * pub_history_commit() writes a closed cycle's list and the new meta in one
 * transaction, so after a crash either the old cycle is open or the new one
 * is, never half of each.  Every commit is fsynced: closes are rare, and each
 * is a release decision.  Not thread-safe.
 */
#ifndef PUB_HISTORY_H
#define PUB_HISTORY_H

#include "cv_codec.h"

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t open;      /* the open cycle, >= 1 */
    uint64_t opened_at; /* ms since the epoch */
    uint64_t due;       /* ms since the epoch; 0 when nothing is scheduled */
} pub_meta_t;

typedef struct pub_history pub_history_t;

/* Opens (creating when missing) the store in directory dir, whose parent
 * must exist.  NULL on failure (logged). */
pub_history_t *pub_history_open(const char *dir);

/* Closes the store; safe on NULL and twice; nulls *h_p. */
void pub_history_close(pub_history_t **h_p);

/* Clears reader slots left by crashed processes that opened the store (a
 * tool, a killed publish); returns how many (>= 0). */
int pub_history_reader_check(pub_history_t *h);

/* Reads the meta.  Returns 1 when the store is fresh (*m untouched), 0 after
 * filling *m and setting *schedule_matches to whether the stored due time
 * was computed for schedule_text, CV_EDECODE when the meta is corrupt, or
 * another CV_E* storage error. */
int pub_history_load(pub_history_t *h, const char *schedule_text, pub_meta_t *m,
                     int *schedule_matches);

/* In one write transaction: stores list[0..len) as the list of cycle
 * m->open - 1 (when list is not NULL), and m with schedule_text as the meta.
 * Returns 0, CV_EEXISTS when that cycle's list is already stored (nothing is
 * written: stored lists are immutable) or another CV_E* storage error. */
int pub_history_commit(pub_history_t *h, const pub_meta_t *m, const char *schedule_text,
                       const uint8_t *list, size_t len);

/* Copies the stored list of `cycle` into a new buffer the caller frees.
 * Returns 0, CV_ENOTFOUND, CV_ENOMEM or CV_EIO. */
int pub_history_get(pub_history_t *h, uint64_t cycle, uint8_t **buf, size_t *len);

/* Describes every stored cycle, in order, as a closed CycleInfo (its
 * strings are static), followed by `spare` initialised, empty slots for the
 * caller.  *infos is a new array of *n entries the caller frees with free().
 * Only each list's top level is read (wire.h): its entries are counted, not
 * decoded.  A list whose top level does not decode is reported with its
 * number only (logged).
 * Returns 0, CV_ENOMEM or CV_EIO. */
int pub_history_list(pub_history_t *h, size_t spare, Canvass__V1__CycleInfo **infos, size_t *n);

/* Records a pending merge: ev->feature_id (the source) -> ev, replacing a
 * record for the same source.  Committed (fsynced) before it returns.
 * Returns 0, CV_ENOMEM or another CV_E* storage error. */
int pub_history_merge_put(pub_history_t *h, const Canvass__V1__FeatureEvent *ev);

/* Deletes the pending merge of source src; 0 also when there is none.
 * Returns 0 or a CV_E* storage error. */
int pub_history_merge_del(pub_history_t *h, const char *src);

/* Every pending merge, in source id order: *evs is a new array of *n
 * unpacked events, freed with pub_history_merges_free().  A record that does
 * not decode is logged and skipped.  Returns 0, CV_ENOMEM or CV_EIO. */
int pub_history_merges(pub_history_t *h, Canvass__V1__FeatureEvent ***evs, size_t *n);

/* Frees what pub_history_merges() returned; safe on NULL. */
void pub_history_merges_free(Canvass__V1__FeatureEvent **evs, size_t n);

#endif
