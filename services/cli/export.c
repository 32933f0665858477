/* export: `canvass export --out DIR` (export.h).
 *
 * One conversation with publish (admin.c) asks, in turn, for the feature
 * list, each feature's voters page by page, the cycle list and each closed
 * cycle's ranked list; each answer is written as it comes, so the votes of
 * a large cluster stream to disk rather than collect in memory.
 */
#include "export.h"
#include "cli.h"
#include "cv_config.h"
#include "cv_err.h"
#include "cv_json.h"
#include "feature.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define EXPORT_PAGE 1000 /* voters per request */

/* ---- files ---------------------------------------------------------------- */

int cv_export_mkdirs(const char *path, char *err, size_t errlen)
{
    char buf[PATH_MAX];
    if (!*path || strlen(path) >= sizeof buf) {
        snprintf(err, errlen, "cannot create '%s': %s", path,
                 *path ? "path too long" : "empty path");
        return CV_EIO;
    }
    strcpy(buf, path);
    /* Each parent in turn, then the path itself; EEXIST is fine when what
     * exists is a directory. */
    for (char *p = buf + 1;; p++) {
        if (*p && *p != '/')
            continue;
        char c = *p;
        *p = '\0';
        struct stat st;
        if (mkdir(buf, 0777) < 0 &&
            (errno != EEXIST || stat(buf, &st) < 0 || !S_ISDIR(st.st_mode))) {
            int e = errno == EEXIST ? ENOTDIR : errno;
            snprintf(err, errlen, "cannot create %s: %s", path, strerror(e));
            return CV_EIO;
        }
        *p = c;
        if (!c)
            return 0;
        while (p[1] == '/')
            p++;
        if (!p[1])
            return 0; /* a trailing slash */
    }
}

int cv_export_file(const char *dir, const char *name, cv_export_writer_t write, void *arg,
                   char *err, size_t errlen)
{
    char final[PATH_MAX], tmp[PATH_MAX];
    if (snprintf(final, sizeof final, "%s/%s", dir, name) >= (int)sizeof final ||
        snprintf(tmp, sizeof tmp, "%s/.%s.XXXXXX", dir, name) >= (int)sizeof tmp) {
        snprintf(err, errlen, "cannot write %s/%s: path too long", dir, name);
        return CV_EIO;
    }
    int fd = mkstemp(tmp);
    FILE *out = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!out) {
        snprintf(err, errlen, "cannot write %s: %s", final, strerror(errno));
        if (fd >= 0) {
            close(fd);
            unlink(tmp);
        }
        return CV_EIO;
    }
    fchmod(fd, 0644); /* mkstemp makes 0600; these are reports to share */
    int rc = write(out, arg);
    /* A stream that failed inside the writer still holds the reason (a
     * full disk) in errno; a writer that failed for its own reasons does
     * not touch the stream's error flag. */
    int e = rc < 0 && ferror(out) ? errno : 0;
    if (rc == 0 && (fflush(out) == EOF || ferror(out) || fsync(fd) < 0)) {
        e = errno;
        rc = CV_EIO;
    }
    if (fclose(out) == EOF && rc == 0) {
        e = errno;
        rc = CV_EIO;
    }
    if (rc == 0 && rename(tmp, final) < 0) {
        e = errno;
        rc = CV_EIO;
    }
    if (rc < 0) {
        snprintf(err, errlen, "cannot write %s: %s", final, e ? strerror(e) : cv_strerror(rc));
        unlink(tmp);
    }
    return rc;
}

/* ---- what is written ------------------------------------------------------ */

typedef struct {
    cv_cli_admin_t *admin;
    const Canvass__V1__FeatureTable *features;
    unsigned long long votes; /* rows written to votes.csv */
    int told;                 /* a failure already printed (publish's) */
} export_t;

static int write_features(FILE *out, void *arg)
{
    const export_t *x = arg;
    return cv_feature_print_csv(out, x->features);
}

