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
#include <stdio.h>

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

/* ---- added for the HTTP API ------------------------------------------------
 * Conventions of the shapes above, spelled out: times are cv_json_time()
 * strings, or null when the field is 0 (a live list's closed_at, an open
 * cycle's closed_at, a manual close's scheduled_at); counts are integers;
 * an integral score is a JSON integer and any other a JSON real as jansson
 * prints it (17 significant digits; the CSV uses cv_json_score() instead);
 * strings that are empty in the message
 * ("release", "merged_into", "next_after") are null; a voter's empty tier is
 * "member".  A string that is not valid UTF-8 is shown with '?' for each
 * stray byte. */

/* A score as the ranked JSON and CSV print it: an integral score without a
 * fraction ("14", "-3", "0" for -0), any other with the fewest of 15-17
 * significant digits that read back to the same double. */
#define CV_JSON_SCORE_CAP 40
void cv_json_score(double score, char out[CV_JSON_SCORE_CAP]);

/* Writes one CSV field with RFC 4180 quoting, as the ranked CSV does: quoted
 * (quotes doubled) when it holds a comma, a quote, CR or LF; as is otherwise.
 * Returns 0 or CV_EIO (the stream failed). */
int cv_json_csv_field(FILE *out, const char *s);

/* {"status": "<status>"}, e.g. {"status": "ok"} for a health check. */
char *cv_json_status(const char *status);

/* Reads a request body that must be one JSON object whose members are all
 * strings named in names[0..n).  On success returns 0 and sets values[i] to
 * a malloc'd copy of member names[i] (the caller frees each) or NULL when it
 * is absent.  Returns CV_EINVAL after writing a one-line reason into err
 * (e.g. "body is not valid JSON: ... at line 1 column 9", "body must be a
 * JSON object", "'status' must be a string", "unknown field 'x' (expected
 * status, release)"), with every values[i] NULL; CV_ENOMEM when out of
 * memory. */
int cv_json_parse_strings(const char *body, size_t len, const char *const *names, char **values,
                          size_t n, char *err, size_t errlen);

#endif
