/* manage: the release-manager commands on features (DESIGN A7).
 *
 *   canvass feature show ID [--format text|json]
 *   canvass feature status ID planned|in_progress|shipped|declined|open
 *                          [--release NAME] [--format text|json]
 *   canvass feature merge SRC [into] DST [--format text|json]
 *   canvass feature voters ID [--after U] [--limit N] [--all]
 *                          [--format text|json|csv]
 *   canvass features [--format table|json|csv]
 *
 * Each sends AdminRequests to publish through admin.c and prints the reply
 * through feature.c (text, tables, CSV) or cv_json (JSON, the same bytes as
 * the HTTP API).  Arguments are checked here before anything is sent, so a
 * typo is a usage error (exit 2) rather than a round trip.
 */
#include "cli.h"
#include "cv_config.h"
#include "cv_err.h"
#include "cv_json.h"
#include "cv_validate.h"
#include "feature.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VOTERS_PAGE_DEFAULT "100"
#define VOTERS_PAGE_MAX 1000 /* what a shard serves in one page */

/* ---- argument checks ------------------------------------------------------ */

/* Parses a subcommand's options (argv[3..]: argv[1] is "feature", argv[2]
 * the subcommand); returns -1 to go on, or the exit status when --help was
 * printed or the options were bad. */
static int parse_sub(const char *usage, cv_config_opt_t *opts, int argc, char **argv, int *npos)
{
    int r = cv_config_parse("canvass", usage, opts, argc, argv, 3, npos);
    return r == 0 ? -1 : r > 0 ? CV_CLI_OK : CV_CLI_USAGE;
}

static int id_ok(const char *id)
{
    if (cv_feature_id_valid(id, strlen(id)))
        return 1;
    cv_cli_fail("'%s' is not a feature id (1-64 characters of A-Z a-z 0-9 _ -)", id);
    return 0;
}

/* Index of s in names[0..n), or -1 after saying what was expected. */
static int pick(const char *what, const char *s, const char *const *names, int n,
                const char *expected)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(s, names[i]))
            return i;
    cv_cli_fail("%s must be %s, got '%s'", what, expected, s);
    return -1;
}

enum { OUT_TEXT, OUT_JSON, OUT_CSV };

/* --format for people (text, or its synonym table: CANVASS_FORMAT may be set
 * for `ranked`, whose word is table), json, and csv where allowed. */
static int out_format(const char *s, int csv_ok, const char *people)
{
    if (!strcmp(s, "text") || !strcmp(s, "table"))
        return OUT_TEXT;
    if (!strcmp(s, "json"))
        return OUT_JSON;
    if (csv_ok && !strcmp(s, "csv"))
        return OUT_CSV;
    cv_cli_fail("--format must be %s%s, got '%s'", people, csv_ok ? ", json or csv" : " or json",
                s);
    return -1;
}

/* ---- feature show --------------------------------------------------------- */

static int feature_show(int argc, char **argv)
{
    static char *format;
    cv_config_opt_t opts[] = {
        {"format", CV_CFG_STR, "text", 0, 0, &format, "text or json"}, CV_CLI_ADMIN_OPTS, {0}};
    int npos,
        r = parse_sub("canvass feature show ID [--format text|json]", opts, argc, argv, &npos);
    if (r >= 0)
        return r;
    if (npos != 1) {
        cv_cli_fail("usage: canvass feature show ID [--format text|json]");
        return CV_CLI_USAGE;
    }
    int fmt = out_format(format, 0, "text");
    if (fmt < 0 || !id_ok(argv[3]))
        return CV_CLI_USAGE;

    Canvass__V1__FeatureShow q = CANVASS__V1__FEATURE_SHOW__INIT;
    q.feature_id = argv[3];
    Canvass__V1__AdminRequest req = CANVASS__V1__ADMIN_REQUEST__INIT;
    req.op_case = CANVASS__V1__ADMIN_REQUEST__OP_FEATURE_SHOW;
    req.feature_show = &q;
    Canvass__V1__AdminReply *rep;
    if ((r = cv_cli_admin_once(&req, CANVASS__V1__ADMIN_REPLY__RESULT_FEATURE, "the feature",
                               &rep)) != CV_CLI_OK)
        return r;
    if (fmt == OUT_JSON)
        r = cv_cli_print_json(cv_json_feature(rep->feature));
    else
        r = cv_cli_print_result(cv_feature_print_detail(stdout, rep->feature));
    canvass__v1__admin_reply__free_unpacked(rep, NULL);
    return r;
}

