/* cv_config_test: defaults, environment, flags and their precedence,
 * bounds, positionals and --help, on a table like a service's. */
#include "cv_config.h"
#include "cv_err.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

/* Names carry a "unit-" prefix so the runner's own CANVASS_* environment
 * (CANVASS_SERVER and the like) cannot leak into these tests. */
static long port, shards;
static char *data_dir;
static int verbose, color;
static double ratio;

static cv_config_opt_t opts[] = {
    {"unit-port", CV_CFG_INT, "7700", 1, 65535, &port, "TCP port for clients"},
    {"unit-shard-count", CV_CFG_INT, "1", 1, 64, &shards, "number of tally shards"},
    {"unit-data", CV_CFG_STR, "./var", 0, 0, &data_dir, "data directory"},
    {"unit-verbose", CV_CFG_BOOL, NULL, 0, 0, &verbose, "log more"},
    {"unit-color", CV_CFG_BOOL, "on", 0, 0, &color, "colour output"},
    {"unit-ratio", CV_CFG_DOUBLE, "0.5", 0, 0, &ratio, "a fraction"},
    {0},
};

static const char *envs[] = {"CANVASS_UNIT_PORT", "CANVASS_UNIT_SHARD_COUNT", "CANVASS_UNIT_DATA",
                             "CANVASS_UNIT_VERBOSE", "CANVASS_UNIT_RATIO"};

static int clean_env(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof envs / sizeof envs[0]; i++)
        unsetenv(envs[i]);
    port = shards = -1;
    data_dir = NULL;
    verbose = color = -1;
    ratio = -1;
    return 0;
}

/* Parses a NULL-terminated list of arguments after "prog"; the positionals
 * end up in argv[1..1+*npos), which the caller passes in. */
#define MAXARGS 16
static int parse(char **argv, int *npos, ...)
{
    va_list ap;
    int argc = 0;
    argv[argc++] = "prog";
    va_start(ap, npos);
    for (char *a; (a = va_arg(ap, char *)) != NULL && argc < MAXARGS;)
        argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;
    *npos = -1;
    return cv_config_parse("prog", "prog [options]", opts, argc, argv, 1, npos);
}

static void test_defaults(void **state)
{
    (void)state;
    char *argv[MAXARGS + 1];
    int npos;
    assert_int_equal(parse(argv, &npos, NULL), 0);
    assert_int_equal(npos, 0);
    assert_int_equal(port, 7700);
    assert_int_equal(shards, 1);
    assert_string_equal(data_dir, "./var");
    assert_int_equal(color, 1);
    assert_true(ratio == 0.5);
}

/* cv_config.h: a NULL default is "empty string / 0", so a BOOL with no
 * default is off until a flag or the environment turns it on. */
static void test_bool_null_default_is_off(void **state)
{
    (void)state;
    char *argv[MAXARGS + 1];
    int npos;
    assert_int_equal(parse(argv, &npos, NULL), 0);
    assert_int_equal(verbose, 0);
    assert_int_equal(parse(argv, &npos, "--unit-color=off", NULL), 0);
    assert_int_equal(color, 0);
}

static void test_env_overrides_default(void **state)
{
    (void)state;
    char *argv[MAXARGS + 1];
    int npos;
    setenv("CANVASS_UNIT_PORT", "8000", 1);
    setenv("CANVASS_UNIT_SHARD_COUNT", "4", 1); /* '-' becomes '_' */
    setenv("CANVASS_UNIT_DATA", "/tmp/elsewhere", 1);
    setenv("CANVASS_UNIT_VERBOSE", "yes", 1);
    setenv("CANVASS_UNIT_RATIO", "0.25", 1);
    assert_int_equal(parse(argv, &npos, NULL), 0);
    assert_int_equal(port, 8000);
    assert_int_equal(shards, 4);
    assert_string_equal(data_dir, "/tmp/elsewhere");
    assert_int_equal(verbose, 1);
    assert_true(ratio == 0.25);

    setenv("CANVASS_UNIT_VERBOSE", "off", 1);
    assert_int_equal(parse(argv, &npos, NULL), 0);
    assert_int_equal(verbose, 0);
}

