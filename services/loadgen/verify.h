/* verify: checks the loadgen's own record against the cluster.
 *
 * After a run, every vote the loadgen sent has a final reply, and its record
 * says, per feature, how many users' stored votes are up and down.  The
 * cluster's live ranked list (AdminRequest{ranked{cycle "live"}} to
 * publish's REP socket, DESIGN A7) must report exactly those counts for every
 * feature the run created: up, down and voters (distinct users with a
 * non-zero vote; every loadgen vote is a member-tier vote).
 *
 * This only holds when no one else votes on those features, which is why
 * the loadgen verifies only features it created itself (--setup).
 */
#ifndef CV_LOADGEN_VERIFY_H
#define CV_LOADGEN_VERIFY_H

#include "report.h"
#include "workload.h"

#include <stdio.h>

typedef struct {
    const char *publish;      /* "host:port" or "tcp://host:port" of publish's REP socket */
    const char *app_key;      /* admin key, or NULL / "" */
    long timeout_ms;          /* for the answer */
    const char *curve_key;    /* own CURVE key pair file, or NULL / "": no CURVE */
    const char *curve_server; /* publish's public key (a .pub file or Z85 text) */
} cv_verify_opts_t;

/* Checks the CURVE settings before a run, so a bad key file fails at start
 * and not after the votes.  Returns 0, or CV_EINVAL with the reason in err. */
int cv_verify_curve_check(const cv_verify_opts_t *opts, char *err, size_t errlen);

/* Compares every named feature of w with the live list.  Prints each
 * mismatch as one "verify: ..." line on out, and sets rep->verify,
 * verify_features and verify_mismatches.  Returns 0 when everything matched,
 * CV_EMISMATCH when something differed, or CV_EIO / CV_ETIMEOUT / CV_EDECODE
 * / CV_ENOMEM when the list could not be had (with one line on out saying
 * why). */
int cv_verify(const cv_verify_opts_t *opts, const cv_workload_t *w, cv_report_t *rep, FILE *out);

#endif
