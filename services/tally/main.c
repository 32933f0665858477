/* canvass-tally: one shard of the vote store (DESIGN A1, A4, B1, B3).
 *
 * main() reads the config table, then either runs an offline tool (--check,
 * --dump-votes; audit.c) or serves.  Serving opens the shard store
 * (shard.c), binds a ROUTER socket and loops: each turn waits for one
 * message, drains up to --batch-max messages without waiting, applies every
 * write of the drain (CmdBatch, SetStatus, MergeOut, MergeIn) in one write
 * transaction, and only after that commit sends each TallyReply to its
 * peer's routing id.  CloseCycle, StandingsQuery, FeatureQuery,
 * VotersQuery and CreatedQuery requests of the drain are answered after the
 * commit, so they see it.  SIGTERM / SIGINT end the loop after the turn in progress;
 * what is then already queued on the socket is still served before the
 * store is closed and the process exits 0.
 */
#include "audit.h"
#include "cv_bus.h"
#include "cv_codec.h"
#include "cv_config.h"
#include "cv_err.h"
#include "cv_http.h"
#include "cv_log.h"
#include "cv_metrics.h"
#include "cv_store.h"
#include "shard.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* ---- configuration --------------------------------------------------------- */

static long opt_shard, opt_shards, opt_batch_max, opt_map_mib, opt_half_life, opt_index_batch;
static char *opt_bind, *opt_data, *opt_durability, *opt_log_level, *opt_http;
static int opt_check, opt_dump_votes;
static char *opt_curve_key, *opt_curve_server, *opt_curve_allow;

static cv_config_opt_t options[] = {
    {"shard", CV_CFG_INT, "0", 0, 1023, &opt_shard, "this shard's id, 0..shards-1"},
    {"shards", CV_CFG_INT, "1", 1, 1024, &opt_shards,
     "number of shards in the cluster (fixed at creation)"},
    {"bind", CV_CFG_STR, "tcp://127.0.0.1:7710", 0, 0, &opt_bind,
     "ZeroMQ ROUTER endpoint for ingest and publish"},
    {"data", CV_CFG_STR, "./var/tally-0", 0, 0, &opt_data, "directory of this shard's LMDB store"},
    {"durability", CV_CFG_STR, "fsync", 0, 0, &opt_durability,
     "fsync (acks survive power loss) or os (acks survive process crashes)"},
    {"batch-max", CV_CFG_INT, "4096", 1, 1000000, &opt_batch_max,
     "most TallyRequests drained into one group commit"},
    {"map-size", CV_CFG_INT, "64", 1, 1 << 20, &opt_map_mib,
     "initial LMDB map size in MiB (grown when full)"},
    {"half-life", CV_CFG_INT, "259200", 1, 315360000, &opt_half_life,
     "trending half-life in seconds (default 3 days)"},
    {"index-batch", CV_CFG_INT, "100000", 0, 10000000, &opt_index_batch,
     "logged votes written to the votes table at once (0: no vote log, docs/STORAGE.md)"},
    {"log-level", CV_CFG_STR, "info", 0, 0, &opt_log_level, "debug, info, warn or error"},
    CV_BUS_CURVE_OPTS(opt_curve_key, opt_curve_server, opt_curve_allow),
    {"http", CV_CFG_STR, "127.0.0.1:7782", 0, 0, &opt_http,
     "HOST:PORT for /healthz, /readyz and /metrics; off for none"},
    {"check", CV_CFG_BOOL, "off", 0, 0, &opt_check,
     "recount the store in --data against its counters, print the result, exit"},
    {"dump-votes", CV_CFG_BOOL, "off", 0, 0, &opt_dump_votes,
     "print every non-zero vote in --data as TSV, exit"},
    {0}};

static const char usage[] = "canvass-tally [options]   (serve one shard)\n"
                            "       canvass-tally --data DIR --check | --dump-votes";

/* ---- serving ------------------------------------------------------------------- */

/* Reader slots of crashed readers (e.g. a killed --check) pin old pages. */
#define READER_CHECK_MS 60000
/* How long one wait for messages lasts, so signals and timers are seen. */
#define WAIT_MS 1000
/* After this long without a write the vote log is indexed (shard.h). */
#define IDLE_INDEX_MS 1000
/* After a stop signal, at most this many more turns serve what is queued. */
#define STOP_DRAIN_TURNS 8

