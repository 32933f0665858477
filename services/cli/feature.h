/* feature: how `canvass` prints features, their voters and the movers of a
 * ranked list (DESIGN A7), for `canvass feature ...`, `canvass features`,
 * `canvass export` and `canvass ranked`.
 *
 * JSON renderings come from cv_json (the same bytes as the HTTP API); this
 * module renders the text, tables and CSV a person or a spreadsheet reads
 * (CSV fields quoted by cv_json_csv_field, as the ranked CSV is).
 * Every printing function writes to `out` and returns 0, CV_ENOMEM or
 * CV_EIO (the stream failed, e.g. a closed pipe or a full disk).
 *
 * Counts: up/down of a feature are the sums over the three tiers of
 * FeatureStanding.up/down (a reply with fewer than three entries counts the
 * missing ones as 0); the score printed beside them uses the default tier
 * weights member 1, core 3, honorary 10, whatever publish is configured
 * with, so that it reads the same everywhere (a ranked list carries the
 * configured score).
 */
#ifndef CV_FEATURE_H
#define CV_FEATURE_H

#include "cv_codec.h"

#include <stdint.h>
#include <stdio.h>

/* Default tier weights (DESIGN A5), indexed by CV_TIER_*. */
extern const double cv_feature_default_weights[CV_TIERS];

/* Sum of a standing's up (or down) counts over the tiers. */
uint64_t cv_feature_up(const Canvass__V1__FeatureStanding *s);
uint64_t cv_feature_down(const Canvass__V1__FeatureStanding *s);

/* The standing's score with cv_feature_default_weights. */
double cv_feature_score(const Canvass__V1__FeatureStanding *s);

/* `canvass feature show` for a person:
 *
 *   F1a2b3c  Dark mode for settings
 *     status    shipped in 2026.11.27
 *     author    alice
 *     created   2026-11-20 10:15 UTC
 *     tags      ui, settings
 *     votes     15 up (member 12, core 1, honorary 2), 1 down (member 1)
 *     voters    13
 *     score     14 (weights member 1, core 3, honorary 10)
 *
 *       The body, every line indented by four spaces.
 *
 *   status history
 *     2026-11-20 10:15:02 UTC  open
 *     2026-11-27 17:05:11 UTC  shipped in 2026.11.27
 *
 *   rank history
 *     CYCLE  RANK  SCORE  UP  DOWN
 *         1     4      5   6     1
 *      live     3     14  15     1
 *
 * "merged into F2" for a merged feature; "(no description)" for an empty
 * body; "(none)" for no tags; the live row reads "live  -  not ranked (STATUS)"
 * when the feature is not in the live list.  Control characters in text
 * print as spaces so that nothing can break the layout. */
int cv_feature_print_detail(FILE *out, const Canvass__V1__FeatureDetail *d);

/* Sorts a feature table oldest first (created_ms, then feature id), the
 * order every listing and export uses. */
void cv_feature_sort(Canvass__V1__FeatureTable *t);

/* `canvass features` as a table: FEATURE STATUS UP DOWN VOTERS SCORE TITLE,
 * where STATUS reads "shipped 2026.11.27" or "merged → F2"; "no features
 * yet" for an empty table. */
int cv_feature_print_table(FILE *out, const Canvass__V1__FeatureTable *t);

/* Features as CSV: the header
 *   feature_id,title,status,release,merged_into,author,created_at,tags,up,
 *   down,voters
 * then one row per feature (created_at RFC 3339 UTC, tags joined with ';'),
 * LF line ends.  Used by `canvass features --format csv` and export. */
#define CV_FEATURE_CSV_HEADER                                                                      \
    "feature_id,title,status,release,merged_into,author,created_at,tags,up,down,voters\n"
int cv_feature_print_csv(FILE *out, const Canvass__V1__FeatureTable *t);

/* Voters of one feature.  text: "user value tier" per line, e.g.
 * "alice +1 member"; csv: rows "user_id,value,tier" (value 1 or -1), with
 * the header line first when header is set.  CV_EINVAL for another format. */
typedef enum { CV_VOTERS_TEXT, CV_VOTERS_CSV } cv_voters_format_t;
int cv_feature_print_voters(FILE *out, const Canvass__V1__VoterPage *p, cv_voters_format_t fmt,
                            int header);

/* Votes for export: rows "feature_id,user_id,value,tier" for every voter of
 * the page (the header is CV_VOTES_CSV_HEADER, written by the caller). */
#define CV_VOTES_CSV_HEADER "feature_id,user_id,value,tier\n"
int cv_feature_print_votes_csv(FILE *out, const Canvass__V1__VoterPage *p);

/* The line printed after a ranked table:
 *   "biggest movers: F2 ▲5 (7 → 2), F9 ▼3 (1 → 4)\n"
 * naming at most three entries that were ranked in the previous cycle and
 * moved, the largest moves first (ties: the better rank now first).  Writes
 * nothing when no entry moved (e.g. the first cycle, where all are new). */
#define CV_FEATURE_MOVERS_MAX 3
int cv_feature_print_movers(FILE *out, const Canvass__V1__RankedList *rl);

#endif
