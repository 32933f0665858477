/* canvass-loadgen: load generator and benchmark client for the client
 * protocol (DESIGN A4).
 *
 * It opens --connections connections to ingest, keeps --depth requests in
 * flight on each, and sends a Zipf-distributed stream of votes (workload.c)
 * until --votes have been sent or --duration has passed, then waits for
 * every reply (run.c, conn.c).  With --setup (the default) it first creates
 * the --features features it votes on through the same protocol.  It prints
 * acknowledged votes per second, latency percentiles and counts by status
 * (report.c), and with --verify (the default) checks that the cluster's live
 * standings of its features equal its own record of acknowledged votes
 * (verify.c), so a benchmark cannot report votes that were not stored.
 *
 * With --target redis or postgres it sends the same stream, with the same
 * connections and depth, to a Redis or PostgreSQL peer doing the same
 * deduplicated vote (backend.h), and verifies against that store's counters.
 *
 * Exit status: 0 when the run completed and verified, 1 when it failed or
 * the verification found a difference, 2 for bad options.
 */
#include "backend.h"
#include "cv_config.h"
#include "cv_err.h"
#include "cv_log.h"
#include "cv_validate.h"
#include "report.h"
#include "run.h"
#include "verify.h"
#include "workload.h"

#include <signal.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *opt_target, *opt_server, *opt_feature_file, *opt_report, *opt_publish, *opt_app_key,
    *opt_log_level, *opt_curve_key, *opt_curve_server;
static long opt_connections, opt_depth, opt_votes, opt_users, opt_features, opt_seed,
    opt_stall, opt_verify_timeout;
static double opt_duration, opt_zipf, opt_retract_share, opt_down_share, opt_rate;
static int opt_setup, opt_verify, opt_quiet;

static cv_config_opt_t opts[] = {
    {"target", CV_CFG_STR, "canvass", 0, 0, &opt_target,
     "what to load: canvass, or the peers redis or postgres"},
    {"server", CV_CFG_STR, NULL, 0, 0, &opt_server,
     "server address (default: canvass 127.0.0.1:7700 (ingest), redis 127.0.0.1:6379, "
     "postgres \"host=127.0.0.1 port=5432\" or any libpq connection string)"},
    {"connections", CV_CFG_INT, "50", 1, 10000, &opt_connections, "client connections"},
    {"depth", CV_CFG_INT, "32", 1, 4096, &opt_depth, "requests in flight per connection"},
    {"votes", CV_CFG_INT, "100000", 1, 1000000000000L, &opt_votes,
     "votes to send (retries not counted)"},
    {"duration", CV_CFG_DOUBLE, "0", 0, 0, &opt_duration,
     "seconds to send votes for, instead of --votes (0 = use --votes)"},
    {"rate", CV_CFG_DOUBLE, "0", 0, 0, &opt_rate,
     "new votes offered per second, paced (0 = as fast as they are acknowledged)"},
    {"users", CV_CFG_INT, "100000", 1, 4294967295L, &opt_users, "distinct voters, drawn uniformly"},
    {"features", CV_CFG_INT, "1000", 1, 10000000, &opt_features,
     "features voted on (with --setup=off, the feature file decides)"},
    {"zipf", CV_CFG_DOUBLE, "1.1", 0, 0, &opt_zipf,
     "exponent of feature popularity (0 = uniform)"},
    {"retract-share", CV_CFG_DOUBLE, "0.05", 0, 0, &opt_retract_share,
     "share of votes that retract (value 0)"},
    {"down-share", CV_CFG_DOUBLE, "0.15", 0, 0, &opt_down_share,
     "share of votes that are down votes (-1)"},
    {"seed", CV_CFG_INT, "1", 0, 0, &opt_seed, "random seed of the vote stream"},
    {"setup", CV_CFG_BOOL, "on", 0, 0, &opt_setup,
     "create the features first (--setup=off: read ids from --feature-file)"},
    {"feature-file", CV_CFG_STR, NULL, 0, 0, &opt_feature_file,
     "feature ids, one a line, for --setup=off"},
    {"report", CV_CFG_STR, NULL, 0, 0, &opt_report, "also write the report as JSON to this file"},
    {"verify", CV_CFG_BOOL, "on", 0, 0, &opt_verify,
     "compare the store's counters with what was acknowledged (needs --setup)"},
    {"publish", CV_CFG_STR, "127.0.0.1:7721", 0, 0, &opt_publish,
     "publish release-manager endpoint for --verify of canvass, host:port"},
    {"verify-timeout", CV_CFG_INT, "30", 1, 3600, &opt_verify_timeout,
     "seconds to wait for the live list"},
    {"app-key", CV_CFG_STR, NULL, 0, 0, &opt_app_key,
     "app key for the Hello and the admin query, when the cluster uses keys"},
    {"curve-key", CV_CFG_STR, NULL, 0, 0, &opt_curve_key,
     "CURVE key pair file for --verify's ZeroMQ query (canvass keygen), when the cluster uses "
     "CURVE"},
    {"curve-server", CV_CFG_STR, NULL, 0, 0, &opt_curve_server,
     "publish's CURVE public key (a .pub file or 40 Z85 characters)"},
    {"stall-timeout", CV_CFG_INT, "30", 1, 86400, &opt_stall,
     "give up after this many seconds without a final reply"},
    {"quiet", CV_CFG_BOOL, "off", 0, 0, &opt_quiet, "no progress line, only errors logged"},
    {"log-level", CV_CFG_STR, "warn", 0, 0, &opt_log_level, "debug, info, warn or error"},
    {0}};