typedef struct {
    cv_parts_t parts;                /* [routing id][payload], owned */
    Canvass__V1__TallyRequest *req;  /* the unpacked payload, owned; NULL if none */
} msg_t;

typedef struct {
    cv_shard_t *shard;
    cv_sock_t *sock;
    size_t batch_max;
    msg_t *msgs;            /* batch_max slots for one drain */
    cv_shard_job_t *jobs;   /* the drain's writes */
    size_t *job_msg;        /* jobs[j] came from msgs[job_msg[j]] */
    uint64_t last_write_us; /* when the last group committed (monotonic) */
} server_t;

static volatile sig_atomic_t stop_signal;

/* ---- HTTP probes and metrics -------------------------------------------------
 * Served by cv_http on its own thread, which reads only these atomics: the
 * shard is ready from the moment its store is open and its socket bound
 * until a stop signal. */

static cv_metrics_t *metrics;
static cv_metric_t *m_votes, *m_created, *m_commits, *m_failed, *m_open_cycle, *m_features;
static cv_histogram_t *h_commit_cmds, *h_commit_us;
static atomic_int tally_ready;

static int ready_fn(void *arg, char *why, size_t cap)
{
    if (atomic_load(&tally_ready))
        return 1;
    snprintf(why, cap, "the shard store is not open (starting or stopping)");
    return 0;
}

static void metrics_init(void)
{
    static const uint64_t cmd_bounds[] = {1, 4, 16, 64, 256, 1024, 4096, 16384, 65536};
    static const uint64_t us_bounds[] = {100, 500, 1000, 2500, 5000, 10000, 50000, 250000};
    if (!(metrics = cv_metrics_new()))
        return;
    m_votes = cv_metrics_counter(metrics, "canvass_tally_votes_applied_total",
                                 "Votes committed with status OK (stored or unchanged)", NULL);
    m_created = cv_metrics_counter(metrics, "canvass_tally_features_created_total",
                                   "Features created (submits committed)", NULL);
    m_commits = cv_metrics_counter(metrics, "canvass_tally_commits_total",
                                   "Group commits of the store", NULL);
    m_failed = cv_metrics_counter(metrics, "canvass_tally_commit_failures_total",
                                  "Group commits that failed (their requests got INTERNAL)", NULL);
    h_commit_cmds = cv_metrics_histogram(metrics, "canvass_tally_commit_commands",
                                         "Commands applied per group commit", cmd_bounds,
                                         sizeof cmd_bounds / sizeof cmd_bounds[0], NULL);
    h_commit_us = cv_metrics_histogram(metrics, "canvass_tally_commit_microseconds",
                                       "Time to apply and commit one group, in microseconds",
                                       us_bounds, sizeof us_bounds / sizeof us_bounds[0], NULL);
    m_open_cycle = cv_metrics_gauge(metrics, "canvass_tally_open_cycle", "The open cycle", NULL);
    m_features = cv_metrics_gauge(metrics, "canvass_tally_features",
                                  "Features on this shard, as of the last standings request "
                                  "(each close and live pull)", NULL);
}

/* Counts one committed CmdBatch's outcomes (before its acks are freed). */
static void metrics_count_acks(const cv_shard_job_t *job)
{
    if (!job->batch)
        return;
    for (size_t k = 0; k < job->batch->n_cmds; k++) {
        const Canvass__V1__ShardAck *a = job->ack_ptrs[k];
        if (a->status != CV_ST_OK || (a->redirect_to && *a->redirect_to))
            continue;
        if (job->batch->cmds[k]->op_case == CANVASS__V1__SHARD_CMD__OP_VOTE)
            cv_metric_inc(m_votes);
        else if (job->batch->cmds[k]->op_case == CANVASS__V1__SHARD_CMD__OP_CREATE)
            cv_metric_inc(m_created);
    }
}

static void metrics_commit(int rc, size_t cmds, uint64_t us)
{
    cv_metric_inc(rc < 0 ? m_failed : m_commits);
    if (rc == 0) {
        cv_histogram_observe(h_commit_cmds, cmds);
        cv_histogram_observe(h_commit_us, us);
    }
}

