/* canvass-publish: owns the release cycles (DESIGN A1, A5-A7, B1, B3).
 *
 * This file is the process: the config table, the sockets (PUB for the
 * event stream, REP for the release-manager API, one DEALER per tally
 * shard), and one single-threaded loop that waits on the REP socket and the
 * shard sockets until the next scheduled close, serves requests, runs due
 * closes and drops late shard replies.  The domain lives in cycles.c
 * (closing, storing, the schedule), api.c (the REP API), shards.c (the
 * gather) and events.c (polling the shards for `created` events).  SIGTERM
 * or SIGINT ends the loop; the store is then closed and the process exits
 * 0.
 */
#include "api.h"
#include "cv_auth.h"
#include "cv_bus.h"
#include "cv_config.h"
#include "cv_err.h"
#include "cv_http.h"
#include "cv_id.h"
#include "cv_metrics.h"
#include "cv_log.h"
#include "cv_rank.h"
#include "cv_sched.h"
#include "cycles.h"
#include "events.h"
#include "features.h"
#include "http.h"
#include "shards.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define PROG "canvass-publish"

/* The loop wakes at least this often, so a signal that lands just before
 * the wait, or a wall clock that jumps, costs at most this long. */
#define LOOP_WAKE_MS 1000
/* Stale LMDB reader slots are cleared this often (and at every open). */
#define READER_CHECK_MS 60000

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static char *opt_tally, *opt_pub, *opt_rep, *opt_data, *opt_schedule, *opt_log_level;
static char *opt_curve_key, *opt_curve_server, *opt_curve_allow;
static double opt_weight[CV_TIERS];
static long opt_shard_timeout_ms;
static char *opt_http;
static long opt_http_timeout_ms;
static char *opt_key_file;

static cv_config_opt_t options[] = {
    {"tally", CV_CFG_STR, "tcp://127.0.0.1:7710", 0, 0, &opt_tally,
     "tally shard ROUTER endpoints, comma-separated, in shard order"},
    {"pub", CV_CFG_STR, "tcp://127.0.0.1:7720", 0, 0, &opt_pub,
     "PUB endpoint to bind: ranked lists and events"},
    {"rep", CV_CFG_STR, "tcp://127.0.0.1:7721", 0, 0, &opt_rep,
     "REP endpoint to bind: release-manager API"},
    {"data", CV_CFG_STR, "./var/publish", 0, 0, &opt_data, "data directory (cycle history)"},
    {"schedule", CV_CFG_STR, "weekly:FRI@17:00Z", 0, 0, &opt_schedule,
     "when cycles close: manual, every:<N>s, daily@HH:MM[Z|+HH:MM|-HH:MM], weekly:DAY@HH:MM[...]"},
    {"weight-member", CV_CFG_DOUBLE, "1", 0, 0, &opt_weight[CV_TIER_MEMBER],
     "score weight of a member's vote"},
    {"weight-core", CV_CFG_DOUBLE, "3", 0, 0, &opt_weight[CV_TIER_CORE],
     "score weight of a core member's vote"},
    {"weight-honorary", CV_CFG_DOUBLE, "10", 0, 0, &opt_weight[CV_TIER_HONORARY],
     "score weight of an honorary member's vote"},
    {"shard-timeout-ms", CV_CFG_INT, "5000", 1, 600000, &opt_shard_timeout_ms,
     "how long a close or live query waits for every shard"},
    {"log-level", CV_CFG_STR, "info", 0, 0, &opt_log_level, "debug, info, warn or error"},
    CV_BUS_CURVE_OPTS(opt_curve_key, opt_curve_server, opt_curve_allow),
    {"http", CV_CFG_STR, "127.0.0.1:7780", 0, 0, &opt_http,
     "HOST:PORT of the HTTP API, /healthz, /readyz and /metrics; off for none"},
    {"http-timeout-ms", CV_CFG_INT, "30000", 100, 3600000, &opt_http_timeout_ms,
     "how long an HTTP API request waits for the answer"},
    {"key-file", CV_CFG_STR, NULL, 0, 0, &opt_key_file,
     "app keys (docs/OPERATIONS.md): every release-manager request then needs a key with "
     "the admin right; empty: the API is open to anyone who reaches it"},
    {0},
};

/* ---- HTTP and metrics (http.c) ----------------------------------------------
 * The HTTP thread reaches publish only through the REP socket, which is
 * also bound to PUB_HTTP_ADMIN_ENDPOINT; the loop below feeds the metrics. */

static cv_metrics_t *metrics;
static pub_http_t *http;
static cv_metric_t *m_admin_requests, *m_cycles_closed, *m_open_cycle;

/* Starts the HTTP server unless --http is off.  Returns 0, or CV_EINVAL (a
 * bad --http) or -1 after saying why. */