/* ---- feature status ------------------------------------------------------- */

static int feature_status(int argc, char **argv)
{
    static char *release, *format;
    static const char *const statuses[] = {"open", "planned", "in_progress", "shipped", "declined"};
    cv_config_opt_t opts[] = {
        {"release", CV_CFG_STR, NULL, 0, 0, &release, "the release it ships in (with shipped)"},
        {"format", CV_CFG_STR, "text", 0, 0, &format, "text or json (the feature after)"},
        CV_CLI_ADMIN_OPTS,
        {0}};
    const char *usage = "canvass feature status ID planned|in_progress|shipped|declined|open "
                        "[--release NAME]";
    int npos, r = parse_sub(usage, opts, argc, argv, &npos);
    if (r >= 0)
        return r;
    if (npos != 2) {
        cv_cli_fail("usage: %s", usage);
        return CV_CLI_USAGE;
    }
    const char *id = argv[3];
    char *status = argv[4];
    if (!strcmp(status, "in-progress")) /* the spelling people type */
        status = "in_progress";
    if (!strcmp(status, "merged")) {
        cv_cli_fail("a feature becomes merged through canvass feature merge SRC DST");
        return CV_CLI_USAGE;
    }
    int fmt = out_format(format, 0, "text");
    if (fmt < 0 || !id_ok(id) ||
        pick("the status", status, statuses, 5, "planned, in_progress, shipped, declined or open") <
            0)
        return CV_CLI_USAGE;
    if (*release && strcmp(status, "shipped")) {
        cv_cli_fail("--release goes with shipped only");
        return CV_CLI_USAGE;
    }

    /* Setting what a feature already has changes nothing and tells no one
     * (the shard keeps it as it is); ask first so the answer can say so. */
    cv_cli_admin_t *a;
    if ((r = cv_cli_admin_new(&a)) != CV_CLI_OK)
        return r;
    Canvass__V1__FeatureShow sq = CANVASS__V1__FEATURE_SHOW__INIT;
    sq.feature_id = (char *)id;
    Canvass__V1__AdminRequest req = CANVASS__V1__ADMIN_REQUEST__INIT;
    req.op_case = CANVASS__V1__ADMIN_REQUEST__OP_FEATURE_SHOW;
    req.feature_show = &sq;
    Canvass__V1__AdminReply *rep;
    if ((r = cv_cli_admin_call(a, &req, CANVASS__V1__ADMIN_REPLY__RESULT_FEATURE, "the feature",
                               &rep)) != CV_CLI_OK)
        goto out;
    const Canvass__V1__FeatureStanding *s = rep->feature->standing;
    const Canvass__V1__FeatureRecord *f = s ? s->feature : NULL;
    int unchanged = f && !strcmp(f->status, status) && !strcmp(f->release, release);
    if (!unchanged) {
        canvass__v1__admin_reply__free_unpacked(rep, NULL);
        Canvass__V1__FeatureStatus q = CANVASS__V1__FEATURE_STATUS__INIT;
        q.feature_id = (char *)id;
        q.status = status;
        q.release = release;
        req.op_case = CANVASS__V1__ADMIN_REQUEST__OP_FEATURE_STATUS;
        req.feature_status = &q;
        if ((r = cv_cli_admin_call(a, &req, CANVASS__V1__ADMIN_REPLY__RESULT_FEATURE,
                                   "the changed feature", &rep)) != CV_CLI_OK)
            goto out;
        s = rep->feature->standing;
        f = s ? s->feature : NULL;
    }
    if (fmt == OUT_JSON) {
        r = cv_cli_print_json(cv_json_feature(rep->feature));
    } else {
        unsigned long long voters = s ? (unsigned long long)s->voters : 0;
        printf("%s is %s %s", id, unchanged ? "already" : "now",
               f && *f->status ? f->status : status);
        if (f && *f->release && !strcmp(f->status, "shipped"))
            printf(" in %s", f->release);
        if (unchanged)
            printf("; nothing changed, no one is told again\n");
        else if (voters)
            printf("; %llu voter%s will be told\n", voters, voters == 1 ? "" : "s");
        else
            printf("; it has no voters to tell\n");
        r = cv_cli_print_result(0);
    }
    canvass__v1__admin_reply__free_unpacked(rep, NULL);
out:
    cv_cli_admin_destroy(&a);
    return r;
}