static void on_stop_signal(int sig)
{
    stop_signal = sig;
    atomic_store(&tally_ready, 0); /* lock-free, so safe in a handler */
}

static uint64_t monotonic_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void send_reply(server_t *sv, const msg_t *m, const Canvass__V1__TallyReply *reply)
{
    size_t len;
    uint8_t *buf = cv_codec_pack(&reply->base, &len);
    if (!buf) {
        cv_log(CV_LOG_ERROR, "msg=\"reply not sent: out of memory\" corr=%llu",
               (unsigned long long)reply->corr);
        return;
    }
    const void *data[2] = {m->parts.data[0], buf};
    size_t size[2] = {m->parts.size[0], len};
    /* A ROUTER drops a reply to a peer that has gone; the peer resends. */
    int rc = cv_sock_send(sv->sock, 2, data, size, 1);
    if (rc < 0)
        cv_log(CV_LOG_WARN, "msg=\"reply not sent\" corr=%llu err=\"%s\"",
               (unsigned long long)reply->corr, cv_strerror(rc));
    free(buf);
}

__attribute__((format(printf, 5, 6))) static void reply_error(server_t *sv, const msg_t *m,
                                                              uint64_t corr, cv_status_t status,
                                                              const char *fmt, ...)
{
    char text[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    cv_log(CV_LOG_WARN, "msg=\"request refused\" corr=%llu status=%s error=\"%s\"",
           (unsigned long long)corr, cv_status_name(status), text);
    Canvass__V1__TallyReply r = CANVASS__V1__TALLY_REPLY__INIT;
    r.corr = corr;
    r.status = status;
    r.error = text;
    send_reply(sv, m, &r);
}

static int is_query(const Canvass__V1__TallyRequest *req)
{
    switch (req->op_case) {
    case CANVASS__V1__TALLY_REQUEST__OP_CLOSE:
    case CANVASS__V1__TALLY_REQUEST__OP_STANDINGS:
    case CANVASS__V1__TALLY_REQUEST__OP_FEATURE:
    case CANVASS__V1__TALLY_REQUEST__OP_VOTERS:
    case CANVASS__V1__TALLY_REQUEST__OP_CREATED:
        return 1;
    default:
        return 0;
    }
}

/* Answers a close, standings, feature, voters or created request, after the
 * turn's group commit. */
static void answer_query(server_t *sv, const msg_t *m)
{
    cv_shard_reply_t *r = NULL;
    int rc = cv_shard_answer(sv->shard, m->req, &r);
    if (rc < 0) {
        reply_error(sv, m, m->req->corr, CV_ST_INTERNAL, "reading the store failed: %s",
                    cv_strerror(rc));
        return;
    }
    const Canvass__V1__TallyReply *reply = cv_shard_reply_msg(r);
    send_reply(sv, m, reply);
    if (reply->status != CV_ST_OK)
        cv_log(CV_LOG_INFO, "msg=\"request refused\" corr=%llu op=%d status=%s error=\"%s\"",
               (unsigned long long)reply->corr, (int)m->req->op_case,
               cv_status_name(reply->status), reply->error);
    else if (reply->result_case == CANVASS__V1__TALLY_REPLY__RESULT_STANDINGS)
        cv_log(CV_LOG_DEBUG, "msg=\"standings sent\" corr=%llu features=%zu cycle=%llu",
               (unsigned long long)reply->corr, reply->standings->n_features,
               (unsigned long long)reply->standings->cycle);
    if (reply->status == CV_ST_OK &&
        reply->result_case == CANVASS__V1__TALLY_REPLY__RESULT_STANDINGS)
        cv_metric_set(m_features, reply->standings->n_features);
    cv_shard_reply_destroy(&r);
}

/* Commits the drain's writes as one group, then answers each. */
static void commit_group(server_t *sv, size_t njobs)
{
    uint64_t t0 = monotonic_us();
    int rc = cv_shard_apply(sv->shard, sv->jobs, njobs);
    uint64_t t1 = monotonic_us();
    sv->last_write_us = t1;
    size_t cmds = 0;
    for (size_t j = 0; j < njobs; j++) {
        cv_shard_job_t *job = &sv->jobs[j];
        const msg_t *m = &sv->msgs[sv->job_msg[j]];
        cmds += job->batch ? job->batch->n_cmds : 1;
        if (rc == 0 && !job->batch) {
            send_reply(sv, m, cv_shard_reply_msg(job->reply));
        } else if (rc == 0) {
            Canvass__V1__AckBatch acks = CANVASS__V1__ACK_BATCH__INIT;
            acks.n_acks = job->batch->n_cmds;
            acks.acks = job->ack_ptrs;
            Canvass__V1__TallyReply r = CANVASS__V1__TALLY_REPLY__INIT;
            r.corr = m->req->corr;
            r.result_case = CANVASS__V1__TALLY_REPLY__RESULT_ACKS;
            r.acks = &acks;
            send_reply(sv, m, &r);
        } else {
            reply_error(sv, m, m->req->corr, CV_ST_INTERNAL, "the shard could not commit: %s",
                        cv_strerror(rc));
        }
        if (rc == 0)
            metrics_count_acks(job);
        cv_shard_job_release(job);
    }
    metrics_commit(rc, cmds, t1 - t0);
    if (rc < 0)
        cv_log(CV_LOG_ERROR, "msg=\"group commit failed\" requests=%zu cmds=%zu err=\"%s\"",
               njobs, cmds, cv_strerror(rc));
    else
        cv_log(CV_LOG_DEBUG, "msg=\"group committed\" requests=%zu cmds=%zu commit_us=%llu",
               njobs, cmds, (unsigned long long)(t1 - t0));
}

/* Decodes one drained message: a write joins the group, anything that
 * cannot be served is answered at once. */
static void classify(server_t *sv, size_t i, size_t *njobs)
{
    msg_t *m = &sv->msgs[i];
    if (m->parts.n != 2) {
        reply_error(sv, m, 0, CV_ST_INTERNAL, "a TallyRequest is one frame, got %d",
                    m->parts.n - 1);
        return;
    }
    m->req = (Canvass__V1__TallyRequest *)cv_codec_unpack(
        &canvass__v1__tally_request__descriptor, m->parts.size[1], m->parts.data[1]);
    if (!m->req) {
        reply_error(sv, m, 0, CV_ST_INTERNAL, "undecodable TallyRequest (%zu bytes)",
                    m->parts.size[1]);
        return;
    }
    switch (m->req->op_case) {
    case CANVASS__V1__TALLY_REQUEST__OP_BATCH:
        sv->jobs[*njobs] = (cv_shard_job_t){.batch = m->req->batch};
        sv->job_msg[(*njobs)++] = i;
        break;
    case CANVASS__V1__TALLY_REQUEST__OP_SET_STATUS:
    case CANVASS__V1__TALLY_REQUEST__OP_MERGE_OUT:
    case CANVASS__V1__TALLY_REQUEST__OP_MERGE_IN:
        sv->jobs[*njobs] = (cv_shard_job_t){.change = m->req};
        sv->job_msg[(*njobs)++] = i;
        break;
    case CANVASS__V1__TALLY_REQUEST__OP_CLOSE:
    case CANVASS__V1__TALLY_REQUEST__OP_STANDINGS:
    case CANVASS__V1__TALLY_REQUEST__OP_FEATURE:
    case CANVASS__V1__TALLY_REQUEST__OP_VOTERS:
    case CANVASS__V1__TALLY_REQUEST__OP_CREATED:
        break; /* answered after the group commit */
    default:
        reply_error(sv, m, m->req->corr, CV_ST_INTERNAL, "TallyRequest has no operation");
    }
}

/* One turn: wait up to wait_ms for a message, drain, commit, reply.
 * Returns the number of messages taken, or CV_EIO when the socket fails. */
static int serve_turn(server_t *sv, long wait_ms)
{
    size_t n = 0;
    int rc = 0;
    for (size_t taken = 0; taken < sv->batch_max; taken++) {
        rc = cv_sock_recv(sv->sock, &sv->msgs[n].parts, n ? 0 : wait_ms);
        if (rc == CV_EDECODE) {
            cv_log(CV_LOG_WARN, "msg=\"dropped a message of too many frames\"");
            continue;
        }
        if (rc < 0)
            break;
        sv->msgs[n++].req = NULL;
    }
    if (rc == CV_EIO && n == 0)
        return CV_EIO;

    size_t njobs = 0;
    for (size_t i = 0; i < n; i++)
        classify(sv, i, &njobs);
    if (njobs)
        commit_group(sv, njobs);
    for (size_t i = 0; i < n; i++) {
        msg_t *m = &sv->msgs[i];
        if (m->req && is_query(m->req))
            answer_query(sv, m);
        if (m->req)
            canvass__v1__tally_request__free_unpacked(m->req, NULL);
        m->req = NULL;
        cv_parts_free(&m->parts);
    }
    return (int)n;
}

static int serve_loop(server_t *sv)
{
    uint64_t next_reader_check = monotonic_us() + READER_CHECK_MS * 1000ULL;
    while (!stop_signal) {
        if (serve_turn(sv, WAIT_MS) < 0)
            return CV_EIO;
        /* Queries keep coming when writes stop (publish polls): idle means
         * no write for a while. */
        if (monotonic_us() - sv->last_write_us > IDLE_INDEX_MS * 1000ULL &&
            cv_shard_idle(sv->shard) < 0)
            cv_log(CV_LOG_WARN, "msg=\"indexing the vote log failed; retried when idle\"");
        cv_metric_set(m_open_cycle, cv_shard_cycle(sv->shard));
        if (monotonic_us() >= next_reader_check) {
            int cleared = cv_shard_reader_check(sv->shard);
            if (cleared > 0)
                cv_log(CV_LOG_WARN, "msg=\"cleared stale readers\" count=%d", cleared);
            next_reader_check = monotonic_us() + READER_CHECK_MS * 1000ULL;
        }
    }
    cv_log(CV_LOG_INFO, "msg=\"stopping\" signal=%d", (int)stop_signal);
    for (int turn = 0; turn < STOP_DRAIN_TURNS; turn++)
        if (serve_turn(sv, 0) <= 0)
            break;
    return 0;
}

/* Creates the parent directories of the data directory (cv_store creates
 * the last one). */
static int make_parents(const char *dir)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path)
        return CV_EINVAL;
    for (char *p = path + 1; (p = strchr(p, '/')); p++) {
        *p = '\0';
        if (mkdir(path, 0700) != 0 && errno != EEXIST) {
            fprintf(stderr, "canvass-tally: cannot create %s: %s\n", path, strerror(errno));
            return CV_EIO;
        }
        *p = '/';
    }
    return 0;
}

