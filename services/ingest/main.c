/* canvass-ingest: the client front end (DESIGN A1, A4, B1).
 *
 * This file holds the configuration table, start-up, the once-per-turn
 * flush and the graceful stop; the work is in server.c (client connections)
 * and router.c (the tally shards).  One libuv loop runs everything:
 *   poll phase   client reads (requests decoded, answered or queued) and
 *                shard replies (acks completed into client replies);
 *   check phase  cv_router_flush sends this turn's batches, one TallyRequest
 *                per shard, then cv_server_flush writes this turn's replies.
 *
 * SIGTERM or SIGINT stops accepting and reading, waits for every command in
 * flight to be answered (the router's deadline bounds that) and for the
 * replies to be written, closes every handle and exits 0.  A second signal
 * stops waiting for the shards: pending commands are answered UNAVAILABLE
 * at once.  A client that does not read its replies is cut off after a
 * further grace period.
 */
#include "admit.h"
#include "cv_auth.h"
#include "cv_bus.h"
#include "cv_config.h"
#include "cv_err.h"
#include "cv_http.h"
#include "cv_id.h"
#include "cv_log.h"
#include "cv_metrics.h"
#include "router.h"
#include "server.h"

#include <sodium.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#define CV__SHARDS_MAX 1024
/* A stop waits this long past the command deadline before answering what
 * is still pending, then this long again for slow readers to take their
 * replies before their connections are closed regardless. */
#define CV__STOP_GRACE_MS 1000
#define CV__STOP_POLL_MS 20
/* --user-rate -1: votes a second per user id when app keys are in use. */
#define CV__USER_RATE_WITH_KEYS 50

static const char *listen_addr, *tally_list, *log_level_name, *http_addr, *key_file;
static long node, max_frame, max_connections, resend_ms, deadline_ms;
static long idle_ms, read_ms, write_ms, max_buffered_mib;
static const char *curve_key, *curve_server, *curve_allow;
static double conn_rate, user_rate;
static long conn_burst, user_burst, user_table;

static cv_config_opt_t options[] = {
    {"listen", CV_CFG_STR, "127.0.0.1:7700", 0, 0, &listen_addr,
     "host:port to accept client connections on"},
    {"tally", CV_CFG_STR, "tcp://127.0.0.1:7710", 0, 0, &tally_list,
     "tally shard endpoints, comma-separated, in shard order (N = count)"},
    {"node", CV_CFG_INT, "-1", -1, CV_NODE_MAX, &node,
     "ingest node id 0-1023 for stamps and feature ids (give each ingest its own); -1: random"},
    {"max-frame", CV_CFG_INT, "65536", 16, 16 << 20, &max_frame, "largest frame payload in bytes"},
    {"max-connections", CV_CFG_INT, "10000", 1, 1000000, &max_connections,
     "client connections at once; more are answered UNAVAILABLE and closed"},
    {"idle-ms", CV_CFG_INT, "300000", 0, 86400000, &idle_ms,
     "shut a connection that sends no frame and is owed nothing for this long; 0: never"},
    {"read-ms", CV_CFG_INT, "10000", 0, 86400000, &read_ms,
     "close a connection that has not finished a frame this long after its first byte; 0: never"},
    {"write-ms", CV_CFG_INT, "30000", 0, 86400000, &write_ms,
     "close a connection whose unsent replies make no progress for this long; 0: never"},
    {"max-buffered", CV_CFG_INT, "256", 1, 1 << 20, &max_buffered_mib,
     "MiB held for clients (unsent replies, 256 bytes per command in flight) before every"
     " connection stops reading"},
    {"resend-ms", CV_CFG_INT, "1000", 10, 3600000, &resend_ms,
     "resend a command the shard has not acknowledged after this long"},
    {"deadline-ms", CV_CFG_INT, "5000", 10, 3600000, &deadline_ms,
     "answer UNAVAILABLE when the shard has not acknowledged after this long"},
    {"log-level", CV_CFG_STR, "info", 0, 0, &log_level_name, "debug, info, warn or error"},
    CV_BUS_CURVE_OPTS(curve_key, curve_server, curve_allow),
    {"http", CV_CFG_STR, "127.0.0.1:7781", 0, 0, &http_addr,
     "HOST:PORT for /healthz, /readyz and /metrics; off for none"},
    {"key-file", CV_CFG_STR, NULL, 0, 0, &key_file,
     "app keys and rights (docs/OPERATIONS.md); empty: an open cluster"},
    {"conn-rate", CV_CFG_DOUBLE, "100000", 0, 0, &conn_rate,
     "requests/s per connection after its burst, any request; 0: no limit"},
    {"conn-burst", CV_CFG_INT, "100000", 1, 1000000000, &conn_burst,
     "requests a connection may send at once"},
    {"user-rate", CV_CFG_DOUBLE, "-1", 0, 0, &user_rate,
     "votes/s per user id after its burst, all connections; 0: no limit; "
     "-1: 50 with --key-file, no limit without (an open cluster cannot tell users apart)"},
    {"user-burst", CV_CFG_INT, "100", 1, 1000000000, &user_burst,
     "votes a user may send at once"},
    {"user-table", CV_CFG_INT, "200000", 1, 100000000, &user_table,
     "user ids tracked for --user-rate (~200 bytes each); least recent go first"},
    {0}};

