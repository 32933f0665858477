/* keygen: `canvass keygen`, the CURVE key pairs for encrypted, authenticated
 * ZeroMQ between hosts (DESIGN A9; docs/OPERATIONS.md "Encryption between
 * hosts").
 *
 * Writes NAME.key ("public KEY" and "secret KEY" lines, mode 0600) and
 * NAME.pub (the public key alone, 0644) into --out, never over an existing
 * file, and prints the public key. */
#include "cli.h"
#include "cv_bus.h"
#include "cv_config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Creates path (which must not exist) with mode and writes text.  Returns 0
 * or -1 after saying why. */
static int write_new(const char *path, mode_t mode, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, mode);
    if (fd < 0) {
        cv_cli_fail("cannot create %s: %s%s", path, strerror(errno),
                    errno == EEXIST ? " (keygen never overwrites a key)" : "");
        return -1;
    }
    size_t n = strlen(text);
    int ok = write(fd, text, n) == (ssize_t)n && fsync(fd) == 0;
    if (close(fd) != 0 || !ok) {
        cv_cli_fail("cannot write %s: %s", path, strerror(errno));
        unlink(path);
        return -1;
    }
    return 0;
}

int cv_cli_keygen(int argc, char **argv)
{
    static char *dir, *name;
    cv_config_opt_t opts[] = {
        {"out", CV_CFG_STR, ".", 0, 0, &dir, "directory to write the key files into"},
        {"name", CV_CFG_STR, "canvass", 0, 0, &name, "NAME.key and NAME.pub"},
        {0}};
    const char *usage = "canvass keygen [--out DIR] [--name NAME]  (writes NAME.key, 0600, "
                        "and NAME.pub)";
    int npos;
    int r = cv_config_parse("canvass", usage, opts, argc, argv, 2, &npos);
    if (r != 0)
        return r > 0 ? CV_CLI_OK : CV_CLI_USAGE;
    if (npos > 0 || !*name || strchr(name, '/')) {
        cv_cli_fail("keygen takes --out DIR and --name NAME (no slash), and no arguments");
        return CV_CLI_USAGE;
    }
    char pub[CV_CURVE_KEY_LEN + 1], sec[CV_CURVE_KEY_LEN + 1];
    if (cv_curve_keypair(pub, sec) < 0) {
        cv_cli_fail("cannot make a key pair (libzmq without CURVE?)");
        return CV_CLI_FAIL;
    }
    char keypath[4096], pubpath[4096], text[160];
    snprintf(keypath, sizeof keypath, "%s/%s.key", dir, name);
    snprintf(pubpath, sizeof pubpath, "%s/%s.pub", dir, name);
    snprintf(text, sizeof text, "# canvass CURVE key pair: keep secret\npublic %s\nsecret %s\n",
             pub, sec);
    if (write_new(keypath, 0600, text) < 0)
        return CV_CLI_FAIL;
    snprintf(text, sizeof text, "%s\n", pub);
    if (write_new(pubpath, 0644, text) < 0) {
        unlink(keypath);
        return CV_CLI_FAIL;
    }
    printf("%s\n", pub);
    return fflush(stdout) == 0 ? CV_CLI_OK : CV_CLI_FAIL;
}
