/* up: `canvass up`, a whole local cluster under one small supervisor.
 *
 * The supervisor starts N tally shards, one publish and one ingest from the
 * binaries beside its own executable, on the port layout of DESIGN A3, and
 * stays in the foreground.  It is a single-threaded loop around
 * sigtimedwait(): SIGINT, SIGTERM, SIGHUP and SIGCHLD are blocked and taken
 * synchronously, so there are no signal handlers and no races with them.
 *
 * Life of the cluster:
 *   starting  children spawned; every listening port is probed until it
 *             accepts a TCP connection (10 s at most).  A child that exits
 *             now is a start-up failure: everything is stopped, exit 1.
 *   running   the banner is printed; a child that dies is logged and
 *             started again 1 s later, on the same ports and data.
 *   stopping  on the first signal: SIGTERM to the front ends (ingest,
 *             publish) so they drain into shards that are still up, then to
 *             the shards; each stage gets 10 s before SIGKILL.  A second
 *             Ctrl-C skips the grace.  Exit 0.
 * Children run in their own process group, so a Ctrl-C at the terminal
 * reaches only the supervisor, which then stops them in order; and they ask
 * the kernel for SIGTERM should the supervisor itself die (PR_SET_PDEATHSIG),
 * so a kill -9 of the supervisor leaves no orphans serving stale ports.
 */
#include "cli.h"
#include "cv_config.h"
#include "cv_log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define UP_SHARDS_MAX 10   /* P+10+i must stay below publish's P+20 */
#define UP_START_MS 10000  /* how long the cluster may take to listen */
#define UP_RESTART_MS 1000 /* pause before a dead child is started again */
#define UP_GRACE_MS 10000  /* SIGTERM to SIGKILL, per shutdown stage */
#define UP_ARGS_MAX 32

typedef struct {
    char name[32];           /* "tally-0", "publish", "ingest": for logs */
    char path[PATH_MAX];     /* the binary */
    char *argv[UP_ARGS_MAX]; /* owned, NULL-terminated */
    int argc;
    int stage;            /* stopped in rising stage order */
    int port;             /* the TCP port it listens on when up */
    char data[PATH_MAX];  /* its data directory; "" for none */
    pid_t pid;            /* 0 while not running */
    long long restart_at; /* monotonic ms of a pending restart; 0 = none */
} child_t;

typedef struct {
    child_t kids[UP_SHARDS_MAX + 2];
    int n;
    sigset_t sigs;      /* the signals taken by sigtimedwait */
    const char *failed; /* during start-up: why, for the one-line error */
    char failed_buf[256];
} up_t;

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- preparing ------------------------------------------------------------ */

/* Appends a formatted argument; returns 0 or -1 (out of memory or room). */
static int arg_add(child_t *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int arg_add(child_t *k, const char *fmt, ...)
{
    va_list ap;
    char *s;
    if (k->argc + 1 >= UP_ARGS_MAX)
        return -1;
    va_start(ap, fmt);
    int r = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (r < 0)
        return -1;
    k->argv[k->argc++] = s;
    k->argv[k->argc] = NULL;
    return 0;
}

static void kids_free(up_t *u)
{
    for (int i = 0; i < u->n; i++)
        for (int a = 0; a < u->kids[i].argc; a++)
            free(u->kids[i].argv[a]);
}

/* Sets k's binary to `prog` in the directory of the running executable.
 * Returns 0, or -1 after saying why. */
static int kid_binary(child_t *k, const char *prog)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n < 0) {
        cv_cli_fail("cannot find my own executable: %s", strerror(errno));
        return -1;
    }
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    *slash = '\0';
    if (snprintf(k->path, sizeof k->path, "%s/%s", self, prog) >= (int)sizeof k->path) {
        cv_cli_fail("path too long: %s/%s", self, prog);
        return -1;
    }
    if (access(k->path, X_OK) != 0) {
        cv_cli_fail("cannot run %s: %s (build it with make)", k->path, strerror(errno));
        return -1;
    }
    return arg_add(k, "%s", prog);
}

/* mkdir -p, each new directory 0700: the data directory holds every vote
 * and its stores' files are 0600 (cv_store), so no one else may list or
 * replace them either.  Returns 0 or -1 after saying why. */
