/* export_test: unit tests for export.c's file handling: directories made
 * with their parents, files that appear whole or not at all, and the
 * one-line reasons printed when something cannot be written.  Everything
 * happens in a fresh directory under /tmp, removed at the end.
 */
#include "cv_err.h"
#include "export.h"

#include <dirent.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

static char root[64]; /* "/tmp/cli-export-test-XXXXXX" */

static int setup(void **state)
{
    (void)state;
    snprintf(root, sizeof root, "/tmp/cli-export-test-XXXXXX");
    return mkdtemp(root) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    return system(cmd) == 0 ? 0 : -1;
}

static char *path(const char *rel)
{
    static char p[4][PATH_MAX];
    static int next;
    char *out = p[next++ % 4];
    snprintf(out, PATH_MAX, "%s/%s", root, rel);
    return out;
}

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static char *slurp(const char *p)
{
    FILE *f = fopen(p, "r");
    if (!f)
        return NULL;
    static char buf[4096];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* Names in dir, sorted, joined with spaces. */
static char *listing(const char *dir)
{
    static char buf[1024];
    struct dirent **names;
    int n = scandir(dir, &names, NULL, alphasort);
    buf[0] = '\0';
    for (int i = 0; i < n; i++) {
        if (strcmp(names[i]->d_name, ".") && strcmp(names[i]->d_name, "..")) {
            if (*buf)
                strcat(buf, " ");
            strcat(buf, names[i]->d_name);
        }
        free(names[i]);
    }
    free(names);
    return buf;
}

static void test_mkdirs(void **state)
{
    (void)state;
    char err[PATH_MAX + 64];
    assert_int_equal(cv_export_mkdirs(path("a/b/c"), err, sizeof err), 0);
    assert_true(is_dir(path("a/b/c")));
    /* Existing, and with stray slashes. */
    assert_int_equal(cv_export_mkdirs(path("a/b/c"), err, sizeof err), 0);
    assert_int_equal(cv_export_mkdirs(path("a//b/d/"), err, sizeof err), 0);
    assert_true(is_dir(path("a/b/d")));

    /* A file where a directory should be. */
    FILE *f = fopen(path("plain"), "w");
    assert_non_null(f);
    fclose(f);
    assert_int_equal(cv_export_mkdirs(path("plain/sub"), err, sizeof err), CV_EIO);
    char want[PATH_MAX + 64];
    snprintf(want, sizeof want, "cannot create %s: Not a directory", path("plain/sub"));
    assert_string_equal(err, want);
    assert_int_equal(cv_export_mkdirs(path("plain"), err, sizeof err), CV_EIO);
    snprintf(want, sizeof want, "cannot create %s: Not a directory", path("plain"));
    assert_string_equal(err, want);

    assert_int_equal(cv_export_mkdirs("", err, sizeof err), CV_EIO);
    assert_string_equal(err, "cannot create '': empty path");
}

static int write_text(FILE *out, void *arg)
{
    return fputs(arg, out) == EOF ? CV_EIO : 0;
}

/* Writes half a file, then fails as a lost publish would. */
static int write_then_fail(FILE *out, void *arg)
{
    fputs(arg, out);
    return CV_ETIMEOUT;
}

static void test_file(void **state)
{
    (void)state;
    char err[PATH_MAX + 64], want[PATH_MAX + 64];
    assert_int_equal(cv_export_mkdirs(path("out"), err, sizeof err), 0);
    assert_int_equal(
        cv_export_file(path("out"), "x.csv", write_text, "a,b\n1,2\n", err, sizeof err), 0);
    assert_string_equal(slurp(path("out/x.csv")), "a,b\n1,2\n");
    struct stat st;
    assert_int_equal(stat(path("out/x.csv"), &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
    assert_string_equal(listing(path("out")), "x.csv");

    /* Written again: replaced whole. */
    assert_int_equal(cv_export_file(path("out"), "x.csv", write_text, "new\n", err, sizeof err), 0);
    assert_string_equal(slurp(path("out/x.csv")), "new\n");

    /* A writer that fails: the old file stays, no temporary is left. */
    assert_int_equal(cv_export_file(path("out"), "x.csv", write_then_fail, "half", err, sizeof err),
                     CV_ETIMEOUT);
    snprintf(want, sizeof want, "cannot write %s: timed out", path("out/x.csv"));
    assert_string_equal(err, want);
    assert_string_equal(slurp(path("out/x.csv")), "new\n");
    assert_string_equal(listing(path("out")), "x.csv");

    /* A directory that is not there. */
    assert_int_equal(cv_export_file(path("missing"), "y.json", write_text, "{}\n", err, sizeof err),
                     CV_EIO);
    snprintf(want, sizeof want, "cannot write %s: No such file or directory",
             path("missing/y.json"));
    assert_string_equal(err, want);
}

static void test_write_fails(void **state)
{
    (void)state;
    char err[PATH_MAX + 64], want[PATH_MAX + 64];
    assert_int_equal(cv_export_mkdirs(path("lim"), err, sizeof err), 0);

    /* A file the file system cannot name fails at create. */
    char name[300];
    memset(name, 'n', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    assert_int_equal(cv_export_file(path("lim"), name, write_text, "x\n", err, sizeof err), CV_EIO);
    assert_non_null(strstr(err, "File name too long"));

    /* A disk that fills up: a file-size limit makes the writes fail (EFBIG)
     * the way a full disk does (ENOSPC), after the file was created. */
    struct rlimit old, small = {.rlim_cur = 16, .rlim_max = RLIM_INFINITY};
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    small.rlim_max = old.rlim_max;
    signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
    char big[8192];
    memset(big, 'v', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    int rc = cv_export_file(path("lim"), "votes.csv", write_text, big, err, sizeof err);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, SIG_DFL);
    assert_int_equal(rc, CV_EIO);
    snprintf(want, sizeof want, "cannot write %s: File too large", path("lim/votes.csv"));
    assert_string_equal(err, want);
    assert_string_equal(listing(path("lim")), "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mkdirs),
        cmocka_unit_test(test_file),
        cmocka_unit_test(test_write_fails),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
