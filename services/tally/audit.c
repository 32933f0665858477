/* audit: canvass-tally --check and --dump-votes (see audit.h).
 *
 * The check walks the features table and, for each feature, the run of
 * votes keys that start with "feature_id\0" (all of a feature's votes are
 * adjacent in key order), recounting them with cv_counts_move() exactly as
 * the shard counts them, and compares the result with the stored counters.
 * Votes, counters, trends and created index entries whose feature is
 * missing are found by comparing the number of votes visited with the size
 * of the votes table and by walks of the tallies, trends and created tables.
 */
#include "audit.h"
#include "cv_err.h"
#include "cv_store.h"
#include "cv_votes.h"
#include "shard.h"

#include <string.h>

typedef struct {
    cv_txn_t *txn;
    FILE *out;
    uint64_t features;
    uint64_t votes_seen;    /* vote records visited under an existing feature */
    uint64_t votes_nonzero; /* of those, the non-zero ones */
    uint64_t mismatches;
    uint8_t prefix[CV_FEATURE_ID_MAX + 1]; /* "feature_id\0" being recounted */
    size_t plen;
    cv_counts_t recount;
} audit_t;

static void print_counts(FILE *out, const char *name, const cv_counts_t *c)
{
    fprintf(out, " %s=\"up=%llu/%llu/%llu down=%llu/%llu/%llu voters=%llu\"", name,
            (unsigned long long)c->up[0], (unsigned long long)c->up[1],
            (unsigned long long)c->up[2], (unsigned long long)c->down[0],
            (unsigned long long)c->down[1], (unsigned long long)c->down[2],
            (unsigned long long)c->voters);
}

static void mismatch(audit_t *a, const void *id, size_t idlen, const char *reason)
{
    a->mismatches++;
    fprintf(a->out, "mismatch feature=%.*s reason=\"%s\"\n", (int)idlen, (const char *)id,
            reason);
}

static int feature_exists(audit_t *a, const void *id, size_t idlen)
{
    const void *val;
    size_t vlen;
    return cv_store_get(a->txn, CV_SHARD_FEATURES, id, idlen, &val, &vlen) == 0;
}

/* ---- check ----------------------------------------------------------------- */

static int recount_vote(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    audit_t *a = arg;
    if (klen < a->plen || memcmp(key, a->prefix, a->plen) != 0)
        return 1; /* past this feature's votes */
    a->votes_seen++;
    cv_vote_rec_t rec;
    if (cv_vote_rec_decode(val, vlen, &rec) < 0) {
        mismatch(a, a->prefix, a->plen - 1, "unreadable vote record");
        return 0;
    }
    if (rec.value != 0)
        a->votes_nonzero++;
    cv_counts_move(&a->recount, NULL, &rec);
    return 0;
}

static int check_feature(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    audit_t *a = arg;
    a->features++;
    if (klen < 1 || klen > CV_FEATURE_ID_MAX || memchr(key, '\0', klen)) {
        mismatch(a, key, klen, "malformed feature id");
        return 0;
    }
    memcpy(a->prefix, key, klen);
    a->prefix[klen] = '\0';
    a->plen = klen + 1;
    memset(&a->recount, 0, sizeof a->recount);
    int rc = cv_store_iter(a->txn, CV_SHARD_VOTES, a->prefix, a->plen, recount_vote, a);
    if (rc < 0)
        return rc;

    const void *cval;
    size_t clen;
    cv_counts_t stored;
    rc = cv_store_get(a->txn, CV_SHARD_TALLIES, key, klen, &cval, &clen);
    if (rc == CV_ENOTFOUND) {
        mismatch(a, key, klen, "no counters record");
        return 0;
    }
    if (rc < 0)
        return rc;
    if (cv_counts_decode(cval, clen, &stored) < 0) {
        mismatch(a, key, klen, "unreadable counters record");
        return 0;
    }
    if (!cv_counts_equal(&stored, &a->recount)) {
        a->mismatches++;
        fprintf(a->out, "mismatch feature=%.*s", (int)klen, (const char *)key);
        print_counts(a->out, "stored", &stored);
        print_counts(a->out, "recount", &a->recount);
        fputc('\n', a->out);
    }
    return 0;
}

/* Reports votes whose feature is missing (one line per such feature). */
static int orphan_vote(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    audit_t *a = arg;
    const char *f, *u;
    size_t flen, ulen;
    if (cv_vote_key_split(key, klen, &f, &flen, &u, &ulen) < 0) {
        mismatch(a, "", 0, "malformed votes key");
        return 0;
    }
    /* Keys of one feature are adjacent: report each missing feature once. */
    if (a->plen == flen + 1 && memcmp(a->prefix, f, flen) == 0)
        return 0;
    if (flen > CV_FEATURE_ID_MAX) {
        mismatch(a, f, flen, "votes for a malformed feature id");
        return 0;
    }
    memcpy(a->prefix, f, flen);
    a->prefix[flen] = '\0';
    a->plen = flen + 1;
    if (!feature_exists(a, f, flen))
        mismatch(a, f, flen, "votes for a feature that does not exist");
    return 0;
}

