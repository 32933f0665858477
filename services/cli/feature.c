/* feature: features, voters and movers as text, tables and CSV.
 *
 * This file implements feature.h.  Tables are padded by display width
 * (UTF-8 code points, not bytes), like format.c's, because titles and the
 * movement arrows are not ASCII; the title is always the last column so a
 * long one never pushes the others out of line.  Replies come from the
 * network, so every repeated field and sub-message is read defensively: a
 * missing FeatureRecord reads as empty text, a short up/down array as zeros.
 */
#include "feature.h"
#include "cv_err.h"
#include "cv_json.h"
#include "format.h"

#include <stdlib.h>
#include <string.h>

const double cv_feature_default_weights[CV_TIERS] = {1, 3, 10};

/* ---- counts --------------------------------------------------------------- */

static uint64_t tier_count(const uint64_t *v, size_t n, int tier)
{
    return (size_t)tier < n ? v[tier] : 0;
}

uint64_t cv_feature_up(const Canvass__V1__FeatureStanding *s)
{
    uint64_t sum = 0;
    for (int t = 0; t < CV_TIERS; t++)
        sum += tier_count(s->up, s->n_up, t);
    return sum;
}

uint64_t cv_feature_down(const Canvass__V1__FeatureStanding *s)
{
    uint64_t sum = 0;
    for (int t = 0; t < CV_TIERS; t++)
        sum += tier_count(s->down, s->n_down, t);
    return sum;
}

double cv_feature_score(const Canvass__V1__FeatureStanding *s)
{
    double score = 0;
    for (int t = 0; t < CV_TIERS; t++)
        score += cv_feature_default_weights[t] * ((double)tier_count(s->up, s->n_up, t) -
                                                  (double)tier_count(s->down, s->n_down, t));
    return score;
}

/* The record of a standing, or an empty one when the reply had none. */
static const Canvass__V1__FeatureRecord *record_of(const Canvass__V1__FeatureStanding *s)
{
    static const Canvass__V1__FeatureRecord empty = CANVASS__V1__FEATURE_RECORD__INIT;
    return s && s->feature ? s->feature : &empty;
}

/* ---- text helpers --------------------------------------------------------- */

/* Control characters would break lines and columns: print them as spaces. */
static void put_text(FILE *out, const char *s)
{
    for (; *s; s++)
        fputc((unsigned char)*s < 0x20 || *s == 0x7f ? ' ' : *s, out);
}

/* Columns are measured in code points: continuation bytes take no room. */
static size_t display_width(const char *s)
{
    size_t w = 0;
    for (; *s; s++)
        w += ((unsigned char)*s & 0xC0) != 0x80;
    return w;
}

static void put_cell(FILE *out, const char *s, size_t width, int right)
{
    size_t w = display_width(s), pad = width > w ? width - w : 0;
    if (right)
        fprintf(out, "%*s", (int)pad, "");
    put_text(out, s);
    if (!right)
        fprintf(out, "%*s", (int)pad, "");
    fputs("  ", out);
}

/* "shipped in 2026.11.27", "merged into F2" or the status alone. */
static void status_phrase(const char *status, const char *release, const char *merged_into,
                          char *buf, size_t cap)
{
    if (!*status)
        status = "open";
    if (!strcmp(status, "shipped") && *release)
        snprintf(buf, cap, "shipped in %s", release);
    else if (!strcmp(status, "merged") && *merged_into)
        snprintf(buf, cap, "merged into %s", merged_into);
    else
        snprintf(buf, cap, "%s", status);
}

/* "15 up (member 12, core 1, honorary 2)": the non-zero tiers only. */
static void put_tier_counts(FILE *out, const uint64_t *v, size_t n, const char *what)
{
    uint64_t sum = 0;
    for (int t = 0; t < CV_TIERS; t++)
        sum += tier_count(v, n, t);
    fprintf(out, "%llu %s", (unsigned long long)sum, what);
    if (!sum)
        return;
    const char *sep = " (";
    for (int t = 0; t < CV_TIERS; t++) {
        uint64_t c = tier_count(v, n, t);
        if (!c)
            continue;
        fprintf(out, "%s%s %llu", sep, cv_tier_name(t), (unsigned long long)c);
        sep = ", ";
    }
    fputc(')', out);
}