static int mkdir_p(const char *dir)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path) {
        cv_cli_fail("data directory path too long: %s", dir);
        return -1;
    }
    for (char *p = path + 1;; p++) {
        if (*p == '/' || !*p) {
            char c = *p;
            *p = '\0';
            if (mkdir(path, 0700) != 0 && errno != EEXIST) {
                cv_cli_fail("cannot create %s: %s", path, strerror(errno));
                return -1;
            }
            *p = c;
            if (!c)
                return 0;
        }
    }
}

/* Returns 1 when 127.0.0.1:port can be bound (nobody listens there). */
static int port_free(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 1; /* cannot tell; the child will report it */
    /* Like the services' listeners: a port in TIME_WAIT is free. */
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

/* Returns 1 when something accepts TCP connections on 127.0.0.1:port. */
static int port_listening(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    /* Loopback connects complete or fail at once: no need for a deadline. */
    int ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

/* ---- children ------------------------------------------------------------- */

static int kid_spawn(up_t *u, child_t *k)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        cv_log(CV_LOG_ERROR, "msg=\"fork failed\" child=%s err=\"%s\"", k->name, strerror(errno));
        return -1;
    }
    if (pid == 0) {
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent) /* the supervisor died before prctl took hold */
            _exit(127);
        signal(SIGPIPE, SIG_DFL);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        /* stdout is the supervisor's banner; the children's words are logs. */
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, STDIN_FILENO);
        dup2(STDERR_FILENO, STDOUT_FILENO);
        execv(k->path, k->argv);
        fprintf(stderr, "canvass: cannot run %s: %s\n", k->path, strerror(errno));
        _exit(127);
    }
    (void)u;
    k->pid = pid;
    k->restart_at = 0;
    cv_log(CV_LOG_INFO, "msg=\"started\" child=%s pid=%d", k->name, (int)pid);
    return 0;
}

/* "exited with status 1" / "was killed by signal 9 (Killed)". */
static void describe_exit(int status, char *out, size_t cap)
{
    if (WIFEXITED(status))
        snprintf(out, cap, "exited with status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(out, cap, "was killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    else
        snprintf(out, cap, "stopped (status 0x%x)", (unsigned)status);
}

/* Collects every child that has exited.  While running, schedules its
 * restart; while starting, records the first failure; while stopping, only
 * notes it. */
enum { PHASE_STARTING, PHASE_RUNNING, PHASE_STOPPING };
static void kids_reap(up_t *u, int phase)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        child_t *k = NULL;
        for (int i = 0; i < u->n; i++)
            if (u->kids[i].pid == pid)
                k = &u->kids[i];
        if (!k)
            continue;
        k->pid = 0;
        char how[96];
        describe_exit(status, how, sizeof how);
        if (phase == PHASE_STOPPING) {
            cv_log(CV_LOG_INFO, "msg=\"stopped\" child=%s pid=%d how=\"%s\"", k->name, (int)pid,
                   how);
        } else if (phase == PHASE_STARTING) {
            cv_log(CV_LOG_ERROR, "msg=\"exited while starting\" child=%s pid=%d how=\"%s\"",
                   k->name, (int)pid, how);
            if (!u->failed) {
                snprintf(u->failed_buf, sizeof u->failed_buf,
                         "canvass-%s %s while starting (see its log above)", k->name, how);
                u->failed = u->failed_buf;
            }
        } else {
            cv_log(CV_LOG_WARN,
                   "msg=\"exited unexpectedly, restarting\" child=%s pid=%d how=\"%s\" "
                   "restart_in_ms=%d",
                   k->name, (int)pid, how, UP_RESTART_MS);
            k->restart_at = mono_ms() + UP_RESTART_MS;
        }
    }
}

/* Waits for one of u->sigs for at most ms; returns the signal or 0. */
static int wait_signal(up_t *u, long long ms)
{
    if (ms < 0)
        ms = 0;
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
    int sig = sigtimedwait(&u->sigs, NULL, &ts);
    return sig < 0 ? 0 : sig;
}

/* Sends sig to every running child of one stage and returns how many there
 * are (signal 0 only counts them). */
static int stage_signal(up_t *u, int stage, int sig)
{
    int n = 0;
    for (int i = 0; i < u->n; i++)
        if (u->kids[i].stage == stage && u->kids[i].pid > 0) {
            if (sig == SIGKILL)
                cv_log(CV_LOG_WARN, "msg=\"killing\" child=%s pid=%d", u->kids[i].name,
                       (int)u->kids[i].pid);
            kill(u->kids[i].pid, sig);
            n++;
        }
    return n;
}

/* Stops every child: SIGTERM stage by stage, SIGKILL after the grace or at
 * a second stop signal. */