static int orphan_counts(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    audit_t *a = arg;
    if (!feature_exists(a, key, klen))
        mismatch(a, key, klen, "counters for a feature that does not exist");
    return 0;
}

static int orphan_trend(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    audit_t *a = arg;
    if (!feature_exists(a, key, klen))
        mismatch(a, key, klen, "trend for a feature that does not exist");
    return 0;
}

static int orphan_created(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    audit_t *a = arg;
    uint64_t stamp;
    const char *id;
    size_t idlen;
    if (cv_created_key_split(key, klen, &stamp, &id, &idlen) < 0)
        mismatch(a, "", 0, "malformed created index key");
    else if (!feature_exists(a, id, idlen))
        mismatch(a, id, idlen, "created index entry for a feature that does not exist");
    return 0;
}

static int run_check(audit_t *a)
{
    int rc = cv_store_iter(a->txn, CV_SHARD_FEATURES, NULL, 0, check_feature, a);
    if (rc < 0)
        return rc;
    if (cv_store_count(a->txn, CV_SHARD_VOTES) != a->votes_seen) {
        a->plen = 0;
        if ((rc = cv_store_iter(a->txn, CV_SHARD_VOTES, NULL, 0, orphan_vote, a)) < 0)
            return rc;
    }
    if ((rc = cv_store_iter(a->txn, CV_SHARD_TALLIES, NULL, 0, orphan_counts, a)) < 0)
        return rc;
    if ((rc = cv_store_iter(a->txn, CV_SHARD_TRENDS, NULL, 0, orphan_trend, a)) < 0)
        return rc;
    return cv_store_iter(a->txn, CV_SHARD_CREATED, NULL, 0, orphan_created, a);
}

int cv_audit_check(const char *dir, FILE *out)
{
    cv_store_t *store = cv_shard_store_open_existing(dir);
    if (!store)
        return 2;
    audit_t a = {.out = out};
    int rc = cv_store_begin(store, 1, &a.txn);
    if (rc == 0) {
        rc = run_check(&a);
        cv_store_abort(&a.txn);
    }
    cv_store_close(&store);
    if (rc < 0) {
        fprintf(stderr, "canvass-tally: reading %s failed: %s\n", dir, cv_strerror(rc));
        return 2;
    }
    if (a.mismatches) {
        fprintf(stderr, "canvass-tally: %llu mismatches in %s\n",
                (unsigned long long)a.mismatches, dir);
        return 1;
    }
    fprintf(out, "ok features=%llu votes=%llu\n", (unsigned long long)a.features,
            (unsigned long long)a.votes_nonzero);
    return 0;
}

/* ---- dump ------------------------------------------------------------------ */

static void put_escaped(FILE *out, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        switch (s[i]) {
        case '\\': fputs("\\\\", out); break;
        case '\t': fputs("\\t", out); break;
        case '\n': fputs("\\n", out); break;
        case '\r': fputs("\\r", out); break;
        default: fputc(s[i], out);
        }
    }
}

static int dump_vote(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    FILE *out = arg;
    const char *f, *u;
    size_t flen, ulen;
    cv_vote_rec_t rec;
    if (cv_vote_key_split(key, klen, &f, &flen, &u, &ulen) < 0 ||
        cv_vote_rec_decode(val, vlen, &rec) < 0) {
        fprintf(stderr, "canvass-tally: skipped an unreadable vote record (run --check)\n");
        return 0;
    }
    if (rec.value == 0)
        return 0;
    put_escaped(out, f, flen);
    fputc('\t', out);
    put_escaped(out, u, ulen);
    fprintf(out, "\t%d\t%s\n", rec.value, cv_tier_name(rec.tier));
    return 0;
}

int cv_audit_dump_votes(const char *dir, FILE *out)
{
    cv_store_t *store = cv_shard_store_open_existing(dir);
    if (!store)
        return 2;
    cv_txn_t *txn;
    int rc = cv_store_begin(store, 1, &txn);
    if (rc == 0) {
        rc = cv_store_iter(txn, CV_SHARD_VOTES, NULL, 0, dump_vote, out);
        cv_store_abort(&txn);
    }
    cv_store_close(&store);
    if (rc < 0) {
        fprintf(stderr, "canvass-tally: reading %s failed: %s\n", dir, cv_strerror(rc));
        return 2;
    }
    return 0;
}