/* ---- feature show --------------------------------------------------------- */

static void detail_head(FILE *out, const Canvass__V1__FeatureStanding *s)
{
    const Canvass__V1__FeatureRecord *f = record_of(s);
    char buf[256], when[CV_TIME_CAP], score[CV_SCORE_CAP];

    put_text(out, f->feature_id);
    fputs("  ", out);
    put_text(out, f->title);
    status_phrase(f->status, f->release, f->merged_into, buf, sizeof buf);
    fputs("\n  status    ", out);
    put_text(out, buf);
    fputs("\n  author    ", out);
    put_text(out, *f->author ? f->author : "(unknown)");
    if (f->created_ms)
        cv_format_time_human(f->created_ms, 0, when);
    fprintf(out, "\n  created   %s\n  tags      ", f->created_ms ? when : "(unknown)");
    for (size_t t = 0; t < f->n_tags; t++) {
        if (t)
            fputs(", ", out);
        put_text(out, f->tags[t]);
    }
    fputs(f->n_tags ? "\n  votes     " : "(none)\n  votes     ", out);
    put_tier_counts(out, s ? s->up : NULL, s ? s->n_up : 0, "up");
    fputs(", ", out);
    put_tier_counts(out, s ? s->down : NULL, s ? s->n_down : 0, "down");
    cv_format_score(s ? cv_feature_score(s) : 0, 0, score);
    fprintf(out, "\n  voters    %llu\n  score     %s (weights member 1, core 3, honorary 10)\n\n",
            s ? (unsigned long long)s->voters : 0ULL, score);

    /* The body keeps its own line breaks, each line indented. */
    if (!*f->body) {
        fputs("    (no description)\n", out);
        return;
    }
    for (const char *p = f->body; *p;) {
        size_t n = strcspn(p, "\n");
        char *line = strndup(p, n);
        fputs("    ", out);
        if (line)
            put_text(out, line);
        free(line);
        fputc('\n', out);
        p += n;
        if (*p == '\n')
            p++;
    }
}

static void detail_history(FILE *out, const Canvass__V1__FeatureRecord *f)
{
    char when[CV_TIME_CAP], buf[256];
    fputs("\nstatus history\n", out);
    if (f->n_history == 0)
        fputs("  (no changes recorded)\n", out);
    for (size_t i = 0; i < f->n_history; i++) {
        const Canvass__V1__StatusChange *c = f->history[i];
        if (c->at_ms)
            cv_format_time_human(c->at_ms, 1, when);
        status_phrase(c->status, c->release, c->merged_into, buf, sizeof buf);
        fprintf(out, "  %-23s  ", c->at_ms ? when : "-");
        put_text(out, buf);
        fputc('\n', out);
    }
}

enum { RH_CYCLE, RH_RANK, RH_SCORE, RH_UP, RH_DOWN, RH_NCOLS };
#define CELL_CAP 80

