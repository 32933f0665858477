/* lists: closed ranked lists kept packed and indexed (see lists.h).
 *
 * The kept lists sit in a small array of slots, one per (cycle, order) of
 * the two latest closed cycles.  Anything else -- a list of an older cycle,
 * or what an older cycle's ranks borrow from -- lives in the scratch
 * members until the next public call, which is what "valid until the next
 * call" in lists.h means.
 *
 * A list in an order other than score is built from the score list by
 * unpacking it (protobuf-c), re-sorting the entries, filling prev_rank and
 * packing it again (wire.h): the cost of a first pull in that order, paid
 * once per kept cycle and order. */
#include "lists.h"
#include "cv_err.h"
#include "cv_log.h"

#include <stdlib.h>
#include <string.h>

/* Two cycles in three orders. */
#define KEPT_SLOTS 6

struct pub_lists {
    pub_history_t *history; /* borrowed */
    uint64_t latest;        /* the last closed cycle; 0: none */
    pub_list_t kept[KEPT_SLOTS];
    /* valid until the next public call */
    pub_list_t scratch;                   /* a list of an older cycle */
    pub_list_t scratch_ranks;             /* an older cycle's score list, with its ranks */
    Canvass__V1__RankedList *ranks_owner; /* an older cycle re-sorted ... */
    cv_rank_prev_t *owner_ranks;          /* ... and its ranks */
    int prepare_failed;                   /* logged once per latest list */
};

int pub_list_set(pub_list_t *l, uint64_t cycle, cv_rank_order_t order, uint8_t *buf, size_t len)
{
    pub_list_t x = {.cycle = cycle, .order = order, .buf = buf, .len = len};
    int rc = pub_wire_list_index(buf, len, 1, &x.idx);
    if (rc < 0) {
        free(buf);
        /* Not contiguous is never written by publish: as unreadable as bad
         * bytes. */
        return rc == CV_ENOMEM ? rc : CV_EDECODE;
    }
    *l = x;
    return 0;
}

void pub_list_clear(pub_list_t *l)
{
    cv_rank_prev_destroy(&l->ranks);
    pub_wire_list_free(&l->idx);
    free(l->buf);
    memset(l, 0, sizeof *l);
}

pub_lists_t *pub_lists_new(pub_history_t *history, uint64_t latest)
{
    pub_lists_t *ls = calloc(1, sizeof *ls);
    if (ls) {
        ls->history = history;
        ls->latest = latest;
    }
    return ls;
}

/* Ends the validity of what the previous call lent out. */
static void scratch_reset(pub_lists_t *ls)
{
    pub_list_clear(&ls->scratch);
    pub_list_clear(&ls->scratch_ranks);
    cv_rank_prev_destroy(&ls->owner_ranks);
    if (ls->ranks_owner)
        canvass__v1__ranked_list__free_unpacked(ls->ranks_owner, NULL);
    ls->ranks_owner = NULL;
}

void pub_lists_destroy(pub_lists_t **ls_p)
{
    if (!ls_p || !*ls_p)
        return;
    pub_lists_t *ls = *ls_p;
    scratch_reset(ls);
    for (int i = 0; i < KEPT_SLOTS; i++)
        pub_list_clear(&ls->kept[i]);
    free(ls);
    *ls_p = NULL;
}

static int is_kept(const pub_lists_t *ls, uint64_t cycle)
{
    return cycle >= 1 && cycle <= ls->latest && cycle + 1 >= ls->latest;
}

static pub_list_t *kept_find(pub_lists_t *ls, uint64_t cycle, cv_rank_order_t order)
{
    for (int i = 0; i < KEPT_SLOTS; i++)
        if (ls->kept[i].cycle == cycle && ls->kept[i].order == order)
            return &ls->kept[i];
    return NULL;
}

/* Moves *l into a free slot.  Two kept cycles in three orders fill the
 * slots at most; anything older was dropped when the latest moved on. */