static int serve(cv_durability_t durability)
{
    if (make_parents(opt_data) < 0)
        return 1;
    char why[512] = "";
    server_t sv = {.batch_max = (size_t)opt_batch_max};
    int rc = cv_shard_open(opt_data, (uint32_t)opt_shard, (uint32_t)opt_shards, durability,
                           (size_t)opt_map_mib << 20, &sv.shard, why, sizeof why);
    if (rc == CV_EMISMATCH) {
        cv_log(CV_LOG_ERROR, "msg=\"refusing to start\" reason=\"%s\"", why);
        fprintf(stderr, "canvass-tally: %s\n", why);
        return 2;
    }
    if (rc < 0) {
        fprintf(stderr, "canvass-tally: cannot open the store in %s: %s\n", opt_data,
                cv_strerror(rc));
        return 1;
    }
    cv_shard_set_half_life(sv.shard, (uint64_t)opt_half_life * 1000);
    if ((rc = cv_shard_set_index_batch(sv.shard, (size_t)opt_index_batch)) < 0)
        cv_log(CV_LOG_WARN, "msg=\"indexing the vote log failed\" err=\"%s\"", cv_strerror(rc));

    int status = 1;
    cv_bus_t *bus = cv_bus_new();
    char cerr[512];
    if (bus && cv_bus_curve_setup(bus, opt_curve_key, opt_curve_server, opt_curve_allow, cerr,
                                  sizeof cerr) < 0) {
        fprintf(stderr, "canvass-tally: %s\n", cerr);
        cv_log(CV_LOG_ERROR, "msg=\"refusing to start\" reason=\"%s\"", cerr);
        status = 2;
        goto out;
    }
    sv.sock = bus ? cv_sock_new(bus, CV_SOCK_ROUTER) : NULL;
    sv.msgs = calloc(sv.batch_max, sizeof *sv.msgs);
    sv.jobs = calloc(sv.batch_max, sizeof *sv.jobs);
    sv.job_msg = calloc(sv.batch_max, sizeof *sv.job_msg);
    if (!sv.sock || !sv.msgs || !sv.jobs || !sv.job_msg) {
        fprintf(stderr, "canvass-tally: cannot set up the socket\n");
        goto out;
    }
    if (cv_sock_bind(sv.sock, opt_bind) < 0) {
        fprintf(stderr, "canvass-tally: cannot bind %s\n", opt_bind);
        goto out;
    }
    atomic_store(&tally_ready, 1);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal; /* no SA_RESTART: the wait must wake */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    cv_log(CV_LOG_INFO,
           "msg=started bind=%s data=%s shards=%ld cycle=%llu durability=%s batch_max=%zu "
           "map_bytes=%zu half_life_s=%ld index_batch=%ld",
           opt_bind, opt_data, opt_shards, (unsigned long long)cv_shard_cycle(sv.shard),
           opt_durability, sv.batch_max, (size_t)opt_map_mib << 20, opt_half_life,
           opt_index_batch);
    if (serve_loop(&sv) == 0)
        status = 0;
    else
        fprintf(stderr, "canvass-tally: the socket failed\n");

out:
    cv_sock_destroy(&sv.sock);
    cv_bus_destroy(&bus);
    cv_shard_close(&sv.shard);
    free(sv.msgs);
    free(sv.jobs);
    free(sv.job_msg);
    cv_log(CV_LOG_INFO, "msg=stopped status=%d", status);
    return status;
}

