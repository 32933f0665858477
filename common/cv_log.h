/* cv_log: logfmt lines on stderr.
 *
 * Every line carries the time, level, process ident and (when set) shard id:
 *   ts=2026-11-25T10:00:00.123Z level=info proc=tally shard=1 msg="started" port=7710
 * The caller writes the rest of the line as key=value pairs.  The level is
 * checked before any formatting, so a disabled debug line costs one compare.
 */
#ifndef CV_LOG_H
#define CV_LOG_H

enum { CV_LOG_DEBUG = 0, CV_LOG_INFO = 1, CV_LOG_WARN = 2, CV_LOG_ERROR = 3 };

extern int cv_log_level;

/* Sets the process ident (borrowed: must outlive logging), the shard id (-1
 * for none) and the minimum level. */
void cv_log_init(const char *ident, int shard, int level);

/* Parses "debug", "info", "warn" or "error"; returns the level or -1. */
int cv_log_level_parse(const char *name);

#define cv_log(lvl, ...)                                                       \
    do {                                                                       \
        if ((lvl) >= cv_log_level)                                             \
            cv__log((lvl), __VA_ARGS__);                                       \
    } while (0)

void cv__log(int lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
