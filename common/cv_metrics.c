/* cv_metrics: a Prometheus registry (see cv_metrics.h).
 *
 * The registry is an array of families in registration order; a family is
 * its name, help, type and an array of series.  Every series is allocated on
 * its own, so the pointer handed to the service stays valid while the arrays
 * around it grow.  The lock guards the arrays (registering, rendering); the
 * values themselves are atomics updated without it, with relaxed ordering:
 * each value is exact, and a scrape is a moment's snapshot of each, not of
 * all of them together.
 */
#include "cv_metrics.h"

#include <assert.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { KIND_COUNTER, KIND_GAUGE, KIND_HISTOGRAM } kind_t;

static const char *const kind_names[] = {"counter", "gauge", "histogram"};

struct cv_metric {
    _Atomic uint64_t value;
    kind_t kind;
};

/* The buckets hold plain (not cumulative) counts; rendering adds them up, and
 * takes _count as their total so that it always equals the +Inf bucket. */
struct cv_histogram {
    _Atomic uint64_t sum;
    const uint64_t *bounds; /* the family's */
    size_t nbounds;
    _Atomic uint64_t counts[]; /* nbounds + 1, the last for +Inf */
};

typedef struct {
    char *labels; /* rendered: a="x",b="y" ("" for none) */
    void *metric; /* cv_metric_t or cv_histogram_t */
} series_t;

typedef struct {
    char *name, *help;
    kind_t kind;
    uint64_t *bounds; /* histograms */
    size_t nbounds;
    series_t *series;
    size_t n, cap;
} family_t;

struct cv_metrics {
    pthread_mutex_t lock;
    family_t *fams;
    size_t n, cap;
};

/* ---- registry ------------------------------------------------------------- */

cv_metrics_t *cv_metrics_new(void)
{
    cv_metrics_t *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    if (pthread_mutex_init(&m->lock, NULL) != 0) {
        free(m);
        return NULL;
    }
    return m;
}

void cv_metrics_destroy(cv_metrics_t **m_p)
{
    if (!m_p || !*m_p)
        return;
    cv_metrics_t *m = *m_p;
    for (size_t i = 0; i < m->n; i++) {
        family_t *f = &m->fams[i];
        for (size_t j = 0; j < f->n; j++) {
            free(f->series[j].labels);
            free(f->series[j].metric);
        }
        free(f->series);
        free(f->name);
        free(f->help);
        free(f->bounds);
    }
    free(m->fams);
    pthread_mutex_destroy(&m->lock);
    free(m);
    *m_p = NULL;
}

static bool valid_name(const char *s, bool colon_ok)
{
    if (!*s || (*s >= '0' && *s <= '9'))
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || (colon_ok && *s == ':')))
            return false;
    return true;
}

/* Appends s to f with the escapes of the text format: backslash and newline
 * always, the double quote in label values. */
static void put_escaped(FILE *f, const char *s, bool quote)
{
    for (; *s; s++) {
        if (*s == '\\')
            fputs("\\\\", f);
        else if (*s == '\n')
            fputs("\\n", f);
        else if (quote && *s == '"')
            fputs("\\\"", f);
        else
            fputc(*s, f);
    }
}

/* Renders the NULL-terminated label pairs of ap as a="x",b="y"; NULL when out
 * of memory. */
static char *render_labels(va_list ap)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return NULL;
    const char *name;
    for (int i = 0; (name = va_arg(ap, const char *)); i++) {
        const char *value = va_arg(ap, const char *);
        assert(valid_name(name, false) && strncmp(name, "__", 2) && strcmp(name, "le"));
        assert(value);
        fprintf(f, "%s%s=\"", i ? "," : "", name);
        put_escaped(f, value, true);
        fputc('"', f);
    }
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

