/* format: ranked lists and cycle lists as JSON, CSV and aligned tables.
 *
 * This file implements format.h.  JSON goes through jansson so escaping is
 * never hand-rolled; objects are built in the order A7 lists their keys
 * (jansson keeps insertion order), so the output reads the same every time.
 * Tables are padded by display width, counting UTF-8 code points rather than
 * bytes, because the movement markers (and titles) are not ASCII; the title
 * is the last column so that a long or wide title never pushes the others
 * out of line.
 */
#include "format.h"
#include "cv_err.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int cv_format_parse(const char *name)
{
    if (!strcmp(name, "table"))
        return CV_FMT_TABLE;
    if (!strcmp(name, "json"))
        return CV_FMT_JSON;
    if (!strcmp(name, "csv"))
        return CV_FMT_CSV;
    return -1;
}

/* ---- scalars -------------------------------------------------------------- */

static void utc_tm(uint64_t ms, struct tm *tm)
{
    time_t s = (time_t)(ms / 1000);
    gmtime_r(&s, tm);
}

void cv_format_time_rfc3339(uint64_t ms, char out[CV_TIME_CAP])
{
    struct tm tm;
    utc_tm(ms, &tm);
    snprintf(out, CV_TIME_CAP, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

void cv_format_time_human(uint64_t ms, int with_seconds, char out[CV_TIME_CAP])
{
    struct tm tm;
    utc_tm(ms, &tm);
    if (with_seconds)
        snprintf(out, CV_TIME_CAP, "%04d-%02d-%02d %02d:%02d:%02d UTC", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    else
        snprintf(out, CV_TIME_CAP, "%04d-%02d-%02d %02d:%02d UTC", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min);
}

/* Integral and small enough that a 64-bit integer holds it exactly. */
static int score_is_integral(double score)
{
    return isfinite(score) && score == floor(score) && fabs(score) < 9.0e15;
}

void cv_format_score(double score, int precise, char out[CV_SCORE_CAP])
{
    if (score == 0.0)
        score = 0.0; /* turns -0 into 0 */
    if (score_is_integral(score)) {
        snprintf(out, CV_SCORE_CAP, "%lld", (long long)score);
        return;
    }
    if (!precise) {
        snprintf(out, CV_SCORE_CAP, "%.3f", score);
        return;
    }
    for (int digits = 15; digits <= 17; digits++) {
        snprintf(out, CV_SCORE_CAP, "%.*g", digits, score);
        if (strtod(out, NULL) == score)
            return;
    }
}

void cv_format_movement(uint32_t rank, uint32_t prev_rank, char out[CV_MOVE_CAP])
{
    if (prev_rank == 0)
        snprintf(out, CV_MOVE_CAP, "new");
    else if (prev_rank > rank)
        snprintf(out, CV_MOVE_CAP, "\u25b2%u", prev_rank - rank);
    else if (prev_rank < rank)
        snprintf(out, CV_MOVE_CAP, "\u25bc%u", rank - prev_rank);
    else
        snprintf(out, CV_MOVE_CAP, "=");
}

/* ---- JSON ----------------------------------------------------------------- */

/* json_integer takes a signed 64-bit value; counts never get near the top of
 * that range, but a hostile reply must not wrap into a negative number. */
static json_t *jcount(uint64_t v)
{
    return json_integer(v > (uint64_t)INT64_MAX ? INT64_MAX : (json_int_t)v);
}

/* A JSON string; the server sends valid UTF-8, but a reply that does not is
 * shown with '?' for each stray byte rather than dropped. */
static json_t *jstr(const char *s)
{
    json_t *j = json_string(s ? s : "");
    if (j)
        return j;
    char *copy = strdup(s);
    if (!copy)
        return NULL;
    for (char *p = copy; *p; p++)
        if ((unsigned char)*p >= 0x80)
            *p = '?';
    j = json_string(copy);
    free(copy);
    return j;
}

static json_t *jscore(double score)
{
    if (score == 0.0)
        score = 0.0;
    return score_is_integral(score) ? json_integer((json_int_t)score) : json_real(score);
}

static json_t *jtime_or_null(uint64_t ms)
{
    char t[CV_TIME_CAP];
    if (ms == 0)
        return json_null();
    cv_format_time_rfc3339(ms, t);
    return json_string(t);
}

/* Dumps and frees root; returns 0, CV_ENOMEM (root was NULL: some part of it
 * could not be built) or CV_EIO. */
static int json_emit(FILE *out, json_t *root)
{
    if (!root)
        return CV_ENOMEM;
    int rc = json_dumpf(root, out, 0);
    json_decref(root);
    if (rc < 0 || fputc('\n', out) == EOF)
        return CV_EIO;
    return 0;
}

static json_t *ranked_json(const Canvass__V1__RankedList *rl)
{
    json_t *entries = json_array();
    for (size_t i = 0; entries && i < rl->n_entries; i++) {
        const Canvass__V1__RankedEntry *e = rl->entries[i];
        json_t *tags = json_array();
        for (size_t t = 0; tags && t < e->n_tags; t++)
            if (json_array_append_new(tags, jstr(e->tags[t])) < 0) {
                json_decref(tags);
                tags = NULL;
            }
        json_t *o = json_pack("{s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "rank",
                              (json_int_t)e->rank, "feature_id", jstr(e->feature_id), "title",
                              jstr(e->title), "score", jscore(e->score), "up", jcount(e->up),
                              "down", jcount(e->down), "voters", jcount(e->voters), "prev_rank",
                              e->prev_rank ? json_integer(e->prev_rank) : json_null(), "status",
                              jstr(e->status), "tags", tags);
        if (!o || json_array_append_new(entries, o) < 0) {
            json_decref(entries);
            return NULL;
        }
    }
    if (!entries)
        return NULL;
    return json_pack("{s:o, s:o, s:o, s:o}", "cycle", jcount(rl->cycle), "closed_at",
                     jtime_or_null(rl->closed_at_ms), "order",
                     jstr(*rl->order ? rl->order : "score"), "entries", entries);
}

static json_t *cycles_json(const Canvass__V1__CycleList *cl)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < cl->n_cycles; i++) {
        const Canvass__V1__CycleInfo *c = cl->cycles[i];
        json_t *o = json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "cycle", jcount(c->cycle),
                              "state", jstr(c->state), "opened_at", jtime_or_null(c->opened_at_ms),
                              "closed_at", jtime_or_null(c->closed_at_ms), "scheduled_at",
                              jtime_or_null(c->scheduled_at_ms), "entries",
                              json_integer(c->entries), "total_votes", jcount(c->total_votes));
        if (!o || json_array_append_new(arr, o) < 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr ? json_pack("{s:o}", "cycles", arr) : NULL;
}

/* ---- CSV ------------------------------------------------------------------ */

int cv_format_csv_field(FILE *out, const char *s)
{
    if (!strpbrk(s, ",\"\r\n"))
        return fputs(s, out) == EOF ? CV_EIO : 0;
    fputc('"', out);
    for (const char *p = s; *p; p++) {
        if (*p == '"')
            fputc('"', out);
        fputc(*p, out);
    }
    return fputc('"', out) == EOF ? CV_EIO : 0;
}

static int ranked_csv(FILE *out, const Canvass__V1__RankedList *rl)
{
    fputs("rank,feature_id,title,score,up,down,voters,prev_rank,status,tags\n", out);
    for (size_t i = 0; i < rl->n_entries; i++) {
        const Canvass__V1__RankedEntry *e = rl->entries[i];
        char score[CV_SCORE_CAP];
        cv_format_score(e->score, 1, score);
        fprintf(out, "%u,", e->rank);
        cv_format_csv_field(out, e->feature_id);
        fputc(',', out);
        cv_format_csv_field(out, e->title);
        fprintf(out, ",%s,%llu,%llu,%llu,", score, (unsigned long long)e->up,
                (unsigned long long)e->down, (unsigned long long)e->voters);
        if (e->prev_rank)
            fprintf(out, "%u", e->prev_rank);
        fputc(',', out);
        cv_format_csv_field(out, e->status);
        fputc(',', out);
        size_t len = 1;
        for (size_t t = 0; t < e->n_tags; t++)
            len += strlen(e->tags[t]) + 1;
        char *tags = malloc(len);
        if (!tags)
            return CV_ENOMEM;
        tags[0] = '\0';
        for (size_t t = 0; t < e->n_tags; t++) {
            if (t)
                strcat(tags, ";");
            strcat(tags, e->tags[t]);
        }
        cv_format_csv_field(out, tags);
        free(tags);
        fputc('\n', out);
    }
    return ferror(out) ? CV_EIO : 0;
}

/* ---- tables --------------------------------------------------------------- */

/* Columns printed in display width: UTF-8 continuation bytes take no room. */
static size_t display_width(const char *s)
{
    size_t w = 0;
    for (; *s; s++)
        w += ((unsigned char)*s & 0xC0) != 0x80;
    return w;
}

static void put_cell(FILE *out, const char *s, size_t width, int right, int last)
{
    size_t pad = width - display_width(s);
    if (right)
        fprintf(out, "%*s%s", (int)pad, "", s);
    else
        fprintf(out, "%s%*s", s, last ? 0 : (int)pad, "");
    fputs(last ? "\n" : "  ", out);
}

/* Control characters would break the table's lines: print them as spaces. */
static void put_text(FILE *out, const char *s)
{
    for (; *s; s++)
        fputc((unsigned char)*s < 0x20 || *s == 0x7f ? ' ' : *s, out);
}

enum { RK_RANK, RK_MOVE, RK_SCORE, RK_UP, RK_DOWN, RK_VOTERS, RK_ID, RK_STATUS, RK_NCOLS };
#define CELL_CAP 80 /* a feature id is at most 64 bytes; the rest are short */

static void ranked_cells(const Canvass__V1__RankedEntry *e, char cells[RK_NCOLS][CELL_CAP])
{
    char score[CV_SCORE_CAP], move[CV_MOVE_CAP];
    cv_format_score(e->score, 0, score);
    cv_format_movement(e->rank, e->prev_rank, move);
    snprintf(cells[RK_RANK], CELL_CAP, "%u", e->rank);
    snprintf(cells[RK_MOVE], CELL_CAP, "%s", move);
    snprintf(cells[RK_SCORE], CELL_CAP, "%s", score);
    snprintf(cells[RK_UP], CELL_CAP, "%llu", (unsigned long long)e->up);
    snprintf(cells[RK_DOWN], CELL_CAP, "%llu", (unsigned long long)e->down);
    snprintf(cells[RK_VOTERS], CELL_CAP, "%llu", (unsigned long long)e->voters);
    snprintf(cells[RK_ID], CELL_CAP, "%s", e->feature_id);
    snprintf(cells[RK_STATUS], CELL_CAP, "%s", e->status);
}

static int ranked_table(FILE *out, const Canvass__V1__RankedList *rl)
{
    static const char *heads[RK_NCOLS] = {"RANK", "MOVE",   "SCORE",   "UP",
                                          "DOWN", "VOTERS", "FEATURE", "STATUS"};
    static const int right[RK_NCOLS] = {1, 0, 1, 1, 1, 1, 0, 0};
    const char *order = *rl->order ? rl->order : "score";
    char when[CV_TIME_CAP], cells[RK_NCOLS][CELL_CAP];

    fprintf(out, "cycle %llu (", (unsigned long long)rl->cycle);
    if (rl->closed_at_ms) {
        cv_format_time_human(rl->closed_at_ms, 0, when);
        fprintf(out, "closed %s", when);
    } else if (rl->opened_at_ms) {
        cv_format_time_human(rl->opened_at_ms, 0, when);
        fprintf(out, "live, open since %s", when);
    } else {
        fputs("live", out);
    }
    fprintf(out, ", order %s, %llu vote%s)\n", order, (unsigned long long)rl->total_votes,
            rl->total_votes == 1 ? "" : "s");
    if (rl->n_entries == 0) {
        fputs("no ranked features\n", out);
        return ferror(out) ? CV_EIO : 0;
    }

    size_t width[RK_NCOLS];
    for (int c = 0; c < RK_NCOLS; c++)
        width[c] = strlen(heads[c]);
    for (size_t i = 0; i < rl->n_entries; i++) {
        ranked_cells(rl->entries[i], cells);
        for (int c = 0; c < RK_NCOLS; c++) {
            size_t w = display_width(cells[c]);
            width[c] = w > width[c] ? w : width[c];
        }
    }
    for (int c = 0; c < RK_NCOLS; c++)
        put_cell(out, heads[c], width[c], right[c], 0);
    fputs("TITLE\n", out);
    for (size_t i = 0; i < rl->n_entries; i++) {
        const Canvass__V1__RankedEntry *e = rl->entries[i];
        ranked_cells(e, cells);
        for (int c = 0; c < RK_NCOLS; c++)
            put_cell(out, cells[c], width[c], right[c], 0);
        put_text(out, e->title);
        for (size_t t = 0; t < e->n_tags; t++) {
            fputs(t ? ", " : "  [", out);
            put_text(out, e->tags[t]);
        }
        fputs(e->n_tags ? "]\n" : "\n", out);
    }
    return ferror(out) ? CV_EIO : 0;
}

enum { CY_CYCLE, CY_STATE, CY_OPENED, CY_CLOSED, CY_DUE, CY_ENTRIES, CY_VOTES, CY_NCOLS };

static void cycle_cells(const Canvass__V1__CycleInfo *c, char cells[CY_NCOLS][CELL_CAP])
{
    char t[CV_TIME_CAP];
    const uint64_t times[3] = {c->opened_at_ms, c->closed_at_ms, c->scheduled_at_ms};
    const int cols[3] = {CY_OPENED, CY_CLOSED, CY_DUE};
    snprintf(cells[CY_CYCLE], CELL_CAP, "%llu", (unsigned long long)c->cycle);
    snprintf(cells[CY_STATE], CELL_CAP, "%s", c->state);
    for (int i = 0; i < 3; i++) {
        if (times[i]) {
            cv_format_time_human(times[i], 1, t);
            t[strlen(t) - 4] = '\0'; /* the header says UTC once */
        }
        snprintf(cells[cols[i]], CELL_CAP, "%s", times[i] ? t : "-");
    }
    snprintf(cells[CY_ENTRIES], CELL_CAP, "%u", c->entries);
    snprintf(cells[CY_VOTES], CELL_CAP, "%llu", (unsigned long long)c->total_votes);
}

static int cycles_table(FILE *out, const Canvass__V1__CycleList *cl)
{
    static const char *heads[CY_NCOLS] = {"CYCLE",     "STATE",   "OPENED (UTC)", "CLOSED (UTC)",
                                          "DUE (UTC)", "ENTRIES", "VOTES"};
    static const int right[CY_NCOLS] = {1, 0, 0, 0, 0, 1, 1};
    char cells[CY_NCOLS][CELL_CAP];
    if (cl->n_cycles == 0) {
        fputs("no cycles yet\n", out);
        return ferror(out) ? CV_EIO : 0;
    }
    size_t width[CY_NCOLS];
    for (int c = 0; c < CY_NCOLS; c++)
        width[c] = strlen(heads[c]);
    for (size_t i = 0; i < cl->n_cycles; i++) {
        cycle_cells(cl->cycles[i], cells);
        for (int c = 0; c < CY_NCOLS; c++) {
            size_t w = display_width(cells[c]);
            width[c] = w > width[c] ? w : width[c];
        }
    }
    for (int c = 0; c < CY_NCOLS; c++)
        put_cell(out, heads[c], width[c], right[c], c == CY_NCOLS - 1);
    for (size_t i = 0; i < cl->n_cycles; i++) {
        cycle_cells(cl->cycles[i], cells);
        for (int c = 0; c < CY_NCOLS; c++)
            put_cell(out, cells[c], width[c], right[c], c == CY_NCOLS - 1);
    }
    return ferror(out) ? CV_EIO : 0;
}

/* ---- entry points --------------------------------------------------------- */

int cv_format_ranked(FILE *out, const Canvass__V1__RankedList *rl, cv_format_t fmt)
{
    switch (fmt) {
    case CV_FMT_JSON:
        return json_emit(out, ranked_json(rl));
    case CV_FMT_CSV:
        return ranked_csv(out, rl);
    case CV_FMT_TABLE:
        return ranked_table(out, rl);
    }
    return CV_EINVAL;
}

int cv_format_cycles(FILE *out, const Canvass__V1__CycleList *cl, cv_format_t fmt)
{
    switch (fmt) {
    case CV_FMT_JSON:
        return json_emit(out, cycles_json(cl));
    case CV_FMT_TABLE:
        return cycles_table(out, cl);
    case CV_FMT_CSV:
        break;
    }
    return CV_EINVAL;
}