static void detail_ranks(FILE *out, const Canvass__V1__FeatureDetail *d)
{
    static const char *heads[RH_NCOLS] = {"CYCLE", "RANK", "SCORE", "UP", "DOWN"};
    const Canvass__V1__FeatureStanding *s = d->standing;
    const Canvass__V1__FeatureRecord *f = record_of(s);
    size_t nrows = d->n_ranks + 1; /* the closed cycles, then live */
    char(*cells)[RH_NCOLS][CELL_CAP] = calloc(nrows, sizeof *cells);
    size_t width[RH_NCOLS];
    char score[CV_SCORE_CAP];

    fputs("\nrank history\n", out);
    if (!cells) {
        fputs("  (out of memory)\n", out);
        return;
    }
    for (size_t i = 0; i < d->n_ranks; i++) {
        const Canvass__V1__CycleRank *r = d->ranks[i];
        cv_format_score(r->score, 0, score);
        snprintf(cells[i][RH_CYCLE], CELL_CAP, "%llu", (unsigned long long)r->cycle);
        snprintf(cells[i][RH_RANK], CELL_CAP, "%u", r->rank);
        snprintf(cells[i][RH_SCORE], CELL_CAP, "%s", score);
        snprintf(cells[i][RH_UP], CELL_CAP, "%llu", (unsigned long long)r->up);
        snprintf(cells[i][RH_DOWN], CELL_CAP, "%llu", (unsigned long long)r->down);
    }
    char(*live)[CELL_CAP] = cells[d->n_ranks];
    snprintf(live[RH_CYCLE], CELL_CAP, "live");
    if (d->live_rank) {
        cv_format_score(d->live_score, 0, score);
        snprintf(live[RH_RANK], CELL_CAP, "%u", d->live_rank);
        snprintf(live[RH_SCORE], CELL_CAP, "%s", score);
        snprintf(live[RH_UP], CELL_CAP, "%llu", s ? (unsigned long long)cv_feature_up(s) : 0ULL);
        snprintf(live[RH_DOWN], CELL_CAP, "%llu",
                 s ? (unsigned long long)cv_feature_down(s) : 0ULL);
    }
    for (int c = 0; c < RH_NCOLS; c++) {
        width[c] = strlen(heads[c]);
        for (size_t i = 0; i < nrows; i++) {
            size_t w = display_width(cells[i][c]);
            width[c] = w > width[c] ? w : width[c];
        }
    }
    fputs("  ", out);
    for (int c = 0; c < RH_NCOLS; c++)
        fprintf(out, c == RH_NCOLS - 1 ? "%*s\n" : "%*s  ", (int)width[c], heads[c]);
    for (size_t i = 0; i < nrows; i++) {
        fputs("  ", out);
        if (i == d->n_ranks && !d->live_rank) {
            fprintf(out, "%*s  %*s  not ranked (%s)\n", (int)width[RH_CYCLE], "live",
                    (int)width[RH_RANK], "-", *f->status ? f->status : "open");
            break;
        }
        for (int c = 0; c < RH_NCOLS; c++)
            fprintf(out, c == RH_NCOLS - 1 ? "%*s\n" : "%*s  ", (int)width[c], cells[i][c]);
    }
    free(cells);
}

int cv_feature_print_detail(FILE *out, const Canvass__V1__FeatureDetail *d)
{
    detail_head(out, d->standing);
    detail_history(out, record_of(d->standing));
    detail_ranks(out, d);
    return ferror(out) ? CV_EIO : 0;
}

/* ---- feature lists -------------------------------------------------------- */

static int feature_older(const void *a, const void *b)
{
    const Canvass__V1__FeatureRecord *fa = record_of(*(Canvass__V1__FeatureStanding *const *)a);
    const Canvass__V1__FeatureRecord *fb = record_of(*(Canvass__V1__FeatureStanding *const *)b);
    if (fa->created_ms != fb->created_ms)
        return fa->created_ms < fb->created_ms ? -1 : 1;
    return strcmp(fa->feature_id, fb->feature_id);
}

void cv_feature_sort(Canvass__V1__FeatureTable *t)
{
    if (t->n_features > 1)
        qsort(t->features, t->n_features, sizeof *t->features, feature_older);
}

enum { FT_ID, FT_STATUS, FT_UP, FT_DOWN, FT_VOTERS, FT_SCORE, FT_NCOLS };
#define STATUS_CELL_CAP 160 /* "merged → " and a 64-byte id, or a release name */

