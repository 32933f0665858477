/* cli: what the files of the `canvass` command-line tool share.
 *
 * main.c reads the subcommand and hands the rest of argv to one of the
 * cv_cli_* entry points below.  Each returns the process exit status, having
 * already printed its result on stdout or a one-line reason on stderr:
 *   0  success
 *   1  a failure: the cluster answered with a non-OK status, did not answer,
 *      or (for `up`) a port was taken or a child failed to start
 *   2  a usage error: unknown option, missing or malformed argument
 */
#ifndef CV_CLI_H
#define CV_CLI_H

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

/* Prints "canvass: <reason>" and a newline on stderr. */
void cv_cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