/* Serves with the probes on --http: they answer (not ready) while the store
 * opens, and stop only after it is closed. */
static int serve_with_probes(cv_durability_t durability)
{
    char host[256];
    int port;
    int rc = cv_http_parse_addr(opt_http, host, sizeof host, &port);
    if (rc < 0) {
        fprintf(stderr, "canvass-tally: bad --http '%s' (HOST:PORT or off)\n", opt_http);
        return 2;
    }
    metrics_init();
    cv_http_t *http = NULL;
    if (rc == 0 && !(http = cv_http_start_probes(host, port, metrics, ready_fn, NULL))) {
        fprintf(stderr, "canvass-tally: cannot serve HTTP on %s\n", opt_http);
        cv_metrics_destroy(&metrics);
        return 1;
    }
    int status = serve(durability);
    cv_http_stop(&http);
    cv_metrics_destroy(&metrics);
    return status;
}

int main(int argc, char **argv)
{
    int npos = 0;
    int rc = cv_config_parse("canvass-tally", usage, options, argc, argv, 1, &npos);
    if (rc == 1)
        return 0;
    if (rc < 0)
        return 2;
    if (npos > 0) {
        fprintf(stderr, "canvass-tally: unexpected argument '%s' (see --help)\n", argv[1]);
        return 2;
    }
    int level = cv_log_level_parse(opt_log_level);
    if (level < 0) {
        fprintf(stderr, "canvass-tally: --log-level must be debug, info, warn or error\n");
        return 2;
    }
    cv_log_init("tally", (int)opt_shard, level);
    if (opt_check && opt_dump_votes) {
        fprintf(stderr, "canvass-tally: --check and --dump-votes go one at a time\n");
        return 2;
    }
    if (opt_check)
        return cv_audit_check(opt_data, stdout);
    if (opt_dump_votes)
        return cv_audit_dump_votes(opt_data, stdout);

    if (opt_shard >= opt_shards) {
        fprintf(stderr, "canvass-tally: --shard %ld is out of range for --shards %ld\n",
                opt_shard, opt_shards);
        return 2;
    }
    int durability = cv_durability_parse(opt_durability);
    if (durability < 0) {
        fprintf(stderr, "canvass-tally: --durability must be fsync or os\n");
        return 2;
    }
    return serve_with_probes((cv_durability_t)durability);
}
