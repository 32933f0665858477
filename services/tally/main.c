/* canvass-tally: one shard of the vote store (DESIGN A1, A4, B1, B3).
 *
 * main() reads the config table, then either runs an offline tool (--check,
 * --dump-votes; audit.c) or serves.  Serving opens the shard store
 * (shard.c), binds a ROUTER socket and loops: each turn waits for one
 * message, drains up to --batch-max messages without waiting, applies every
 * CmdBatch of the drain in one write transaction, and only after that commit
 * sends each TallyReply to its peer's routing id.  CloseCycle and
 * StandingsQuery requests of the drain are answered after the commit, so
 * they see it.  SIGTERM / SIGINT end the loop after the turn in progress;
 * what is then already queued on the socket is still served before the
 * store is closed and the process exits 0.
 */
#include "audit.h"
#include "cv_bus.h"
#include "cv_codec.h"
#include "cv_config.h"
#include "cv_err.h"
#include "cv_log.h"
#include "cv_store.h"
#include "shard.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* ---- configuration --------------------------------------------------------- */

static long opt_shard, opt_shards, opt_batch_max, opt_map_mib;
static char *opt_bind, *opt_data, *opt_durability, *opt_log_level;
static int opt_check, opt_dump_votes;

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
    {"log-level", CV_CFG_STR, "info", 0, 0, &opt_log_level, "debug, info, warn or error"},
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
    cv_shard_job_t *jobs;   /* the drain's CmdBatches */
    size_t *job_msg;        /* jobs[j] came from msgs[job_msg[j]] */
} server_t;

static volatile sig_atomic_t stop_signal;

static void on_stop_signal(int sig)
{
    stop_signal = sig;
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

/* Answers a CloseCycle or StandingsQuery, after the turn's group commit. */
static void answer_standings(server_t *sv, const msg_t *m)
{
    const Canvass__V1__TallyRequest *req = m->req;
    int rc;
    if (req->op_case == CANVASS__V1__TALLY_REQUEST__OP_CLOSE &&
        (rc = cv_shard_close_cycle(sv->shard, req->close->cycle)) < 0) {
        reply_error(sv, m, req->corr, CV_ST_INTERNAL, "closing cycle %llu failed: %s",
                    (unsigned long long)req->close->cycle, cv_strerror(rc));
        return;
    }
    cv_standings_t *st = NULL;
    if ((rc = cv_shard_standings(sv->shard, &st)) < 0) {
        reply_error(sv, m, req->corr, CV_ST_INTERNAL, "reading the standings failed: %s",
                    cv_strerror(rc));
        return;
    }
    Canvass__V1__TallyReply r = CANVASS__V1__TALLY_REPLY__INIT;
    r.corr = req->corr;
    r.result_case = CANVASS__V1__TALLY_REPLY__RESULT_STANDINGS;
    r.standings = (Canvass__V1__Standings *)cv_standings_msg(st);
    send_reply(sv, m, &r);
    cv_log(CV_LOG_DEBUG, "msg=\"standings sent\" corr=%llu features=%zu cycle=%llu",
           (unsigned long long)req->corr, r.standings->n_features,
           (unsigned long long)r.standings->cycle);
    cv_standings_destroy(&st);
}

/* Commits the drain's CmdBatches as one group, then acknowledges each. */
static void commit_group(server_t *sv, size_t njobs)
{
    uint64_t t0 = monotonic_us();
    int rc = cv_shard_apply(sv->shard, sv->jobs, njobs);
    uint64_t t1 = monotonic_us();
    size_t cmds = 0;
    for (size_t j = 0; j < njobs; j++) {
        cv_shard_job_t *job = &sv->jobs[j];
        const msg_t *m = &sv->msgs[sv->job_msg[j]];
        cmds += job->batch->n_cmds;
        if (rc == 0) {
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
        cv_shard_job_release(job);
    }
    if (rc < 0)
        cv_log(CV_LOG_ERROR, "msg=\"group commit failed\" requests=%zu cmds=%zu err=\"%s\"",
               njobs, cmds, cv_strerror(rc));
    else
        cv_log(CV_LOG_DEBUG, "msg=\"group committed\" requests=%zu cmds=%zu commit_us=%llu",
               njobs, cmds, (unsigned long long)(t1 - t0));
}

/* Decodes one drained message: a CmdBatch joins the group, anything that
 * cannot be served is answered at once. */
static void classify(server_t *sv, size_t i, size_t *njobs)
{
    msg_t *m = &sv->msgs[i];
    if (m->parts.n != 2) {
        reply_error(sv, m, 0, CV_ST_INTERNAL, "a TallyRequest is one frame, got %d",
                    m->parts.n - 1);
        return;
    }
    m->req = canvass__v1__tally_request__unpack(NULL, m->parts.size[1], m->parts.data[1]);
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
    case CANVASS__V1__TALLY_REQUEST__OP_CLOSE:
    case CANVASS__V1__TALLY_REQUEST__OP_STANDINGS:
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
        if (m->req && (m->req->op_case == CANVASS__V1__TALLY_REQUEST__OP_CLOSE ||
                       m->req->op_case == CANVASS__V1__TALLY_REQUEST__OP_STANDINGS))
            answer_standings(sv, m);
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

    int status = 1;
    cv_bus_t *bus = cv_bus_new();
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

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal; /* no SA_RESTART: the wait must wake */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    cv_log(CV_LOG_INFO,
           "msg=started bind=%s data=%s shards=%ld cycle=%llu durability=%s batch_max=%zu "
           "map_bytes=%zu",
           opt_bind, opt_data, opt_shards, (unsigned long long)cv_shard_cycle(sv.shard),
           opt_durability, sv.batch_max, (size_t)opt_map_mib << 20);
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
    return serve((cv_durability_t)durability);
}
