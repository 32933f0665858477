/* main: the `canvass` command-line tool, and its client-side commands.
 *
 * `canvass <command> [options] [arguments]`: main() picks the command from a
 * table and hands it argv; each command parses its own options with one
 * cv_config table (so `canvass <command> --help` lists them, with their
 * CANVASS_* environment variables) and returns the exit status (cli.h).
 * The client commands that speak the A4 protocol to an ingest node, submit,
 * vote and ping, live here; the release-manager commands are in admin.c
 * (ranked, cycles, cycle close), manage.c (feature ..., features) and
 * export.c, and `up` in up.c.
 */
#include "cli.h"
#include "client.h"
#include "cv_codec.h"
#include "cv_config.h"
#include "cv_err.h"
#include "cv_log.h"
#include "cv_validate.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- talking to ingest ---------------------------------------------------- */

static char *opt_server, *opt_app_key;
static long opt_timeout;

/* clang-format off */
#define CLIENT_OPTS                                                                  \
    {"server", CV_CFG_STR, CV_CLI_DEFAULT_SERVER, 0, 0, &opt_server,                 \
     "ingest address for clients (host:port)"},                                      \
    {"timeout", CV_CFG_INT, "10", 1, 3600, &opt_timeout,                             \
     "seconds to wait for an answer"},                                               \
    {"app-key", CV_CFG_STR, NULL, 0, 0, &opt_app_key,                                \
     "app key sent in a Hello first, when the cluster uses app keys"}
/* clang-format on */

/* Connects and, with an app key, introduces this client.  Returns the
 * client or NULL after printing why. */
static cv_client_t *client_connect(void)
{
    char err[512];
    cv_client_t *c;
    if (cv_client_open(&c, opt_server, opt_timeout * 1000, err, sizeof err) < 0) {
        cv_cli_fail("%s", err);
        return NULL;
    }
    if (!*opt_app_key)
        return c;
    Canvass__V1__Hello hello = CANVASS__V1__HELLO__INIT;
    hello.app_key = opt_app_key;
    hello.client_name = "canvass-cli";
    hello.protocol_version = 1;
    Canvass__V1__Request req = CANVASS__V1__REQUEST__INIT;
    req.request_id = 1;
    req.op_case = CANVASS__V1__REQUEST__OP_HELLO;
    req.hello = &hello;
    Canvass__V1__Reply *rep;
    if (cv_client_call(c, &req, &rep, opt_timeout * 1000, err, sizeof err) < 0) {
        cv_cli_fail("%s", err);
        cv_client_destroy(&c);
        return NULL;
    }
    if (rep->status != CV_ST_OK) {
        cv_cli_fail("%s: %s", cv_status_name(rep->status), rep->error);
        cv_client_destroy(&c);
    }
    canvass__v1__reply__free_unpacked(rep, NULL);
    return c;
}

/* Sends one request (id 2: 1 is the Hello's) and waits for its reply.
 * Returns the reply when it is OK and has the `want` result; otherwise
 * prints why and returns NULL.  The caller frees the reply. */
static Canvass__V1__Reply *client_request(Canvass__V1__Request *req,
                                          Canvass__V1__Reply__ResultCase want)
{
    char err[512];
    cv_client_t *c = client_connect();
    if (!c)
        return NULL;
    req->request_id = 2;
    Canvass__V1__Reply *rep = NULL;
    if (cv_client_call(c, req, &rep, opt_timeout * 1000, err, sizeof err) < 0) {
        cv_cli_fail("%s", err);
    } else if (rep->status != CV_ST_OK) {
        cv_cli_fail("%s: %s", cv_status_name(rep->status),
                    *rep->error ? rep->error : "(no reason given)");
        canvass__v1__reply__free_unpacked(rep, NULL);
        rep = NULL;
    } else if (rep->result_case != want) {
        cv_cli_fail("%s answered OK but without the expected result", opt_server);
        canvass__v1__reply__free_unpacked(rep, NULL);
        rep = NULL;
    }
    cv_client_destroy(&c);
    return rep;
}

/* Parses the command's options (argv[2..]); returns -1 to go on, or the exit
 * status when --help was printed or the options were bad. */
