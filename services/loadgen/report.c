/* report: the log-linear latency histogram and the final report, as text on
 * stdout and as a JSON object (see report.h).
 *
 * Bucket layout: a value v < 256 is bucket v.  Otherwise let m be the index
 * of v's highest set bit (m >= 8) and shift = m - 7; v >> shift is then in
 * [128, 255] and the bucket is shift * 128 + (v >> shift).  Successive shifts
 * tile the index space without gaps ([256, 384), [384, 512), ...), and bucket
 * i covers [sub << shift, (sub + 1) << shift) with sub = 128 + i % 128.
 * The largest shift is 63 - 7 = 56, so the last bucket is 56 * 128 + 255
 * and there are 58 * 128 buckets.
 */
#include "report.h"
#include "cv_codec.h"
#include "cv_err.h"
#include "cv_log.h"

#include <jansson.h>
#include <math.h>
#include <string.h>

/* ---- histogram -------------------------------------------------------------- */

#define SUB (1u << CV_HIST_SUB_BITS)

static size_t bucket_of(uint64_t v)
{
    if (v < 2 * SUB)
        return (size_t)v;
    int shift = 63 - __builtin_clzll(v) - CV_HIST_SUB_BITS;
    return ((size_t)shift << CV_HIST_SUB_BITS) + (size_t)(v >> shift);
}

/* The highest value that falls into bucket i. */
static uint64_t bucket_high(size_t i)
{
    if (i < 2 * SUB)
        return i;
    int shift = (int)(i >> CV_HIST_SUB_BITS) - 1;
    uint64_t sub = SUB + (i & (SUB - 1));
    return ((sub + 1) << shift) - 1;
}

void cv_hist_init(cv_hist_t *h)
{
    memset(h, 0, sizeof *h);
}

void cv_hist_add(cv_hist_t *h, uint64_t value)
{
    h->counts[bucket_of(value)]++;
    if (h->n == 0 || value < h->min)
        h->min = value;
    if (value > h->max)
        h->max = value;
    h->n++;
    h->sum += (double)value;
}

uint64_t cv_hist_quantile(const cv_hist_t *h, double q)
{
    if (h->n == 0)
        return 0;
    if (q <= 0)
        return h->min;
    uint64_t rank = (uint64_t)ceil(q * (double)h->n), seen = 0;
    if (rank < 1)
        rank = 1;
    if (rank > h->n)
        rank = h->n;
    for (size_t i = 0; i < CV_HIST_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= rank) {
            uint64_t v = bucket_high(i);
            return v > h->max ? h->max : v < h->min ? h->min : v;
        }
    }
    return h->max;
}

double cv_hist_mean(const cv_hist_t *h)
{
    return h->n ? h->sum / (double)h->n : 0;
}

/* ---- the report --------------------------------------------------------------- */

void cv_report_init(cv_report_t *r)
{
    memset(r, 0, sizeof *r);
    cv_hist_init(&r->latency);
}

double cv_report_rate(const cv_report_t *r)
{
    return r->wall_s > 0 ? (double)r->by_status[CV_ST_OK] / r->wall_s : 0;
}

static const char *status_label(int i)
{
    return i == CV_REPORT_STATUSES - 1 ? "OTHER" : cv_status_name(i);
}

static const char *verify_name(cv_verify_state_t v)
{
    static const char *names[] = {"skipped", "ok", "mismatch", "error"};
    return names[v];
}