/* Finds or adds the family; NULL when out of memory.  Called locked. */
static family_t *family_get(cv_metrics_t *m, const char *name, const char *help, kind_t kind,
                            const uint64_t *bounds, size_t nbounds)
{
    for (size_t i = 0; i < m->n; i++) {
        family_t *f = &m->fams[i];
        if (strcmp(f->name, name))
            continue;
        assert(f->kind == kind && !strcmp(f->help, help));
        assert(f->nbounds == nbounds &&
               (!nbounds || !memcmp(f->bounds, bounds, nbounds * sizeof *bounds)));
        return f;
    }
    if (m->n == m->cap) {
        size_t cap = m->cap ? 2 * m->cap : 16;
        family_t *fams = realloc(m->fams, cap * sizeof *fams);
        if (!fams)
            return NULL;
        m->fams = fams;
        m->cap = cap;
    }
    family_t f = {.kind = kind, .nbounds = nbounds};
    f.name = strdup(name);
    f.help = strdup(help);
    if (nbounds && (f.bounds = malloc(nbounds * sizeof *bounds)))
        memcpy(f.bounds, bounds, nbounds * sizeof *bounds);
    if (!f.name || !f.help || (nbounds && !f.bounds)) {
        free(f.name);
        free(f.help);
        free(f.bounds);
        return NULL;
    }
    m->fams[m->n] = f;
    return &m->fams[m->n++];
}

/* Finds or adds the series of f with these labels (taking `labels`); NULL
 * when out of memory.  Called locked. */
static void *series_get(family_t *f, char *labels)
{
    for (size_t i = 0; i < f->n; i++)
        if (!strcmp(f->series[i].labels, labels)) {
            free(labels);
            return f->series[i].metric;
        }
    if (f->n == f->cap) {
        size_t cap = f->cap ? 2 * f->cap : 4;
        series_t *s = realloc(f->series, cap * sizeof *s);
        if (!s)
            goto fail;
        f->series = s;
        f->cap = cap;
    }
    void *metric;
    if (f->kind == KIND_HISTOGRAM) {
        cv_histogram_t *h =
            calloc(1, sizeof *h + (f->nbounds + 1) * sizeof(_Atomic uint64_t));
        if (h) {
            h->bounds = f->bounds;
            h->nbounds = f->nbounds;
            atomic_init(&h->sum, 0);
            for (size_t i = 0; i <= f->nbounds; i++)
                atomic_init(&h->counts[i], 0);
        }
        metric = h;
    } else {
        cv_metric_t *c = calloc(1, sizeof *c);
        if (c) {
            atomic_init(&c->value, 0);
            c->kind = f->kind;
        }
        metric = c;
    }
    if (!metric)
        goto fail;
    f->series[f->n++] = (series_t){.labels = labels, .metric = metric};
    return metric;
fail:
    free(labels);
    return NULL;
}

static void *metric_get(cv_metrics_t *m, kind_t kind, const char *name, const char *help,
                        const uint64_t *bounds, size_t nbounds, va_list ap)
{
    assert(valid_name(name, true) && help);
    assert(kind != KIND_COUNTER || (strlen(name) > 6 && !strcmp(name + strlen(name) - 6, "_total")));
    for (size_t i = 1; i < nbounds; i++)
        assert(bounds[i] > bounds[i - 1]);
    if (!m)
        return NULL;
    char *labels = render_labels(ap);
    if (!labels)
        return NULL;
    pthread_mutex_lock(&m->lock);
    family_t *f = family_get(m, name, help, kind, bounds, nbounds);
    void *metric = f ? series_get(f, labels) : (free(labels), NULL);
    pthread_mutex_unlock(&m->lock);
    return metric;
}

cv_metric_t *cv_metrics_counter(cv_metrics_t *m, const char *name, const char *help, ...)
{
    va_list ap;
    va_start(ap, help);
    cv_metric_t *c = metric_get(m, KIND_COUNTER, name, help, NULL, 0, ap);
    va_end(ap);
    return c;
}

cv_metric_t *cv_metrics_gauge(cv_metrics_t *m, const char *name, const char *help, ...)
{
    va_list ap;
    va_start(ap, help);
    cv_metric_t *g = metric_get(m, KIND_GAUGE, name, help, NULL, 0, ap);
    va_end(ap);
    return g;
}