static pub_list_t *kept_put(pub_lists_t *ls, pub_list_t *l)
{
    pub_list_t *slot = NULL;
    for (int i = 0; i < KEPT_SLOTS && !slot; i++)
        if (!ls->kept[i].cycle || !is_kept(ls, ls->kept[i].cycle))
            slot = &ls->kept[i];
    if (!slot)
        slot = &ls->kept[0]; /* cannot happen; keep the newest list rather than fail */
    pub_list_clear(slot);
    *slot = *l;
    memset(l, 0, sizeof *l);
    return slot;
}

/* Reads cycle's stored list into *l. */
static int load_stored(pub_lists_t *ls, uint64_t cycle, pub_list_t *l)
{
    uint8_t *buf;
    size_t len;
    int rc = pub_history_get(ls->history, cycle, &buf, &len);
    if (rc == 0 && (rc = pub_list_set(l, cycle, CV_RANK_SCORE, buf, len)) == CV_EDECODE)
        cv_log(CV_LOG_ERROR, "msg=\"stored list undecodable\" cycle=%llu bytes=%zu",
               (unsigned long long)cycle, len);
    return rc;
}

static int ranks_of(pub_lists_t *ls, uint64_t cycle, cv_rank_order_t order,
                    const cv_rank_prev_t **out);

/* Builds cycle's list in `order` from its score list into *into. */
static int compute_order(pub_lists_t *ls, const pub_list_t *score, cv_rank_order_t order,
                         pub_list_t *into)
{
    Canvass__V1__RankedList *l = canvass__v1__ranked_list__unpack(NULL, score->len, score->buf);
    if (!l) {
        cv_log(CV_LOG_ERROR, "msg=\"stored list undecodable\" cycle=%llu",
               (unsigned long long)score->cycle);
        return CV_EDECODE;
    }
    const cv_rank_prev_t *prev = NULL;
    int rc = cv_rank_reorder(l->entries, l->n_entries, order);
    if (rc == 0 && score->cycle > 1) {
        /* prev_rank is advisory: a previous list that cannot be had leaves
         * every entry new, as it did before there was one. */
        int prc = ranks_of(ls, score->cycle - 1, order, &prev);
        if (prc < 0)
            cv_log(CV_LOG_WARN, "msg=\"previous list unavailable\" cycle=%llu order=%s err=\"%s\"",
                   (unsigned long long)score->cycle - 1, cv_rank_order_name(order),
                   cv_strerror(prc));
    }
    if (rc == 0) {
        cv_rank_fill_prev_with(l->entries, l->n_entries, prev);
        char *stored_order = l->order;
        l->order = (char *)cv_rank_order_name(order);
        pub_list_t x = {.cycle = score->cycle, .order = order};
        rc = pub_wire_list_pack(l, &x.buf, &x.len, &x.idx);
        l->order = stored_order; /* the unpacked message frees what it owns */
        if (rc == 0)
            *into = x;
    }
    canvass__v1__ranked_list__free_unpacked(l, NULL);
    return rc;
}

/* A kept cycle's list in order, computed and kept when missing. */
static int get_kept(pub_lists_t *ls, uint64_t cycle, cv_rank_order_t order, pub_list_t **out)
{
    if ((*out = kept_find(ls, cycle, order)))
        return 0;
    pub_list_t l = {0};
    int rc;
    if (order == CV_RANK_SCORE) {
        rc = load_stored(ls, cycle, &l);
    } else {
        pub_list_t *score;
        if ((rc = get_kept(ls, cycle, CV_RANK_SCORE, &score)) == 0)
            rc = compute_order(ls, score, order, &l);
    }
    if (rc < 0)
        return rc;
    *out = kept_put(ls, &l);
    return 0;
}

/* A list's ranks by id, built on first use and kept with it. */
static int table_of(pub_list_t *l, const cv_rank_prev_t **out)
{
    if (!l->ranks) {
        cv_rank_prev_t *t = cv_rank_prev_new(l->idx.n);
        if (!t)
            return CV_ENOMEM;
        int rc = pub_wire_list_ranks(l->buf, &l->idx, t);
        if (rc < 0) {
            cv_rank_prev_destroy(&t);
            return rc;
        }
        l->ranks = t;
    }
    *out = l->ranks;
    return 0;
}

/* The ranks of cycle in order.  A kept cycle's come from its (kept) list; an
 * older one's from its stored list re-sorted, without building its own
 * prev_rank, kept in the scratch members until the next public call. */
