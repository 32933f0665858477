/* admin: talking to publish, and the commands `ranked`, `cycles` and
 * `cycle close`.
 *
 * Every release-manager command sends AdminRequests to publish's REP socket
 * (DESIGN A7, port P+21) over a ZeroMQ REQ socket from cv_bus and waits a
 * bounded time for each AdminReply (cli.h: cv_cli_admin_*).  The socket lives
 * as long as the command, so a publish that never answers costs nothing
 * beyond the timeout.  Replies are printed through format.c (and, after a
 * ranked table, the biggest movers through feature.c); a non-OK status
 * becomes "canvass: STATUS: error text" on stderr and exit status 1.
 */
#include "cli.h"
#include "client.h"
#include "cv_bus.h"
#include "cv_codec.h"
#include "cv_config.h"
#include "cv_err.h"
#include "feature.h"
#include "format.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The options every admin command shares (cli.h). */
char *cv_cli_publish, *cv_cli_app_key, *cv_cli_curve_key, *cv_cli_curve_server;
long cv_cli_timeout;

/* ---- exchanges with publish ---------------------------------------------- */

struct cv_cli_admin {
    cv_bus_t *bus;
    cv_sock_t *sock; /* REQ: strictly send, receive, send, ... */
    char endpoint[300];
};

/* "host:port" becomes "tcp://host:port"; an endpoint with a scheme is kept.
 * Returns 0 or CV_EINVAL (after saying why). */
static int publish_endpoint(const char *publish, char *out, size_t cap)
{
    char host[256], port[16];
    if (strstr(publish, "://")) {
        if (strncmp(publish, "tcp://", 6) == 0 &&
            cv_client_addr_split(publish, host, sizeof host, port, sizeof port) < 0)
            goto bad;
        snprintf(out, cap, "%s", publish);
        return 0;
    }
    if (cv_client_addr_split(publish, host, sizeof host, port, sizeof port) < 0)
        goto bad;
    snprintf(out, cap, "tcp://%s", publish);
    return 0;
bad:
    cv_cli_fail("bad publish address '%s' (want host:port or tcp://host:port)", publish);
    return CV_EINVAL;
}

int cv_cli_admin_new(cv_cli_admin_t **out)
{
    *out = NULL;
    cv_cli_admin_t *a = calloc(1, sizeof *a);
    if (!a) {
        cv_cli_fail("out of memory");
        return CV_CLI_FAIL;
    }
    if (publish_endpoint(cv_cli_publish, a->endpoint, sizeof a->endpoint) < 0) {
        free(a);
        return CV_CLI_USAGE;
    }
    a->bus = cv_bus_new();
    char err[512];
    if (a->bus && cv_bus_curve_setup(a->bus, cv_cli_curve_key, cv_cli_curve_server, NULL, err,
                                     sizeof err) < 0) {
        cv_cli_fail("%s", err);
        cv_cli_admin_destroy(&a);
        return CV_CLI_USAGE;
    }
    a->sock = a->bus ? cv_sock_new(a->bus, CV_SOCK_REQ) : NULL;
    if (!a->sock) {
        cv_cli_fail("cannot set up a ZeroMQ socket (out of memory?)");
        cv_cli_admin_destroy(&a);
        return CV_CLI_FAIL;
    }
    if (cv_sock_connect(a->sock, a->endpoint) < 0) {
        cv_cli_fail("cannot connect to publish at %s", a->endpoint);
        cv_cli_admin_destroy(&a);
        return CV_CLI_FAIL;
    }
    *out = a;
    return CV_CLI_OK;
}

void cv_cli_admin_destroy(cv_cli_admin_t **a_p)
{
    if (!a_p || !*a_p)
        return;
    cv_cli_admin_t *a = *a_p;
    cv_sock_destroy(&a->sock);
    cv_bus_destroy(&a->bus);
    free(a);
    *a_p = NULL;
}