/* Reads feature ids, one a line (blank lines and lines starting with '#'
 * are skipped), into a new workload-sized array.  Returns the count, or -1
 * after saying why. */
static long read_feature_file(const char *path, char ***ids_out)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "canvass-loadgen: cannot open --feature-file %s: %m\n", path);
        return -1;
    }
    char **ids = NULL, *line = NULL;
    size_t n = 0, cap = 0, linecap = 0;
    ssize_t len;
    long lineno = 0;
    while ((len = getline(&line, &linecap, f)) >= 0) {
        lineno++;
        while (len > 0 && strchr(" \t\r\n", line[len - 1]))
            line[--len] = '\0';
        if (len == 0 || line[0] == '#')
            continue;
        if (!cv_feature_id_valid(line, (size_t)len)) {
            fprintf(stderr, "canvass-loadgen: %s:%ld: '%.80s' is not a feature id\n", path,
                    lineno, line);
            goto fail;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char **p = realloc(ids, cap * sizeof *p);
            if (!p)
                goto nomem;
            ids = p;
        }
        if (!(ids[n] = strdup(line)))
            goto nomem;
        n++;
    }
    if (n == 0) {
        fprintf(stderr, "canvass-loadgen: --feature-file %s holds no feature ids\n", path);
        goto fail;
    }
    free(line);
    fclose(f);
    *ids_out = ids;
    return (long)n;
nomem:
    fprintf(stderr, "canvass-loadgen: out of memory reading %s\n", path);
fail:
    while (n > 0)
        free(ids[--n]);
    free(ids);
    free(line);
    fclose(f);
    return -1;
}

/* Checks what the table cannot.  Returns 0, or -1 after saying why. */
static int check_options(void)
{
    const char *why = NULL;
    if (!cv_backend_find(opt_target))
        why = "--target must be canvass, redis or postgres";
    else if (strcmp(opt_target, "canvass") != 0 && *opt_app_key)
        why = "--app-key is only for --target canvass";
    else if (!(opt_duration >= 0) || !isfinite(opt_duration))
        why = "--duration must be 0 or a number of seconds";
    else if (!(opt_rate >= 0) || !isfinite(opt_rate))
        why = "--rate must be 0 or a number of votes per second";
    else if (!(opt_zipf >= 0) || !isfinite(opt_zipf))
        why = "--zipf must be 0 or more";
    else if (!(opt_retract_share >= 0 && opt_down_share >= 0 &&
               opt_retract_share + opt_down_share <= 1))
        why = "--retract-share and --down-share must be >= 0 and add up to at most 1";
    else if (opt_seed < 0)
        why = "--seed must be 0 or more";
    else if (!opt_setup && !*opt_feature_file)
        why = "--setup=off needs --feature-file";
    else if (opt_setup && *opt_feature_file)
        why = "--feature-file is only read with --setup=off";
    else if (opt_verify && !opt_setup)
        why = "--verify needs --setup: features that existed before the run carry votes this "
              "run did not make, so their counts cannot be checked (use --verify=off)";
    else if (strcmp(opt_target, "canvass") != 0 && *opt_curve_key)
        why = "--curve-key is only for --target canvass";
    else if (cv_log_level_parse(opt_log_level) < 0)
        why = "--log-level must be debug, info, warn or error";
    if (why)
        fprintf(stderr, "canvass-loadgen: %s\n", why);
    return why ? -1 : 0;
}