static void kids_stop(up_t *u)
{
    int hurry = 0;
    for (int i = 0; i < u->n; i++)
        u->kids[i].restart_at = 0;
    for (int stage = 0; stage <= 1; stage++) {
        stage_signal(u, stage, hurry ? SIGKILL : SIGTERM);
        long long now = mono_ms(), deadline = now + UP_GRACE_MS;
        long long killed_at = hurry ? now : 0;
        for (;;) {
            kids_reap(u, PHASE_STOPPING);
            now = mono_ms();
            if (!killed_at && now >= deadline) {
                cv_log(CV_LOG_WARN, "msg=\"did not stop within the grace period\" grace_ms=%d",
                       UP_GRACE_MS);
                stage_signal(u, stage, SIGKILL);
                killed_at = now;
            }
            if (stage_signal(u, stage, 0) == 0)
                break;
            if (killed_at && now - killed_at > 5000) {
                cv_log(CV_LOG_ERROR, "msg=\"children did not die after SIGKILL, giving up\"");
                return;
            }
            int sig = wait_signal(u, killed_at ? 100 : deadline - now);
            if ((sig == SIGINT || sig == SIGTERM || sig == SIGHUP) && !hurry) {
                cv_log(CV_LOG_WARN, "msg=\"second signal: not waiting any longer\"");
                hurry = 1;
                if (!killed_at) {
                    stage_signal(u, stage, SIGKILL);
                    killed_at = mono_ms();
                }
            }
        }
    }
}

/* ---- the cluster ---------------------------------------------------------- */

static char *opt_data, *opt_schedule, *opt_durability, *opt_key_file;
static long opt_shards, opt_port_base;

/* Fills in the children of DESIGN A3.  Returns 0 or -1 after saying why. */
static int kids_plan(up_t *u)
{
    const int P = (int)opt_port_base, N = (int)opt_shards;
    char tallies[UP_SHARDS_MAX * 32] = "";
    for (int i = 0; i < N; i++)
        snprintf(tallies + strlen(tallies), sizeof tallies - strlen(tallies),
                 "%stcp://127.0.0.1:%d", i ? "," : "", P + 10 + i);
    int bad = 0;
    for (int i = 0; i < N; i++) {
        child_t *k = &u->kids[u->n++];
        snprintf(k->name, sizeof k->name, "tally-%d", i);
        k->stage = 1;
        k->port = P + 10 + i;
        snprintf(k->data, sizeof k->data, "%s/tally-%d", opt_data, i);
        bad |= kid_binary(k, "canvass-tally") || arg_add(k, "--bind") ||
               arg_add(k, "tcp://127.0.0.1:%d", k->port) || arg_add(k, "--data") ||
               arg_add(k, "%s", k->data) || arg_add(k, "--shard") || arg_add(k, "%d", i) ||
               arg_add(k, "--shards") || arg_add(k, "%d", N) || arg_add(k, "--durability") ||
               arg_add(k, "%s", opt_durability) || arg_add(k, "--http") ||
               arg_add(k, "127.0.0.1:%d", P + 82 + i);
        if (bad)
            return -1;
    }
    child_t *k = &u->kids[u->n++];
    snprintf(k->name, sizeof k->name, "publish");
    k->stage = 0;
    k->port = P + 21;
    snprintf(k->data, sizeof k->data, "%s/publish", opt_data);
    bad |= kid_binary(k, "canvass-publish") || arg_add(k, "--tally") || arg_add(k, "%s", tallies) ||
           arg_add(k, "--pub") || arg_add(k, "tcp://127.0.0.1:%d", P + 20) || arg_add(k, "--rep") ||
           arg_add(k, "tcp://127.0.0.1:%d", P + 21) || arg_add(k, "--data") ||
           arg_add(k, "%s", k->data) || arg_add(k, "--schedule") || arg_add(k, "%s", opt_schedule) ||
           arg_add(k, "--http") || arg_add(k, "127.0.0.1:%d", P + 80);
    if (*opt_key_file)
        bad |= arg_add(k, "--key-file") || arg_add(k, "%s", opt_key_file);
    if (bad)
        return -1;
    k = &u->kids[u->n++];
    snprintf(k->name, sizeof k->name, "ingest");
    k->stage = 0;
    k->port = P;
    bad |= kid_binary(k, "canvass-ingest") || arg_add(k, "--listen") ||
           arg_add(k, "127.0.0.1:%d", P) || arg_add(k, "--tally") || arg_add(k, "%s", tallies) ||
           arg_add(k, "--http") || arg_add(k, "127.0.0.1:%d", P + 81);
    if (*opt_key_file)
        bad |= arg_add(k, "--key-file") || arg_add(k, "%s", opt_key_file);
    return bad ? -1 : 0;
}