typedef struct {
    uv_loop_t *loop;
    cv_admit_t *admit;
    cv_server_t *server;
    cv_router_t *router;
    uv_check_t check;
    uv_signal_t sigterm, sigint;
    uv_timer_t stop_timer;
    int stopping;      /* signals received */
    bool aborted;      /* pending commands were answered UNAVAILABLE */
    bool closed_hard;  /* connections were closed, written or not */
    uint64_t abort_at; /* loop times: stop waiting for shards, */
    uint64_t close_at; /* then for slow readers */
} cv__ingest_t;

/* ---- HTTP probes and metrics ------------------------------------------------
 * The HTTP thread reads only atomics: the loop thread updates them (counters
 * as commands complete, gauges once per loop turn).
 *
 * Readiness, honestly: ZeroMQ does not tell whether a shard is connected, so
 * ingest says it is ready once it listens for clients, and not ready while
 * it stops or for --deadline-ms after a command was answered UNAVAILABLE (a
 * shard stayed silent past the deadline).  A dead shard is therefore noticed
 * only when a command for it times out; after the window the probe says
 * ready again, so that a balancer sends the traffic that finds out whether
 * the shard is back. */

static const char *const op_names[2] = {"vote", "submit"};
static cv_metrics_t *metrics;
static cv_metric_t *m_commands[2][CV_ST_INTERNAL + 1]; /* [vote|submit][status] */
static cv_metric_t *m_connections, *m_pending, *m_rate_users, *m_buffered;
static atomic_int ready_listening, ready_stopping;
static _Atomic uint64_t unavailable_at_ms; /* monotonic; 0 = never */

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int ingest_ready(void *arg, char *why, size_t cap)
{
    uint64_t bad = atomic_load(&unavailable_at_ms);
    if (!atomic_load(&ready_listening))
        snprintf(why, cap, "not listening for clients yet");
    else if (atomic_load(&ready_stopping))
        snprintf(why, cap, "stopping");
    else if (bad && mono_ms() - bad < (uint64_t)deadline_ms)
        snprintf(why, cap, "a tally shard did not answer within %ld ms just now", deadline_ms);
    else
        return 1;
    return 0;
}

static void metrics_init(void)
{
    if (!(metrics = cv_metrics_new()))
        return;
    for (int op = 0; op < 2; op++)
        for (int st = 0; st <= CV_ST_INTERNAL; st++)
            m_commands[op][st] = cv_metrics_counter(
                metrics, "canvass_ingest_commands_total",
                "Votes and submits answered after their shard, by operation and status",
                "op", op_names[op], "status", cv_status_name(st), NULL);
    m_connections = cv_metrics_gauge(metrics, "canvass_ingest_connections",
                                     "Client connections open", NULL);
    m_pending = cv_metrics_gauge(metrics, "canvass_ingest_commands_pending",
                                 "Commands sent to a shard and not yet answered", NULL);
    m_rate_users = cv_metrics_gauge(metrics, "canvass_ingest_rate_limited_users",
                                    "User ids whose vote rate is being tracked", NULL);
    m_buffered = cv_metrics_gauge(metrics, "canvass_ingest_buffered_bytes",
                                  "Bytes held for clients against --max-buffered: unsent replies"
                                  " and 256 per command in flight", NULL);
}

/* The router's done callback: counts, then hands over to the server. */
static void on_result(void *owner, uint64_t request_id, int op, const cv_router_result_t *res)
{
    int st = res->status >= 0 && res->status <= CV_ST_INTERNAL ? (int)res->status : CV_ST_INTERNAL;
    cv_metric_inc(m_commands[op == CANVASS__V1__REQUEST__OP_SUBMIT][st]);
    if (res->status == CV_ST_UNAVAILABLE)
        atomic_store(&unavailable_at_ms, mono_ms());
    cv_server_on_result(owner, request_id, op, res);
}