static int http_begin(cv_bus_t *bus)
{
    char host[256];
    int port;
    int rc = cv_http_parse_addr(opt_http, host, sizeof host, &port);
    if (rc < 0) {
        fprintf(stderr, "%s: bad --http '%s' (HOST:PORT or off)\n", PROG, opt_http);
        return CV_EINVAL;
    }
    if (!(metrics = cv_metrics_new()))
        return -1;
    m_admin_requests = cv_metrics_counter(
        metrics, "canvass_publish_admin_requests_total",
        "Release-manager requests answered on the REP socket (ZeroMQ and HTTP)", NULL);
    m_cycles_closed = cv_metrics_counter(metrics, "canvass_publish_cycles_closed_total",
                                         "Cycles closed by this process", NULL);
    m_open_cycle = cv_metrics_gauge(metrics, "canvass_publish_open_cycle", "The open cycle", NULL);
    if (rc == 1)
        return 0;
    pub_http_opts_t o = {.host = host,
                         .port = port,
                         .bus = bus,
                         .endpoint = PUB_HTTP_ADMIN_ENDPOINT,
                         .timeout_ms = opt_http_timeout_ms,
                         .metrics = metrics};
    if (!(http = pub_http_start(&o))) {
        fprintf(stderr, "%s: cannot serve HTTP on %s (see the log)\n", PROG, opt_http);
        return -1;
    }
    cv_log(CV_LOG_INFO, "msg=\"http listening\" addr=%s port=%d", host, pub_http_port(http));
    return 0;
}

/* Counts the closes this process made, from the open cycle moving on. */
static void metrics_observe(pub_cycles_t *cycles)
{
    static uint64_t seen;
    uint64_t open = pub_cycles_open_cycle(cycles);
    if (seen && open > seen)
        cv_metric_add(m_cycles_closed, open - seen);
    seen = open;
    cv_metric_set(m_open_cycle, open);
}

/* mkdir -p: the store only creates its own, last directory. */
static int make_dirs(const char *path)
{
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf)
        return -1;
    memcpy(buf, path, n + 1);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0700) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(buf, 0700) != 0 && errno != EEXIST ? -1 : 0;
}

/* Checks the settings cv_config cannot; prints a one-line reason. */
static int check_options(pub_cycles_config_t *cfg, int *log_level)
{
    static const char *weight_names[CV_TIERS] = {"weight-member", "weight-core", "weight-honorary"};
    char err[256];
    if (cv_sched_parse(opt_schedule, &cfg->sched, err, sizeof err) < 0) {
        fprintf(stderr, "%s: bad --schedule '%s': %s\n", PROG, opt_schedule, err);
        return -1;
    }
    for (int t = 0; t < CV_TIERS; t++) {
        if (!isfinite(opt_weight[t]) || opt_weight[t] < 0) {
            fprintf(stderr, "%s: --%s must be a number >= 0, got %g\n", PROG, weight_names[t],
                    opt_weight[t]);
            return -1;
        }
        cfg->weights[t] = opt_weight[t];
    }
    if ((*log_level = cv_log_level_parse(opt_log_level)) < 0) {
        fprintf(stderr, "%s: bad --log-level '%s' (debug, info, warn, error)\n", PROG,
                opt_log_level);
        return -1;
    }
    cfg->data_dir = opt_data;
    cfg->schedule_text = opt_schedule;
    cfg->shard_timeout_ms = opt_shard_timeout_ms;
    return 0;
}

/* Serves until a signal; returns the exit status. */
static int run(pub_cycles_t *cycles, pub_features_t *features, pub_events_t *events,
               pub_shards_t *shards, cv_sock_t *rep)
{
    int nshards = pub_shards_count(shards);
    cv_sock_t *socks[1 + PUB_SHARDS_MAX];
    int readable[1 + PUB_SHARDS_MAX];
    socks[0] = rep;
    for (int i = 0; i < nshards; i++)
        socks[1 + i] = pub_shards_sock(shards, i);
    uint64_t next_reader_check = cv_now_ms() + READER_CHECK_MS;
    while (!stop_requested) {
        if (cv_now_ms() >= next_reader_check) {
            int cleared = pub_history_reader_check(pub_cycles_history(cycles));
            if (cleared > 0)
                cv_log(CV_LOG_WARN, "msg=\"cleared stale readers\" count=%d", cleared);
            next_reader_check = cv_now_ms() + READER_CHECK_MS;
        }
        long wait = pub_cycles_tick(cycles);
        long merges_wait = pub_features_tick(features); /* pending merges */
        if (merges_wait >= 0 && (wait < 0 || merges_wait < wait))
            wait = merges_wait;
        long events_wait = pub_events_tick(events); /* created features */
        if (wait < 0 || events_wait < wait)
            wait = events_wait;
        if (wait < 0 || wait > LOOP_WAKE_MS)
            wait = LOOP_WAKE_MS;
        metrics_observe(cycles);
        if (stop_requested)
            break;
        int n = cv_bus_poll(socks, 1 + nshards, readable, wait);
        if (n < 0) {
            cv_log(CV_LOG_ERROR, "msg=\"poll failed\" err=\"%s\"", cv_strerror(n));
            return 1;
        }
        /* A REQ client may pipeline nothing, but several clients may be
         * queued: serve every waiting request before the next tick. */
        if (readable[0])
            while (!stop_requested && pub_api_serve(cycles, features, rep) == 0)
                cv_metric_inc(m_admin_requests);
        for (int i = 0; i < nshards; i++)
            if (readable[1 + i])
                pub_shards_drain(shards, i);
    }
    return 0;
}

