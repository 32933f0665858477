/* cv_metrics: counters, gauges and histograms for Prometheus (`/metrics`).
 *
 * A registry holds metric families (a name, a help text, a type), each with
 * one or more series told apart by their labels.  The service thread updates
 * values with relaxed atomic operations (C11 stdatomic, no lock); the HTTP
 * thread renders the registry in the Prometheus text exposition format 0.0.4
 * at the same time.  Registering takes the registry's lock, so a series may
 * also be added after the HTTP server started (e.g. the first time a status
 * is seen).
 *
 *   cv_metrics_t *m = cv_metrics_new();
 *   cv_metric_t *ok = cv_metrics_counter(m, "canvass_ingest_commands_total",
 *       "Commands answered, by operation and status", "op", "vote",
 *       "status", "OK", NULL);
 *   cv_metric_inc(ok);
 *
 * renders as
 *
 *   # HELP canvass_ingest_commands_total Commands answered, by operation and status
 *   # TYPE canvass_ingest_commands_total counter
 *   canvass_ingest_commands_total{op="vote",status="OK"} 1
 *
 * Every update function is a no-op on NULL, so a service whose registration
 * failed (out of memory) runs on without metrics rather than checking each
 * update.  Values are unsigned 64-bit integers: counts, sizes, milliseconds.
 */
#ifndef CV_METRICS_H
#define CV_METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef struct cv_metrics cv_metrics_t;
typedef struct cv_metric cv_metric_t;       /* one counter or gauge series */
typedef struct cv_histogram cv_histogram_t; /* one histogram series */

/* A new, empty registry; NULL when out of memory. */
cv_metrics_t *cv_metrics_new(void);

/* Frees the registry and every series it handed out.  No thread may use the
 * registry or its series any more.  Safe on NULL and twice; nulls *m_p. */
void cv_metrics_destroy(cv_metrics_t **m_p);

/* Returns the series of the counter `name` with the given labels, creating
 * it (at 0) when it is new; the same call again returns the same series.
 * The labels follow `help` as NULL-terminated pairs of label name and value
 * (values are escaped when rendered; names must be valid label names).
 * `name` must be a valid metric name ([a-zA-Z_:][a-zA-Z0-9_:]*), a counter's
 * should end in _total, and a name keeps the type and help it was first
 * registered with: these are asserted, being programming errors.  Returns
 * NULL when m is NULL or out of memory.  The series lives as long as the
 * registry. */
cv_metric_t *cv_metrics_counter(cv_metrics_t *m, const char *name, const char *help, ...)
    __attribute__((sentinel));

/* Like cv_metrics_counter, for a gauge (a value that goes up and down). */
cv_metric_t *cv_metrics_gauge(cv_metrics_t *m, const char *name, const char *help, ...)
    __attribute__((sentinel));

/* Like cv_metrics_counter, for a histogram with the given upper bounds
 * (nbounds of them, strictly rising; "+Inf" is added).  A name registered
 * again must come with the same bounds. */
cv_histogram_t *cv_metrics_histogram(cv_metrics_t *m, const char *name, const char *help,
                                     const uint64_t *bounds, size_t nbounds, ...)
    __attribute__((sentinel));

/* Counter and gauge updates; no-ops on NULL. */
void cv_metric_add(cv_metric_t *c, uint64_t n);
void cv_metric_inc(cv_metric_t *c);
void cv_metric_set(cv_metric_t *g, uint64_t v);
/* Gauges only: subtracts n (a gauge never goes below 0: it stops there). */
void cv_metric_sub(cv_metric_t *g, uint64_t n);

/* The current value; 0 for NULL. */
uint64_t cv_metric_get(const cv_metric_t *c);

/* Records one observation: the first bucket whose bound is >= v, the sum
 * and the count.  No-op on NULL. */
void cv_histogram_observe(cv_histogram_t *h, uint64_t v);

/* Renders every family in registration order, each as "# HELP", "# TYPE"
 * and its series, in the text format 0.0.4 (content type
 * CV_METRICS_CONTENT_TYPE).  Returns a new NUL-terminated string the caller
 * frees (*len, when not NULL, is its length), or NULL when out of memory.
 * Safe to call from any thread while others update. */
char *cv_metrics_render(cv_metrics_t *m, size_t *len);

#define CV_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

#endif
