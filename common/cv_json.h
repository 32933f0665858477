/* cv_json: the JSON and CSV shapes of DESIGN A7, for the CLI and the HTTP API.
 *
 * One place renders each canvass.v1 message a person or a script reads, so
 * `canvass ... --format json` and the HTTP API print the same bytes.  Every
 * function returns a new NUL-terminated string the caller frees with free(),
 * or NULL when out of memory.  Output is one line of compact JSON (keys in
 * the order shown) without a trailing newline.
 *
 * Ranked list (A7): {"cycle": N, "closed_at": "2026-11-27T17:00:00.000Z" |
 *   null (live), "order": "score", "entries": [{"rank", "feature_id",
 *   "title", "score", "up", "down", "voters", "prev_rank" (null when new),
 *   "status", "tags"}]}  -- integral scores print as integers.
 */
#ifndef CV_JSON_H
#define CV_JSON_H

#include "cv_codec.h"

#include <stdint.h>

/* RFC 3339 UTC with milliseconds, "2026-11-27T17:00:00.000Z", into out
 * (at least 32 bytes). */
void cv_json_time(uint64_t ms, char *out);

char *cv_json_ranked(const Canvass__V1__RankedList *l);

/* CSV with the header rank,feature_id,title,score,up,down,voters,prev_rank,
 * status,tags (RFC 4180 quoting, tags joined with ';', prev_rank empty when
 * new, LF line ends). */
char *cv_json_ranked_csv(const Canvass__V1__RankedList *l);

/* {"cycles": [{"cycle", "state", "opened_at", "closed_at", "scheduled_at",
 *   "entries", "total_votes"}]} */
char *cv_json_cycles(const Canvass__V1__CycleList *l);
char *cv_json_cycle(const Canvass__V1__CycleInfo *c);

/* {"feature_id", "title", "body", "tags", "author", "created_at", "status",
 *   "release", "merged_into", "up", "down", "voters", "score" (default
 *   weights 1/3/10), "history": [{"status", "at", "release", "merged_into"}],
 *   "ranks": [{"cycle", "rank", "score", "up", "down"}], "live_rank"
 *   (null when not ranked), "live_score"} */
char *cv_json_feature(const Canvass__V1__FeatureDetail *d);

/* {"feature_id", "total", "next_after" (null on the last page),
 *   "voters": [{"user_id", "value", "tier"}]} */
char *cv_json_voters(const Canvass__V1__VoterPage *p);

/* {"src", "dst", "moved", "kept"} */
char *cv_json_merge(const Canvass__V1__MergeResult *m);

/* {"features": [ the feature object above without history/ranks ]} */
char *cv_json_features(const Canvass__V1__FeatureTable *t);

/* {"status": "NOT_FOUND", "error": "text"} */
char *cv_json_error(int status, const char *error);

#endif