/* ---- feature merge -------------------------------------------------------- */

static int feature_merge(int argc, char **argv)
{
    static char *format;
    cv_config_opt_t opts[] = {
        {"format", CV_CFG_STR, "text", 0, 0, &format, "text or json"}, CV_CLI_ADMIN_OPTS, {0}};
    const char *usage = "canvass feature merge SRC [into] DST";
    int npos, r = parse_sub(usage, opts, argc, argv, &npos);
    if (r >= 0)
        return r;
    if (npos == 3 && !strcmp(argv[4], "into")) { /* "merge F1 into F2" reads well */
        argv[4] = argv[5];
        npos = 2;
    }
    if (npos != 2) {
        cv_cli_fail("usage: %s (moves SRC's votes to DST)", usage);
        return CV_CLI_USAGE;
    }
    const char *src = argv[3], *dst = argv[4];
    int fmt = out_format(format, 0, "text");
    if (fmt < 0 || !id_ok(src) || !id_ok(dst))
        return CV_CLI_USAGE;
    if (!strcmp(src, dst)) {
        cv_cli_fail("cannot merge %s into itself", src);
        return CV_CLI_USAGE;
    }

    Canvass__V1__FeatureMerge q = CANVASS__V1__FEATURE_MERGE__INIT;
    q.src = (char *)src;
    q.dst = (char *)dst;
    Canvass__V1__AdminRequest req = CANVASS__V1__ADMIN_REQUEST__INIT;
    req.op_case = CANVASS__V1__ADMIN_REQUEST__OP_FEATURE_MERGE;
    req.feature_merge = &q;
    Canvass__V1__AdminReply *rep;
    if ((r = cv_cli_admin_once(&req, CANVASS__V1__ADMIN_REPLY__RESULT_MERGE,
                               "the result of the merge", &rep)) != CV_CLI_OK)
        return r;
    const Canvass__V1__MergeResult *m = rep->merge;
    if (fmt == OUT_JSON) {
        r = cv_cli_print_json(cv_json_merge(m));
    } else {
        printf("merged %s into %s: %llu vote%s moved", src, dst, (unsigned long long)m->moved,
               m->moved == 1 ? "" : "s");
        if (m->kept)
            printf(", %llu user%s had voted on both (kept their vote on %s)",
                   (unsigned long long)m->kept, m->kept == 1 ? "" : "s", dst);
        putchar('\n');
        r = cv_cli_print_result(0);
    }
    canvass__v1__admin_reply__free_unpacked(rep, NULL);
    return r;
}

/* ---- feature voters ------------------------------------------------------- */

/* The pages of one listing, kept when they must be printed as one (json). */
typedef struct {
    Canvass__V1__AdminReply **replies;
    size_t n, cap;
} pages_t;

static int pages_keep(pages_t *p, Canvass__V1__AdminReply *rep)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 8;
        Canvass__V1__AdminReply **r = realloc(p->replies, cap * sizeof *r);
        if (!r)
            return CV_ENOMEM;
        p->replies = r;
        p->cap = cap;
    }
    p->replies[p->n++] = rep;
    return 0;
}

static void pages_free(pages_t *p)
{
    for (size_t i = 0; i < p->n; i++)
        canvass__v1__admin_reply__free_unpacked(p->replies[i], NULL);
    free(p->replies);
}