static void feature_cells(const Canvass__V1__FeatureStanding *s,
                          char cells[FT_NCOLS][STATUS_CELL_CAP])
{
    const Canvass__V1__FeatureRecord *f = record_of(s);
    char score[CV_SCORE_CAP];
    const char *st = *f->status ? f->status : "open";
    snprintf(cells[FT_ID], STATUS_CELL_CAP, "%s", f->feature_id);
    if (!strcmp(st, "shipped") && *f->release)
        snprintf(cells[FT_STATUS], STATUS_CELL_CAP, "shipped %.100s", f->release);
    else if (!strcmp(st, "merged") && *f->merged_into)
        snprintf(cells[FT_STATUS], STATUS_CELL_CAP, "merged \u2192 %.64s", f->merged_into);
    else
        snprintf(cells[FT_STATUS], STATUS_CELL_CAP, "%.100s", st);
    cv_format_score(cv_feature_score(s), 0, score);
    snprintf(cells[FT_UP], STATUS_CELL_CAP, "%llu", (unsigned long long)cv_feature_up(s));
    snprintf(cells[FT_DOWN], STATUS_CELL_CAP, "%llu", (unsigned long long)cv_feature_down(s));
    snprintf(cells[FT_VOTERS], STATUS_CELL_CAP, "%llu", (unsigned long long)s->voters);
    snprintf(cells[FT_SCORE], STATUS_CELL_CAP, "%s", score);
}

int cv_feature_print_table(FILE *out, const Canvass__V1__FeatureTable *t)
{
    static const char *heads[FT_NCOLS] = {"FEATURE", "STATUS", "UP", "DOWN", "VOTERS", "SCORE"};
    static const int right[FT_NCOLS] = {0, 0, 1, 1, 1, 1};
    char cells[FT_NCOLS][STATUS_CELL_CAP];
    size_t width[FT_NCOLS];
    if (t->n_features == 0) {
        fputs("no features yet\n", out);
        return ferror(out) ? CV_EIO : 0;
    }
    for (int c = 0; c < FT_NCOLS; c++)
        width[c] = strlen(heads[c]);
    for (size_t i = 0; i < t->n_features; i++) {
        feature_cells(t->features[i], cells);
        for (int c = 0; c < FT_NCOLS; c++) {
            size_t w = display_width(cells[c]);
            width[c] = w > width[c] ? w : width[c];
        }
    }
    for (int c = 0; c < FT_NCOLS; c++)
        put_cell(out, heads[c], width[c], right[c]);
    fputs("TITLE\n", out);
    for (size_t i = 0; i < t->n_features; i++) {
        feature_cells(t->features[i], cells);
        for (int c = 0; c < FT_NCOLS; c++)
            put_cell(out, cells[c], width[c], right[c]);
        put_text(out, record_of(t->features[i])->title);
        fputc('\n', out);
    }
    return ferror(out) ? CV_EIO : 0;
}

/* Tags joined with ';' as one CSV field. */
static int csv_tags(FILE *out, const Canvass__V1__FeatureRecord *f)
{
    size_t len = 1;
    for (size_t t = 0; t < f->n_tags; t++)
        len += strlen(f->tags[t]) + 1;
    char *tags = malloc(len), *p = tags;
    if (!tags)
        return CV_ENOMEM;
    *p = '\0';
    for (size_t t = 0; t < f->n_tags; t++)
        p += sprintf(p, "%s%s", t ? ";" : "", f->tags[t]);
    int rc = cv_json_csv_field(out, tags);
    free(tags);
    return rc;
}

int cv_feature_print_csv(FILE *out, const Canvass__V1__FeatureTable *t)
{
    fputs(CV_FEATURE_CSV_HEADER, out);
    for (size_t i = 0; i < t->n_features; i++) {
        const Canvass__V1__FeatureStanding *s = t->features[i];
        const Canvass__V1__FeatureRecord *f = record_of(s);
        const char *text[] = {f->feature_id, f->title,       *f->status ? f->status : "open",
                              f->release,    f->merged_into, f->author};
        char when[40] = "";
        for (size_t k = 0; k < sizeof text / sizeof text[0]; k++) {
            cv_json_csv_field(out, text[k]);
            fputc(',', out);
        }
        if (f->created_ms)
            cv_json_time(f->created_ms, when);
        fprintf(out, "%s,", when);
        if (csv_tags(out, f) < 0)
            return CV_ENOMEM;
        fprintf(out, ",%llu,%llu,%llu\n", (unsigned long long)cv_feature_up(s),
                (unsigned long long)cv_feature_down(s), (unsigned long long)s->voters);
    }
    return ferror(out) ? CV_EIO : 0;
}

