/* audit: the offline tools of canvass-tally, for tests and operators.
 *
 * Both read a shard store in one read transaction, so they may run while
 * the shard serves in another process (LMDB allows concurrent readers) and
 * see one committed state.
 */
#ifndef TALLY_AUDIT_H
#define TALLY_AUDIT_H

#include <stdio.h>

/* --check: recounts every feature's counters from the votes table and
 * compares them with the tallies table.  Prints "ok features=N votes=M"
 * (M = non-zero votes) to out and returns 0; or prints one "mismatch ..."
 * line per disagreement (counters that differ from the recount, a feature
 * without counters, counters, trends, votes or created index entries without
 * a feature, unreadable records)
 * and returns 1.  Returns 2 when the store cannot be read (reason on
 * stderr). */
int cv_audit_check(const char *dir, FILE *out);

/* --dump-votes: prints every stored non-zero vote as
 * "feature_id<TAB>user_id<TAB>value<TAB>tier" (value -1 or 1, tier member,
 * core or honorary), in key order.  Backslash, tab, newline and carriage
 * return in a user id are written as \\, \t, \n and \r.  Returns 0, or 2 when
 * the store cannot be read. */
int cv_audit_dump_votes(const char *dir, FILE *out);

#endif