/* Every kept page as one VoterPage (borrowing their voters) in cv_json. */
static char *pages_json(const pages_t *p, const char *id)
{
    Canvass__V1__VoterPage all = CANVASS__V1__VOTER_PAGE__INIT;
    size_t n = 0;
    for (size_t i = 0; i < p->n; i++)
        n += p->replies[i]->voters->n_voters;
    Canvass__V1__Voter **v = malloc((n ? n : 1) * sizeof *v);
    if (!v)
        return NULL;
    all.feature_id = (char *)id;
    all.voters = v;
    for (size_t i = 0; i < p->n; i++) {
        const Canvass__V1__VoterPage *pg = p->replies[i]->voters;
        memcpy(v + all.n_voters, pg->voters, pg->n_voters * sizeof *v);
        all.n_voters += pg->n_voters;
        all.total = pg->total;
        if (*pg->feature_id)
            all.feature_id = pg->feature_id;
    }
    char *json = cv_json_voters(&all);
    free(v);
    return json;
}

static int feature_voters(int argc, char **argv)
{
    static char *after, *format;
    static long limit;
    static int all;
    cv_config_opt_t opts[] = {
        {"after", CV_CFG_STR, NULL, 0, 0, &after, "start after this user id (the next page)"},
        {"limit", CV_CFG_INT, VOTERS_PAGE_DEFAULT, 1, VOTERS_PAGE_MAX, &limit, "voters per page"},
        {"all", CV_CFG_BOOL, "false", 0, 0, &all, "follow the pages to the last voter"},
        {"format", CV_CFG_STR, "text", 0, 0, &format, "text, json or csv"},
        CV_CLI_ADMIN_OPTS,
        {0}};
    const char *usage = "canvass feature voters ID [--after USER] [--limit N] [--all] "
                        "[--format text|json|csv]";
    int npos, r = parse_sub(usage, opts, argc, argv, &npos);
    if (r >= 0)
        return r;
    if (npos != 1) {
        cv_cli_fail("usage: %s", usage);
        return CV_CLI_USAGE;
    }
    const char *id = argv[3];
    int fmt = out_format(format, 1, "text");
    if (fmt < 0 || !id_ok(id))
        return CV_CLI_USAGE;

    cv_cli_admin_t *a;
    if ((r = cv_cli_admin_new(&a)) != CV_CLI_OK)
        return r;
    pages_t kept = {0};
    char *cursor = strdup(after);
    r = cursor ? CV_CLI_OK : cv_cli_print_result(CV_ENOMEM);
    for (int first = 1; r == CV_CLI_OK; first = 0) {
        Canvass__V1__VotersQuery q = CANVASS__V1__VOTERS_QUERY__INIT;
        q.feature_id = (char *)id;
        q.after = cursor;
        q.limit = (uint32_t)limit;
        Canvass__V1__AdminRequest req = CANVASS__V1__ADMIN_REQUEST__INIT;
        req.op_case = CANVASS__V1__ADMIN_REQUEST__OP_FEATURE_VOTERS;
        req.feature_voters = &q;
        Canvass__V1__AdminReply *rep;
        if ((r = cv_cli_admin_call(a, &req, CANVASS__V1__ADMIN_REPLY__RESULT_VOTERS,
                                   "a page of voters", &rep)) != CV_CLI_OK)
            break;
        const Canvass__V1__VoterPage *pg = rep->voters;
        /* A page that does not move the cursor would loop forever. */
        int more = *pg->next_after != '\0';
        if (more && (pg->n_voters == 0 || !strcmp(pg->next_after, cursor))) {
            cv_cli_fail("publish sent a page of voters that does not advance past '%s'", cursor);
            canvass__v1__admin_reply__free_unpacked(rep, NULL);
            r = CV_CLI_FAIL;
            break;
        }
        free(cursor);
        cursor = strdup(pg->next_after);
        if (fmt == OUT_JSON) {
            if (pages_keep(&kept, rep) < 0) {
                canvass__v1__admin_reply__free_unpacked(rep, NULL);
                r = cv_cli_print_result(CV_ENOMEM);
                break;
            }
        } else {
            int rc = cv_feature_print_voters(
                stdout, pg, fmt == OUT_CSV ? CV_VOTERS_CSV : CV_VOTERS_TEXT, first);
            canvass__v1__admin_reply__free_unpacked(rep, NULL);
            if (rc < 0) {
                r = cv_cli_print_result(rc);
                break;
            }
        }
        if (!cursor) {
            r = cv_cli_print_result(CV_ENOMEM);
            break;
        }
        if (!more || !all)
            break;
    }
    if (r == CV_CLI_OK && fmt == OUT_JSON) {
        /* One page as publish sent it (next_after says where to go on), or
         * every page as one list. */
        r = cv_cli_print_json(kept.n == 1 ? cv_json_voters(kept.replies[0]->voters)
                                          : pages_json(&kept, id));
    } else if (r == CV_CLI_OK) {
        r = cv_cli_print_result(0);
        if (r == CV_CLI_OK && *cursor)
            fprintf(stderr,
                    "canvass: more voters follow: add --after '%s' for the next page, "
                    "or --all for every page\n",
                    cursor);
    }
    free(cursor);
    pages_free(&kept);
    cv_cli_admin_destroy(&a);
    return r;
}