/* The ports the cluster will listen on, with what each is for. */
static int ports_check(void)
{
    const int P = (int)opt_port_base;
    struct {
        int port;
        const char *what;
    } ports[2 * UP_SHARDS_MAX + 6];
    int n = 0;
    ports[n].port = P, ports[n++].what = "ingest clients";
    for (int i = 0; i < opt_shards; i++)
        ports[n].port = P + 10 + i, ports[n++].what = "a tally shard";
    ports[n].port = P + 20, ports[n++].what = "publish PUB";
    ports[n].port = P + 21, ports[n++].what = "publish REP";
    ports[n].port = P + 80, ports[n++].what = "publish HTTP";
    ports[n].port = P + 81, ports[n++].what = "ingest HTTP";
    for (int i = 0; i < opt_shards; i++)
        ports[n].port = P + 82 + i, ports[n++].what = "a tally shard's HTTP";
    for (int i = 0; i < n; i++)
        if (!port_free(ports[i].port)) {
            cv_cli_fail("port %d (%s) on 127.0.0.1 is already in use; is a cluster already "
                        "running? (pick another --port-base)",
                        ports[i].port, ports[i].what);
            return -1;
        }
    return 0;
}

static void banner(const char *self)
{
    const int P = (int)opt_port_base;
    printf("canvass is up: %ld tally shard%s, publish, ingest; data in %s\n\n", opt_shards,
           opt_shards == 1 ? "" : "s", opt_data);
    printf("  clients (TCP)          127.0.0.1:%d\n", P);
    printf("  publish REP (admin)    tcp://127.0.0.1:%d\n", P + 21);
    printf("  publish PUB (events)   tcp://127.0.0.1:%d\n", P + 20);
    if (opt_shards == 1)
        printf("  tally shard            tcp://127.0.0.1:%d\n", P + 10);
    else
        printf("  tally shards           tcp://127.0.0.1:%d..%ld\n", P + 10,
               P + 10 + opt_shards - 1);
    printf("  HTTP API (publish)     http://127.0.0.1:%d/v1/ranked\n", P + 80);
    printf("  probes and /metrics    http://127.0.0.1:%d (publish), :%d (ingest), :%d.. (tally)\n",
           P + 80, P + 81, P + 82);
    printf("  cycle schedule         %s\n", opt_schedule);
    if (*opt_key_file)
        printf("  app keys               %s (give clients and admins --app-key)\n\n",
               opt_key_file);
    else
        printf("  app keys               NONE: the cluster is open to anyone who reaches it\n\n");
    printf("Cast a first vote, from another terminal:\n");
    if (P != 7700)
        printf("  export CANVASS_SERVER=127.0.0.1:%d CANVASS_PUBLISH=127.0.0.1:%d\n", P, P + 21);
    printf("  id=$(%s submit --user alice \"Dark mode for settings\")\n", self);
    printf("  %s vote --user bob \"$id\" up\n", self);
    printf("  %s cycle close\n", self);
    printf("  %s ranked\n\n", self);
    printf("Ctrl-C stops the cluster.\n");
    fflush(stdout);
}

