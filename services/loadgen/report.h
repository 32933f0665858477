/* report: the loadgen's latency histogram and its final report.
 *
 * Latencies go into a log-linear histogram in the manner of HdrHistogram:
 * values below 256 have a bucket each, larger ones share a bucket with the
 * values that agree in their 8 leading bits, so a percentile read back is at
 * most 1/128 (0.8 %) above the true sample, whatever the range, in a fixed
 * 58 KiB and O(1) per sample.  A percentile is the highest value of the
 * bucket holding the sample of rank ceil(q * n), capped at the exact maximum.
 *
 * The report is a plain structure that the run and the verification fill
 * in; it is printed as text on stdout and, on request, written as one JSON
 * object (jansson) to a file.
 */
#ifndef CV_LOADGEN_REPORT_H
#define CV_LOADGEN_REPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* ---- histogram -------------------------------------------------------------- */

#define CV_HIST_SUB_BITS 7
#define CV_HIST_BUCKETS ((64 - CV_HIST_SUB_BITS + 1) << CV_HIST_SUB_BITS) /* see report.c */

typedef struct {
    uint64_t counts[CV_HIST_BUCKETS];
    uint64_t n, min, max;
    double sum;
} cv_hist_t;

void cv_hist_init(cv_hist_t *h);
void cv_hist_add(cv_hist_t *h, uint64_t value);
/* The value at quantile q in [0, 1] (see above); 0 when empty. */
uint64_t cv_hist_quantile(const cv_hist_t *h, double q);
double cv_hist_mean(const cv_hist_t *h);

/* ---- the report --------------------------------------------------------------- */

/* Reply statuses are counted by their canvass.v1 Status number; anything
 * past INTERNAL lands in the last slot. */
#define CV_REPORT_STATUSES 11

typedef enum {
    CV_VERIFY_SKIPPED = 0,
    CV_VERIFY_OK,
    CV_VERIFY_MISMATCH,
    CV_VERIFY_ERROR /* the cluster could not be asked */
} cv_verify_state_t;

typedef struct {
    /* what was asked (borrowed strings) */
    const char *server;
    long connections, depth, features, users;
    long votes_target;  /* 0 in --duration mode */
    double duration_s;  /* 0 in --votes mode */
    double zipf, retract_share, down_share;
    uint64_t seed;

    /* setup: features submitted through the client protocol */
    uint64_t features_created;
    double setup_s;

    /* votes */
    uint64_t sent;         /* distinct votes handed to a connection */
    uint64_t finished;     /* votes with a final reply */
    uint64_t by_status[CV_REPORT_STATUSES];
    uint64_t changed;      /* OK replies with changed = true */
    uint64_t retries;      /* resends of a vote already sent */
    uint64_t retries_unavailable, retries_reconnect;
    uint64_t reconnects;   /* connections re-established after a loss */
    uint64_t conn_errors;  /* connections lost or refused */
    uint64_t stray_replies; /* replies matching no request in flight */
    double wall_s;         /* first vote sent to last vote reply */
    double rate;           /* --rate: new votes per second offered; 0 = as fast as acked */
    double tenth_rate[10]; /* OK votes/s in each tenth of the OK replies (--votes mode) */
    cv_hist_t latency;     /* microseconds, first send to the OK reply */

    /* how it ended */
    bool interrupted;      /* stopped early by SIGINT */
    char failure[256];     /* "" when the run completed */

    /* verification against the live ranked list */
    cv_verify_state_t verify;
    uint64_t verify_features, verify_mismatches;
} cv_report_t;

/* Zeroes the report and its histogram. */
void cv_report_init(cv_report_t *r);

/* Acknowledged-OK votes per second of wall time; 0 before any reply. */
double cv_report_rate(const cv_report_t *r);

/* Prints the human-readable report. */
void cv_report_print(const cv_report_t *r, FILE *out);

/* Writes the report as one JSON object to path (replacing it).  Returns 0,
 * CV_ENOMEM or CV_EIO (logged). */
int cv_report_write_json(const cv_report_t *r, const char *path);

#endif
