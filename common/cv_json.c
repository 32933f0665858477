/* cv_json: the JSON and CSV shapes of DESIGN A7 (see cv_json.h).
 *
 * JSON goes through jansson so escaping is never hand-rolled, and this is
 * the one file that includes jansson.h.  Objects are built in the order the
 * header lists their keys (jansson keeps insertion order) and dumped with
 * jansson's default separators (", " and ": "), which is what `canvass
 * ranked --format json` has always printed: the ranked and cycle renderers
 * were moved here unchanged from the CLI's format.c, so the CLI and the HTTP
 * API print the same bytes.
 *
 * Every builder below returns a new reference or NULL; a NULL anywhere in an
 * object makes the whole object NULL (and frees what was built), so the
 * public functions only check the root.
 */
#include "cv_json.h"
#include "cv_err.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- scalars -------------------------------------------------------------- */

void cv_json_time(uint64_t ms, char *out)
{
    struct tm tm;
    time_t s = (time_t)(ms / 1000);
    if (!gmtime_r(&s, &tm))
        memset(&tm, 0, sizeof tm);
    /* 31 characters hold any year an int can carry; the compiler cannot
     * see that the other fields are two digits, hence the roomy buffer. */
    char buf[80];
    int n = snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     (int)(ms % 1000));
    n = n < 0 ? 0 : n > 31 ? 31 : n;
    memcpy(out, buf, (size_t)n);
    out[n] = '\0';
}

/* Integral and small enough that a 64-bit integer holds it exactly. */
static int score_is_integral(double score)
{
    return isfinite(score) && score == floor(score) && fabs(score) < 9.0e15;
}

void cv_json_score(double score, char out[CV_JSON_SCORE_CAP])
{
    if (score == 0.0)
        score = 0.0; /* turns -0 into 0 */
    if (score_is_integral(score)) {
        snprintf(out, CV_JSON_SCORE_CAP, "%lld", (long long)score);
        return;
    }
    for (int digits = 15; digits <= 17; digits++) {
        snprintf(out, CV_JSON_SCORE_CAP, "%.*g", digits, score);
        if (strtod(out, NULL) == score)
            return;
    }
}

/* json_integer takes a signed 64-bit value; counts never get near the top of
 * that range, but a hostile reply must not wrap into a negative number. */
static json_t *jcount(uint64_t v)
{
    return json_integer(v > (uint64_t)INT64_MAX ? INT64_MAX : (json_int_t)v);
}

/* A JSON string; the server sends valid UTF-8, but a message that does not
 * is shown with '?' for each stray byte rather than dropped. */
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

/* A string, or null when it is empty. */
static json_t *jstr_or_null(const char *s)
{
    return s && *s ? jstr(s) : json_null();
}

static json_t *jscore(double score)
{
    if (score == 0.0)
        score = 0.0;
    return score_is_integral(score) ? json_integer((json_int_t)score) : json_real(score);
}

static json_t *jtime_or_null(uint64_t ms)
{
    char t[32];
    if (ms == 0)
        return json_null();
    cv_json_time(ms, t);
    return json_string(t);
}

static json_t *jtags(char **tags, size_t n)
{
    json_t *arr = json_array();
    for (size_t t = 0; arr && t < n; t++)
        if (json_array_append_new(arr, jstr(tags[t])) < 0) {
            json_decref(arr);
            arr = NULL;
        }
    return arr;
}

/* Sets o[key] = v, taking v.  On any failure (o or v NULL included) frees
 * both and returns NULL, so calls chain: o = put(put(o, "a", x), "b", y). */
static json_t *put(json_t *o, const char *key, json_t *v)
{
    if (!o || !v) {
        json_decref(o);
        json_decref(v);
        return NULL;
    }
    if (json_object_set_new(o, key, v) < 0) { /* takes v even when it fails */
        json_decref(o);
        return NULL;
    }
    return o;
}

/* Appends v to arr, taking v; frees both and returns NULL on failure. */
static json_t *append(json_t *arr, json_t *v)
{
    if (!arr || !v) {
        json_decref(arr);
        json_decref(v);
        return NULL;
    }
    if (json_array_append_new(arr, v) < 0) {
        json_decref(arr);
        return NULL;
    }
    return arr;
}

/* Dumps and frees root: one line, no trailing newline; NULL when root is
 * NULL (something could not be built) or out of memory. */
static char *dump(json_t *root)
{
    if (!root)
        return NULL;
    char *s = json_dumps(root, 0);
    json_decref(root);
    return s;
}

/* ---- ranked lists and cycles ---------------------------------------------- */