/* Splits the comma-separated list in place into at most max endpoints. */
static int parse_endpoints(char *list, char **out, int max)
{
    int n = 0;
    char *save = NULL;
    for (char *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ' || *tok == '\t')
            tok++;
        size_t len = strlen(tok);
        while (len && (tok[len - 1] == ' ' || tok[len - 1] == '\t'))
            tok[--len] = '\0';
        if (!len)
            continue;
        if (n == max)
            return CV_EINVAL;
        out[n++] = tok;
    }
    return n > 0 ? n : CV_EINVAL;
}

/* Up to max_connections sockets, plus room for the shards and the rest. */
static void raise_fd_limit(long want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= (rlim_t)want)
        return;
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= (rlim_t)want ? (rlim_t)want
                                                                               : rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur < (rlim_t)want)
        cv_log(CV_LOG_WARN, "msg=\"open-file limit below --max-connections\" limit=%llu want=%ld",
               (unsigned long long)rl.rlim_cur, want);
}

static void on_check(uv_check_t *h)
{
    cv__ingest_t *in = h->data;
    cv_router_flush(in->router);
    cv_server_flush(in->server);
    cv_metric_set(m_connections, cv_server_connections(in->server));
    cv_metric_set(m_pending, cv_router_pending(in->router));
    cv_metric_set(m_rate_users, cv_admit_users(in->admit));
    cv_metric_set(m_buffered, cv_server_buffered(in->server));
}

static void on_closed(uv_handle_t *h)
{
}

static void on_stop_timer(uv_timer_t *t)
{
    cv__ingest_t *in = t->data;
    if (cv_server_closed(in->server) && cv_router_pending(in->router) == 0) {
        cv_log(CV_LOG_INFO, "msg=\"stopped\"");
        cv_router_close(in->router);
        uv_close((uv_handle_t *)&in->check, on_closed);
        uv_close((uv_handle_t *)&in->sigterm, on_closed);
        uv_close((uv_handle_t *)&in->sigint, on_closed);
        uv_close((uv_handle_t *)&in->stop_timer, on_closed);
        return;
    }
    uint64_t now = uv_now(in->loop);
    if (!in->aborted && now >= in->abort_at) {
        /* Commands still pending get UNAVAILABLE; the replies are written
         * during the grace that follows. */
        in->aborted = true;
        in->close_at = now + CV__STOP_GRACE_MS;
        if (cv_router_pending(in->router))
            cv_log(CV_LOG_WARN, "msg=\"stop: answering pending commands UNAVAILABLE\""
                   " pending=%zu", cv_router_pending(in->router));
        cv_router_abort(in->router, "ingest is shutting down; safe to retry");
    } else if (in->aborted && !in->closed_hard && now >= in->close_at) {
        in->closed_hard = true;
        cv_log(CV_LOG_WARN, "msg=\"stop: closing connections with unwritten replies\""
               " connections=%zu", cv_server_connections(in->server));
        cv_server_close(in->server);
    }
}

static void on_signal(uv_signal_t *h, int signum)
{
    cv__ingest_t *in = h->data;
    atomic_store(&ready_stopping, 1);
    if (in->stopping++ == 0) {
        cv_log(CV_LOG_INFO, "msg=\"stopping: draining in-flight commands\" signal=%d pending=%zu"
               " connections=%zu", signum, cv_router_pending(in->router),
               cv_server_connections(in->server));
        cv_server_drain(in->server);
        /* Every command expires within deadline_ms anyway; the margin
         * covers the timer's period. */
        in->abort_at = uv_now(in->loop) + (uint64_t)deadline_ms + CV__STOP_GRACE_MS;
        uv_timer_start(&in->stop_timer, on_stop_timer, CV__STOP_POLL_MS, CV__STOP_POLL_MS);
    } else {
        cv_log(CV_LOG_WARN, "msg=\"second signal: answering pending commands UNAVAILABLE\"");
        in->abort_at = uv_now(in->loop);
    }
}