cv_histogram_t *cv_metrics_histogram(cv_metrics_t *m, const char *name, const char *help,
                                     const uint64_t *bounds, size_t nbounds, ...)
{
    va_list ap;
    va_start(ap, nbounds);
    cv_histogram_t *h = metric_get(m, KIND_HISTOGRAM, name, help, bounds, nbounds, ap);
    va_end(ap);
    return h;
}

/* ---- updates -------------------------------------------------------------- */

void cv_metric_add(cv_metric_t *c, uint64_t n)
{
    if (c)
        atomic_fetch_add_explicit(&c->value, n, memory_order_relaxed);
}

void cv_metric_inc(cv_metric_t *c)
{
    cv_metric_add(c, 1);
}

void cv_metric_set(cv_metric_t *g, uint64_t v)
{
    if (!g)
        return;
    assert(g->kind == KIND_GAUGE);
    atomic_store_explicit(&g->value, v, memory_order_relaxed);
}

void cv_metric_sub(cv_metric_t *g, uint64_t n)
{
    if (!g)
        return;
    assert(g->kind == KIND_GAUGE);
    uint64_t old = atomic_load_explicit(&g->value, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(&g->value, &old, old > n ? old - n : 0,
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
}

uint64_t cv_metric_get(const cv_metric_t *c)
{
    return c ? atomic_load_explicit(&((cv_metric_t *)c)->value, memory_order_relaxed) : 0;
}

void cv_histogram_observe(cv_histogram_t *h, uint64_t v)
{
    if (!h)
        return;
    size_t b = 0;
    while (b < h->nbounds && v > h->bounds[b])
        b++;
    atomic_fetch_add_explicit(&h->counts[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum, v, memory_order_relaxed);
}

/* ---- rendering ------------------------------------------------------------ */

static void render_histogram(FILE *f, const family_t *fam, const series_t *s)
{
    cv_histogram_t *h = s->metric;
    const char *sep = *s->labels ? "," : "";
    uint64_t cum = 0;
    for (size_t b = 0; b <= h->nbounds; b++) {
        cum += atomic_load_explicit(&h->counts[b], memory_order_relaxed);
        fprintf(f, "%s_bucket{%s%sle=\"", fam->name, s->labels, sep);
        if (b < h->nbounds)
            fprintf(f, "%llu\"} %llu\n", (unsigned long long)h->bounds[b], (unsigned long long)cum);
        else
            fprintf(f, "+Inf\"} %llu\n", (unsigned long long)cum);
    }
    const char *open = *s->labels ? "{" : "", *close = *s->labels ? "}" : "";
    fprintf(f, "%s_sum%s%s%s %llu\n", fam->name, open, s->labels, close,
            (unsigned long long)atomic_load_explicit(&h->sum, memory_order_relaxed));
    fprintf(f, "%s_count%s%s%s %llu\n", fam->name, open, s->labels, close,
            (unsigned long long)cum);
}

char *cv_metrics_render(cv_metrics_t *m, size_t *len)
{
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    if (!f)
        return NULL;
    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; i < m->n; i++) {
        const family_t *fam = &m->fams[i];
        fprintf(f, "# HELP %s ", fam->name);
        put_escaped(f, fam->help, false);
        fprintf(f, "\n# TYPE %s %s\n", fam->name, kind_names[fam->kind]);
        for (size_t j = 0; j < fam->n; j++) {
            const series_t *s = &fam->series[j];
            if (fam->kind == KIND_HISTOGRAM) {
                render_histogram(f, fam, s);
                continue;
            }
            fputs(fam->name, f);
            if (*s->labels)
                fprintf(f, "{%s}", s->labels);
            fprintf(f, " %llu\n", (unsigned long long)cv_metric_get(s->metric));
        }
    }
    pthread_mutex_unlock(&m->lock);
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    if (len)
        *len = n;
    return buf;
}