static void test_flag_overrides_env(void **state)
{
    (void)state;
    char *argv[MAXARGS + 1];
    int npos;
    setenv("CANVASS_UNIT_PORT", "8000", 1);
    setenv("CANVASS_UNIT_DATA", "/from/env", 1);
    assert_int_equal(parse(argv, &npos, "--unit-port", "9000", "--unit-data", "/from/flag", NULL),
                     0);
    assert_int_equal(port, 9000);
    assert_string_equal(data_dir, "/from/flag");
    assert_int_equal(npos, 0);

    /* The last of repeated flags wins. */
    assert_int_equal(parse(argv, &npos, "--unit-port", "9000", "--unit-port=9001", NULL), 0);
    assert_int_equal(port, 9001);
}

static void test_equals_form(void **state)
{
    (void)state;
    char *argv[MAXARGS + 1];
    int npos;
    assert_int_equal(parse(argv, &npos, "--unit-port=1234", "--unit-data=a=b", "--unit-ratio=2.5",
                           "--unit-data=", NULL),
                     0);
    assert_int_equal(port, 1234);
    assert_string_equal(data_dir, ""); /* the last one, empty */
    assert_true(ratio == 2.5);
    assert_int_equal(parse(argv, &npos, "--unit-data=a=b", NULL), 0);
    assert_string_equal(data_dir, "a=b"); /* split at the first '=' only */
}

static void test_bool_flags(void **state)
{
    (void)state;
    char *argv[MAXARGS + 1];
    int npos;
    assert_int_equal(parse(argv, &npos, "--unit-verbose", NULL), 0);
    assert_int_equal(verbose, 1);
    assert_int_equal(npos, 0);
    static const char *truthy[] = {"1", "true", "yes", "on"};
    static const char *falsy[] = {"0", "false", "no", "off", ""};
    char arg[64];
    for (size_t i = 0; i < 4; i++) {
        snprintf(arg, sizeof arg, "--unit-verbose=%s", truthy[i]);
        assert_int_equal(parse(argv, &npos, arg, NULL), 0);
        assert_int_equal(verbose, 1);
    }
    for (size_t i = 0; i < 5; i++) {
        snprintf(arg, sizeof arg, "--unit-verbose=%s", falsy[i]);
        assert_int_equal(parse(argv, &npos, arg, NULL), 0);
        assert_int_equal(verbose, 0);
    }
    /* A bool flag does not swallow the next argument. */
    assert_int_equal(parse(argv, &npos, "--unit-verbose", "file", NULL), 0);
    assert_int_equal(verbose, 1);
    assert_int_equal(npos, 1);
    assert_string_equal(argv[1], "file");

    assert_int_equal(parse(argv, &npos, "--unit-verbose=maybe", NULL), CV_EINVAL);
    setenv("CANVASS_UNIT_VERBOSE", "sometimes", 1);
    assert_int_equal(parse(argv, &npos, NULL), CV_EINVAL);
}

static void test_int_bounds(void **state)
{
    (void)state;
    char *argv[MAXARGS + 1];
    int npos;
    assert_int_equal(parse(argv, &npos, "--unit-port", "1", NULL), 0);
    assert_int_equal(port, 1);
    assert_int_equal(parse(argv, &npos, "--unit-port", "65535", NULL), 0);
    assert_int_equal(port, 65535);
    assert_int_equal(parse(argv, &npos, "--unit-port", "0", NULL), CV_EINVAL);
    assert_int_equal(parse(argv, &npos, "--unit-port", "65536", NULL), CV_EINVAL);
    assert_int_equal(parse(argv, &npos, "--unit-port", "-1", NULL), CV_EINVAL);
    assert_int_equal(parse(argv, &npos, "--unit-shard-count=65", NULL), CV_EINVAL);
    assert_int_equal(parse(argv, &npos, "--unit-port", "abc", NULL), CV_EINVAL);
    assert_int_equal(parse(argv, &npos, "--unit-port", "12x", NULL), CV_EINVAL);
    assert_int_equal(parse(argv, &npos, "--unit-port=", NULL), CV_EINVAL);
    assert_int_equal(parse(argv, &npos, "--unit-port", "99999999999999999999999", NULL), CV_EINVAL);
    assert_int_equal(parse(argv, &npos, "--unit-ratio", "half", NULL), CV_EINVAL);

    setenv("CANVASS_UNIT_PORT", "70000", 1); /* bounds hold for the environment too */
    assert_int_equal(parse(argv, &npos, NULL), CV_EINVAL);
}