int main(int argc, char **argv)
{
    int npos = 0;
    int rc = cv_config_parse("canvass-ingest", "canvass-ingest [options]", options, argc, argv, 1,
                             &npos);
    if (rc == 1)
        return 0;
    if (rc < 0)
        return 2;
    if (npos > 0) {
        fprintf(stderr, "canvass-ingest: unexpected argument '%s' (see --help)\n", argv[1]);
        return 2;
    }
    int level = cv_log_level_parse(log_level_name);
    if (level < 0) {
        fprintf(stderr, "canvass-ingest: --log-level must be debug, info, warn or error, not '%s'\n",
                log_level_name);
        return 2;
    }
    cv_log_init("ingest", -1, level);
    cv_rate_t crate = {conn_rate, (double)conn_burst}, urate = {user_rate, (double)user_burst};
    if (!cv_rate_valid(&crate)) {
        fprintf(stderr, "canvass-ingest: --conn-rate must be from 0 to 1e9, got %g\n", conn_rate);
        return 2;
    }
    if (user_rate != -1 && !cv_rate_valid(&urate)) {
        fprintf(stderr, "canvass-ingest: --user-rate must be -1 or from 0 to 1e9, got %g\n",
                user_rate);
        return 2;
    }
    /* The key file is read once, before anything starts: a bad line stops
     * the process here, with the file, line and reason. */
    cv_auth_t *keys = NULL;
    if (*key_file) {
        char kerr[512];
        rc = cv_auth_load(key_file, &keys, kerr, sizeof kerr);
        if (rc < 0) {
            fprintf(stderr, "canvass-ingest: %s\n", kerr);
            return rc == CV_ENOMEM ? 1 : 2;
        }
    }
    /* Without keys any client may send any user id, so a per-user limit
     * stops nobody (a new id per vote gets past it) while it refuses the
     * heavy synthetic users of tests and benchmarks; with keys (and user
     * tokens) a user id means someone, and the limit is on by default. */
    if (user_rate == -1)
        user_rate = urate.rate = keys ? CV__USER_RATE_WITH_KEYS : 0;

    char *tally_copy = strdup(tally_list);
    static char *endpoints[CV__SHARDS_MAX];
    int nshards = tally_copy ? parse_endpoints(tally_copy, endpoints, CV__SHARDS_MAX) : CV_ENOMEM;
    if (nshards < 0) {
        fprintf(stderr, "canvass-ingest: --tally needs 1-%d comma-separated endpoints, got '%s'\n",
                CV__SHARDS_MAX, tally_list);
        free(tally_copy);
        cv_auth_destroy(&keys);
        return 2;
    }
    /* Containers start every ingest as pid 1, so the default is random rather
     * than pid-derived; an operator running many ingests gives each a --node. */
    if (sodium_init() < 0) {
        fprintf(stderr, "canvass-ingest: libsodium failed to initialise\n");
        free(tally_copy);
        cv_auth_destroy(&keys);
        return 1;
    }
    uint32_t node_id = node >= 0 ? (uint32_t)node : randombytes_uniform(CV_NODE_MAX + 1);

    signal(SIGPIPE, SIG_IGN); /* a client gone mid-write is an error code, not a death */
    raise_fd_limit(max_connections + nshards * 4 + 64);

    char http_host[256];
    int http_port;
    rc = cv_http_parse_addr(http_addr, http_host, sizeof http_host, &http_port);
    if (rc < 0) {
        fprintf(stderr, "canvass-ingest: bad --http '%s' (HOST:PORT or off)\n", http_addr);
        free(tally_copy);
        cv_auth_destroy(&keys);
        return 2;
    }
    metrics_init();
    cv_http_t *http = NULL;
    if (rc == 0 && !(http = cv_http_start_probes(http_host, http_port, metrics, ingest_ready,
                                                 NULL))) {
        cv_metrics_destroy(&metrics);
        free(tally_copy);
        cv_auth_destroy(&keys);
        return 1;
    }

    cv__ingest_t in = {.loop = uv_default_loop()};
    cv_admit_opts_t aopts = {.keys = keys,
                             .conn_rate = crate,
                             .user_rate = urate,
                             .user_table = (size_t)user_table,
                             .metrics = metrics};
    cv_bus_t *bus = NULL;
    if (!(in.admit = cv_admit_new(&aopts)) || !(bus = cv_bus_new())) {
        cv_log(CV_LOG_ERROR, "msg=\"%s\"", in.admit ? "cannot create the ZeroMQ context"
                                                     : "out of memory");
        cv_http_stop(&http);
        cv_admit_destroy(&in.admit);
        cv_metrics_destroy(&metrics);
        cv_auth_destroy(&keys);
        free(tally_copy);
        return 1;
    }
    char cerr[512];
    int crc = cv_bus_curve_setup(bus, curve_key, curve_server, curve_allow, cerr, sizeof cerr);
    if (crc < 0) {
        fprintf(stderr, "canvass-ingest: %s\n", cerr);
        cv_log(CV_LOG_ERROR, "msg=\"refusing to start\" reason=\"%s\"", cerr);
    }
    cv_router_opts_t ropts = {
        .endpoints = (const char *const *)endpoints,
        .nshards = (uint32_t)nshards,
        .node = node_id,
        .resend_ms = (uint64_t)resend_ms,
        .deadline_ms = (uint64_t)deadline_ms,
        .done = on_result,
    };
    in.router = crc < 0 ? NULL : cv_router_new(in.loop, bus, &ropts);
    if (!in.router) {
        cv_http_stop(&http);
        cv_metrics_destroy(&metrics);
        cv_bus_destroy(&bus);
        cv_admit_destroy(&in.admit);
        cv_auth_destroy(&keys);
        free(tally_copy);
        return 2; /* a bad key file or endpoint */
    }
    cv_server_opts_t sopts = {
        .listen = listen_addr,
        .max_frame = (size_t)max_frame,
        .max_connections = (size_t)max_connections,
        .idle_ms = (uint64_t)idle_ms,
        .read_ms = (uint64_t)read_ms,
        .write_ms = (uint64_t)write_ms,
        .max_buffered = (size_t)max_buffered_mib << 20,
        .router = in.router,
        .admit = in.admit,
    };
    in.server = cv_server_new(in.loop, &sopts);
    if (!in.server) {
        cv_router_close(in.router);
        uv_run(in.loop, UV_RUN_DEFAULT);
        cv_router_destroy(&in.router);
        cv_http_stop(&http);
        cv_metrics_destroy(&metrics);
        cv_bus_destroy(&bus);
        cv_admit_destroy(&in.admit);
        cv_auth_destroy(&keys);
        free(tally_copy);
        return 1;
    }
    atomic_store(&ready_listening, 1);
    for (int i = 0; i < nshards; i++)
        cv_log(CV_LOG_INFO, "msg=\"tally shard\" index=%d endpoint=\"%s\"", i, endpoints[i]);
    cv_log(CV_LOG_INFO, "msg=\"started\" node=%" PRIu32 " shards=%d max_frame=%ld"
           " max_connections=%ld resend_ms=%ld deadline_ms=%ld",
           node_id, nshards, max_frame, max_connections, resend_ms, deadline_ms);
    cv_log(CV_LOG_INFO, "msg=\"connection limits\" idle_ms=%ld read_ms=%ld write_ms=%ld"
           " max_buffered_mib=%ld", idle_ms, read_ms, write_ms, max_buffered_mib);
    cv_log(CV_LOG_INFO, "msg=\"rate limits\" conn_rate=%g conn_burst=%ld user_rate=%g"
           " user_burst=%ld user_table=%ld", conn_rate, conn_burst, user_rate, user_burst,
           user_table);
    if (keys)
        cv_log(CV_LOG_INFO, "msg=\"app keys in use: Hello with a key first, rights enforced\""
               " key_file=\"%s\" apps=%zu", key_file, cv_auth_count(keys));
    else
        cv_log(CV_LOG_WARN, "msg=\"OPEN CLUSTER: no --key-file, so any client may vote, submit"
               " and claim any tier as any user\"");

    uv_check_init(in.loop, &in.check);
    in.check.data = &in;
    uv_check_start(&in.check, on_check);
    uv_timer_init(in.loop, &in.stop_timer);
    in.stop_timer.data = &in;
    uv_signal_init(in.loop, &in.sigterm);
    uv_signal_init(in.loop, &in.sigint);
    in.sigterm.data = in.sigint.data = &in;
    uv_signal_start(&in.sigterm, on_signal, SIGTERM);
    uv_signal_start(&in.sigint, on_signal, SIGINT);

    uv_run(in.loop, UV_RUN_DEFAULT);

    rc = uv_loop_close(in.loop);
    if (rc != 0)
        cv_log(CV_LOG_ERROR, "msg=\"loop closed with handles open\" err=\"%s\"", uv_strerror(rc));
    cv_http_stop(&http);
    cv_metrics_destroy(&metrics);
    cv_server_destroy(&in.server);
    cv_router_destroy(&in.router);
    cv_bus_destroy(&bus);
    cv_admit_destroy(&in.admit);
    cv_auth_destroy(&keys);
    free(tally_copy);
    return rc == 0 ? 0 : 1;
}