int cv_cli_admin_call(cv_cli_admin_t *a, Canvass__V1__AdminRequest *req,
                      Canvass__V1__AdminReply__ResultCase want, const char *what,
                      Canvass__V1__AdminReply **reply)
{
    *reply = NULL;
    req->app_key = cv_cli_app_key;
    size_t len;
    uint8_t *buf = cv_codec_pack(&req->base, &len);
    int rc = CV_CLI_FAIL;
    cv_parts_t parts = {0};
    if (!buf) {
        cv_cli_fail("out of memory");
        return CV_CLI_FAIL;
    }
    const void *data[1] = {buf};
    if (cv_sock_send(a->sock, 1, data, &len, 0) < 0) {
        cv_cli_fail("cannot send to publish at %s", a->endpoint);
        goto out;
    }
    int r = cv_sock_recv(a->sock, &parts, cv_cli_timeout * 1000);
    if (r == CV_EAGAIN) {
        cv_cli_fail("publish at %s did not answer within %ld s", a->endpoint, cv_cli_timeout);
        goto out;
    }
    if (r < 0 || parts.n != 1) {
        cv_cli_fail("publish at %s sent a malformed reply (%s)", a->endpoint,
                    r < 0 ? cv_strerror(r) : "not one frame");
        goto out;
    }
    Canvass__V1__AdminReply *rep =
        canvass__v1__admin_reply__unpack(NULL, parts.size[0], parts.data[0]);
    if (!rep) {
        cv_cli_fail("publish at %s sent a reply that does not decode", a->endpoint);
        goto out;
    }
    if (rep->status != CV_ST_OK) {
        cv_cli_fail("%s: %s", cv_status_name(rep->status),
                    *rep->error ? rep->error : "(no reason given)");
        canvass__v1__admin_reply__free_unpacked(rep, NULL);
        goto out;
    }
    if (rep->result_case != want) {
        cv_cli_fail("publish answered without %s", what);
        canvass__v1__admin_reply__free_unpacked(rep, NULL);
        goto out;
    }
    *reply = rep;
    rc = CV_CLI_OK;
out:
    cv_parts_free(&parts);
    free(buf);
    return rc;
}

int cv_cli_admin_once(Canvass__V1__AdminRequest *req, Canvass__V1__AdminReply__ResultCase want,
                      const char *what, Canvass__V1__AdminReply **reply)
{
    cv_cli_admin_t *a;
    *reply = NULL;
    int rc = cv_cli_admin_new(&a);
    if (rc != CV_CLI_OK)
        return rc;
    rc = cv_cli_admin_call(a, req, want, what, reply);
    cv_cli_admin_destroy(&a);
    return rc;
}

int cv_cli_print_result(int rc)
{
    if (fflush(stdout) == EOF || rc == CV_EIO) {
        cv_cli_fail("cannot write the output");
        return CV_CLI_FAIL;
    }
    if (rc < 0) {
        cv_cli_fail("cannot format the output: %s", cv_strerror(rc));
        return CV_CLI_FAIL;
    }
    return CV_CLI_OK;
}

int cv_cli_print_json(char *json)
{
    if (!json)
        return cv_cli_print_result(CV_ENOMEM);
    int rc = fputs(json, stdout) == EOF || putchar('\n') == EOF ? CV_EIO : 0;
    free(json);
    return cv_cli_print_result(rc);
}

/* ---- canvass ranked ------------------------------------------------------- */

static int cycle_arg_valid(const char *s)
{
    if (!strcmp(s, "latest") || !strcmp(s, "live"))
        return 1;
    if (!*s || strlen(s) > 19)
        return 0;
    for (const char *p = s; *p; p++)
        if (!isdigit((unsigned char)*p))
            return 0;
    return strtoull(s, NULL, 10) >= 1;
}

int cv_cli_ranked(int argc, char **argv)
{
    static char *cycle, *order, *format;
    static long limit;
    cv_config_opt_t opts[] = {
        {"cycle", CV_CFG_STR, "latest", 0, 0, &cycle, "cycle number, latest or live"},
        {"limit", CV_CFG_INT, "0", 0, 1000000, &limit, "at most this many entries (0 = all)"},
        {"order", CV_CFG_STR, "score", 0, 0, &order, "score, trending or wilson"},
        {"format", CV_CFG_STR, "table", 0, 0, &format, "table, json or csv"},
        CV_CLI_ADMIN_OPTS,
        {0}};
    const char *usage = "canvass ranked [--cycle N|latest|live] [--limit K] "
                        "[--order score|trending|wilson] [--format table|json|csv]";
    int npos;
    int r = cv_config_parse("canvass", usage, opts, argc, argv, 2, &npos);
    if (r != 0)
        return r > 0 ? CV_CLI_OK : CV_CLI_USAGE;
    if (npos > 0) {
        cv_cli_fail("ranked takes no arguments, got '%s' (see canvass ranked --help)", argv[2]);
        return CV_CLI_USAGE;
    }
    int fmt = cv_format_parse(format);
    if (fmt < 0) {
        cv_cli_fail("--format must be table, json or csv, got '%s'", format);
        return CV_CLI_USAGE;
    }
    if (!cycle_arg_valid(cycle)) {
        cv_cli_fail("--cycle must be a cycle number, latest or live, got '%s'", cycle);
        return CV_CLI_USAGE;
    }
    if (strcmp(order, "score") && strcmp(order, "trending") && strcmp(order, "wilson")) {
        cv_cli_fail("--order must be score, trending or wilson, got '%s'", order);
        return CV_CLI_USAGE;
    }

    Canvass__V1__RankedQuery q = CANVASS__V1__RANKED_QUERY__INIT;
    q.cycle = cycle;
    q.limit = (uint32_t)limit;
    q.order = order;
    Canvass__V1__AdminRequest req = CANVASS__V1__ADMIN_REQUEST__INIT;
    req.op_case = CANVASS__V1__ADMIN_REQUEST__OP_RANKED;
    req.ranked = &q;
    Canvass__V1__AdminReply *rep;
    if ((r = cv_cli_admin_once(&req, CANVASS__V1__ADMIN_REPLY__RESULT_RANKED, "a ranked list",
                               &rep)) != CV_CLI_OK)
        return r;
    r = cv_format_ranked(stdout, rep->ranked, (cv_format_t)fmt);
    if (r == 0 && fmt == CV_FMT_TABLE)
        r = cv_feature_print_movers(stdout, rep->ranked);
    r = cv_cli_print_result(r);
    canvass__v1__admin_reply__free_unpacked(rep, NULL);
    return r;
}