/* Runs the planned cluster until a signal.  Returns the exit status. */
static int up_run(up_t *u, const char *self)
{
    for (int i = 0; i < u->n; i++)
        if (kid_spawn(u, &u->kids[i]) < 0) {
            cv_cli_fail("cannot start canvass-%s (see the log above)", u->kids[i].name);
            kids_stop(u);
            return CV_CLI_FAIL;
        }
    int phase = PHASE_STARTING;
    long long start_deadline = mono_ms() + UP_START_MS;
    for (;;) {
        long long now = mono_ms(), wait = phase == PHASE_STARTING ? 50 : 1000;
        for (int i = 0; i < u->n; i++)
            if (u->kids[i].restart_at && u->kids[i].restart_at - now < wait)
                wait = u->kids[i].restart_at - now;
        int sig = wait_signal(u, wait);
        kids_reap(u, phase);
        if (sig == SIGINT || sig == SIGTERM || sig == SIGHUP) {
            cv_log(CV_LOG_INFO, "msg=\"stopping the cluster\" signal=%d", sig);
            kids_stop(u);
            cv_log(CV_LOG_INFO, "msg=\"stopped\"");
            return CV_CLI_OK;
        }
        now = mono_ms();
        if (phase == PHASE_STARTING) {
            const child_t *waiting = NULL; /* the first child not listening yet */
            for (int i = 0; !waiting && i < u->n; i++)
                if (!port_listening(u->kids[i].port))
                    waiting = &u->kids[i];
            if (!waiting && !u->failed) {
                phase = PHASE_RUNNING;
                cv_log(CV_LOG_INFO, "msg=\"cluster is up\" clients=127.0.0.1:%ld", opt_port_base);
                banner(self);
            } else if (u->failed || now >= start_deadline) {
                kids_stop(u);
                if (u->failed)
                    cv_cli_fail("%s", u->failed);
                else
                    cv_cli_fail("canvass-%s is not listening on 127.0.0.1:%d after %d s",
                                waiting->name, waiting->port, UP_START_MS / 1000);
                return CV_CLI_FAIL;
            }
            continue;
        }
        for (int i = 0; i < u->n; i++)
            if (u->kids[i].restart_at && u->kids[i].restart_at <= now &&
                kid_spawn(u, &u->kids[i]) < 0)
                u->kids[i].restart_at = now + UP_RESTART_MS; /* fork failed: try again */
    }
}

int cv_cli_up(int argc, char **argv)
{
    cv_config_opt_t opts[] = {
        {"data", CV_CFG_STR, "./var", 0, 0, &opt_data,
         "data directory (one subdirectory per process)"},
        {"shards", CV_CFG_INT, "2", 1, UP_SHARDS_MAX, &opt_shards, "number of tally shards"},
        {"port-base", CV_CFG_INT, "7700", 1024, 65535 - 100, &opt_port_base,
         "first port of the layout (clients P, shards P+10+i, publish P+20/P+21, "
         "HTTP: publish P+80, ingest P+81, shards P+82+i)"},
        {"schedule", CV_CFG_STR, "weekly:FRI@17:00Z", 0, 0, &opt_schedule,
         "when cycles close: weekly:DAY@HH:MMZ, daily@HH:MM, every:Ns or manual"},
        {"durability", CV_CFG_STR, "fsync", 0, 0, &opt_durability,
         "fsync (acks survive power loss) or os (acks survive process crashes)"},
        {"key-file", CV_CFG_STR, NULL, 0, 0, &opt_key_file,
         "app key file for ingest and publish (docs/OPERATIONS.md); empty: an open cluster"},
        {0}};
    int npos;
    int r = cv_config_parse("canvass",
                            "canvass up [--data DIR] [--shards N] [--port-base P] "
                            "[--schedule S] [--durability fsync|os] [--key-file F]",
                            opts, argc, argv, 2, &npos);
    if (r != 0)
        return r > 0 ? CV_CLI_OK : CV_CLI_USAGE;
    if (npos) {
        cv_cli_fail("up takes no arguments, got '%s' (see canvass up --help)", argv[2]);
        return CV_CLI_USAGE;
    }
    if (strcmp(opt_durability, "fsync") && strcmp(opt_durability, "os")) {
        cv_cli_fail("--durability must be fsync or os, got '%s'", opt_durability);
        return CV_CLI_USAGE;
    }
    if (!*opt_data || !*opt_schedule) {
        cv_cli_fail("--data and --schedule may not be empty");
        return CV_CLI_USAGE;
    }
    cv_log_init("up", -1, CV_LOG_INFO);

    static up_t u; /* static: the child table is a few tens of KiB */
    memset(&u, 0, sizeof u);
    int rc = CV_CLI_FAIL;
    if (kids_plan(&u) < 0 || ports_check() < 0 || mkdir_p(opt_data) < 0)
        goto out;
    for (int i = 0; i < u.n; i++)
        if (*u.kids[i].data && mkdir_p(u.kids[i].data) < 0)
            goto out;

    sigemptyset(&u.sigs);
    sigaddset(&u.sigs, SIGINT);
    sigaddset(&u.sigs, SIGTERM);
    sigaddset(&u.sigs, SIGHUP);
    sigaddset(&u.sigs, SIGCHLD);
    sigprocmask(SIG_BLOCK, &u.sigs, NULL);
    signal(SIGPIPE, SIG_IGN); /* a closed stdout must not take the cluster down */
    rc = up_run(&u, argv[0]);
out:
    kids_free(&u);
    return rc;
}