static void test_unknown_and_missing(void **state)
{
    (void)state;
    char *argv[MAXARGS + 1];
    int npos;
    assert_int_equal(parse(argv, &npos, "--nope", NULL), CV_EINVAL);
    assert_int_equal(parse(argv, &npos, "--nope=1", NULL), CV_EINVAL);
    assert_int_equal(parse(argv, &npos, "--unit-por", "1", NULL), CV_EINVAL); /* no prefixes */
    assert_int_equal(parse(argv, &npos, "--unit-port-x", "1", NULL), CV_EINVAL);
    assert_int_equal(parse(argv, &npos, "--unit-port", NULL), CV_EINVAL); /* needs a value */
}

static void test_positionals(void **state)
{
    (void)state;
    char *argv[MAXARGS + 1];
    int npos;
    assert_int_equal(
        parse(argv, &npos, "a", "--unit-port", "1", "b", "-", "--unit-verbose", "c", NULL), 0);
    assert_int_equal(npos, 4);
    assert_string_equal(argv[1], "a");
    assert_string_equal(argv[2], "b");
    assert_string_equal(argv[3], "-"); /* a lone dash is a positional (stdin) */
    assert_string_equal(argv[4], "c");
    assert_int_equal(port, 1);
    assert_int_equal(verbose, 1);

    /* A subcommand: options and positionals start after it. */
    char *sub[] = {"canvass", "vote", "--unit-port", "5", "F1", "up", NULL};
    assert_int_equal(cv_config_parse("canvass", "canvass vote ID", opts, 6, sub, 2, &npos), 0);
    assert_int_equal(npos, 2);
    assert_string_equal(sub[0], "canvass");
    assert_string_equal(sub[1], "vote");
    assert_string_equal(sub[2], "F1");
    assert_string_equal(sub[3], "up");
    assert_int_equal(port, 5);
}

static void test_double_dash(void **state)
{
    (void)state;
    char *argv[MAXARGS + 1];
    int npos;
    assert_int_equal(parse(argv, &npos, "x", "--", "--unit-port", "9", "--help", "--", NULL), 0);
    assert_int_equal(npos, 5);
    assert_string_equal(argv[1], "x");
    assert_string_equal(argv[2], "--unit-port");
    assert_string_equal(argv[3], "9");
    assert_string_equal(argv[4], "--help");
    assert_string_equal(argv[5], "--"); /* only the first "--" is special */
    assert_int_equal(port, 7700);       /* not taken as an option */
}

/* Runs a parse with stdout sent to a file, and returns what was printed. */
static int parse_captured(char *out, size_t outlen, const char *arg)
{
    char *argv[MAXARGS + 1];
    int npos, rc;
    char path[] = "/tmp/unit-cfg-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    assert_true(saved >= 0);
    assert_true(dup2(fd, STDOUT_FILENO) >= 0);
    rc = parse(argv, &npos, (char *)arg, NULL);
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    ssize_t n = pread(fd, out, outlen - 1, 0);
    out[n > 0 ? n : 0] = '\0';
    close(fd);
    unlink(path);
    return rc;
}

static void test_help(void **state)
{
    (void)state;
    char out[4096];
    assert_int_equal(parse_captured(out, sizeof out, "--help"), 1);
    assert_non_null(strstr(out, "usage: prog [options]"));
    assert_non_null(strstr(out, "--unit-port"));
    assert_non_null(strstr(out, "CANVASS_UNIT_PORT"));
    assert_non_null(strstr(out, "CANVASS_UNIT_SHARD_COUNT"));
    assert_non_null(strstr(out, "7700"));
    assert_non_null(strstr(out, "TCP port for clients"));
    assert_non_null(strstr(out, "--help"));
    assert_int_equal(parse_captured(out, sizeof out, "-h"), 1);
    assert_non_null(strstr(out, "--unit-data"));
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, clean_env, clean_env)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_defaults),
        T(test_bool_null_default_is_off),
        T(test_env_overrides_default),
        T(test_flag_overrides_env),
        T(test_equals_form),
        T(test_bool_flags),
        T(test_int_bounds),
        T(test_unknown_and_missing),
        T(test_positionals),
        T(test_double_dash),
        T(test_help),
    };
    return cmocka_run_group_tests_name("cv_config", tests, NULL, NULL);
}