/* ---- canvass cycles ------------------------------------------------------- */

int cv_cli_cycles(int argc, char **argv)
{
    static char *format;
    cv_config_opt_t opts[] = {
        {"format", CV_CFG_STR, "table", 0, 0, &format, "table or json"}, CV_CLI_ADMIN_OPTS, {0}};
    int npos;
    int r = cv_config_parse("canvass", "canvass cycles [--format table|json]", opts, argc, argv, 2,
                            &npos);
    if (r != 0)
        return r > 0 ? CV_CLI_OK : CV_CLI_USAGE;
    if (npos > 0) {
        cv_cli_fail("cycles takes no arguments, got '%s' (see canvass cycles --help)", argv[2]);
        return CV_CLI_USAGE;
    }
    int fmt = cv_format_parse(format);
    if (fmt != CV_FMT_TABLE && fmt != CV_FMT_JSON) {
        cv_cli_fail("--format must be table or json, got '%s'", format);
        return CV_CLI_USAGE;
    }

    Canvass__V1__CyclesQuery q = CANVASS__V1__CYCLES_QUERY__INIT;
    Canvass__V1__AdminRequest req = CANVASS__V1__ADMIN_REQUEST__INIT;
    req.op_case = CANVASS__V1__ADMIN_REQUEST__OP_CYCLES;
    req.cycles = &q;
    Canvass__V1__AdminReply *rep;
    if ((r = cv_cli_admin_once(&req, CANVASS__V1__ADMIN_REPLY__RESULT_CYCLES, "a cycle list",
                               &rep)) != CV_CLI_OK)
        return r;
    r = cv_cli_print_result(cv_format_cycles(stdout, rep->cycles, (cv_format_t)fmt));
    canvass__v1__admin_reply__free_unpacked(rep, NULL);
    return r;
}

/* ---- canvass cycle close -------------------------------------------------- */

int cv_cli_cycle(int argc, char **argv)
{
    cv_config_opt_t opts[] = {CV_CLI_ADMIN_OPTS, {0}};
    int npos;
    int r = cv_config_parse("canvass", "canvass cycle close", opts, argc, argv, 2, &npos);
    if (r != 0)
        return r > 0 ? CV_CLI_OK : CV_CLI_USAGE;
    if (npos != 1 || strcmp(argv[2], "close") != 0) {
        cv_cli_fail("usage: canvass cycle close");
        return CV_CLI_USAGE;
    }

    Canvass__V1__CloseNow q = CANVASS__V1__CLOSE_NOW__INIT;
    Canvass__V1__AdminRequest req = CANVASS__V1__ADMIN_REQUEST__INIT;
    req.op_case = CANVASS__V1__ADMIN_REQUEST__OP_CLOSE;
    req.close = &q;
    Canvass__V1__AdminReply *rep;
    if ((r = cv_cli_admin_once(&req, CANVASS__V1__ADMIN_REPLY__RESULT_CLOSED, "the closed cycle",
                               &rep)) != CV_CLI_OK)
        return r;
    const Canvass__V1__CycleInfo *c = rep->closed;
    char when[CV_TIME_CAP];
    cv_format_time_human(c->closed_at_ms, 1, when);
    printf("closed cycle %llu at %s: %u ranked feature%s, %llu vote%s; cycle %llu is open\n",
           (unsigned long long)c->cycle, when, c->entries, c->entries == 1 ? "" : "s",
           (unsigned long long)c->total_votes, c->total_votes == 1 ? "" : "s",
           (unsigned long long)c->cycle + 1);
    canvass__v1__admin_reply__free_unpacked(rep, NULL);
    return cv_cli_print_result(0);
}
