/* cli: what the files of the `canvass` command-line tool share.
 *
 * main.c reads the subcommand and hands the rest of argv to one of the
 * cv_cli_* entry points below.  Each returns the process exit status, having
 * already printed its result on stdout or a one-line reason on stderr:
 *   0  success
 *   1  a failure: the cluster answered with a non-OK status, did not answer,
 *      an output file could not be written, or (for `up`) a port was taken
 *      or a child failed to start
 *   2  a usage error: unknown option, missing or malformed argument
 */
#ifndef CV_CLI_H
#define CV_CLI_H

#include "cv_codec.h"

enum { CV_CLI_OK = 0, CV_CLI_FAIL = 1, CV_CLI_USAGE = 2 };

/* Defaults of DESIGN A7: where the client commands find the cluster. */
#define CV_CLI_DEFAULT_SERVER "127.0.0.1:7700"
#define CV_CLI_DEFAULT_PUBLISH "127.0.0.1:7721"

/* `canvass up ...`: runs a local cluster in the foreground (up.c).
 * argv[0] is the program as invoked (used to print runnable examples),
 * argv[1] is "up", the options follow. */
int cv_cli_up(int argc, char **argv);

/* `canvass submit|vote|ping ...`: the client protocol (main.c). */
int cv_cli_submit(int argc, char **argv);
int cv_cli_vote(int argc, char **argv);
int cv_cli_ping(int argc, char **argv);

/* `canvass ranked|cycles|cycle close ...`: the release-manager API (admin.c). */
int cv_cli_ranked(int argc, char **argv);
int cv_cli_cycles(int argc, char **argv);
int cv_cli_cycle(int argc, char **argv);

/* `canvass feature show|status|merge|voters ...` and `canvass features`
 * (manage.c); `canvass export` (export.c).  argv[1] is the command. */
int cv_cli_feature(int argc, char **argv);
int cv_cli_features(int argc, char **argv);
int cv_cli_export(int argc, char **argv);
int cv_cli_keygen(int argc, char **argv);

/* Prints "canvass: <reason>" and a newline on stderr. */
void cv_cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- talking to publish (admin.c) ----------------------------------------- */

/* The options every release-manager command shares, filled by cv_config:
 * --publish (host:port or tcp://host:port), --timeout (seconds) and
 * --app-key.  Put CV_CLI_ADMIN_OPTS last in a command's option table. */
extern char *cv_cli_publish, *cv_cli_app_key, *cv_cli_curve_key, *cv_cli_curve_server;
extern long cv_cli_timeout;

/* clang-format off */
#define CV_CLI_ADMIN_OPTS                                                            \
    {"publish", CV_CFG_STR, CV_CLI_DEFAULT_PUBLISH, 0, 0, &cv_cli_publish,           \
     "publish REP endpoint (host:port or tcp://host:port)"},                         \
    {"timeout", CV_CFG_INT, "10", 1, 3600, &cv_cli_timeout,                          \
     "seconds to wait for each answer"},                                             \
    {"app-key", CV_CFG_STR, NULL, 0, 0, &cv_cli_app_key,                             \
     "admin key, when the cluster uses app keys"},                                   \
    {"curve-key", CV_CFG_STR, NULL, 0, 0, &cv_cli_curve_key,                         \
     "this client's CURVE key pair file, when the cluster encrypts ZeroMQ"},         \
    {"curve-server", CV_CFG_STR, NULL, 0, 0, &cv_cli_curve_server,                   \
     "the servers' public key (.pub file or Z85), with --curve-key"}
/* clang-format on */

/* A conversation with publish's REP socket (DESIGN A7, port P+21): one
 * ZeroMQ REQ socket used for any number of exchanges, so a command that asks
 * many questions (export) connects once. */
typedef struct cv_cli_admin cv_cli_admin_t;

/* Connects to cv_cli_publish.  Returns CV_CLI_OK with *out set (the caller's,
 * freed with cv_cli_admin_destroy), or prints the reason and returns
 * CV_CLI_USAGE (a malformed address) or CV_CLI_FAIL. */
int cv_cli_admin_new(cv_cli_admin_t **out);

/* Sends req (its app_key is set from --app-key) and waits up to --timeout for
 * the reply.  Returns CV_CLI_OK with *reply set (the caller's:
 * canvass__v1__admin_reply__free_unpacked(r, NULL)) when publish answered OK
 * with the `want` result.  Otherwise prints one line and returns CV_CLI_FAIL:
 * "canvass: STATUS: error text" for a non-OK status, or why there was no
 * usable answer (`what` names the missing result: "publish answered without
 * <what>").  After a failure the conversation is unusable. */
int cv_cli_admin_call(cv_cli_admin_t *a, Canvass__V1__AdminRequest *req,
                      Canvass__V1__AdminReply__ResultCase want, const char *what,
                      Canvass__V1__AdminReply **reply);

/* Closes the socket and frees the conversation.  Safe on NULL and twice;
 * nulls *a_p. */
void cv_cli_admin_destroy(cv_cli_admin_t **a_p);

/* One exchange: cv_cli_admin_new + cv_cli_admin_call + destroy.  Same
 * returns as cv_cli_admin_call (or cv_cli_admin_new's). */
int cv_cli_admin_once(Canvass__V1__AdminRequest *req, Canvass__V1__AdminReply__ResultCase want,
                      const char *what, Canvass__V1__AdminReply **reply);

/* Turns a rendering's result into the command's exit status: flushes stdout
 * and prints "cannot write the output" (CV_EIO, or a failed flush) or
 * "cannot format the output: ..." (another negative code).  Returns
 * CV_CLI_OK or CV_CLI_FAIL. */
int cv_cli_print_result(int rc);

/* Prints a string from cv_json (NULL means it could not be built: out of
 * memory) and a newline on stdout, frees it, and returns what
 * cv_cli_print_result does. */
int cv_cli_print_json(char *json);

#endif