int main(int argc, char **argv)
{
    int npos = 0;
    int rc = cv_config_parse(PROG, PROG " [options]", options, argc, argv, 1, &npos);
    if (rc == 1)
        return 0;
    if (rc < 0)
        return 2;
    if (npos > 0) {
        fprintf(stderr, "%s: unexpected argument '%s' (see --help)\n", PROG, argv[1]);
        return 2;
    }
    pub_cycles_config_t cfg;
    int log_level;
    char err[512];
    if (check_options(&cfg, &log_level) < 0)
        return 2;
    cv_log_init("publish", -1, log_level);
    cv_auth_t *keys = NULL;
    if (*opt_key_file && (rc = cv_auth_load(opt_key_file, &keys, err, sizeof err)) < 0) {
        fprintf(stderr, "%s: %s\n", PROG, err);
        return rc == CV_ENOMEM ? 1 : 2;
    }
    pub_api_set_keys(keys);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal; /* no SA_RESTART: the wait must return */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    int status = 1;
    cv_bus_t *bus = NULL;
    cv_sock_t *pub = NULL, *rep = NULL;
    pub_shards_t *shards = NULL;
    pub_cycles_t *cycles = NULL;
    pub_features_t *features = NULL;
    pub_events_t *events = NULL;
    if (!(bus = cv_bus_new())) {
        cv_log(CV_LOG_ERROR, "msg=\"cannot create the ZeroMQ context\"");
        goto out;
    }
    if (cv_bus_curve_setup(bus, opt_curve_key, opt_curve_server, opt_curve_allow, err,
                           sizeof err) < 0) {
        fprintf(stderr, "%s: %s\n", PROG, err);
        cv_log(CV_LOG_ERROR, "msg=\"refusing to start\" reason=\"%s\"", err);
        status = 2;
        goto out;
    }
    if (!(shards = pub_shards_new(bus, opt_tally, err, sizeof err))) {
        fprintf(stderr, "%s: %s\n", PROG, err);
        status = 2;
        goto out;
    }
    if (make_dirs(opt_data) < 0) {
        cv_log(CV_LOG_ERROR, "msg=\"cannot create data directory\" dir=%s err=\"%s\"", opt_data,
               strerror(errno));
        goto out;
    }
    pub = cv_sock_new(bus, CV_SOCK_PUB);
    rep = cv_sock_new(bus, CV_SOCK_REP);
    if (!pub || !rep || cv_sock_bind(pub, opt_pub) < 0 || cv_sock_bind(rep, opt_rep) < 0)
        goto out;
    if (cv_sock_bind(rep, PUB_HTTP_ADMIN_ENDPOINT) < 0)
        goto out;
    if ((rc = http_begin(bus)) < 0) {
        status = rc == CV_EINVAL ? 2 : 1;
        goto out;
    }
    if (!(cycles = pub_cycles_new(&cfg, shards, pub)))
        goto out;
    if (!(features = pub_features_new(cycles, shards, pub, cfg.shard_timeout_ms)))
        goto out;
    if (!(events = pub_events_new(opt_data, shards, pub, cfg.shard_timeout_ms)))
        goto out;
    pub_http_set_ready(http, 1);
    cv_log(CV_LOG_INFO,
           "msg=\"started\" pub=%s rep=%s shards=%d tally=%s data=%s "
           "weights=%g/%g/%g shard_timeout_ms=%ld",
           opt_pub, opt_rep, pub_shards_count(shards), opt_tally, opt_data, cfg.weights[0],
           cfg.weights[1], cfg.weights[2], cfg.shard_timeout_ms);
    if (keys)
        cv_log(CV_LOG_INFO, "msg=\"app keys in use: release-manager requests need an admin key\""
               " key_file=\"%s\" apps=%zu", opt_key_file, cv_auth_count(keys));
    else
        cv_log(CV_LOG_WARN, "msg=\"OPEN CLUSTER: no --key-file, so anyone who reaches the REP or"
               " HTTP API may close cycles, change statuses and merge features\"");
    status = run(cycles, features, events, shards, rep);
    cv_log(CV_LOG_INFO, "msg=\"stopping\" open_cycle=%llu",
           (unsigned long long)pub_cycles_open_cycle(cycles));

out:
    pub_http_stop(&http); /* before the context: it holds a socket */
    pub_events_destroy(&events);
    pub_features_destroy(&features);
    pub_cycles_destroy(&cycles);
    cv_sock_destroy(&rep);
    cv_sock_destroy(&pub);
    pub_shards_destroy(&shards);
    cv_bus_destroy(&bus);
    cv_metrics_destroy(&metrics);
    cv_auth_destroy(&keys);
    return status;
}