static int parse_opts(const char *usage, cv_config_opt_t *opts, int argc, char **argv, int *npos)
{
    int r = cv_config_parse("canvass", usage, opts, argc, argv, 2, npos);
    return r == 0 ? -1 : r > 0 ? CV_CLI_OK : CV_CLI_USAGE;
}

/* ---- canvass submit ------------------------------------------------------- */

/* cv_config keeps one value per option; --tag may be given up to 8 times, so
 * its occurrences are taken out of argv first.  Returns the new argc, or -1
 * after printing why. */
static int take_tags(int argc, char **argv, const char **tags, int *ntags)
{
    int out = 2;
    *ntags = 0;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *val = NULL;
        if (!strcmp(a, "--")) { /* the rest are positionals: keep them as they are */
            while (i < argc)
                argv[out++] = argv[i++];
            break;
        }
        if (!strcmp(a, "--tag")) {
            if (i + 1 >= argc) {
                cv_cli_fail("option --tag needs a value");
                return -1;
            }
            val = argv[++i];
        } else if (!strncmp(a, "--tag=", 6)) {
            val = a + 6;
        } else {
            argv[out++] = argv[i];
            continue;
        }
        if (*ntags == CV_TAGS_MAX) {
            cv_cli_fail("at most %d tags are allowed", CV_TAGS_MAX);
            return -1;
        }
        tags[(*ntags)++] = val;
    }
    return out;
}

static long hex_decode(const char *hex, uint8_t *out, size_t cap);

int cv_cli_submit(int argc, char **argv)
{
    static char *user, *body, *env_tag, *token;
    const char *tags[CV_TAGS_MAX];
    int ntags, npos;
    cv_config_opt_t opts[] = {
        {"user", CV_CFG_STR, NULL, 0, 0, &user, "user id of the submitter (required)"},
        {"body", CV_CFG_STR, NULL, 0, 0, &body, "longer description"},
        {"tag", CV_CFG_STR, NULL, 0, 0, &env_tag, "a tag; repeat for more (at most 8)"},
        {"token", CV_CFG_STR, NULL, 0, 0, &token, "the submitter's signed user token, in hex (A9)"},
        CLIENT_OPTS,
        {0}};
    const char *usage =
        "canvass submit --user USER [--body TEXT] [--tag TAG]... [--token HEX] TITLE";
    if ((argc = take_tags(argc, argv, tags, &ntags)) < 0)
        return CV_CLI_USAGE;
    int r = parse_opts(usage, opts, argc, argv, &npos);
    if (r >= 0)
        return r;
    if (ntags == 0 && *env_tag) /* CANVASS_TAG: one tag from the environment */
        tags[ntags++] = env_tag;
    if (!*user) {
        cv_cli_fail("submit needs --user USER");
        return CV_CLI_USAGE;
    }
    if (npos != 1) {
        cv_cli_fail(npos ? "submit takes one title (quote it), got %d arguments"
                         : "submit needs a title",
                    npos);
        return CV_CLI_USAGE;
    }

    uint8_t tok[512];
    long toklen = hex_decode(token, tok, sizeof tok);
    if (toklen < 0) {
        cv_cli_fail("--token must be hex digits (at most %zu bytes)", sizeof tok);
        return CV_CLI_USAGE;
    }

    Canvass__V1__Submit s = CANVASS__V1__SUBMIT__INIT;
    s.user_id = user;
    s.user_token.data = tok;
    s.user_token.len = (size_t)toklen;
    s.title = argv[2];
    s.body = body;
    s.n_tags = (size_t)ntags;
    s.tags = (char **)tags;
    Canvass__V1__Request req = CANVASS__V1__REQUEST__INIT;
    req.op_case = CANVASS__V1__REQUEST__OP_SUBMIT;
    req.submit = &s;
    Canvass__V1__Reply *rep = client_request(&req, CANVASS__V1__REPLY__RESULT_SUBMITTED);
    if (!rep)
        return CV_CLI_FAIL;
    printf("%s\n", rep->submitted->feature_id);
    canvass__v1__reply__free_unpacked(rep, NULL);
    return fflush(stdout) == 0 ? CV_CLI_OK : CV_CLI_FAIL;
}

/* ---- canvass vote --------------------------------------------------------- */