static json_t *ranked_json(const Canvass__V1__RankedList *rl)
{
    json_t *entries = json_array();
    for (size_t i = 0; entries && i < rl->n_entries; i++) {
        const Canvass__V1__RankedEntry *e = rl->entries[i];
        json_t *tags = jtags(e->tags, e->n_tags);
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

char *cv_json_ranked(const Canvass__V1__RankedList *l)
{
    return dump(ranked_json(l));
}

static json_t *cycle_json(const Canvass__V1__CycleInfo *c)
{
    return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "cycle", jcount(c->cycle), "state",
                     jstr(c->state), "opened_at", jtime_or_null(c->opened_at_ms), "closed_at",
                     jtime_or_null(c->closed_at_ms), "scheduled_at",
                     jtime_or_null(c->scheduled_at_ms), "entries", json_integer(c->entries),
                     "total_votes", jcount(c->total_votes));
}

char *cv_json_cycles(const Canvass__V1__CycleList *l)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < l->n_cycles; i++) {
        json_t *o = cycle_json(l->cycles[i]);
        if (!o || json_array_append_new(arr, o) < 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr ? dump(json_pack("{s:o}", "cycles", arr)) : NULL;
}

char *cv_json_cycle(const Canvass__V1__CycleInfo *c)
{
    return dump(cycle_json(c));
}

/* ---- CSV ------------------------------------------------------------------ */

int cv_json_csv_field(FILE *out, const char *s)
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
        char score[CV_JSON_SCORE_CAP];
        cv_json_score(e->score, score);
        fprintf(out, "%u,", e->rank);
        cv_json_csv_field(out, e->feature_id);
        fputc(',', out);
        cv_json_csv_field(out, e->title);
        fprintf(out, ",%s,%llu,%llu,%llu,", score, (unsigned long long)e->up,
                (unsigned long long)e->down, (unsigned long long)e->voters);
        if (e->prev_rank)
            fprintf(out, "%u", e->prev_rank);
        fputc(',', out);
        cv_json_csv_field(out, e->status);
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
        cv_json_csv_field(out, tags);
        free(tags);
        fputc('\n', out);
    }
    return ferror(out) ? CV_EIO : 0;
}

char *cv_json_ranked_csv(const Canvass__V1__RankedList *l)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return NULL;
    int rc = ranked_csv(f, l);
    if (fclose(f) != 0 || rc < 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

/* ---- features ------------------------------------------------------------- */

/* The score with the default weights the header promises (member 1, core 3,
 * honorary 10); publish's own weights show in live_score and the ranks. */
static const double default_weights[CV_TIERS] = {1, 3, 10};

/* The feature object without history and ranks.  A standing without a
 * record (a malformed reply) shows empty fields rather than failing. */
static json_t *standing_json(const Canvass__V1__FeatureStanding *s)
{
    static const Canvass__V1__FeatureRecord empty = CANVASS__V1__FEATURE_RECORD__INIT;
    const Canvass__V1__FeatureRecord *f = s->feature ? s->feature : &empty;
    uint64_t up = 0, down = 0;
    double score = 0;
    for (size_t t = 0; t < s->n_up; t++) {
        up += s->up[t];
        score += t < CV_TIERS ? default_weights[t] * (double)s->up[t] : 0;
    }
    for (size_t t = 0; t < s->n_down; t++) {
        down += s->down[t];
        score -= t < CV_TIERS ? default_weights[t] * (double)s->down[t] : 0;
    }
    json_t *o = json_object();
    o = put(o, "feature_id", jstr(f->feature_id));
    o = put(o, "title", jstr(f->title));
    o = put(o, "body", jstr(f->body));
    o = put(o, "tags", jtags(f->tags, f->n_tags));
    o = put(o, "author", jstr(f->author));
    o = put(o, "created_at", jtime_or_null(f->created_ms));
    o = put(o, "status", jstr(f->status));
    o = put(o, "release", jstr_or_null(f->release));
    o = put(o, "merged_into", jstr_or_null(f->merged_into));
    o = put(o, "up", jcount(up));
    o = put(o, "down", jcount(down));
    o = put(o, "voters", jcount(s->voters));
    o = put(o, "score", jscore(score));
    return o;
}

char *cv_json_feature(const Canvass__V1__FeatureDetail *d)
{
    static const Canvass__V1__FeatureStanding none = CANVASS__V1__FEATURE_STANDING__INIT;
    const Canvass__V1__FeatureStanding *s = d->standing ? d->standing : &none;
    json_t *o = standing_json(s);

    json_t *history = json_array();
    size_t nh = s->feature ? s->feature->n_history : 0;
    for (size_t i = 0; i < nh; i++) {
        const Canvass__V1__StatusChange *h = s->feature->history[i];
        json_t *e = json_object();
        e = put(e, "status", jstr(h->status));
        e = put(e, "at", jtime_or_null(h->at_ms));
        e = put(e, "release", jstr_or_null(h->release));
        e = put(e, "merged_into", jstr_or_null(h->merged_into));
        history = append(history, e);
    }
    o = put(o, "history", history);

    json_t *ranks = json_array();
    for (size_t i = 0; i < d->n_ranks; i++) {
        const Canvass__V1__CycleRank *r = d->ranks[i];
        json_t *e = json_object();
        e = put(e, "cycle", jcount(r->cycle));
        e = put(e, "rank", json_integer(r->rank));
        e = put(e, "score", jscore(r->score));
        e = put(e, "up", jcount(r->up));
        e = put(e, "down", jcount(r->down));
        ranks = append(ranks, e);
    }
    o = put(o, "ranks", ranks);
    o = put(o, "live_rank", d->live_rank ? json_integer(d->live_rank) : json_null());
    o = put(o, "live_score", jscore(d->live_score));
    return dump(o);
}

char *cv_json_features(const Canvass__V1__FeatureTable *t)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < t->n_features; i++)
        arr = append(arr, standing_json(t->features[i]));
    return dump(put(json_object(), "features", arr));
}