static int ranks_of(pub_lists_t *ls, uint64_t cycle, cv_rank_order_t order,
                    const cv_rank_prev_t **out)
{
    int rc;
    if (is_kept(ls, cycle)) {
        pub_list_t *l;
        if ((rc = get_kept(ls, cycle, order, &l)) < 0)
            return rc;
        return table_of(l, out);
    }
    pub_list_clear(&ls->scratch_ranks);
    if ((rc = load_stored(ls, cycle, &ls->scratch_ranks)) < 0)
        return rc;
    if (order == CV_RANK_SCORE)
        return table_of(&ls->scratch_ranks, out);
    cv_rank_prev_destroy(&ls->owner_ranks);
    if (ls->ranks_owner)
        canvass__v1__ranked_list__free_unpacked(ls->ranks_owner, NULL);
    ls->ranks_owner =
        canvass__v1__ranked_list__unpack(NULL, ls->scratch_ranks.len, ls->scratch_ranks.buf);
    if (!ls->ranks_owner)
        return CV_EDECODE;
    Canvass__V1__RankedList *l = ls->ranks_owner;
    if (cv_rank_reorder(l->entries, l->n_entries, order) < 0 ||
        !(ls->owner_ranks = cv_rank_prev_new(l->n_entries)) ||
        cv_rank_prev_add(ls->owner_ranks, l->entries, l->n_entries) < 0)
        return CV_ENOMEM;
    *out = ls->owner_ranks;
    return 0;
}

void pub_lists_add(pub_lists_t *ls, pub_list_t *l)
{
    scratch_reset(ls);
    ls->latest = l->cycle;
    ls->prepare_failed = 0;
    for (int i = 0; i < KEPT_SLOTS; i++)
        if (ls->kept[i].cycle && !is_kept(ls, ls->kept[i].cycle))
            pub_list_clear(&ls->kept[i]);
    pub_list_t *old = kept_find(ls, l->cycle, CV_RANK_SCORE);
    if (old) /* cannot happen: a cycle closes once */
        pub_list_clear(old);
    kept_put(ls, l);
}

int pub_lists_get(pub_lists_t *ls, uint64_t cycle, cv_rank_order_t order, const pub_list_t **out)
{
    scratch_reset(ls);
    if (cycle == 0 || cycle > ls->latest)
        return CV_ENOTFOUND;
    int rc;
    if (is_kept(ls, cycle)) {
        pub_list_t *l;
        if ((rc = get_kept(ls, cycle, order, &l)) == 0)
            *out = l;
        return rc;
    }
    if (order == CV_RANK_SCORE) {
        rc = load_stored(ls, cycle, &ls->scratch);
    } else {
        pub_list_t score = {0};
        if ((rc = load_stored(ls, cycle, &score)) == 0)
            rc = compute_order(ls, &score, order, &ls->scratch);
        pub_list_clear(&score);
    }
    if (rc == 0)
        *out = &ls->scratch;
    return rc;
}

int pub_lists_ranks(pub_lists_t *ls, uint64_t cycle, cv_rank_order_t order,
                    const cv_rank_prev_t **out)
{
    scratch_reset(ls);
    if (cycle == 0 || cycle > ls->latest)
        return CV_ENOTFOUND;
    return ranks_of(ls, cycle, order, out);
}

int pub_lists_prepare(pub_lists_t *ls)
{
    if (!ls->latest || ls->prepare_failed)
        return 0;
    pub_list_t *l = kept_find(ls, ls->latest, CV_RANK_SCORE);
    if (l && l->ranks)
        return 0;
    scratch_reset(ls);
    const cv_rank_prev_t *t;
    int rc = get_kept(ls, ls->latest, CV_RANK_SCORE, &l);
    if (rc == 0)
        rc = table_of(l, &t);
    if (rc < 0) {
        /* Not again until the next close: a close or pull that needs the
         * list reports the problem itself. */
        ls->prepare_failed = 1;
        cv_log(CV_LOG_WARN, "msg=\"latest list not prepared\" cycle=%llu err=\"%s\"",
               (unsigned long long)ls->latest, cv_strerror(rc));
        return rc;
    }
    return 1;
}