/* "up" / "down" / "retract" (or +1 / -1 / 0) to a vote value; 2 if none. */
static int vote_value(const char *s)
{
    if (!strcmp(s, "up") || !strcmp(s, "+1") || !strcmp(s, "1"))
        return 1;
    if (!strcmp(s, "down") || !strcmp(s, "-1"))
        return -1;
    if (!strcmp(s, "retract") || !strcmp(s, "0"))
        return 0;
    return 2;
}

static int hex_nibble(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Hex text to bytes, for --token.  Returns the byte count or -1. */
static long hex_decode(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = strlen(hex);
    if (n % 2 || n / 2 > cap)
        return -1;
    for (size_t i = 0; i < n; i += 2) {
        int hi = hex_nibble(hex[i]), lo = hex_nibble(hex[i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i / 2] = (uint8_t)(hi << 4 | lo);
    }
    return (long)(n / 2);
}

int cv_cli_vote(int argc, char **argv)
{
    static char *user, *tier, *token;
    int npos;
    cv_config_opt_t opts[] = {
        {"user", CV_CFG_STR, NULL, 0, 0, &user, "user id of the voter (required)"},
        {"tier", CV_CFG_STR, "member", 0, 0, &tier, "member, core or honorary"},
        {"token", CV_CFG_STR, NULL, 0, 0, &token, "signed user token, in hex (A9)"},
        CLIENT_OPTS,
        {0}};
    const char *usage = "canvass vote --user USER [--tier member|core|honorary] "
                        "FEATURE_ID [up|down|retract]";
    int r = parse_opts(usage, opts, argc, argv, &npos);
    if (r >= 0)
        return r;
    if (!*user) {
        cv_cli_fail("vote needs --user USER");
        return CV_CLI_USAGE;
    }
    if (npos < 1 || npos > 2) {
        cv_cli_fail("usage: %s", usage);
        return CV_CLI_USAGE;
    }
    int value = npos == 2 ? vote_value(argv[3]) : 1;
    if (value == 2) {
        cv_cli_fail("a vote is up, down or retract, got '%s'", argv[3]);
        return CV_CLI_USAGE;
    }
    if (cv_tier_parse(tier) < 0) {
        cv_cli_fail("--tier must be member, core or honorary, got '%s'", tier);
        return CV_CLI_USAGE;
    }
    uint8_t tok[512];
    long toklen = hex_decode(token, tok, sizeof tok);
    if (toklen < 0) {
        cv_cli_fail("--token must be hex digits (at most %zu bytes)", sizeof tok);
        return CV_CLI_USAGE;
    }

    Canvass__V1__Vote v = CANVASS__V1__VOTE__INIT;
    v.user_id = user;
    v.feature_id = argv[2];
    v.value = value;
    /* Only a non-default tier goes on the wire: apps that may not assert
     * tiers can still send plain member votes. */
    v.tier = strcmp(tier, "member") ? tier : "";
    v.user_token.data = tok;
    v.user_token.len = (size_t)toklen;
    Canvass__V1__Request req = CANVASS__V1__REQUEST__INIT;
    req.op_case = CANVASS__V1__REQUEST__OP_VOTE;
    req.vote = &v;
    Canvass__V1__Reply *rep = client_request(&req, CANVASS__V1__REPLY__RESULT_VOTE_ACK);
    if (!rep)
        return CV_CLI_FAIL;
    const Canvass__V1__VoteAck *ack = rep->vote_ack;
    printf("ok %s %s cycle %llu", ack->feature_id, ack->changed ? "changed" : "unchanged",
           (unsigned long long)ack->cycle);
    if (*ack->feature_id && strcmp(ack->feature_id, argv[2]))
        printf(" (merged from %s)", argv[2]);
    putchar('\n');
    canvass__v1__reply__free_unpacked(rep, NULL);
    return fflush(stdout) == 0 ? CV_CLI_OK : CV_CLI_FAIL;
}

/* ---- canvass ping --------------------------------------------------------- */

int cv_cli_ping(int argc, char **argv)
{
    int npos;
    cv_config_opt_t opts[] = {CLIENT_OPTS, {0}};
    int r = parse_opts("canvass ping", opts, argc, argv, &npos);
    if (r >= 0)
        return r;
    if (npos) {
        cv_cli_fail("ping takes no arguments");
        return CV_CLI_USAGE;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    Canvass__V1__Ping p = CANVASS__V1__PING__INIT;
    p.nonce = (uint64_t)t0.tv_nsec ^ (uint64_t)t0.tv_sec << 30;
    Canvass__V1__Request req = CANVASS__V1__REQUEST__INIT;
    req.op_case = CANVASS__V1__REQUEST__OP_PING;
    req.ping = &p;
    Canvass__V1__Reply *rep = client_request(&req, CANVASS__V1__REPLY__RESULT_PONG);
    if (!rep)
        return CV_CLI_FAIL;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    int ok = rep->pong->nonce == p.nonce;
    canvass__v1__reply__free_unpacked(rep, NULL);
    if (!ok) {
        cv_cli_fail("%s answered the ping with another nonce", opt_server);
        return CV_CLI_FAIL;
    }
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    printf("pong from %s in %.1f ms\n", opt_server, ms);
    return fflush(stdout) == 0 ? CV_CLI_OK : CV_CLI_FAIL;
}

/* ---- dispatch ------------------------------------------------------------- */

/* One line per form in `canvass --help`; `feature` has four. */
static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *args, *what;
} commands[] = {
    {"up", cv_cli_up, "[--data DIR] [--shards N] [--port-base P]", "run a local cluster"},
    {"submit", cv_cli_submit, "--user U [--body B] [--tag T]... TITLE", "propose a feature"},
    {"vote", cv_cli_vote, "--user U [--tier T] ID [up|down|retract]", "vote on a feature"},
    {"ping", cv_cli_ping, "", "check that ingest answers"},
    {"ranked", cv_cli_ranked, "[--cycle N|latest|live] [--order O] [--format F]",
     "pull a ranked list"},
    {"cycles", cv_cli_cycles, "[--format table|json]", "list release cycles"},
    {"cycle", cv_cli_cycle, "close", "close the open cycle now"},
    {"features", cv_cli_features, "[--format table|json|csv]", "list every feature"},
    {"feature", cv_cli_feature, "show ID [--format text|json]",
     "show a feature, its history and ranks"},
    {"feature", cv_cli_feature, "status ID STATUS [--release NAME]",
     "set it: planned in_progress shipped declined open"},
    {"feature", cv_cli_feature, "merge SRC DST", "merge a duplicate into DST"},
    {"feature", cv_cli_feature, "voters ID [--all] [--format text|json|csv]",
     "list who voted, to tell them"},
    {"export", cv_cli_export, "--out DIR", "features, votes and lists as CSV/JSON"},
    {"keygen", cv_cli_keygen, "[--out DIR] [--name NAME]", "a CURVE key pair for encrypted ZeroMQ"},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *out)
{
    int wname = 0, wargs = 0;
    for (size_t i = 0; i < NCOMMANDS; i++) {
        int n = (int)strlen(commands[i].name), a = (int)strlen(commands[i].args);
        wname = n > wname ? n : wname;
        wargs = a > wargs ? a : wargs;
    }
    fputs("usage: canvass <command> [options] [arguments]\n\ncommands:\n", out);
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(out, "  %-*s %-*s  %s\n", wname, commands[i].name, wargs, commands[i].args,
                commands[i].what);
    fputs("\n`canvass <command> --help` lists a command's options and their CANVASS_*\n"
          "environment variables.  The client commands find ingest through --server or\n"
          "CANVASS_SERVER (default " CV_CLI_DEFAULT_SERVER "), the release-manager commands\n"
          "find publish through --publish or CANVASS_PUBLISH (default " CV_CLI_DEFAULT_PUBLISH
          ").\n",
          out);
}

int main(int argc, char **argv)
{
    /* The commands print their own one-line reasons; the common modules'
     * log lines would only repeat them.  `up` turns logging back on. */
    cv_log_init("canvass", -1, CV_LOG_ERROR + 1);
    signal(SIGPIPE, SIG_IGN); /* a server gone mid-write: a failed command, not a silent death */
    if (argc < 2) {
        usage(stderr);
        return CV_CLI_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return CV_CLI_OK;
    }
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].run(argc, argv);
    cv_cli_fail("unknown command '%s' (see canvass --help)", argv[1]);
    return CV_CLI_USAGE;
}