void cv_report_print(const cv_report_t *r, FILE *out)
{
    fprintf(out, "server:      %s, %ld connections x depth %ld\n", r->server, r->connections,
            r->depth);
    if (r->votes_target)
        fprintf(out, "workload:    %ld votes", r->votes_target);
    else
        fprintf(out, "workload:    %.0f s", r->duration_s);
    fprintf(out, ", %ld features (zipf %g), %ld users, down %g, retract %g, seed %llu\n",
            r->features, r->zipf, r->users, r->down_share, r->retract_share,
            (unsigned long long)r->seed);
    if (r->features_created)
        fprintf(out, "setup:       %llu features created in %.3f s\n",
                (unsigned long long)r->features_created, r->setup_s);
    fprintf(out, "votes:       %llu sent, %llu answered, %llu changed a stored vote\n",
            (unsigned long long)r->sent, (unsigned long long)r->finished,
            (unsigned long long)r->changed);
    fprintf(out, "throughput:  %.0f acknowledged votes/s (%llu OK in %.3f s)\n",
            cv_report_rate(r), (unsigned long long)r->by_status[CV_ST_OK], r->wall_s);
    const cv_hist_t *h = &r->latency;
    fprintf(out,
            "latency us:  p50 %llu  p99 %llu  p99.9 %llu  max %llu  mean %.0f  (%llu samples)\n",
            (unsigned long long)cv_hist_quantile(h, 0.50),
            (unsigned long long)cv_hist_quantile(h, 0.99),
            (unsigned long long)cv_hist_quantile(h, 0.999), (unsigned long long)h->max,
            cv_hist_mean(h), (unsigned long long)h->n);
    if (r->rate > 0)
        fprintf(out, "offered:     %.0f votes/s (--rate)\n", r->rate);
    if (r->tenth_rate[9] > 0)
        fprintf(out, "tenths:      first %.0f votes/s, last %.0f votes/s (%+.1f %%)\n",
                r->tenth_rate[0], r->tenth_rate[9],
                100.0 * (r->tenth_rate[9] - r->tenth_rate[0]) / r->tenth_rate[0]);
    fprintf(out, "status:     ");
    int any = 0;
    for (int i = 0; i < CV_REPORT_STATUSES; i++)
        if (r->by_status[i]) {
            fprintf(out, " %s %llu", status_label(i), (unsigned long long)r->by_status[i]);
            any = 1;
        }
    fprintf(out, "%s\n", any ? "" : " (no replies)");
    fprintf(out,
            "retries:     %llu (UNAVAILABLE %llu, after a lost connection %llu); "
            "reconnects %llu, connection errors %llu, stray replies %llu\n",
            (unsigned long long)r->retries, (unsigned long long)r->retries_unavailable,
            (unsigned long long)r->retries_reconnect, (unsigned long long)r->reconnects,
            (unsigned long long)r->conn_errors, (unsigned long long)r->stray_replies);
    if (r->interrupted && !r->failure[0])
        fprintf(out, "stopped:     interrupted (SIGINT); in-flight votes were drained\n");
    if (r->failure[0])
        fprintf(out, "FAILED:      %s\n", r->failure);
    switch (r->verify) {
    case CV_VERIFY_OK:
        fprintf(out, "verify: ok %llu features\n", (unsigned long long)r->verify_features);
        break;
    case CV_VERIFY_MISMATCH:
        fprintf(out, "verify: FAILED, %llu of %llu features differ\n",
                (unsigned long long)r->verify_mismatches,
                (unsigned long long)r->verify_features);
        break;
    case CV_VERIFY_ERROR:
        fprintf(out, "verify: FAILED, the cluster could not be queried\n");
        break;
    case CV_VERIFY_SKIPPED:
        fprintf(out, "verify: skipped\n");
        break;
    }
}

/* json_object_set_new that remembers a failed allocation. */
static void put(json_t *o, const char *key, json_t *v, int *bad)
{
    if (!v || json_object_set_new(o, key, v) < 0)
        *bad = 1;
}

