/* format: how `canvass` prints ranked lists and cycles (DESIGN A7).
 *
 * Three renderings of a RankedList:
 *   json   one object, exactly the A7 shape:
 *          {"cycle": N, "closed_at": "2026-11-27T17:00:00.000Z" | null,
 *           "order": "score", "entries": [{"rank", "feature_id", "title",
 *           "score", "up", "down", "voters", "prev_rank" (null when new),
 *           "status", "tags": [...]}]}
 *          Counts are JSON integers; a score is an integer when it is
 *          integral, else a number with enough digits to read back exactly.
 *   csv    header rank,feature_id,title,score,up,down,voters,prev_rank,
 *          status,tags, one row per entry, RFC 4180 quoting, LF line ends,
 *          tags joined with ';', prev_rank empty when new.
 *   table  a title line and aligned columns for a person, with a movement
 *          marker per entry: "new", "▲2", "▼1" or "=".
 * and two of a CycleList (table, json).  Every function writes to `out` and
 * returns 0, CV_ENOMEM or CV_EIO (the stream failed, e.g. a closed pipe).
 */
#ifndef CV_FORMAT_H
#define CV_FORMAT_H

#include "cv_codec.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum { CV_FMT_TABLE, CV_FMT_JSON, CV_FMT_CSV } cv_format_t;

/* Maps "table" / "json" / "csv" to a cv_format_t; -1 otherwise. */
int cv_format_parse(const char *name);

/* Writes ms since the epoch as RFC 3339 UTC with milliseconds,
 * "2026-11-27T17:00:00.000Z" (24 characters + NUL). */
#define CV_TIME_CAP 80
void cv_format_time_rfc3339(uint64_t ms, char out[CV_TIME_CAP]);

/* Writes ms since the epoch for a person: "2026-11-27 17:00 UTC" (or with
 * seconds, "2026-11-27 17:00:05 UTC", when with_seconds). */
void cv_format_time_human(uint64_t ms, int with_seconds, char out[CV_TIME_CAP]);

/* Writes a score: integral scores without a fraction ("14", "-3"); others
 * with the fewest digits that read back to the same double (precise) or with
 * three decimals (for a person). */
#define CV_SCORE_CAP 40
void cv_format_score(double score, int precise, char out[CV_SCORE_CAP]);

/* The movement marker of an entry: "new" (prev_rank 0), "▲N" (up N places),
 * "▼N" (down N places) or "=". */
#define CV_MOVE_CAP 24
void cv_format_movement(uint32_t rank, uint32_t prev_rank, char out[CV_MOVE_CAP]);

/* Writes one CSV field with RFC 4180 quoting: quoted (quotes doubled) when it
 * holds a comma, a quote, CR or LF; as is otherwise. */
int cv_format_csv_field(FILE *out, const char *s);

/* Renders a ranked list (see the top of this file). */
int cv_format_ranked(FILE *out, const Canvass__V1__RankedList *rl, cv_format_t fmt);

/* Renders a cycle list.  table: CYCLE STATE OPENED CLOSED ENTRIES VOTES;
 * json: {"cycles": [{"cycle", "state", "opened_at", "closed_at" (null while
 * open), "scheduled_at" (null for a manual close), "entries",
 * "total_votes"}]}.  CV_FMT_CSV is not offered for cycles: CV_EINVAL. */
int cv_format_cycles(FILE *out, const Canvass__V1__CycleList *cl, cv_format_t fmt);

#endif
