/* format: ranked lists and cycle lists as JSON, CSV and aligned tables.
 *
 * This file implements format.h.  JSON and CSV come from cv_json, the one
 * renderer the HTTP API uses too, so both print the same bytes; this file
 * adds the trailing newline and the tables for a person.  Tables are padded by display width, counting UTF-8 code points rather than
 * bytes, because the movement markers (and titles) are not ASCII; the title
 * is the last column so that a long or wide title never pushes the others
 * out of line.
 */
#include "format.h"
#include "cv_err.h"
#include "cv_json.h"

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
    cv_json_time(ms, out);
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

_Static_assert(CV_SCORE_CAP >= CV_JSON_SCORE_CAP, "cv_json_score writes up to CV_JSON_SCORE_CAP");

void cv_format_score(double score, int precise, char out[CV_SCORE_CAP])
{
    if (precise || score_is_integral(score))
        cv_json_score(score, out);
    else
        snprintf(out, CV_SCORE_CAP, "%.3f", score);
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

/* ---- JSON and CSV (cv_json) ------------------------------------------------ */

int cv_format_csv_field(FILE *out, const char *s)
{
    return cv_json_csv_field(out, s);
}

/* Prints text (cv_json's, taken) and, for JSON, a newline; returns 0,
 * CV_ENOMEM (text is NULL) or CV_EIO. */
static int emit(FILE *out, char *text, int newline)
{
    if (!text)
        return CV_ENOMEM;
    int rc = fputs(text, out) == EOF || (newline && fputc('\n', out) == EOF) ? CV_EIO : 0;
    free(text);
    return rc;
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
        return emit(out, cv_json_ranked(rl), 1);
    case CV_FMT_CSV:
        return emit(out, cv_json_ranked_csv(rl), 0);
    case CV_FMT_TABLE:
        return ranked_table(out, rl);
    }
    return CV_EINVAL;
}

int cv_format_cycles(FILE *out, const Canvass__V1__CycleList *cl, cv_format_t fmt)
{
    switch (fmt) {
    case CV_FMT_JSON:
        return emit(out, cv_json_cycles(cl), 1);
    case CV_FMT_TABLE:
        return cycles_table(out, cl);
    case CV_FMT_CSV:
        break;
    }
    return CV_EINVAL;
}