/* All voters of one feature, page after page. */
static int write_feature_votes(FILE *out, export_t *x, const char *id)
{
    char *after = strdup("");
    for (;;) {
        if (!after)
            return CV_ENOMEM;
        Canvass__V1__VotersQuery q = CANVASS__V1__VOTERS_QUERY__INIT;
        q.feature_id = (char *)id;
        q.after = after;
        q.limit = EXPORT_PAGE;
        Canvass__V1__AdminRequest req = CANVASS__V1__ADMIN_REQUEST__INIT;
        req.op_case = CANVASS__V1__ADMIN_REQUEST__OP_FEATURE_VOTERS;
        req.feature_voters = &q;
        Canvass__V1__AdminReply *rep;
        if (cv_cli_admin_call(x->admin, &req, CANVASS__V1__ADMIN_REPLY__RESULT_VOTERS,
                              "a page of voters", &rep) != CV_CLI_OK) {
            x->told = 1;
            free(after);
            return CV_EIO;
        }
        const Canvass__V1__VoterPage *pg = rep->voters;
        int more = *pg->next_after != '\0';
        if (more && (pg->n_voters == 0 || !strcmp(pg->next_after, after))) {
            cv_cli_fail("publish sent a page of %s's voters that does not advance past '%s'", id,
                        after);
            x->told = 1;
            canvass__v1__admin_reply__free_unpacked(rep, NULL);
            free(after);
            return CV_EIO;
        }
        int rc = cv_feature_print_votes_csv(out, pg);
        x->votes += pg->n_voters;
        free(after);
        after = more ? strdup(pg->next_after) : NULL;
        canvass__v1__admin_reply__free_unpacked(rep, NULL);
        if (rc < 0 || !more)
            return rc;
    }
}