int main(int argc, char **argv)
{
    int npos;
    int r = cv_config_parse("canvass-loadgen", "canvass-loadgen [options]", opts, argc, argv, 1,
                            &npos);
    if (r != 0)
        return r > 0 ? 0 : 2;
    if (npos) {
        fprintf(stderr, "canvass-loadgen: unexpected argument '%s' (see --help)\n", argv[1]);
        return 2;
    }
    if (check_options() < 0)
        return 2;
    cv_log_init("loadgen", -1, opt_quiet ? CV_LOG_ERROR : cv_log_level_parse(opt_log_level));
    const cv_backend_t *be = cv_backend_find(opt_target);
    const char *server = *opt_server ? opt_server : be->default_server;
    char why[300];
    cv_verify_opts_t vo = {opt_publish, opt_app_key, opt_verify_timeout * 1000, opt_curve_key,
                           opt_curve_server};
    if (opt_verify && cv_verify_curve_check(&vo, why, sizeof why) < 0) {
        fprintf(stderr, "canvass-loadgen: %s\n", why);
        return 2;
    }
    if (be->prepare && be->prepare(server, why, sizeof why) < 0) {
        fprintf(stderr, "canvass-loadgen: %s\n", why);
        return 1;
    }

    char **ids = NULL;
    long nids = 0;
    if (!opt_setup && (nids = read_feature_file(opt_feature_file, &ids)) < 0)
        return 2;
    cv_workload_opts_t wo = {
        .features = (size_t)(opt_setup ? opt_features : nids),
        .users = (uint32_t)opt_users,
        .zipf = opt_zipf,
        .retract_share = opt_retract_share,
        .down_share = opt_down_share,
        .seed = (uint64_t)opt_seed,
    };
    cv_workload_t *w = cv_workload_new(&wo);
    for (long i = 0; w && i < nids; i++)
        if (cv_workload_set_feature_id(w, (size_t)i, ids[i]) < 0)
            cv_workload_destroy(&w);
    for (long i = 0; i < nids; i++)
        free(ids[i]);
    free(ids);
    if (!w) {
        fprintf(stderr, "canvass-loadgen: cannot set up the workload (out of memory?)\n");
        return 1;
    }

    static cv_report_t rep; /* static: the histogram is 58 KiB */
    cv_report_init(&rep);
    rep.server = server;
    rep.connections = opt_connections;
    rep.depth = opt_depth;
    rep.features = (long)wo.features;
    rep.users = opt_users;
    rep.votes_target = opt_duration > 0 ? 0 : opt_votes;
    rep.duration_s = opt_duration;
    rep.zipf = opt_zipf;
    rep.retract_share = opt_retract_share;
    rep.down_share = opt_down_share;
    rep.seed = (uint64_t)opt_seed;
    rep.rate = opt_rate;

    cv_run_opts_t ro = {
        .backend = be,
        .server = server,
        .connections = (unsigned)opt_connections,
        .depth = (unsigned)opt_depth,
        .votes = opt_votes,
        .duration_s = opt_duration,
        .setup = opt_setup,
        .app_key = opt_app_key,
        .progress = !opt_quiet && isatty(STDERR_FILENO),
        .stall_s = (double)opt_stall,
        .rate = opt_rate,
    };
    /* A server that dies mid-write (the tests kill ingest under load) must
     * be a lost connection to retry on, not the end of the run. */
    signal(SIGPIPE, SIG_IGN);
    int failed = cv_run(&ro, w, &rep) < 0;
    if (!failed && opt_verify) {
        failed = be->verify(server, &vo, w, &rep, stdout) < 0;
    }
    cv_report_print(&rep, stdout);
    fflush(stdout);
    if (rep.failure[0])
        fprintf(stderr, "canvass-loadgen: %s\n", rep.failure);
    if (*opt_report && cv_report_write_json(&rep, opt_report) < 0) {
        fprintf(stderr, "canvass-loadgen: cannot write the report to %s\n", opt_report);
        failed = 1;
    }
    cv_workload_destroy(&w);
    return failed ? 1 : 0;
}
