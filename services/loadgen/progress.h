/* progress: the loadgen's one-line progress display on a terminal.
 *
 * The line is redrawn in place ("\r" and erase-to-end-of-line) each time
 * cv_progress_draw is called, and shows the phase, votes acknowledged
 * against the target (or seconds against the duration), the current rate
 * (acknowledged votes per second between two draws, smoothed) and the
 * elapsed time.  It is only for people watching: the caller draws it only
 * when stderr is a terminal, so CI logs stay free of it.
 */
#ifndef CV_LOADGEN_PROGRESS_H
#define CV_LOADGEN_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

typedef struct {
    bool drawn;
    uint64_t last_ok, last_ns; /* at the previous draw; last_ns 0 = none */
    double rate;               /* smoothed votes/s */
} cv_progress_t;

/* What to show; times in seconds. */
typedef struct {
    bool setup;            /* creating features: show features_done/features */
    size_t features_done, features;
    uint64_t ok;           /* votes acknowledged OK */
    long target;           /* votes to send; 0 in duration mode */
    double duration_s;     /* duration mode: seconds of voting wanted */
    double elapsed_s;      /* since the run started */
    double voting_s;       /* since the first vote was sent */
    uint64_t draining;     /* > 0: no new votes, this many still owed a reply */
} cv_progress_state_t;

/* Redraws the line on f.  now_ns is a monotonic clock (uv_hrtime). */
void cv_progress_draw(cv_progress_t *p, FILE *f, uint64_t now_ns, const cv_progress_state_t *s);

/* Erases the line if one was drawn, so the report starts on a clean line. */
void cv_progress_clear(cv_progress_t *p, FILE *f);

#endif
