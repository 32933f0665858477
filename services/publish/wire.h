/* wire: the two large messages publish handles, read and cut by hand
 * (docs/PERFORMANCE.md, "Closing and pulling large cycles").
 *
 * A close over 100 000 features receives two shard replies of ~7 MB each and
 * stores a ~9.5 MB RankedList; protobuf-c's unpack of a reply costs a malloc
 * per field (and a free per field afterwards): 110-190 ms per reply in
 * publish, still ~70 ms with an arena.  Pulling the first 100 entries of a
 * stored list used to unpack all of it.  This module works on the protobuf
 * wire format directly:
 *
 *   - a TallyReply's envelope (corr, status, which result) without its
 *     result, so a reply is routed before anything large is decoded;
 *   - a TallyReply carrying Standings decoded straight into the
 *     cv_standing_t array that cv_rank_build() ranks, with only the fields
 *     ranking uses (the record's body, author, release and history are
 *     stepped over by their length) and every string in one arena;
 *   - a packed RankedList indexed: its scalar fields and where each entry
 *     lies, so that a list cut to its first K entries is three borrowed byte
 *     ranges, and a stored list's summary costs no decoding of its entries;
 *   - a RankedList packed, byte for byte as protobuf-c packs it, indexed on
 *     the way (wire_list.c).
 *
 * Decoding follows protobuf's rules as protobuf-c applies them: unknown
 * fields are skipped, a repeated scalar may come packed or not, the last
 * value of a scalar wins, a non-repeated message field met twice is merged,
 * a known field with the wrong wire type, a truncated or over-long varint,
 * field number 0 or a group makes the message undecodable.  (Skipped fields
 * are checked for their wire type, not decoded: a FeatureRecord whose status
 * history is malformed is taken here where protobuf-c would refuse it.)
 * Everything read is outside input: nothing here asserts on it.
 */
#ifndef PUB_WIRE_H
#define PUB_WIRE_H

#include "cv_codec.h"
#include "cv_rank.h"

#include <stddef.h>
#include <stdint.h>

/* TallyReply's result field numbers (proto/canvass.proto). */
#define PUB_WIRE_RESULT_STANDINGS 11

/* ---- shard replies ------------------------------------------------------------ */

/* The envelope of a TallyReply. */
typedef struct {
    uint64_t corr;
    int status; /* TallyReply.status */
    int result; /* field number of the result set (e.g. PUB_WIRE_RESULT_STANDINGS); 0: none */
} pub_wire_head_t;

/* Reads the envelope of the TallyReply in buf[0..len) without decoding its
 * result (only its length).  Returns 0, or CV_EDECODE when the top level is
 * not a well-formed TallyReply. */
int pub_wire_reply_head(const uint8_t *buf, size_t len, pub_wire_head_t *head);

/* A TallyReply decoded for ranking. */
typedef struct pub_wire_arena pub_wire_arena_t;
typedef struct {
    pub_wire_head_t head;
    const char *error; /* TallyReply.error; "" when none */
    uint32_t shard;    /* Standings.shard, .cycle, .at_ms (0 without standings) */
    uint64_t cycle, at_ms;
    cv_standing_t *features; /* n_features standings, in the order sent */
    size_t n_features;
    /* NULL, or why these standings cannot be ranked although they decode,
     * e.g. "a standing without a feature" or "4/3/3 tier counts for feature
     * 'f1', at most 3": the first such standing's. */
    const char *problem;
    pub_wire_arena_t *arena; /* every string and array above */
} pub_wire_standings_t;

/* Decodes the TallyReply in buf[0..len) for ranking: its envelope, error
 * text and, when its result is Standings, every FeatureStanding as a
 * cv_standing_t (feature_id, title, status, tags and created_ms from the
 * record; up, down and trend per tier; voters).  Missing strings are "".  A
 * standing sending more than CV_TIERS counts keeps the first CV_TIERS and
 * sets `problem`.  The buffer is not kept.  Returns 0 and *out (free with
 * pub_wire_standings_destroy), CV_EDECODE or CV_ENOMEM. */
int pub_wire_standings_decode(const uint8_t *buf, size_t len, pub_wire_standings_t **out);

/* Frees the standings and their strings; safe on NULL and twice; nulls
 * *st_p. */
void pub_wire_standings_destroy(pub_wire_standings_t **st_p);

/* ---- ranked lists ------------------------------------------------------------- */

/* Where things are in a packed RankedList.  Entry i occupies bytes
 * [i ? ends[i-1] : head_end, ends[i]) -- its tag, length and contents. */
typedef struct {
    uint64_t cycle, opened_at_ms, closed_at_ms, scheduled_at_ms, total_votes;
    size_t n;          /* entries */
    size_t head_end;   /* the fields before the first entry: [0, head_end) */
    size_t tail_start; /* the fields after the last entry: [tail_start, len) */
    uint32_t *ends;    /* n end offsets (NULL when n is 0 or not asked for) */
} pub_wire_list_t;

/* Indexes the packed RankedList in buf[0..len) (len < 4 GiB).  With
 * want_ends 0 only the scalar fields and the entry count are read (a
 * summary: no allocation).  Returns 0, CV_EDECODE when it is not a
 * well-formed RankedList at the top level, CV_EINVAL when its entries are not
 * contiguous (never the case for a list publish packed: protobuf-c writes
 * fields in number order), or CV_ENOMEM. */
int pub_wire_list_index(const uint8_t *buf, size_t len, int want_ends, pub_wire_list_t *idx);

/* Packs l into a new buffer (the caller's) and indexes it on the way: the
 * same bytes protobuf-c's pack writes (fields in number order, proto3
 * defaults left out), about three times faster, since each entry is sized
 * once.  A list or entry carrying unknown fields is packed by protobuf-c
 * and indexed.  Returns 0, or CV_ENOMEM (nothing to free). */
int pub_wire_list_pack(const Canvass__V1__RankedList *l, uint8_t **buf, size_t *len,
                       pub_wire_list_t *idx);

/* Frees the offsets; the index can be filled again. */
void pub_wire_list_free(pub_wire_list_t *idx);

/* The list cut to its first k entries (k >= n: the whole list, the very
 * bytes given): three ranges of buf -- the fields before the entries, the
 * first k entries, the fields after them -- whose concatenation is the
 * packed RankedList protobuf-c would write for the same list with k entries.
 * The index must have its ends. */
void pub_wire_list_cut(const uint8_t *buf, size_t len, const pub_wire_list_t *idx, size_t k,
                       const uint8_t *part[3], size_t size[3]);

/* Entry i's own bytes (a packed RankedEntry, without the list's tag and
 * length), borrowed from buf.  Returns 0 or CV_EDECODE. */
int pub_wire_entry_bytes(const uint8_t *buf, const pub_wire_list_t *idx, size_t i,
                         const uint8_t **data, size_t *len);

/* Reads entry i's rank and feature id (borrowed from buf, not
 * NUL-terminated) without decoding the rest.  Returns 0 or CV_EDECODE. */
int pub_wire_entry_key(const uint8_t *buf, const pub_wire_list_t *idx, size_t i, const char **id,
                       size_t *idlen, uint32_t *rank);

/* Adds the rank of every entry of the indexed list to prev, keyed by feature
 * id (borrowed from buf, which must outlive prev).  Returns 0, CV_EDECODE
 * or CV_ENOMEM. */
int pub_wire_list_ranks(const uint8_t *buf, const pub_wire_list_t *idx, cv_rank_prev_t *prev);

#endif