static int write_votes(FILE *out, void *arg)
{
    export_t *x = arg;
    if (fputs(CV_VOTES_CSV_HEADER, out) == EOF)
        return CV_EIO;
    for (size_t i = 0; i < x->features->n_features; i++) {
        const Canvass__V1__FeatureStanding *s = x->features->features[i];
        /* No voters when listed: nothing to ask.  Merged: its votes live on
         * in the target's rows. */
        if (!s->feature || !s->voters || !strcmp(s->feature->status, "merged"))
            continue;
        int rc = write_feature_votes(out, x, s->feature->feature_id);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* A cv_json string and a newline, as `canvass ... --format json` prints it. */
static int write_json(FILE *out, void *arg)
{
    const char *json = arg;
    return fputs(json, out) == EOF || fputc('\n', out) == EOF ? CV_EIO : 0;
}

/* Writes a cv_json string (NULL: out of memory) as dir/name and frees it. */
static int export_json(const char *dir, const char *name, char *json)
{
    char err[PATH_MAX + 128];
    if (!json) {
        cv_cli_fail("cannot write %s/%s: out of memory", dir, name);
        return CV_CLI_FAIL;
    }
    int rc = cv_export_file(dir, name, write_json, json, err, sizeof err);
    free(json);
    if (rc < 0) {
        cv_cli_fail("%s", err);
        return CV_CLI_FAIL;
    }
    return CV_CLI_OK;
}

/* The ranked list of every closed cycle, as ranked/cycle-N.json. */
static int export_ranked(export_t *x, const Canvass__V1__CycleList *cl, const char *rdir,
                         size_t *closed)
{
    *closed = 0;
    for (size_t i = 0; i < cl->n_cycles; i++) {
        const Canvass__V1__CycleInfo *c = cl->cycles[i];
        if (strcmp(c->state, "closed"))
            continue;
        char cycle[24], name[48];
        snprintf(cycle, sizeof cycle, "%llu", (unsigned long long)c->cycle);
        snprintf(name, sizeof name, "cycle-%s.json", cycle);
        /* The stored list, uncut and in score order: publish answers that
         * with the bytes stored at the close. */
        Canvass__V1__RankedQuery q = CANVASS__V1__RANKED_QUERY__INIT;
        q.cycle = cycle;
        q.order = "score";
        Canvass__V1__AdminRequest req = CANVASS__V1__ADMIN_REQUEST__INIT;
        req.op_case = CANVASS__V1__ADMIN_REQUEST__OP_RANKED;
        req.ranked = &q;
        Canvass__V1__AdminReply *rep;
        int r = cv_cli_admin_call(x->admin, &req, CANVASS__V1__ADMIN_REPLY__RESULT_RANKED,
                                  "a ranked list", &rep);
        if (r != CV_CLI_OK)
            return r;
        r = export_json(rdir, name, cv_json_ranked(rep->ranked));
        canvass__v1__admin_reply__free_unpacked(rep, NULL);
        if (r != CV_CLI_OK)
            return r;
        (*closed)++;
    }
    return CV_CLI_OK;
}

static int run_export(export_t *x, const char *dir)
{
    char err[PATH_MAX + 128], rdir[PATH_MAX];
    Canvass__V1__AdminReply *frep = NULL, *crep = NULL;
    int r;
    if (snprintf(rdir, sizeof rdir, "%s/ranked", dir) >= (int)sizeof rdir) {
        cv_cli_fail("cannot create %s/ranked: path too long", dir);
        return CV_CLI_FAIL;
    }
    /* The cluster first: an export that cannot reach publish leaves no
     * empty directory behind. */
    Canvass__V1__FeatureList fq = CANVASS__V1__FEATURE_LIST__INIT;
    Canvass__V1__AdminRequest req = CANVASS__V1__ADMIN_REQUEST__INIT;
    req.op_case = CANVASS__V1__ADMIN_REQUEST__OP_FEATURES;
    req.features = &fq;
    if ((r = cv_cli_admin_call(x->admin, &req, CANVASS__V1__ADMIN_REPLY__RESULT_FEATURES,
                               "the feature list", &frep)) != CV_CLI_OK)
        return r;
    if (cv_export_mkdirs(dir, err, sizeof err) < 0 || cv_export_mkdirs(rdir, err, sizeof err) < 0) {
        cv_cli_fail("%s", err);
        r = CV_CLI_FAIL;
        goto out;
    }
    cv_feature_sort(frep->features);
    x->features = frep->features;
    if (cv_export_file(dir, "features.csv", write_features, x, err, sizeof err) < 0 ||
        cv_export_file(dir, "votes.csv", write_votes, x, err, sizeof err) < 0) {
        if (!x->told)
            cv_cli_fail("%s", err);
        r = CV_CLI_FAIL;
        goto out;
    }

    Canvass__V1__CyclesQuery cq = CANVASS__V1__CYCLES_QUERY__INIT;
    Canvass__V1__AdminRequest creq = CANVASS__V1__ADMIN_REQUEST__INIT;
    creq.op_case = CANVASS__V1__ADMIN_REQUEST__OP_CYCLES;
    creq.cycles = &cq;
    size_t closed;
    if ((r = cv_cli_admin_call(x->admin, &creq, CANVASS__V1__ADMIN_REPLY__RESULT_CYCLES,
                               "the cycle list", &crep)) != CV_CLI_OK ||
        (r = export_json(dir, "cycles.json", cv_json_cycles(crep->cycles))) != CV_CLI_OK ||
        (r = export_ranked(x, crep->cycles, rdir, &closed)) != CV_CLI_OK)
        goto out;

    size_t nf = frep->features->n_features;
    printf("exported %zu feature%s, %llu vote%s and %zu closed cycle%s to %s\n", nf,
           nf == 1 ? "" : "s", x->votes, x->votes == 1 ? "" : "s", closed, closed == 1 ? "" : "s",
           dir);
    r = cv_cli_print_result(0);
out:
    if (crep)
        canvass__v1__admin_reply__free_unpacked(crep, NULL);
    canvass__v1__admin_reply__free_unpacked(frep, NULL);
    return r;
}

int cv_cli_export(int argc, char **argv)
{
    static char *dir;
    cv_config_opt_t opts[] = {
        {"out", CV_CFG_STR, NULL, 0, 0, &dir, "directory to write into (created if missing)"},
        CV_CLI_ADMIN_OPTS,
        {0}};
    const char *usage = "canvass export --out DIR  (writes DIR/features.csv, DIR/votes.csv, "
                        "DIR/cycles.json, DIR/ranked/cycle-N.json)";
    int npos;
    int r = cv_config_parse("canvass", usage, opts, argc, argv, 2, &npos);
    if (r != 0)
        return r > 0 ? CV_CLI_OK : CV_CLI_USAGE;
    if (npos > 0) {
        cv_cli_fail("export takes no arguments, got '%s' (did you mean --out %s?)", argv[2],
                    argv[2]);
        return CV_CLI_USAGE;
    }
    if (!*dir) {
        cv_cli_fail("export needs --out DIR");
        return CV_CLI_USAGE;
    }
    export_t x = {0};
    if ((r = cv_cli_admin_new(&x.admin)) != CV_CLI_OK)
        return r;
    r = run_export(&x, dir);
    cv_cli_admin_destroy(&x.admin);
    return r;
}