/* ---- canvass feature ------------------------------------------------------ */

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *args, *what;
} subs[] = {
    {"show", feature_show, "ID [--format text|json]", "the feature, its history and ranks"},
    {"status", feature_status, "ID STATUS [--release NAME]",
     "STATUS: planned in_progress shipped declined open"},
    {"merge", feature_merge, "SRC [into] DST", "move a duplicate's votes to DST"},
    {"voters", feature_voters, "ID [--after U] [--limit N] [--all] [--format F]",
     "who voted (F: text, json, csv)"},
};
#define NSUBS (sizeof subs / sizeof subs[0])

static void feature_usage(FILE *out)
{
    fputs("usage: canvass feature <command> [options] [arguments]\n\ncommands:\n", out);
    for (size_t i = 0; i < NSUBS; i++)
        fprintf(out, "  %-6s %-47s  %s\n", subs[i].name, subs[i].args, subs[i].what);
    fputs("\n`canvass feature <command> --help` lists a command's options.\n", out);
}

int cv_cli_feature(int argc, char **argv)
{
    if (argc < 3) {
        feature_usage(stderr);
        return CV_CLI_USAGE;
    }
    if (!strcmp(argv[2], "--help") || !strcmp(argv[2], "-h") || !strcmp(argv[2], "help")) {
        feature_usage(stdout);
        return CV_CLI_OK;
    }
    for (size_t i = 0; i < NSUBS; i++)
        if (!strcmp(argv[2], subs[i].name))
            return subs[i].run(argc, argv);
    cv_cli_fail("unknown feature command '%s' (show, status, merge or voters)", argv[2]);
    return CV_CLI_USAGE;
}

/* ---- canvass features ----------------------------------------------------- */

int cv_cli_features(int argc, char **argv)
{
    static char *format;
    cv_config_opt_t opts[] = {{"format", CV_CFG_STR, "table", 0, 0, &format, "table, json or csv"},
                              CV_CLI_ADMIN_OPTS,
                              {0}};
    int npos;
    int r = cv_config_parse("canvass", "canvass features [--format table|json|csv]", opts, argc,
                            argv, 2, &npos);
    if (r != 0)
        return r > 0 ? CV_CLI_OK : CV_CLI_USAGE;
    if (npos > 0) {
        cv_cli_fail("features takes no arguments, got '%s' (see canvass features --help)", argv[2]);
        return CV_CLI_USAGE;
    }
    int fmt = out_format(format, 1, "table");
    if (fmt < 0)
        return CV_CLI_USAGE;

    Canvass__V1__FeatureList q = CANVASS__V1__FEATURE_LIST__INIT;
    Canvass__V1__AdminRequest req = CANVASS__V1__ADMIN_REQUEST__INIT;
    req.op_case = CANVASS__V1__ADMIN_REQUEST__OP_FEATURES;
    req.features = &q;
    Canvass__V1__AdminReply *rep;
    if ((r = cv_cli_admin_once(&req, CANVASS__V1__ADMIN_REPLY__RESULT_FEATURES, "the feature list",
                               &rep)) != CV_CLI_OK)
        return r;
    cv_feature_sort(rep->features);
    if (fmt == OUT_JSON)
        r = cv_cli_print_json(cv_json_features(rep->features));
    else
        r = cv_cli_print_result(fmt == OUT_CSV ? cv_feature_print_csv(stdout, rep->features)
                                               : cv_feature_print_table(stdout, rep->features));
    canvass__v1__admin_reply__free_unpacked(rep, NULL);
    return r;
}