/* ---- voters --------------------------------------------------------------- */

static const char *voter_tier(const Canvass__V1__Voter *v)
{
    return *v->tier ? v->tier : "member";
}

int cv_feature_print_voters(FILE *out, const Canvass__V1__VoterPage *p, cv_voters_format_t fmt,
                            int header)
{
    if (fmt != CV_VOTERS_TEXT && fmt != CV_VOTERS_CSV)
        return CV_EINVAL;
    if (fmt == CV_VOTERS_CSV && header)
        fputs("user_id,value,tier\n", out);
    for (size_t i = 0; i < p->n_voters; i++) {
        const Canvass__V1__Voter *v = p->voters[i];
        if (fmt == CV_VOTERS_TEXT) {
            put_text(out, v->user_id);
            fprintf(out, " %+d ", v->value);
            put_text(out, voter_tier(v));
        } else {
            cv_json_csv_field(out, v->user_id);
            fprintf(out, ",%d,", v->value);
            cv_json_csv_field(out, voter_tier(v));
        }
        fputc('\n', out);
    }
    return ferror(out) ? CV_EIO : 0;
}

int cv_feature_print_votes_csv(FILE *out, const Canvass__V1__VoterPage *p)
{
    for (size_t i = 0; i < p->n_voters; i++) {
        const Canvass__V1__Voter *v = p->voters[i];
        cv_json_csv_field(out, p->feature_id);
        fputc(',', out);
        cv_json_csv_field(out, v->user_id);
        fprintf(out, ",%d,", v->value);
        cv_json_csv_field(out, voter_tier(v));
        fputc('\n', out);
    }
    return ferror(out) ? CV_EIO : 0;
}

/* ---- movers --------------------------------------------------------------- */

static uint32_t move_size(const Canvass__V1__RankedEntry *e)
{
    return e->prev_rank > e->rank ? e->prev_rank - e->rank : e->rank - e->prev_rank;
}

int cv_feature_print_movers(FILE *out, const Canvass__V1__RankedList *rl)
{
    const Canvass__V1__RankedEntry *top[CV_FEATURE_MOVERS_MAX];
    size_t n = 0;
    /* Insertion into a short list kept sorted: biggest move, then best rank. */
    for (size_t i = 0; i < rl->n_entries; i++) {
        const Canvass__V1__RankedEntry *e = rl->entries[i];
        uint32_t m = e->prev_rank ? move_size(e) : 0;
        if (m == 0)
            continue;
        size_t at = n;
        while (at > 0 && (move_size(top[at - 1]) < m ||
                          (move_size(top[at - 1]) == m && top[at - 1]->rank > e->rank)))
            at--;
        if (at >= CV_FEATURE_MOVERS_MAX)
            continue;
        if (n < CV_FEATURE_MOVERS_MAX)
            n++;
        memmove(&top[at + 1], &top[at], (n - 1 - at) * sizeof top[0]);
        top[at] = e;
    }
    if (n == 0)
        return ferror(out) ? CV_EIO : 0;
    fputs("biggest movers: ", out);
    for (size_t i = 0; i < n; i++) {
        char move[CV_MOVE_CAP];
        cv_format_movement(top[i]->rank, top[i]->prev_rank, move);
        if (i)
            fputs(", ", out);
        put_text(out, top[i]->feature_id);
        fprintf(out, " %s (%u \u2192 %u)", move, top[i]->prev_rank, top[i]->rank);
    }
    fputc('\n', out);
    return ferror(out) ? CV_EIO : 0;
}