static json_t *report_json(const cv_report_t *r)
{
    int bad = 0;
    json_t *o = json_object(), *lat = json_object(), *st = json_object(),
           *setup = json_object();
    if (!o || !lat || !st || !setup) {
        json_decref(o);
        json_decref(lat);
        json_decref(st);
        json_decref(setup);
        return NULL;
    }
    put(o, "server", json_string(r->server), &bad);
    put(o, "connections", json_integer(r->connections), &bad);
    put(o, "depth", json_integer(r->depth), &bad);
    put(o, "votes_target", r->votes_target ? json_integer(r->votes_target) : json_null(), &bad);
    put(o, "duration_s", r->votes_target ? json_null() : json_real(r->duration_s), &bad);
    put(o, "features", json_integer(r->features), &bad);
    put(o, "users", json_integer(r->users), &bad);
    put(o, "zipf", json_real(r->zipf), &bad);
    put(o, "down_share", json_real(r->down_share), &bad);
    put(o, "retract_share", json_real(r->retract_share), &bad);
    put(o, "seed", json_integer((json_int_t)r->seed), &bad);

    put(setup, "features_created", json_integer((json_int_t)r->features_created), &bad);
    put(setup, "seconds", json_real(r->setup_s), &bad);
    put(o, "setup", setup, &bad);

    put(o, "votes_sent", json_integer((json_int_t)r->sent), &bad);
    put(o, "votes_answered", json_integer((json_int_t)r->finished), &bad);
    put(o, "acked_ok", json_integer((json_int_t)r->by_status[CV_ST_OK]), &bad);
    put(o, "changed", json_integer((json_int_t)r->changed), &bad);
    put(o, "wall_s", json_real(r->wall_s), &bad);
    put(o, "acked_votes_per_s", json_real(cv_report_rate(r)), &bad);
    put(o, "offered_votes_per_s", r->rate > 0 ? json_real(r->rate) : json_null(), &bad);
    json_t *tenths = json_array();
    for (int i = 0; tenths && i < 10 && r->tenth_rate[9] > 0; i++)
        if (json_array_append_new(tenths, json_real(r->tenth_rate[i])) < 0)
            bad = 1;
    put(o, "tenth_votes_per_s", tenths, &bad);

    const cv_hist_t *h = &r->latency;
    put(lat, "p50", json_integer((json_int_t)cv_hist_quantile(h, 0.50)), &bad);
    put(lat, "p99", json_integer((json_int_t)cv_hist_quantile(h, 0.99)), &bad);
    put(lat, "p999", json_integer((json_int_t)cv_hist_quantile(h, 0.999)), &bad);
    put(lat, "max", json_integer((json_int_t)h->max), &bad);
    put(lat, "mean", json_real(cv_hist_mean(h)), &bad);
    put(lat, "samples", json_integer((json_int_t)h->n), &bad);
    put(o, "latency_us", lat, &bad);

    for (int i = 0; i < CV_REPORT_STATUSES; i++)
        if (r->by_status[i])
            put(st, status_label(i), json_integer((json_int_t)r->by_status[i]), &bad);
    put(o, "status", st, &bad);

    put(o, "retries", json_integer((json_int_t)r->retries), &bad);
    put(o, "retries_unavailable", json_integer((json_int_t)r->retries_unavailable), &bad);
    put(o, "retries_reconnect", json_integer((json_int_t)r->retries_reconnect), &bad);
    put(o, "reconnects", json_integer((json_int_t)r->reconnects), &bad);
    put(o, "connection_errors", json_integer((json_int_t)r->conn_errors), &bad);
    put(o, "stray_replies", json_integer((json_int_t)r->stray_replies), &bad);
    put(o, "interrupted", json_boolean(r->interrupted), &bad);
    put(o, "failure", r->failure[0] ? json_string(r->failure) : json_null(), &bad);
    put(o, "verify", json_string(verify_name(r->verify)), &bad);
    put(o, "verify_features", json_integer((json_int_t)r->verify_features), &bad);
    put(o, "verify_mismatches", json_integer((json_int_t)r->verify_mismatches), &bad);
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

int cv_report_write_json(const cv_report_t *r, const char *path)
{
    json_t *o = report_json(r);
    if (!o) {
        cv_log(CV_LOG_ERROR, "msg=\"cannot build the JSON report\" err=\"%s\"",
               cv_strerror(CV_ENOMEM));
        return CV_ENOMEM;
    }
    int rc = json_dump_file(o, path, JSON_INDENT(2) | JSON_ENSURE_ASCII | JSON_REAL_PRECISION(12));
    json_decref(o);
    if (rc < 0) {
        cv_log(CV_LOG_ERROR, "msg=\"cannot write the JSON report\" path=\"%s\"", path);
        return CV_EIO;
    }
    return 0;
}