char *cv_json_voters(const Canvass__V1__VoterPage *p)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < p->n_voters; i++) {
        const Canvass__V1__Voter *v = p->voters[i];
        json_t *e = json_object();
        e = put(e, "user_id", jstr(v->user_id));
        e = put(e, "value", json_integer(v->value));
        e = put(e, "tier", jstr(*v->tier ? v->tier : "member"));
        arr = append(arr, e);
    }
    json_t *o = json_object();
    o = put(o, "feature_id", jstr(p->feature_id));
    o = put(o, "total", jcount(p->total));
    o = put(o, "next_after", jstr_or_null(p->next_after));
    o = put(o, "voters", arr);
    return dump(o);
}

char *cv_json_merge(const Canvass__V1__MergeResult *m)
{
    json_t *o = json_object();
    o = put(o, "src", jstr(m->src));
    o = put(o, "dst", jstr(m->dst));
    o = put(o, "moved", jcount(m->moved));
    o = put(o, "kept", jcount(m->kept));
    return dump(o);
}

/* ---- status and errors ---------------------------------------------------- */

char *cv_json_error(int status, const char *error)
{
    json_t *o = json_object();
    o = put(o, "status", jstr(cv_status_name(status)));
    o = put(o, "error", jstr(error));
    return dump(o);
}

char *cv_json_status(const char *status)
{
    return dump(put(json_object(), "status", jstr(status)));
}

/* ---- request bodies ------------------------------------------------------- */

/* "a, b, c" from names, into buf. */
static void join_names(const char *const *names, size_t n, char *buf, size_t cap)
{
    size_t k = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && k < cap; i++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%s", i ? ", " : "", names[i]);
}

int cv_json_parse_strings(const char *body, size_t len, const char *const *names, char **values,
                          size_t n, char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++)
        values[i] = NULL;
    if (len == 0) {
        snprintf(err, errlen, "body is empty: expected a JSON object");
        return CV_EINVAL;
    }
    json_error_t jerr;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        snprintf(err, errlen, "body is not valid JSON: %s at line %d column %d", jerr.text,
                 jerr.line, jerr.column);
        return CV_EINVAL;
    }
    int rc = 0;
    if (!json_is_object(root)) {
        snprintf(err, errlen, "body must be a JSON object");
        rc = CV_EINVAL;
        goto out;
    }
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v)
    {
        size_t i = 0;
        while (i < n && strcmp(names[i], key))
            i++;
        if (i == n) {
            char expected[256];
            join_names(names, n, expected, sizeof expected);
            snprintf(err, errlen, "unknown field '%.64s' (expected %s)", key, expected);
            rc = CV_EINVAL;
            goto out;
        }
        if (!json_is_string(v)) {
            snprintf(err, errlen, "'%s' must be a string", names[i]);
            rc = CV_EINVAL;
            goto out;
        }
        /* jansson refuses \u0000 unless asked, so the value is a C string. */
        if (!(values[i] = strdup(json_string_value(v)))) {
            rc = CV_ENOMEM;
            goto out;
        }
    }
out:
    json_decref(root);
    if (rc < 0)
        for (size_t i = 0; i < n; i++) {
            free(values[i]);
            values[i] = NULL;
        }
    return rc;
}
