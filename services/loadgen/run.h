/* run: one benchmark run, driving the connections on a libuv loop.
 *
 * Phases:
 *   setup  (with opts.setup) submit one feature per workload feature through
 *          the client protocol, pipelined over all connections, and name
 *          each workload feature after the id the server returned;
 *   votes  send votes from the workload until opts.votes have been sent, or,
 *          with opts.duration_s > 0, until that much time has passed;
 *   drain  send nothing new, wait until every vote has a final reply.
 * The run ends when every vote sent has a final reply, so a report never
 * counts a vote that was not answered.
 *
 * Replies:  OK records the vote (latency, from the vote's first send to this
 * reply, goes into the histogram).  UNAVAILABLE ("safe to retry") sends the
 * same vote again 100 ms later; a vote in flight on a lost connection is
 * sent again at once on whichever connection has room.  Both count as
 * retries, not as new votes.  Every other status is final and counted;
 * INTERNAL (or a status this client does not know) leaves the vote's fate
 * unknown, which the verification reports.
 *
 * With opts.rate, new votes are paced to that many per second (retries are
 * not paced), so latency can be read at a load below the peak; the loop
 * wakes every millisecond to send what has come due.  In --votes mode the
 * report also gets the OK rate of each tenth of the run's OK replies, to
 * compare the end of a long run with its start.
 *
 * The run fails (report.failure) when no vote gets a final reply for
 * opts.stall_s seconds, when the server refuses the Hello or a setup submit,
 * or on a second SIGINT.  The first SIGINT ends the votes phase early (drain
 * and report).  A progress line is drawn on stderr with opts.progress.
 */
#ifndef CV_LOADGEN_RUN_H
#define CV_LOADGEN_RUN_H

#include "backend.h"
#include "report.h"
#include "workload.h"

#include <stdbool.h>

typedef struct {
    const cv_backend_t *backend; /* the kind of server; NULL = canvass */
    const char *server;  /* its address: "host:port" of ingest for canvass */
    unsigned connections, depth;
    long votes;          /* votes to send (when duration_s == 0) */
    double duration_s;   /* > 0: send votes for this long instead */
    bool setup;          /* submit the features first (else they are named) */
    const char *app_key; /* NULL or "": no Hello */
    bool progress;       /* draw a progress line on stderr */
    double stall_s;      /* give up after this long without a final reply */
    double rate;         /* > 0: offer at most this many new votes per second */
} cv_run_opts_t;

/* Runs the benchmark against the server, recording into w and rep (whose
 * configuration fields the caller fills).  Without opts.setup every workload
 * feature must already be named.  Returns 0 when the run completed, or a
 * CV_E* code with rep->failure saying why. */
int cv_run(const cv_run_opts_t *opts, cv_workload_t *w, cv_report_t *rep);

#endif
