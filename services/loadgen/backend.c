/* backend: the back-end table, the canvass back end as a thin wrapper
 * around conn.c, and what the peers share: the comparison of their counters
 * with the workload's record, their feature ids and their back-off (see
 * backend.h).
 */
#include "backend.h"
#include "backend_pg.h"
#include "backend_redis.h"
#include "cv_err.h"
#include "cv_log.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- canvass: conn.c ------------------------------------------------------------ */

/* conn.c names a connection by its cv_conn_t; the link ops by index. */
typedef struct {
    cv_conn_t *conn;
    const cv_link_ops_t *ops;
    void *ctx;
} canvass_link_t;

static void *canvass_on_next(void *ctx, cv_conn_t *c, Canvass__V1__Request *msg)
{
    canvass_link_t *l = ctx;
    return l->ops->next(l->ctx, cv_conn_index(c), msg);
}

static void canvass_on_reply(void *ctx, cv_conn_t *c, void *req, const Canvass__V1__Reply *rep)
{
    canvass_link_t *l = ctx;
    l->ops->reply(l->ctx, cv_conn_index(c), req, rep);
}

static void canvass_on_lost(void *ctx, cv_conn_t *c, void *req)
{
    canvass_link_t *l = ctx;
    l->ops->lost(l->ctx, cv_conn_index(c), req);
}

static void canvass_on_event(void *ctx, cv_conn_t *c, cv_conn_event_t ev, const char *why)
{
    canvass_link_t *l = ctx;
    l->ops->event(l->ctx, cv_conn_index(c), ev, why);
}

static const cv_conn_ops_t canvass_ops = {canvass_on_next, canvass_on_reply, canvass_on_lost,
                                          canvass_on_event};

static void *canvass_conn_new(uv_loop_t *loop, const cv_link_opts_t *o)
{
    struct sockaddr_storage addr;
    if (cv_conn_resolve(loop, o->server, &addr) < 0)
        return NULL;
    canvass_link_t *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->ops = o->ops;
    l->ctx = o->ctx;
    cv_conn_opts_t co = {(struct sockaddr *)&addr, o->depth, o->index, o->app_key, &canvass_ops,
                         l};
    if (!(l->conn = cv_conn_new(loop, &co))) {
        free(l);
        return NULL;
    }
    return l;
}

static void canvass_start(void *c)
{
    cv_conn_start(((canvass_link_t *)c)->conn);
}

static void canvass_fill(void *c)
{
    cv_conn_fill(((canvass_link_t *)c)->conn);
}

static void canvass_stop(void *c)
{
    cv_conn_stop(((canvass_link_t *)c)->conn);
}

static void canvass_destroy(void **c_p)
{
    canvass_link_t *l = *c_p;
    if (!l)
        return;
    cv_conn_destroy(&l->conn);
    free(l);
    *c_p = NULL;
}

static int canvass_verify(const char *server, const cv_verify_opts_t *vo, const cv_workload_t *w,
                          cv_report_t *rep, FILE *out)
{
    return cv_verify(vo, w, rep, out);
}

static const cv_backend_t canvass_backend = {
    .name = "canvass",
    .default_server = "127.0.0.1:7700",
    .prepare = NULL,
    .conn_new = canvass_conn_new,
    .start = canvass_start,
    .fill = canvass_fill,
    .stop = canvass_stop,
    .destroy = canvass_destroy,
    .verify = canvass_verify,
};

const cv_backend_t *cv_backend_find(const char *name)
{
    const cv_backend_t *all[] = {&canvass_backend, &cv_backend_redis, &cv_backend_pg};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        if (strcmp(all[i]->name, name) == 0)
            return all[i];
    return NULL;
}

/* ---- what the peers share ------------------------------------------------------- */

int cv_backend_compare(const cv_workload_t *w, const cv_counts_t *have, uint64_t extra_bad,
                       cv_report_t *rep, FILE *out)
{
    uint64_t checked = 0, bad = extra_bad;
    for (size_t i = 0; i < cv_workload_features(w); i++) {
        const char *id = cv_workload_feature_id(w, i);
        if (!id)
            continue;
        checked++;
        cv_expect_t want;
        cv_workload_expect(w, i, &want);
        cv_counts_t got = have[i];
        if (!got.found)
            got.up = got.down = got.voters = 0;
        if (want.unknown) {
            fprintf(out, "verify: %s: %llu votes had no definite answer; cannot compare\n", id,
                    (unsigned long long)want.unknown);
            bad++;
        } else if (got.up != want.up || got.down != want.down || got.voters != want.voters) {
            fprintf(out, "verify: %s: store has up %llu down %llu voters %llu; "
                         "want up %llu down %llu voters %llu\n",
                    id, (unsigned long long)got.up, (unsigned long long)got.down,
                    (unsigned long long)got.voters, (unsigned long long)want.up,
                    (unsigned long long)want.down, (unsigned long long)want.voters);
            bad++;
        }
    }
    rep->verify_features = checked;
    rep->verify_mismatches = bad;
    rep->verify = bad ? CV_VERIFY_MISMATCH : CV_VERIFY_OK;
    return bad ? CV_EMISMATCH : 0;
}

void cv_backend_feature_id(char out[32])
{
    static uint64_t n;
    /* The process's start (ms) and pid keep ids apart between runs against
     * the same store, so a run's features carry only its own votes. */
    static uint64_t tag;
    if (!tag) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        tag = ((uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000) * 1000 +
              (uint64_t)getpid() % 1000;
    }
    snprintf(out, 32, "lg%llx-%llu", (unsigned long long)tag, (unsigned long long)n++);
}

int cv_backend_split_hostport(const char *server, char *host, size_t hostcap, int *port)
{
    const char *colon = strrchr(server, ':');
    if (!colon || colon == server || !colon[1])
        return CV_EINVAL;
    const char *h = server;
    size_t hlen = (size_t)(colon - server);
    if (h[0] == '[') {
        if (hlen < 3 || h[hlen - 1] != ']')
            return CV_EINVAL;
        h++;
        hlen -= 2;
    }
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (*end || p < 1 || p > 65535 || hlen + 1 > hostcap)
        return CV_EINVAL;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *port = (int)p;
    return 0;
}

unsigned cv_backend_backoff_ms(unsigned failures)
{
    unsigned ms = 50;
    for (unsigned i = 1; i < failures && ms < 2000; i++)
        ms *= 2;
    return ms > 2000 ? 2000 : ms;
}
